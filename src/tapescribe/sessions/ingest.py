"""Turning received bytes into a session: identify the format, name the file by it, publish, or keep it in error."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tapescribe.engine.audio import measure_duration, probe
from tapescribe.errors import UnsupportedMedia
from tapescribe.sessions.service import ERROR, SessionService, status_record, utc_now
from tapescribe.sessions.store import AUDIO_STEM

RECEIVED_NAME = "upload.partial"
# Bytes per second of real audio or video lie far inside these bounds (silence in FLAC is ~100 B/s,
# 8K video ~50 MB/s). A header claiming a duration outside them is not believed: the file is decoded
# and measured instead (a FLAC of a few kilobytes had claimed 1,558,264 s).
MIN_BYTES_PER_SECOND = 32
MAX_BYTES_PER_SECOND = 64 * 1024 * 1024


def plausible_duration(claimed: float | None, size: int) -> bool:
    """Whether a container's own duration can be stored as the truth for a file of `size` bytes."""
    if claimed is None or not claimed > 0:
        return False
    return MIN_BYTES_PER_SECOND <= size / claimed <= MAX_BYTES_PER_SECOND


def longest_duration(size: int) -> float:
    """The most seconds `size` bytes can hold: at the lowest bitrate real audio is stored at."""
    return size / MIN_BYTES_PER_SECOND


def judge_duration(path: Path, claimed: float | None, size: int) -> float:
    """The duration to store: the container's own when the bytes can hold it, else measured by decoding,
    at most as far as the bytes can hold. Audio that decodes longer than that is a forged or damaged
    stream (UnsupportedMedia), refused before a job spends hours of CPU on it."""
    if claimed is not None and plausible_duration(claimed, size):
        return claimed
    limit = longest_duration(size)
    measured = measure_duration(path, limit=limit)
    if measured > limit:
        raise UnsupportedMedia(
            f"The audio decodes to more than {limit:,.0f} s, more than its {size:,} bytes can hold: "
            "the file is damaged or forged.",
            size=size,
        )
    return measured


def title_from_filename(filename: str | None, fallback: str) -> str:
    if not filename:
        return fallback
    name = os.path.basename(filename.replace("\\", "/")).strip()
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return stem or fallback


def accept_audio(
    sessions: SessionService,
    session_id: str,
    received: Path,
    *,
    source: str,
    filename: str | None,
    initial_status: str,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Publish the received file as a session. Undecodable bytes are kept too, in state error, then raised."""
    size = received.stat().st_size
    title = title_from_filename(filename, fallback=f"{source.capitalize()} {utc_now()[:16].replace('T', ' ')}")
    try:
        info = probe(received)
        duration = judge_duration(received, info.duration, size)
    except UnsupportedMedia as error:
        received.rename(received.with_name(f"{AUDIO_STEM}.bin"))
        session = sessions.new_session_record(
            session_id, source=source, title=title, original_filename=filename, size=size, **fields
        )
        sessions.publish(session_id, session, status_record(ERROR, message=error.message))
        error.details["session_id"] = session_id
        raise
    received.rename(received.with_name(f"{AUDIO_STEM}.{info.extension}"))
    session = sessions.new_session_record(
        session_id,
        source=source,
        title=title,
        original_filename=filename,
        size=size,
        duration=round(duration, 3),
        format=info.format_name,
        codec=info.codec,
        **fields,
    )
    sessions.publish(session_id, session, status_record(initial_status, progress=0.0))
    return session
