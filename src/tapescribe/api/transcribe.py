"""The original system's three transcription routes, kept compatible."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tapescribe.api.deps import job_fields, runtime_of
from tapescribe.api.errors import error_responses
from tapescribe.api.identity import owner_fields, require_owner
from tapescribe.api.schemas import ChunkAnswer, Queued, Transcribed
from tapescribe.api.uploads import JOB_FIELDS, multipart_body, receive_form, receive_upload, require_file
from tapescribe.runtime import Runtime
from tapescribe.sessions.ingest import RECEIVED_NAME
from tapescribe.sessions.service import DONE, QUEUED

router = APIRouter()


async def store_upload(
    request: Request, runtime: Runtime, field: str, source: str, queue: bool = False
) -> tuple[str, dict]:
    """Receive the upload and make it a session (queued for a worker when `queue`)."""
    session_id, form, received, fields = await receive_upload(
        request,
        runtime.sessions,
        field,
        runtime.settings.max_upload_bytes,
        lambda form: {**job_fields(runtime, form.fields), **owner_fields(request)},
    )
    session = await run_in_threadpool(
        runtime.jobs.accept_upload,
        session_id,
        received,
        source=source,
        filename=form.filename,
        fields=fields,
        queue=queue,
    )
    return session_id, session


@router.post(
    "/transcribe-file",
    status_code=202,
    tags=["transcribe"],
    response_model=Queued,
    openapi_extra=multipart_body("file", JOB_FIELDS),
    responses=error_responses(400, 413, 415, 507),
)
async def transcribe_file(request: Request) -> JSONResponse:
    """Store an audio or video file as a new session and queue it; answers at once."""
    runtime = runtime_of(request)
    session_id, session = await store_upload(request, runtime, "file", "upload", queue=True)
    return JSONResponse(
        {"session_id": session_id, "status": QUEUED, "title": session["title"], "duration": session["duration"]},
        status_code=202,
    )


@router.post(
    "/transcribe",
    tags=["transcribe"],
    openapi_extra=multipart_body("audio", JOB_FIELDS),
    response_model=Transcribed,
    responses=error_responses(400, 413, 415, 422, 503, 507),
)
async def transcribe_recording(request: Request) -> JSONResponse:
    """Transcribe a finished recording now and answer with the text; it is kept as a session. It waits
    its turn for a decode slot (shortest audio first); 503 with Retry-After when too many wait already."""
    runtime = runtime_of(request)
    runtime.jobs.check_room()  # before the upload is received, not after
    session_id, _ = await store_upload(request, runtime, "audio", "recording")
    transcription = await run_in_threadpool(runtime.jobs.transcribe_now, session_id)
    session = runtime.sessions.session(session_id)
    return JSONResponse(
        {
            "session_id": session_id,
            "status": DONE,
            "text": transcription["text"],
            "language": transcription["language"],
            "duration": session.get("duration"),
            "segments": transcription["segments"],
        }
    )


@router.post(
    "/transcribe-live",
    tags=["transcribe"],
    responses=error_responses(400, 404, 409, 413, 415, 507),
    response_model=ChunkAnswer,
    openapi_extra=multipart_body(
        "audio",
        {
            "session_id": {
                "type": "string",
                "description": "The session of the first chunk's answer; absent on the first chunk.",
            },
            "chunk_index": {
                "type": "string",
                "pattern": "^[0-9]{1,6}$",
                "description": "0, 1, 2, ... (default: the next one).",
            },
            "language": JOB_FIELDS["language"],
            "model": JOB_FIELDS["model"],
        },
    ),
)
async def transcribe_live_chunk(request: Request) -> JSONResponse:
    """One chunk of a live recording: kept as chunk_<index>.webm; answers with the text so far."""
    runtime = runtime_of(request)
    live = request.app.state.live_chunks
    holder_id, incoming = runtime.sessions.new_incoming()
    try:
        form = await receive_form(request, "audio", incoming / RECEIVED_NAME, runtime.settings.max_upload_bytes)
        received = require_file(form, "audio")
        given = form.fields.get("session_id") or request.query_params.get("session_id")
        if given:
            require_owner(request, given.strip())  # another person's stream: 404, as for none
        raw_index = form.fields.get("chunk_index", request.query_params.get("chunk_index"))
        fields = None if given else {**job_fields(runtime, form.fields), **owner_fields(request)}
        answer = await run_in_threadpool(live.receive, given, raw_index, received, fields)
    finally:
        runtime.sessions.discard_incoming(holder_id)
    return JSONResponse(answer)
