"""Hand-over between a live stream's threads: bytes from the connection to the decoder, samples to the worker."""

from __future__ import annotations

import io
import threading

import numpy as np


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

    def ready(self, at_least: int, within: float = 0.0) -> bool:
        """Whether `take(at_least)` would return at once, waiting up to `within` seconds for it."""
        with self._changed:
            return self._changed.wait_for(lambda: self._closed or self._count >= at_least, timeout=within)

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

    def readinto(self, buffer) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._data or self._ended)
            count = min(len(buffer), len(self._data))
            buffer[:count] = self._data[:count]
            del self._data[:count]
            return count
