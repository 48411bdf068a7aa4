"""The audio side of a live stream: chunk files on disk, the recording made from them, and the
hand-over of bytes and samples between the connection's thread, the decoder and the worker.
"""

from __future__ import annotations

import io
import os
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.sessions import files
from tapescribe.sessions.store import AUDIO_STEM

FORMATS = {"pcm": "pcm", "webm": "webm"}  # format name -> chunk extension
RECORDING_EXTENSION = {"pcm": "wav", "webm": "webm"}
PCM_BYTES_PER_SECOND = SAMPLE_RATE * 2
PCM_CHUNK_BYTES = 10 * PCM_BYTES_PER_SECOND  # one chunk_<n>.pcm file per ten seconds of audio
WAV_LIMIT_BYTES = 2**32 - 1024  # a WAV file cannot hold more
SYNC_EVERY_SECONDS = 1.0


class AudioInbox:
    """Decoded samples waiting for the worker; `take` hands over everything that arrived."""

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []
        self._count = 0
        self._closed = False
        self._changed = threading.Condition()

    def put(self, samples: np.ndarray) -> None:
        with self._changed:
            self._blocks.append(samples)
            self._count += len(samples)
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()

    def take(self, at_least: int) -> tuple[np.ndarray, bool]:
        """Wait for `at_least` samples (or the end); return all waiting samples and whether input ended."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._count >= at_least)
            blocks, self._blocks, self._count = self._blocks, [], 0
            samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
            return samples, self._closed


class BytePipe(io.RawIOBase):
    """Bytes written by one thread, read as a file by another; read blocks until bytes or the end come."""

    def __init__(self) -> None:
        super().__init__()
        self._data = bytearray()
        self._ended = False
        self._abandoned = False
        self._changed = threading.Condition()

    def readable(self) -> bool:
        return True

    def feed(self, data: bytes) -> None:
        with self._changed:
            if not self._abandoned:
                self._data += data
                self._changed.notify()

    def end(self) -> None:
        with self._changed:
            self._ended = True
            self._changed.notify()

    def abandon(self) -> None:
        """The reader stopped: later bytes are not kept in memory."""
        with self._changed:
            self._abandoned = True
            self._data.clear()

    def readinto(self, buffer) -> int:  # type: ignore[override]
        with self._changed:
            self._changed.wait_for(lambda: self._data or self._ended)
            count = min(len(buffer), len(self._data))
            buffer[:count] = self._data[:count]
            del self._data[:count]
            return count


class ChunkWriter:
    """The audio as received, in the session directory: webm slice files, or PCM in ten-second files."""

    def __init__(self, directory: Path, fmt: str) -> None:
        self.directory = directory
        self.format = fmt
        self.extension = FORMATS[fmt]
        self.count = 0  # chunk files started
        self.bytes = 0
        self._open: Any = None
        self._open_bytes = 0
        self._synced = time.monotonic()

    def path(self, index: int) -> Path:
        return self.directory / f"chunk_{int(index)}.{self.extension}"

    def write(self, data: bytes) -> None:
        if self.format == "webm":
            with open(self.path(self.count), "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self.count += 1
            files.fsync_dir(self.directory)
        else:
            view = memoryview(data)
            while view:
                if self._open is None or self._open_bytes >= PCM_CHUNK_BYTES:
                    self._close_open()
                    self._open = open(self.path(self.count), "xb")
                    self._open_bytes = 0
                    self.count += 1
                    files.fsync_dir(self.directory)
                piece = view[: PCM_CHUNK_BYTES - self._open_bytes]
                self._open.write(piece)
                self._open_bytes += len(piece)
                view = view[len(piece):]
            self._open.flush()
            if time.monotonic() - self._synced >= SYNC_EVERY_SECONDS:
                os.fsync(self._open.fileno())
                self._synced = time.monotonic()
        self.bytes += len(data)

    def close(self) -> None:
        self._close_open()

    def _close_open(self) -> None:
        if self._open is not None:
            self._open.flush()
            os.fsync(self._open.fileno())
            self._open.close()
            self._open = None

    def paths(self) -> list[Path]:
        return [self.path(index) for index in range(self.count)]


def chunk_files(directory: Path, fmt: str) -> list[Path]:
    """A stream's chunk files in order (for one cut off by a crash, whose writer is gone)."""
    found = []
    for entry in directory.iterdir():
        stem, _, extension = entry.name.partition(".")
        if extension == FORMATS[fmt] and stem.startswith("chunk_") and stem[6:].isdigit() and entry.is_file():
            found.append((int(stem[6:]), entry))
    return [path for _, path in sorted(found)]


def write_recording(directory: Path, fmt: str, chunks: list[Path]) -> Path:
    """One playable file from the chunks: the webm slices joined (they are one stream), or a WAV.

    Written beside its name, fsynced and renamed, so a crash never leaves half a recording.
    """
    target = directory / f"{AUDIO_STEM}.{RECORDING_EXTENSION[fmt]}"
    partial = directory / f".{target.name}.partial"
    with open(partial, "wb") as handle:
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
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)
    files.fsync_dir(directory)
    return target


def pcm_samples(data: bytes) -> np.ndarray:
    """16-bit little-endian PCM as float32, exactly as engine.audio makes samples."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
