"""A live stream's audio on disk: chunk files as received, the one recording made from them when
the stream ends, and finishing a stream into a session queued for its second pass, which is the
same whether the stream ended normally or a crash cut it off (then `finish_interrupted_streams`
runs at the next start)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import wave
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE, measure_duration
from tapescribe.engine.records import Transcript
from tapescribe.errors import NotFound, UnsupportedMedia, is_disk_full
from tapescribe.sessions import files
from tapescribe.sessions.service import CANCELLED, ERROR, QUEUED, UNFINISHED, SessionService
from tapescribe.sessions.space import DiskSpace
from tapescribe.sessions.store import AUDIO_STEM, chunk_name

log = logging.getLogger(__name__)

STREAM_FORMATS = ("pcm", "webm")  # a stream's format is also its chunk files' extension
RECORDING_EXTENSION = {"pcm": "wav", "webm": "webm"}
PCM_BYTES_PER_SECOND = SAMPLE_RATE * 2
PCM_CHUNK_BYTES = 10 * PCM_BYTES_PER_SECOND  # one chunk_<n>.pcm file per ten seconds of audio
WAV_LIMIT_BYTES = 2**32 - 1024  # a WAV file cannot hold more
SYNC_EVERY_SECONDS = 1.0


class ChunkWriter:
    """The audio as received, in the session directory: webm slice files, or PCM in ten-second files."""

    def __init__(self, directory: Path, fmt: str) -> None:
        self.directory = directory
        self.format = fmt
        self.count = 0  # chunk files started
        self.bytes = 0
        self._open: Any = None
        self._open_bytes = 0
        self._synced = time.monotonic()

    def path(self, index: int) -> Path:
        return self.directory / chunk_name(index, self.format)

    def write(self, data: bytes) -> None:
        """Store one message whole, or not at all: a write that fails (a full disk) takes back what it
        wrote of the message, so the chunks hold exactly the messages that were stored."""
        mark = (self.count, self._open_bytes if self._open is not None else None)
        try:
            if self.format == "webm":
                self._write_slice(data)
            else:
                self._write_pcm(data)
        except BaseException:
            with contextlib.suppress(OSError):  # the write's own error is the one to report
                self._take_back(*mark)
            raise
        self.bytes += len(data)

    def _write_slice(self, data: bytes) -> None:
        with open(self.path(self.count), "xb") as handle:
            self.count += 1
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        files.fsync_dir(self.directory)

    def _write_pcm(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._open is None or self._open_bytes >= PCM_CHUNK_BYTES:
                self._close_open()
                self._open = open(self.path(self.count), "xb", buffering=0)  # kept open between messages
                self._open_bytes = 0
                self.count += 1
                files.fsync_dir(self.directory)
            written = self._open.write(view[: PCM_CHUNK_BYTES - self._open_bytes])
            self._open_bytes += written
            view = view[written:]
        if time.monotonic() - self._synced >= SYNC_EVERY_SECONDS:
            os.fsync(self._open.fileno())
            self._synced = time.monotonic()

    def _take_back(self, count: int, open_bytes: int | None) -> None:
        """Back to `count` chunk files, the last one `open_bytes` long if it was open (PCM)."""
        if self._open is not None:
            with contextlib.suppress(OSError):
                self._open.close()
        self._open = None
        for index in range(count, self.count):
            self.path(index).unlink(missing_ok=True)
        self.count = count
        if open_bytes is not None:  # shrinking a file needs no space
            self._open = open(self.path(count - 1), "r+b", buffering=0)  # kept open between messages
            self._open.truncate(open_bytes)
            self._open.seek(open_bytes)
            self._open_bytes = open_bytes

    def close(self) -> None:
        self._close_open()

    def _close_open(self) -> None:
        if self._open is not None:
            handle, self._open = self._open, None
            try:
                os.fsync(handle.fileno())
            finally:
                handle.close()

    def paths(self) -> list[Path]:
        return [self.path(index) for index in range(self.count)]


def write_recording(directory: Path, fmt: str, chunks: list[Path]) -> Path:
    """One playable file from the chunks: the webm slices joined (they are one stream), or a WAV.

    Written atomically (files.atomic_file), so a crash never leaves half a recording.
    """
    target = directory / f"{AUDIO_STEM}.{RECORDING_EXTENSION[fmt]}"
    with files.atomic_file(target) as handle:
        if fmt == "pcm":
            with wave.open(handle, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(SAMPLE_RATE)
                for chunk in chunks:
                    with open(chunk, "rb") as piece:
                        out.writeframes(piece.read())
        else:
            for chunk in chunks:
                with open(chunk, "rb") as piece:
                    while block := piece.read(1 << 20):
                        handle.write(block)
    return target


def pcm_samples(data: bytes) -> np.ndarray:
    """16-bit little-endian PCM as float32, exactly as engine.audio makes samples."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def finish_stream(
    sessions: SessionService,
    session_id: str,
    fmt: str,
    chunks: list[Path],
    *,
    duration: float | None,
    language: str | None,
    draft: Transcript | dict[str, Any] | None,
) -> str:
    """A stream that ended (stop, dropped connection, or a crash found at start) becomes a session like
    an upload: one playable recording, the live transcript kept as the version "live-draft", and the
    status queued for the second pass (the caller submits it). Returns the status it was left in.

    Safe to run again after a crash part-way: each step checks whether it was done.
    """
    store = sessions.store
    directory = store.dir(session_id)
    recording = store.audio_path(session_id) or write_recording(directory, fmt, chunks)
    if duration is None:
        try:
            duration = measure_duration(recording)
        except UnsupportedMedia:  # the second pass ends in error and says why
            log.warning("live session %s: its recording cannot be decoded", session_id)
    sessions.update_session(
        session_id,
        duration=None if duration is None else round(duration, 3),
        size=sum(c.stat().st_size for c in chunks),
        live_chunks=len(chunks),
        language=language,
    )
    if draft is not None:
        draft = draft.to_dict() if isinstance(draft, Transcript) else draft
        sessions.save_transcription(session_id, draft)
        labels = [path.name.split("-", 1)[1] for path in store.versions(session_id)]
        if not labels or labels[-1] != "live-draft.json":
            store.save_version(session_id, "live-draft", draft)
    if sessions.status(session_id)["status"] == CANCELLED:
        return CANCELLED  # the user cancelled during the stream: no second pass
    sessions.set_status(
        session_id, QUEUED, progress=0.0, message="Live stream ended; transcribing the whole recording again."
    )
    return QUEUED


