"""Server-sent events for one session: status and new segments as the job produces them.

The session service's SessionWatch says what changed (every 50 ms, wherever the job runs), so
clients never have to poll the API.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from tapescribe.api.deps import runtime_of
from tapescribe.api.errors import error_responses
from tapescribe.sessions.ids import checked_session_id

router = APIRouter(tags=["sessions"], responses=error_responses(422))

WATCH_INTERVAL = 0.05
KEEPALIVE_SECONDS = 15.0


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


EVENTS_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": "A text/event-stream of `status` and `segments` events, each with JSON data",
        # Before OpenAPI 3.2 the schema of an event stream describes each event.
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["status", "segments", "deleted"]},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "description": "JSON: status.json as it is now (status), the segments not sent yet as "
                            "{from, segments} (segments), or {session_id} (deleted)",
                        },
                    },
                }
            }
        },
    },
    **error_responses(404),
}


@router.get("/session/{session_id}/events", response_class=Response, responses=EVENTS_RESPONSES)
async def session_events(request: Request, session_id: str) -> StreamingResponse:
    """`status` events (status.json as it changes) and `segments` events (segments not sent yet);
    the stream ends after the status is done, error or cancelled."""
    watch = runtime_of(request).sessions.watch(checked_session_id(session_id))

    async def stream():
        idle = 0.0
        while True:
            for name, data in watch.poll():
                yield _event(name, data)
                idle = 0.0
            if watch.finished or await request.is_disconnected():
                return
            await asyncio.sleep(WATCH_INTERVAL)
            idle += WATCH_INTERVAL
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                yield ": keepalive\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
