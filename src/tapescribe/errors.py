"""Domain errors. Layers below api/ raise these; api/errors.py maps each to one HTTP status and JSON shape."""

from __future__ import annotations


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


class Unauthorized(TapescribeError):
    code = "unauthorized"


class TranscriptionFailed(TapescribeError):
    """The job ran and ended in error or was cancelled; the session keeps its audio."""

    code = "transcription_failed"
