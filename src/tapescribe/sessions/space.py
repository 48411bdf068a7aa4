"""DiskSpace: free space on the data directory's disk, the low-space warning, and waiting out a full disk.

A full disk is a normal condition, not a crash: whoever hits it calls `note_full`, which logs one
line and starts a watcher thread that polls free space. When space is back it logs one line, wakes
the jobs waiting in `wait_for_space` and calls the `on_space_back` callbacks (re-queue unfinished
sessions, bring the index back in step). Nothing runs while the disk is not full.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# Space counts as back once this much more is free than when the disk filled up (or when the
# low-space threshold is reached), so a job does not retry on the few bytes freed by a failed write.
SPACE_BACK_MARGIN_BYTES = 1024 * 1024
POLL_SECONDS = 1.0
# Waiters try again after this long even if free space did not grow by the margin (a quota, or space
# that was judged full while a refused upload still held it); if it is still full they wait again, quietly.
RETRY_SECONDS = 60.0


class DiskSpace:
    def __init__(self, path: Path, low_space_bytes: int, poll_seconds: float = POLL_SECONDS) -> None:
        self.path = path
        self.low_space_bytes = low_space_bytes
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._space_back = threading.Event()
        self._space_back.set()
        self._free_when_full = 0
        self._quiet = False  # the last episode ended by RETRY_SECONDS, not by space coming back: do not log again
        self._callbacks: list[Callable[[], object]] = []

    def free_bytes(self) -> int:
        """Bytes an unprivileged writer can still use on the data directory's filesystem."""
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def report(self) -> dict:
        """What /storage shows: free space, the warning threshold, and whether it is crossed."""
        free = self.free_bytes()
        return {
            "free_bytes": free,
            "low_space_bytes": self.low_space_bytes,
            "low_space": free < self.low_space_bytes,
            "disk_full": self.is_full(),
        }

    def is_full(self) -> bool:
        """True from a write failing for lack of space until free space is seen again."""
        return not self._space_back.is_set()

    def on_space_back(self, callback: Callable[[], object]) -> None:
        self._callbacks.append(callback)

    def note_full(self, doing: str) -> None:
        """A write failed for lack of space while `doing` something: log once, watch for space to return."""
        with self._lock:
            if not self._space_back.is_set():
                return
            self._space_back.clear()
            self._free_when_full = self.free_bytes()
        if not self._quiet:
            log.warning(
                "the disk of %s is full (%d bytes free) while %s; nothing stored was lost, "
                "jobs wait until space is freed",
                self.path,
                self._free_when_full,
                doing,
            )
        threading.Thread(target=self._watch, name="disk-space-watch", daemon=True).start()

    def wait_for_space(self, doing: str) -> None:
        """Block until space is back (for a job that hit a full disk and continues afterwards)."""
        self.note_full(doing)
        self._space_back.wait()

    def _enough_again(self) -> bool:
        free = self.free_bytes()
        return free >= self._free_when_full + SPACE_BACK_MARGIN_BYTES or free >= self.low_space_bytes

    def _watch(self) -> None:
        deadline = time.monotonic() + RETRY_SECONDS
        while not self._enough_again() and time.monotonic() < deadline:
            time.sleep(self.poll_seconds)
        back = self._enough_again()
        self._quiet = not back
        self._space_back.set()
        if not back:
            return
        log.info("disk space is back (%d bytes free); continuing", self.free_bytes())
        for callback in self._callbacks:
            try:
                callback()
            except Exception:  # one failing callback must not stop the others
                log.exception("after disk space came back, %s failed", getattr(callback, "__qualname__", callback))
