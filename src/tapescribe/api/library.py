"""Organising a library: several sessions at once (delete, tag, untag, export as a zip) and restoring
an earlier version of a transcript. Tags of one session are set with PATCH /session/<id> (sessions.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from tapescribe.api.deps import runtime_of
from tapescribe.api.errors import error_fields, error_responses
from tapescribe.api.identity import require_owner
from tapescribe.api.schemas import BulkAnswer, Transcription
from tapescribe.errors import BadRequest, TapescribeError
from tapescribe.sessions.exports import EXPORT_MEDIA_TYPES
from tapescribe.sessions.ids import checked_session_id
from tapescribe.sessions.tags import checked_tags
from tapescribe.sessions.zip_export import transcripts_zip

router = APIRouter(tags=["library"], responses=error_responses(422))

MAX_BULK = 500  # ids in one bulk request (the listing's largest page)
ExportFormat = Literal["txt", "srt", "vtt", "json", "tsv"]


def _one(request: Request, action: str, session_id: str, tags: list[str]) -> dict[str, Any]:
    """One id of a bulk request, done or refused on its own: the answer's entry for it. Another
    person's session is refused exactly as one that does not exist."""
    runtime = runtime_of(request)
    try:
        checked = checked_session_id(session_id)
        require_owner(request, checked)
        if action == "delete":
            runtime.sessions.delete(checked)
            return {"id": session_id, "ok": True}
        add, remove = (tags, []) if action == "tag" else ([], tags)
        session = runtime.sessions.change_tags(checked, add=add, remove=remove)
        return {"id": session_id, "ok": True, "tags": session.get("tags") or []}
    except TapescribeError as error:
        return {"id": session_id, "ok": False, "error": error_fields(error)}


@router.post(
    "/sessions/bulk", responses=error_responses(400), response_model=BulkAnswer, response_model_exclude_unset=True
)
async def bulk(
    request: Request,
    ids: Annotated[list[str], Body(min_length=1, max_length=MAX_BULK)],
    action: Annotated[Literal["delete", "tag", "untag"], Body()],
    tags: Annotated[list[str] | None, Body(max_length=100)] = None,
) -> dict:
    """Delete, tag or untag several sessions. Each id is done on its own (under its session's write
    lock) and answered in `results`: one that does not exist is `ok: false` with a not_found error,
    and does not stop the others."""
    checked = checked_tags(tags or []) if action != "delete" else []
    if action != "delete" and not checked:
        raise BadRequest("Name at least one tag to add or remove.")
    unique = list(dict.fromkeys(ids))
    results = [await run_in_threadpool(_one, request, action, session_id, checked) for session_id in unique]
    return {"action": action, "results": results}


ZIP_RESPONSES: dict[int | str, dict] = {
    200: {"description": "A zip of one transcript file per session", "content": {"application/zip": {}}},
    **error_responses(400, 404),
}


@router.post("/sessions/export", response_class=StreamingResponse, response_model=None, responses=ZIP_RESPONSES)
def export_many(
    request: Request,
    ids: Annotated[list[str], Body(min_length=1, max_length=MAX_BULK)],
    format: Annotated[ExportFormat, Body()] = "txt",
) -> StreamingResponse:
    """The chosen sessions' transcripts as one zip, made while it is sent (`<title> (<id>).<format>` each).
    A session that does not exist is a 404 before anything is sent; one deleted meanwhile is left out."""
    sessions = runtime_of(request).sessions
    checked = list(dict.fromkeys(checked_session_id(session_id) for session_id in ids))
    for session_id in checked:
        # NotFound now, in the one error shape, not half-way through the zip; another person's too
        require_owner(request, session_id)
        sessions.session(session_id)
    if format not in EXPORT_MEDIA_TYPES:
        raise BadRequest(f"Unknown export format {format!r}.")

    def read(session_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        with sessions.writing(session_id):  # session.json and its transcript from the same moment
            return sessions.session(session_id), sessions.transcription(session_id)

    return StreamingResponse(
        transcripts_zip(checked, format, read),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="tapescribe-transcripts.zip"'},
    )


@router.post(
    "/session/{session_id}/versions/{number}/restore",
    responses=error_responses(404, 409, 507),
    response_model=Transcription,
    response_model_exclude_unset=True,
)
def restore_version(request: Request, session_id: str, number: int) -> dict:
    """Make version `number` the current transcript; the current one is kept as a version (before-restore)."""
    return runtime_of(request).sessions.restore_version(checked_session_id(session_id), number)
