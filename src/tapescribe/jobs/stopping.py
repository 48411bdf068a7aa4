"""JobStop: the process is stopping (SIGINT, SIGTERM). Jobs check it where they already check for a cancel
(between model calls, segments and windows) and end there, their status left queued or processing and
their journal kept, so the next start resumes them; the stop waits a few seconds for the jobs to end."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from tapescribe.errors import ServerStopping

STOPPING_MESSAGE = "The server is stopping: this session is kept and is transcribed when it starts again."


class JobStop:
    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._running = 0  # jobs in progress
        self._stopped: list[str] = []  # sessions whose job the stop ended
        self._changed = threading.Condition()

    def stop(self) -> None:
        """From now on every job ends at its next check, and none starts."""
        self._stopping.set()

    def check(self) -> None:
        """ServerStopping once the process stops."""
        if self._stopping.is_set():
            raise ServerStopping(STOPPING_MESSAGE)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Count a job in progress for the block."""
        with self._changed:
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    def note_stopped(self, session_id: str) -> None:
        """A job the stop ended: it is to be queued again (`stopped_sessions`)."""
        with self._changed:
            self._stopped.append(session_id)

    def stopped_sessions(self) -> list[str]:
        """The sessions whose job the stop ended, to queue again: another worker goes on with them now,
        or the next start does (released cleanly, their lock is no lease left to expire and take over)."""
        with self._changed:
            return list(dict.fromkeys(self._stopped))

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the jobs in progress to end; whether they did."""
        with self._changed:
            return self._changed.wait_for(lambda: self._running == 0, timeout)
