"""What a session's status.json says: the statuses and the record written for one."""

from __future__ import annotations

from typing import Any

from tapescribe.sessions.files import utc_now
from tapescribe.sessions.store import STATUS_FILE, SessionStore

QUEUED, PROCESSING, DONE, ERROR, CANCELLED = "queued", "processing", "done", "error", "cancelled"
STATUSES = (QUEUED, PROCESSING, DONE, ERROR, CANCELLED)
UNFINISHED = (QUEUED, PROCESSING)


def status_record(status: str, progress: float | None = None, message: str | None = None, **extra: Any) -> dict:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return {"status": status, "progress": progress, "message": message, "updated": utc_now(), **extra}


def read_status(store: SessionStore, session_id: str) -> dict[str, Any]:
    """The session's status.json; queued for a session that has none yet."""
    return store.read(session_id, STATUS_FILE) or status_record(QUEUED)
