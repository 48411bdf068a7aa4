"""The original system's three transcription routes, kept compatible."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tapescribe.api.deps import job_fields, runtime_of
from tapescribe.api.errors import error_responses
from tapescribe.api.uploads import JOB_FIELDS, multipart_body, receive_form, require_file
from tapescribe.errors import (
    DISK_FULL_MESSAGE,
    BadRequest,
    InsufficientStorage,
    TranscriptionFailed,
    is_disk_full,
)
from tapescribe.runtime import Runtime
from tapescribe.sessions.ids import checked_session_id
from tapescribe.sessions.ingest import RECEIVED_NAME, accept_audio
from tapescribe.sessions.service import DONE, QUEUED

router = APIRouter()

CHUNK_INDEX = re.compile(r"[0-9]{1,6}")  # ASCII digits only: str.isdigit() also accepts '²'


async def store_upload(request: Request, runtime: Runtime, field: str, source: str,
                       queue: bool = False) -> tuple[str, dict]:
    """Stream the upload into a new session; returns its id and session record (status queued)."""
    store = runtime.sessions.store
    session_id, incoming = store.new_incoming()
    try:
        form = await receive_form(request, field, incoming / RECEIVED_NAME, runtime.settings.max_upload_bytes)
        received = require_file(form, field)
        fields = job_fields(runtime, form.fields)
    except BaseException:  # rejected, cut off, or the disk is full (answered 507 by api/errors.py)
        store.discard_incoming(session_id)
        raise
    session = await run_in_threadpool(
        publish_upload, runtime, session_id, received, queue=queue,
        source=source, filename=form.filename, fields=fields,
    )
    return session_id, session


def publish_upload(runtime: Runtime, session_id: str, received: Path, *, queue: bool, **details) -> dict:
    """Make a received upload a session (and queue it). All or nothing on a full disk: the client is
    answered 507 and sends it again, so a session half-made (files without index row or queue entry,
    stuck in `queued`) is withdrawn rather than kept as a duplicate nobody was told about."""
    try:
        session = accept_audio(runtime.sessions, session_id, received, initial_status=QUEUED, **details)
        if queue:
            runtime.jobs.submit(session_id)
    except Exception as error:
        if not is_disk_full(error):
            raise
        runtime.sessions.withdraw(session_id)
        raise InsufficientStorage(DISK_FULL_MESSAGE) from error
    return session


def finished_transcription(runtime: Runtime, session_id: str, state: str) -> dict:
    """The transcript of a job that just ran inline, or TranscriptionFailed saying why."""
    if state != DONE:
        message = runtime.sessions.status(session_id).get("message") or f"Transcription ended as {state}."
        raise TranscriptionFailed(message, session_id=session_id)
    return runtime.sessions.transcription(session_id)


@router.post("/transcribe-file", status_code=202, tags=["transcribe"],
             openapi_extra=multipart_body("file", JOB_FIELDS),
             responses=error_responses(400, 413, 415, 507))
async def transcribe_file(request: Request) -> JSONResponse:
    """Store an audio or video file as a new session and queue it; answers at once."""
    runtime = runtime_of(request)
    session_id, session = await store_upload(request, runtime, "file", "upload", queue=True)
    return JSONResponse(
        {"session_id": session_id, "status": QUEUED, "title": session["title"], "duration": session["duration"]},
        status_code=202,
    )


@router.post("/transcribe", tags=["transcribe"], openapi_extra=multipart_body("audio", JOB_FIELDS),
             responses=error_responses(400, 413, 415, 422, 507))
async def transcribe_recording(request: Request) -> JSONResponse:
    """Transcribe a finished recording now and answer with the text; it is kept as a session."""
    runtime = runtime_of(request)
    session_id, _ = await store_upload(request, runtime, "audio", "recording")
    state = await run_in_threadpool(runtime.job.run, session_id)
    transcription = finished_transcription(runtime, session_id, state)
    session = runtime.sessions.session(session_id)
    return JSONResponse({
        "session_id": session_id,
        "status": DONE,
        "text": transcription["text"],
        "language": transcription["language"],
        "duration": session.get("duration"),
        "segments": transcription["segments"],
    })


@router.post("/transcribe-live", tags=["transcribe"], responses=error_responses(400, 404, 409, 413, 415, 507),
             openapi_extra=multipart_body("audio", {
                 "session_id": {"type": "string", "description": "The session of the first chunk's answer; "
                                "absent on the first chunk."},
                 "chunk_index": {"type": "string", "pattern": "^[0-9]{1,6}$",
                                 "description": "0, 1, 2, ... (default: the next one)."},
                 "language": JOB_FIELDS["language"], "model": JOB_FIELDS["model"]}))
async def transcribe_live_chunk(request: Request) -> JSONResponse:
    """One chunk of a live recording: kept as chunk_<index>.webm; answers with the text so far."""
    runtime = runtime_of(request)
    live = request.app.state.live_chunks
    store = runtime.sessions.store
    given = request.query_params.get("session_id")
    holder_id, incoming = store.new_incoming()
    try:
        form = await receive_form(request, "audio", incoming / RECEIVED_NAME, runtime.settings.max_upload_bytes)
        received = require_file(form, "audio")
        given = form.fields.get("session_id") or given
        raw_index = form.fields.get("chunk_index", request.query_params.get("chunk_index"))
        if given:
            session_id = checked_session_id(given.strip())
            live.check_joinable(session_id)
        else:
            fields = job_fields(runtime, form.fields)
            session_id = None
        if raw_index is None:
            index = len(store.chunk_paths(session_id)) if session_id else 0
        elif CHUNK_INDEX.fullmatch(raw_index.strip()):
            index = int(raw_index)
        else:
            raise BadRequest("chunk_index must be a whole number from 0 to 999999.")
        if session_id is None:
            await run_in_threadpool(live.check_first_chunk, received)
            session_id = live.new_session(fields["requested_language"], fields["model"])
        chunk_home = store.dir(session_id) / f".incoming_chunk_{index}_{holder_id}"
        received.rename(chunk_home)
    finally:
        store.discard_incoming(holder_id)
    answer = await run_in_threadpool(live.add_chunk, session_id, index, chunk_home)
    return JSONResponse({**answer, "chunk_index": index})
