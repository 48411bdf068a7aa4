"""Sessions: list, read, rename, cancel, retry, delete, audio, storage totals and search."""

from __future__ import annotations

import mimetypes
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from tapescribe.api.deps import checked_request, runtime_of
from tapescribe.api.errors import error_response, error_responses
from tapescribe.api.identity import visible_to
from tapescribe.api.schemas import (
    Deleted,
    SearchAnswer,
    SessionDetail,
    SessionList,
    SessionRecord,
    StatusRecord,
    Storage,
    Transcription,
    Version,
    VersionList,
)
from tapescribe.errors import BadRequest
from tapescribe.sessions.exports import EXPORT_MEDIA_TYPES, render_parts
from tapescribe.sessions.ids import checked_session_id

router = APIRouter(tags=["sessions"], responses=error_responses(422))

MAX_OFFSET = 2**31 - 1  # SQLite integers overflow far above this; no listing is that long

_AUDIO_TYPES = {
    "webm": "audio/webm",
    "m4a": "audio/mp4",
    "mkv": "video/x-matroska",
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
}


@router.get("/sessions", responses=error_responses(400), response_model=SessionList, response_model_exclude_unset=True)
def list_sessions(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    q: str | None = Query(None, max_length=500, description="Full-text query over transcripts and titles"),
    tag: str | None = Query(None, max_length=100, description="Only sessions with this tag"),
) -> dict:
    """Newest first, with per-session size, status, tags and the transcript's first words; `q` narrows
    to matching transcripts, `tag` to sessions with that tag."""
    runtime = runtime_of(request)
    visible = visible_to(request)
    listing = runtime.sessions.listing(limit, offset, q, tag, visible)
    return {**listing, "storage": runtime.sessions.storage(visible)}


@router.get("/storage", response_model=Storage, response_model_exclude_unset=True)
def storage(request: Request) -> dict:
    """Disk used by all sessions (the data is never cleaned up behind the user's back), and by
    uploads a crash cut off before they became sessions (kept in data/incoming/ for inspection)."""
    return runtime_of(request).sessions.storage(visible_to(request))


@router.get("/search", responses=error_responses(400), response_model=SearchAnswer, response_model_exclude_unset=True)
def search(
    request: Request,
    q: str = Query(..., min_length=1, max_length=500),
    limit: int = Query(20, ge=1, le=100),
    speaker: str | None = Query(None, max_length=100, description="Only what this speaker said: S1, or a name"),
) -> dict:
    """Sessions whose transcripts match, each with its matching segments and their start times."""
    results = runtime_of(request).sessions.search(q, limit=limit, speaker=speaker, visible=visible_to(request))
    return {"query": q, "results": results}


@router.get(
    "/session/{session_id}",
    responses=error_responses(404),
    response_model=SessionDetail,
    response_model_exclude_unset=True,
)
def get_session(request: Request, session_id: str) -> dict:
    return runtime_of(request).sessions.get(checked_session_id(session_id))


@router.patch(
    "/session/{session_id}",
    responses=error_responses(400, 404, 507),
    response_model=SessionRecord,
    response_model_exclude_unset=True,
)
def change_session(
    request: Request,
    session_id: str,
    title: str | None = Body(None, max_length=1000, description="A new title (earlier ones kept in title_history)"),
    tags: Annotated[
        list[str] | None, Body(max_length=100, description="The session's tags, replacing the ones it had")
    ] = None,
) -> dict:
    """Rename the session, set its tags, or both (each under the session's write lock)."""
    sessions = runtime_of(request).sessions
    session_id = checked_session_id(session_id)
    if title is None and tags is None:
        raise BadRequest("Send a title, tags, or both.")
    with sessions.writing(session_id):
        record = sessions.set_tags(session_id, tags) if tags is not None else sessions.session(session_id)
        return sessions.rename(session_id, title) if title is not None else record


@router.delete(
    "/session/{session_id}", responses=error_responses(404), response_model=Deleted, response_model_exclude_unset=True
)
async def delete_session(request: Request, session_id: str) -> dict:
    """The user's own deletion: the session's directory and index row go; nothing else ever removes data."""
    session_id = checked_session_id(session_id)
    await run_in_threadpool(runtime_of(request).sessions.delete, session_id)
    return {"deleted": session_id}


@router.patch(
    "/session/{session_id}/segments/{position}",
    responses=error_responses(400, 404, 409, 507),
    response_model=Transcription,
    response_model_exclude_unset=True,
)
def edit_segment(
    request: Request, session_id: str, position: int, text: str = Body(..., embed=True, max_length=20_000)
) -> dict:
    """Correct one segment's text; the transcript before the edit is kept as a version."""
    return runtime_of(request).sessions.edit_segment(checked_session_id(session_id), position, text)


@router.get(
    "/session/{session_id}/versions",
    responses=error_responses(404),
    response_model=VersionList,
    response_model_exclude_unset=True,
)
def list_versions(request: Request, session_id: str) -> dict:
    """Earlier transcripts (before each edit and each re-transcription), oldest first."""
    return {"versions": runtime_of(request).sessions.versions(checked_session_id(session_id))}


