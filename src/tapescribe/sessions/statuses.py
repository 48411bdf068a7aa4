"""What a session's status.json says: the statuses and the record written for one."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tapescribe.sessions.files import utc_now
from tapescribe.sessions.store import STATUS_FILE, SessionStore


class Status(StrEnum):
    """Where a session's job is (status.json `status`); each is its plain string on disk and in answers."""

    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def unfinished(self) -> bool:
        """A job still to run or to finish (a start queues it again)."""
        return self in (Status.QUEUED, Status.PROCESSING)


QUEUED, PROCESSING, DONE, ERROR, CANCELLED = (
    Status.QUEUED,
    Status.PROCESSING,
    Status.DONE,
    Status.ERROR,
    Status.CANCELLED,
)
STATUSES = tuple(Status)
UNFINISHED = (QUEUED, PROCESSING)


def status_record(status: str, progress: float | None = None, message: str | None = None, **extra: Any) -> dict:
    """status.json's record; `status` a Status (or its string), written as the plain string it always was."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return {"status": Status(status).value, "progress": progress, "message": message, "updated": utc_now(), **extra}


def read_status(store: SessionStore, session_id: str) -> dict[str, Any]:
    """The session's status.json; queued for a session that has none yet."""
    return store.read(session_id, STATUS_FILE) or status_record(QUEUED)