def finish_when_space_is_back(
    space: DiskSpace, session_id: str, finish: Callable[[], object], release: Callable[[], object]
) -> None:
    """`finish` a stream the disk could not finish, once space is back (on a daemon thread: a server
    stopping meanwhile leaves it to the next start, which finishes cut-off streams from their chunks);
    then `release` its job lock, finished or not."""
    try:
        while True:
            space.wait_for_space(f"finishing live session {session_id}")
            try:
                finish()
            except Exception as error:
                if not is_disk_full(error):
                    log.exception("finishing live session %s failed", session_id)
                    return
                continue
            log.info("live session %s finished: disk space is back", session_id)
            return
    finally:
        release()


def finish_interrupted_streams(sessions: SessionService, session_ids: Iterable[str] | None = None) -> list[str]:
    """At start: every /ws/live stream a crash cut off is finished from its chunks (and its last saved
    draft), as if its connection had dropped. JobControl.recover then queues the second pass.
    `session_ids` limits the look to those sessions (the unfinished ones a start has listed already)."""
    finished = []
    for session_id in sessions.store.ids() if session_ids is None else session_ids:
        try:
            if sessions.status(session_id)["status"] not in UNFINISHED:
                continue
            session = sessions.session(session_id)
            fmt = session.get("live_format")
            if fmt not in STREAM_FORMATS:
                continue
            with sessions.locks.hold(session_id) as lease:
                if lease is None:  # the stream is still running in another process
                    continue
                chunks = sessions.store.chunk_paths(session_id, fmt)
                if not chunks:  # cut off between the session's creation and its first bytes on disk
                    sessions.set_status(
                        session_id,
                        ERROR,
                        message="The live stream was cut off before any "
                        "audio was stored; there is nothing to transcribe.",
                    )
                    continue
                draft = sessions.transcription(session_id)
                draft = {**draft, "complete": True} if draft and draft.get("live") else None
                duration = sum(c.stat().st_size for c in chunks) / PCM_BYTES_PER_SECOND if fmt == "pcm" else None
                language = (draft or {}).get("language") or session.get("language")
                finish_stream(sessions, session_id, fmt, chunks, duration=duration, language=language, draft=draft)
                finished.append(session_id)
                log.info("finished live session %s from %d chunk(s) after an interruption", session_id, len(chunks))
        except NotFound:
            continue
    return finished
