"""Many sessions' transcripts as one zip, made as it is sent: nothing is written to disk.

zipfile writes to a stream it cannot seek in (each entry's sizes go in a data descriptor after it),
so each transcript is rendered, added, and its compressed bytes handed on before the next is read.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, cast

from tapescribe.errors import NotFound
from tapescribe.sessions.exports import EXPORT_MEDIA_TYPES, render


class _Sink:
    """A write-only stream that keeps what was written until `take` (zipfile finds it cannot seek)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def safe_name(title: str) -> str:
    """A file name from any title: letters, digits and - _ . and spaces kept, the rest _."""
    cleaned = "".join(c if c.isalnum() or c in " -_." else "_" for c in title).strip(" .")
    return cleaned[:80] or "session"


def transcripts_zip(
    ids: Iterable[str], fmt: str, read: Callable[[str], tuple[dict[str, Any], dict[str, Any] | None]]
) -> Iterator[bytes]:
    """The zip of the sessions' transcripts in `fmt`, as blocks; `read(id)` gives (session, transcription).
    A session deleted meanwhile is left out; names are `<title> (<id>).<fmt>`, so two equal titles differ."""
    if fmt not in EXPORT_MEDIA_TYPES:
        render(None, fmt)  # raises the one BadRequest naming the formats
    sink = _Sink()
    with zipfile.ZipFile(cast("IO[bytes]", sink), "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for session_id in ids:
            try:
                session, transcription = read(session_id)
            except NotFound:
                continue
            name = f"{safe_name(session.get('title') or session_id)} ({session_id}).{fmt}"
            archive.writestr(name, render(transcription, fmt, session))
            yield sink.take()
    yield sink.take()
