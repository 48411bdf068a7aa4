"""One JSON shape for every error the API returns:

{"error": {"status": 404, "code": "not_found", "message": "No such session.", "details": {...}}}
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tapescribe import errors
from tapescribe.api.deps import runtime_of

log = logging.getLogger(__name__)

STATUS_FOR = {
    errors.NotFound: 404,
    errors.EmptyUpload: 400,
    errors.BadRequest: 400,
    errors.UploadTooLarge: 413,
    errors.UnsupportedMedia: 415,
    errors.Conflict: 409,
    errors.ModelUnavailable: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.TranscriptionFailed: 422,
    errors.InsufficientStorage: 507,
    errors.ServerBusy: 503,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "upload_too_large",
    415: "unsupported_media",
    422: "invalid_request",
}


class ErrorDetail(BaseModel):
    status: int = Field(description="The HTTP status, repeated for clients that only keep the body.")
    code: str = Field(description="Stable machine-readable name, e.g. not_found, unsupported_media.")
    message: str = Field(description="What went wrong and what to do, for a person.")
    details: dict[str, Any] = Field(description="Extra facts, e.g. the session_id an undecodable upload was kept as.")


class ErrorBody(BaseModel):
    """The one shape of every error the API returns."""

    error: ErrorDetail


_MEANING = {
    400: "Bad request: a field is missing, empty or wrong",
    401: "An API key is required",
    403: "Refused: a foreign Host or Origin",
    404: "No such session, version or route",
    409: "Conflicts with the session's state; nothing was changed",
    413: "Larger than the upload limit; nothing was kept",
    415: "Not audio that can be decoded (uploads are kept as a session in state error)",
    416: "The Range asks for bytes past the end of the file",
    422: "Invalid parameters, or the transcription failed",
    429: "Too many wrong keys came from this address; send a key again after Retry-After seconds",
    503: "Every decode slot is taken and too many requests wait already; send it again after Retry-After seconds",
    507: "The disk is full; nothing already stored was lost",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the errors a route really returns, all in the one shape."""
    return {status: {"model": ErrorBody, "description": _MEANING[status]} for status in statuses}


def error_body(status: int, code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"status": status, "code": code, "message": message, "details": details or {}}}


def error_response(
    status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, details), status_code=status, headers=headers)


def status_of(error: errors.TapescribeError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return 500


def error_fields(error: errors.TapescribeError) -> dict[str, Any]:
    """A domain error as the one error shape's fields: the same for an HTTP body ({"error": fields}),
    a WebSocket message ({"type": "error", **fields}) and a server-sent event ({"error": fields})."""
    return error_body(status_of(error), error.code, error.message, dict(error.details))["error"]


def disk_full_response(
    request: Request, message: str = errors.DISK_FULL_MESSAGE, details: dict | None = None
) -> JSONResponse:
    """507 for a write that failed on a full disk, wherever it happened; one log line per episode."""
    runtime_of(request).sessions.space.note_full(f"answering {request.method} {request.url.path}")
    return error_response(507, errors.InsufficientStorage.code, message, details)


def internal_error_response(error: Exception) -> JSONResponse:
    log.error("unexpected error", exc_info=error)
    return error_response(500, "internal_error", "Something went wrong on the server; nothing stored was lost.")


async def _domain(request: Request, error: errors.TapescribeError) -> JSONResponse:
    fields = error_fields(error)
    if fields["status"] == 507:
        return disk_full_response(request, error.message, dict(error.details))
    headers = None
    if fields["status"] == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(error, errors.ServerBusy):
        headers = {"Retry-After": str(error.details.get("retry_after_seconds", 1))}
    return JSONResponse({"error": fields}, status_code=fields["status"], headers=headers)


async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
    problems = [
        {"field": ".".join(str(part) for part in problem.get("loc", ())), "problem": problem.get("msg", "")}
        for problem in error.errors()
    ]
    message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or "Invalid request."
    return error_response(422, "invalid_request", message, {"problems": problems})


async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(error.status_code, "http_error")
    message = error.detail if isinstance(error.detail, str) else "Request failed."
    if error.status_code == 404 and message == "Not Found":
        message = "Nothing is here: no such route or resource."
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on this route."
    return error_response(error.status_code, code, message, headers=getattr(error, "headers", None))


async def _storage(request: Request, error: Exception) -> JSONResponse:
    if errors.is_disk_full(error):
        return disk_full_response(request)
    return internal_error_response(error)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    if errors.is_disk_full(error):
        return disk_full_response(request)
    return internal_error_response(error)


def install_error_handlers(app: FastAPI) -> None:
    app.exception_handler(errors.TapescribeError)(_domain)
    app.exception_handler(RequestValidationError)(_validation)
    app.exception_handler(StarletteHTTPException)(_http)
    # OS and SQLite errors get handlers of their own (not only the catch-all, after which the
    # server logs the traceback a second time): a full disk is an expected condition, answered 507.
    app.exception_handler(OSError)(_storage)
    app.exception_handler(sqlite3.Error)(_storage)
    app.exception_handler(Exception)(_unexpected)
