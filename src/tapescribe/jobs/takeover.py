"""LeaseReaper: the jobs of dead workers go back on the queue, without waiting for a restart.

Huey forgets a task once a worker takes it, so when a worker dies mid-job only its lease is left.
Every process (the API and each worker) runs a reaper: it claims leases that expired (each one is
handed to exactly one claimer) and gives those sessions to `recover`, which queues the unfinished
ones again. The worker that takes such a job resumes it from the session's journal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from tapescribe.sessions.locks import SessionLocks

log = logging.getLogger(__name__)


class LeaseReaper:
    def __init__(self, locks: SessionLocks, recover: Callable[[Iterable[str]], object], interval: float) -> None:
        self.locks = locks
        self.recover = recover
        self.interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[str]:
        claimed = self.locks.claim_expired()
        if claimed:
            log.info("taking over %d session(s) whose worker stopped renewing its lease", len(claimed))
            self.recover(claimed)
        return claimed

    def start(self) -> None:
        if self._thread is None:
            self._stopped.clear()
            self._thread = threading.Thread(target=self._loop, name="lease-reaper", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopped.set()
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # Redis away for a moment, say: the leases stay in the set for the next round
                log.exception("the lease reaper could not run")