@router.get(
    "/session/{session_id}/versions/{number}",
    responses=error_responses(404),
    response_model=Version,
    response_model_exclude_unset=True,
)
def get_version(request: Request, session_id: str, number: int) -> dict:
    return runtime_of(request).sessions.version(checked_session_id(session_id), number)


@router.post(
    "/session/{session_id}/retranscribe",
    status_code=202,
    responses=error_responses(400, 404, 409, 507),
    response_model=StatusRecord,
    response_model_exclude_unset=True,
)
def retranscribe(
    request: Request,
    session_id: str,
    model: str | None = Body(None, embed=True),
    language: str | None = Body(None, embed=True),
) -> dict:
    """Transcribe again with another model or language; the current transcript stays as a version."""
    runtime = runtime_of(request)
    session_id = checked_session_id(session_id)
    runtime.sessions.session(session_id)
    checked = checked_request(runtime.models, model, language)  # the pipeline's one check, as for an upload
    return runtime.jobs.retranscribe(session_id, checked.model, checked.language)


@router.post(
    "/session/{session_id}/cancel",
    responses=error_responses(404, 409, 507),
    response_model=StatusRecord,
    response_model_exclude_unset=True,
)
def cancel_session(request: Request, session_id: str) -> dict:
    return runtime_of(request).jobs.cancel(checked_session_id(session_id))


@router.post(
    "/session/{session_id}/retry",
    status_code=202,
    responses=error_responses(404, 409, 507),
    response_model=StatusRecord,
    response_model_exclude_unset=True,
)
def retry_session(request: Request, session_id: str) -> dict:
    return runtime_of(request).jobs.retry(checked_session_id(session_id))


AUDIO_CONTENT = {
    "audio/*": {"schema": {"type": "string", "format": "binary"}},
    "video/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}
AUDIO_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": "The recording's bytes, as uploaded (or a live session's first recording)",
        "content": AUDIO_CONTENT,
    },
    206: {"description": "The byte range asked for with Range", "content": AUDIO_CONTENT},
    **error_responses(400, 404, 416),
}


@router.get("/session/{session_id}/audio", response_class=Response, response_model=None, responses=AUDIO_RESPONSES)
@router.head("/session/{session_id}/audio", response_class=Response, response_model=None, include_in_schema=False)
def session_audio(
    request: Request,
    session_id: str,
    download: bool = False,
    range_: str | None = Header(
        None, alias="range", max_length=1000, description="Bytes to send, e.g. bytes=0-1023, so players can seek"
    ),
) -> Response:
    """The original bytes, with HTTP Range support so players can seek; HEAD gives the headers alone."""
    runtime = runtime_of(request)
    session_id = checked_session_id(session_id)
    path = runtime.sessions.audio_file(session_id)
    title = runtime.sessions.session(session_id).get("title") or session_id
    if path is None:
        chunks = runtime.sessions.chunk_audio(session_id)  # NotFound when there are none
        return StreamingResponse(iter(()) if request.method == "HEAD" else chunks, media_type="audio/webm")
    extension = path.suffix.lstrip(".")
    media_type = _AUDIO_TYPES.get(extension) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = FileResponse(
        path,
        media_type=media_type,
        filename=f"{_safe_name(title)}.{extension}",
        content_disposition_type="attachment" if download else "inline",
        stat_result=path.stat(),
    )
    return range_refusal(response, range_, request.headers.get("if-range")) or response


def range_refusal(response: FileResponse, http_range: str | None, if_range: str | None) -> Response | None:
    """The 400 or 416 (in the one error shape) that `response` would answer `http_range` with, or None.

    Starlette's FileResponse answers a bad Range itself, in plain text; this asks its own parser first.
    """
    if http_range is None or response.stat_result is None:
        return None
    if if_range is not None and if_range not in (response.headers.get("etag"), response.headers.get("last-modified")):
        return None  # the file changed since the client's copy: the whole file is sent
    size = response.stat_result.st_size
    try:
        FileResponse._parse_range_header(http_range, size)
    except MalformedRangeHeader as malformed:
        return error_response(400, "bad_range", f"Range {http_range!r} cannot be served: {malformed.content}")
    except RangeNotSatisfiable:
        return error_response(
            416,
            "range_not_satisfiable",
            f"Range {http_range!r} starts past the end of the recording ({size} bytes).",
            {"size": size},
            headers={"Content-Range": f"bytes */{size}"},
        )
    return None


def _safe_name(title: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in " -_." else "_" for c in title).strip(" .")
    return cleaned[:80] or "audio"


def attachment(filename: str) -> str:
    """A Content-Disposition header for any title: an ASCII name plus the UTF-8 one (RFC 6266/5987)."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/session/{session_id}/export/{fmt}", response_model=None, responses=error_responses(400, 404))
def export_session(request: Request, session_id: str, fmt: str) -> Response:
    """The transcript as txt, srt, vtt, json or tsv, as a download."""
    sessions = runtime_of(request).sessions
    session_id = checked_session_id(session_id)
    session = sessions.session(session_id)
    parts = render_parts(sessions.transcription(session_id), fmt, session)  # streamed: never held whole
    filename = f"{_safe_name(session.get('title') or session_id)}.{fmt}"
    return StreamingResponse(
        (part.encode("utf-8") for part in parts),
        media_type=EXPORT_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": attachment(filename)},
    )
