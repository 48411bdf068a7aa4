"""Receiving multipart uploads straight from the socket into a session's incoming directory.

Starlette's form parsing spools large files to the temp directory; this parser writes each chunk
of the one file field to its final directory as it arrives, and keeps the small text fields.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from tapescribe.errors import BadRequest, EmptyUpload, UploadTooLarge
from tapescribe.sessions.ingest import RECEIVED_NAME
from tapescribe.sessions.service import SessionService

T = TypeVar("T")

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FIELD_BYTES = 64 * 1024


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    repeated: dict[str, list[str]] = field(default_factory=dict)
    file_path: Path | None = None
    filename: str | None = None
    size: int = 0


class _FormWriter:
    """python-multipart callbacks: file data to disk, text fields to memory (bounded)."""

    def __init__(self, file_field: str, target: Path, max_bytes: int) -> None:
        self.file_field = file_field
        self.target = target
        self.max_bytes = max_bytes
        self.form = ReceivedForm()
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._is_file = False
        self._value = bytearray()
        self._handle: BinaryIO | None = None
        self.complete = False  # the closing boundary arrived (python-multipart's finalize does not check)

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._name, self._is_file, self._value = None, False, bytearray()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if self._name == self.file_field and self.form.file_path is None and filename is not None:
            self._is_file = True
            self.form.filename = filename.decode("utf-8", "replace")[:255] or None
            self._handle = open(self.target, "wb")
            self.form.file_path = self.target

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.form.size += end - start
            if self.form.size > self.max_bytes:
                raise UploadTooLarge(
                    f"The upload is larger than the limit of {self.max_bytes} bytes.", limit_bytes=self.max_bytes
                )
            if self._handle is not None:
                self._handle.write(data[start:end])
        elif self._name is not None:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise BadRequest(f"Form field {self._name!r} is too long.")

    def _part_end(self) -> None:
        if self._is_file:
            self.close_file()
            self._is_file = False
        elif self._name:
            value = self._value.decode("utf-8", "replace")
            self.form.fields[self._name] = value
            self.form.repeated.setdefault(self._name, []).append(value)

    def _end(self) -> None:
        self.complete = True

    def close_file(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


async def receive_form(request: Request, file_field: str, target: Path, max_bytes: int) -> ReceivedForm:
    """Parse the request body; the file field (if any) ends up at `target`. Raises on bad or oversized input."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise BadRequest(f"Send the audio as multipart/form-data with a {file_field!r} file field.")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + MAX_FIELD_BYTES * 16:
        raise UploadTooLarge(f"The upload is larger than the limit of {max_bytes} bytes.", limit_bytes=max_bytes)
    writer = _FormWriter(file_field, target, max_bytes)
    parser = MultipartParser(params[b"boundary"], writer.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if not writer.complete:
            raise BadRequest("The multipart/form-data body ended before its closing boundary; nothing was kept.")
    except ClientDisconnect:
        raise BadRequest("The upload was interrupted before it was complete; nothing was kept.") from None
    except MultipartParseError as error:
        raise BadRequest(f"The multipart/form-data body is malformed ({error}); nothing was kept.") from None
    finally:
        writer.close_file()
    return writer.form


def require_file(form: ReceivedForm, file_field: str) -> Path:
    if form.file_path is None:
        raise EmptyUpload(f"No file in the {file_field!r} field.")
    if form.size == 0:
        raise EmptyUpload("The uploaded file is empty.")
    return form.file_path


TEXT = {"type": "string"}
JOB_FIELDS: dict[str, Any] = {
    "language": {
        "type": "string",
        "description": "A Whisper language code such as en or de; empty or auto detects it.",
    },
    "model": {
        "type": "string",
        "maxLength": 100,
        "description": "A model name from GET /models (default: the server's).",
    },
    "word_timestamps": {
        "type": "string",
        "enum": ["", "true", "false", "1", "0", "yes", "no", "on", "off"],
        "description": "Word times in the transcript, which subtitles are timed by (default: the server's "
        "TAPESCRIBE_WORD_TIMESTAMPS, on); they are aligned to the decoded text, so the text is the same either way, "
        "and false saves the time aligning them takes.",
    },
    "prompt": {"type": "string", "description": "Text that the model sees first (names, spelling)."},
    "speakers": {
        "type": "string",
        "description": "Label who speaks when: off, auto, or the number of speakers (default: the server's "
        "TAPESCRIBE_SPEAKERS). Needs pip install 'tapescribe[speakers]'.",
    },
}


def multipart_body(file_field: str, fields: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """`openapi_extra` declaring the multipart body a route reads itself (it streams the file to disk,
    so FastAPI does not know the body): the file field plus the text fields."""
    properties = {
        file_field: {"type": "string", "format": "binary", "description": "The audio or video file."},
        **fields,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": properties, "required": [file_field, *required]}
                }
            },
        }
    }


async def receive_upload(
    request: Request, sessions: SessionService, file_field: str, max_bytes: int, check: Callable[[ReceivedForm], T]
) -> tuple[str, ReceivedForm, Path, T]:
    """Stream one upload into a new session's private directory and check its fields with `check`.

    Returns the session id, the form, the received file and what `check` returned; on any failure
    (bad input, a cut-off body, a full disk) nothing is left behind.
    """
    session_id, incoming = sessions.new_incoming()
    try:
        form = await receive_form(request, file_field, incoming / RECEIVED_NAME, max_bytes)
        received = require_file(form, file_field)
        checked = check(form)
    except BaseException:
        sessions.discard_incoming(session_id)
        raise
    return session_id, form, received, checked
