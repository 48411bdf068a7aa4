"""Server-sent events for one session: status and new segments as the job produces them.

Works the same whether the job runs in this process or in a separate worker: the stream watches
the session's status.json and transcription.json (a stat every 50 ms, a read only on change), so
clients never have to poll the API.
"""

from __future__ import annotations

import asyncio
import json
import os

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from tapescribe.api.deps import runtime_of
from tapescribe.api.errors import error_responses
from tapescribe.errors import NotFound
from tapescribe.sessions.ids import checked_session_id
from tapescribe.sessions.service import UNFINISHED
from tapescribe.sessions.store import STATUS_FILE, TRANSCRIPTION_FILE

router = APIRouter(tags=["sessions"], responses=error_responses(422))

WATCH_INTERVAL = 0.05
KEEPALIVE_SECONDS = 15.0


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _mtime(path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


@router.get("/session/{session_id}/events", responses=error_responses(404))
async def session_events(request: Request, session_id: str) -> StreamingResponse:
    """`status` events (status.json as it changes) and `segments` events (segments not sent yet);
    the stream ends after the status is done, error or cancelled."""
    sessions = runtime_of(request).sessions
    session_id = checked_session_id(session_id)
    directory = sessions.store.dir(session_id)

    async def stream():
        seen_status = seen_transcript = 0
        sent_segments = 0
        idle = 0.0
        while True:
            try:
                status_mtime = _mtime(directory / STATUS_FILE)
                transcript_mtime = _mtime(directory / TRANSCRIPTION_FILE)
                if transcript_mtime != seen_transcript:
                    seen_transcript = transcript_mtime
                    transcription = sessions.transcription(session_id) or {"segments": []}
                    segments = transcription.get("segments", [])
                    if len(segments) < sent_segments:
                        sent_segments = 0  # replaced (a new run or an edit): send it whole again
                    if len(segments) > sent_segments:
                        yield _event("segments", {"from": sent_segments, "segments": segments[sent_segments:]})
                        sent_segments = len(segments)
                        idle = 0.0
                if status_mtime != seen_status:
                    seen_status = status_mtime
                    status = sessions.status(session_id)
                    yield _event("status", status)
                    idle = 0.0
                    if status["status"] not in UNFINISHED and _mtime(directory / TRANSCRIPTION_FILE) == seen_transcript:
                        return
            except NotFound:
                yield _event("deleted", {"session_id": session_id})
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(WATCH_INTERVAL)
            idle += WATCH_INTERVAL
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                yield ": keepalive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
