"""Who may work on a session: one holder at a time, across threads, processes and (with Redis) hosts.

`hold(session_id)` yields a lease, or None when someone else holds the session. A job calls
`lease.check()` before each of its writes (cheap: it says whether the lease is known to be lost)
and `lease.confirm()` just before it commits its result (proves the lease is still this holder's,
and renews it, so the commit happens with the whole lease time ahead of it).

`write(session_id)` is the other lock of a session: held for the few milliseconds of one change to
its files and index (an edit, a rename, a status), waited for rather than refused, so concurrent
read-modify-writes of one session (two people editing, two tabs, a job's progress) queue up instead
of losing each other's changes. The job holds `hold` for its whole run and `write` for each write.

FileLocks (flock on a file in the session directory) is the embedded default: the OS releases it
when a process dies, so it never needs taking over. It does not hold across hosts on network file
systems (NFS emulates or ignores it), so with the Redis queue the lock is a Redis lease instead
(sessions/leases.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from tapescribe.sessions.store import SessionStore


class LeaseLost(Exception):
    """This holder no longer owns the session (its lease expired and may be another's): stop, write nothing."""


class Lease(Protocol):
    def check(self) -> None:
        """LeaseLost if the lease is known to be gone; may ask the lock server when unsure."""

    def confirm(self) -> None:
        """LeaseLost unless the lease is proved to be this holder's now (and renewed)."""


class SessionLocks(Protocol):
    def hold(self, session_id: str) -> contextlib.AbstractContextManager[Lease | None]:
        """The session's lease for the block, or None when another holder has it."""

    def claim_expired(self) -> list[str]:
        """Sessions whose holder died (its lease expired), each returned to exactly one caller."""

    def write(self, session_id: str) -> contextlib.AbstractContextManager[None]:
        """The session's write lock for the block, waiting for it while another writer has it."""

    def holder(self, session_id: str) -> str | None:
        """Who holds the session, for a log line (None: not known)."""


class HeldFile:
    """An flock held by this process: it cannot be lost while the process lives."""

    def check(self) -> None:
        pass

    def confirm(self) -> None:
        pass


class FileLocks:
    """flock per session directory: right on one host, or on storage with working POSIX locks."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    @contextlib.contextmanager
    def hold(self, session_id: str) -> Iterator[HeldFile | None]:
        with self.store.job_lock(session_id) as held:
            yield HeldFile() if held else None

    def claim_expired(self) -> list[str]:
        return []  # the OS drops a dead process's flock: nothing is ever left to take over

    def write(self, session_id: str) -> contextlib.AbstractContextManager[None]:
        return self.store.write_lock(session_id)

    def holder(self, session_id: str) -> str | None:
        return self.store.lock_holder(session_id)
