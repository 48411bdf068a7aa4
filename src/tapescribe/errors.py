"""Domain errors. Layers below api/ raise these; api/errors.py maps each to one HTTP status and JSON shape."""

from __future__ import annotations

import errno
import sqlite3


class TapescribeError(Exception):
    """Base class: `code` is a stable machine-readable name, the message is for a person."""

    code = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(TapescribeError):
    code = "not_found"


class BadRequest(TapescribeError):
    code = "bad_request"


class EmptyUpload(BadRequest):
    code = "empty_upload"


class UploadTooLarge(TapescribeError):
    code = "upload_too_large"


class UnsupportedMedia(TapescribeError):
    """The bytes are not audio or video that can be decoded."""

    code = "unsupported_media"


class Conflict(TapescribeError):
    code = "conflict"


class ModelUnavailable(TapescribeError):
    """A model name that cannot be resolved locally (tapescribe never downloads at run time)."""

    code = "model_unavailable"


class SpeakersUnavailable(BadRequest):
    """Speaker labels were asked for, but the optional `speakers` extra is not installed."""

    code = "speakers_unavailable"


class IndexUnavailable(TapescribeError):
    """The session index (PostgreSQL, where index_url names one) cannot be reached."""

    code = "index_unavailable"


class Unauthorized(TapescribeError):
    code = "unauthorized"


class Forbidden(TapescribeError):
    """Signed in, but not allowed (a member asking to manage users)."""

    code = "forbidden"


class TranscriptionFailed(TapescribeError):
    """The job ran and ended in error or was cancelled; the session keeps its audio."""

    code = "transcription_failed"


class ServerBusy(TapescribeError):
    """Every decode slot is taken and the queue of waiting requests is full: send it again later."""

    code = "server_busy"


class ServerStopping(ServerBusy):
    """The server is stopping (SIGINT or SIGTERM): work in progress stops at its next model call, keeps what
    it saved, and goes on at the next start."""

    code = "server_stopping"


class InsufficientStorage(TapescribeError):
    """The data directory's disk is full: nothing new can be stored until space is freed."""

    code = "insufficient_storage"


DISK_FULL_MESSAGE = (
    "The server's disk is full: this could not be stored. Nothing already stored was lost; "
    "free some space (or delete sessions) and send it again."
)
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"


def is_disk_full(error: BaseException | None) -> bool:
    """True if `error`, or an error it was raised from or during, says the disk (or quota) is full.

    The one test for "disk full" used everywhere: an OSError with ENOSPC or EDQUOT, or SQLite's
    SQLITE_FULL, possibly wrapped by a library in another exception.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, InsufficientStorage):
            return True
        if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
            return True
        if isinstance(error, sqlite3.OperationalError) and (
            getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL or "database or disk is full" in str(error)
        ):
            return True
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return False
