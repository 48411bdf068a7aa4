"""IndexSync: the index kept as a cache of the session files (the record).

Every change writes the file first, then the index (`write`). An index write that fails on a full
disk leaves the file's change standing; the session's row is rebuilt from its files once space is
back (`catch_up`). At start, `reconcile` mends the rows a crash left behind their files, and
`reindex` rebuilds the whole index from the files.

Each row keeps the fingerprint (`fingerprint`: size, mtime and inode) of the files it is built from,
session.json, status.json and transcription.json. A whole row takes the fingerprint read before the
files are; a change of one file under the session's write lock moves it from the one before the file
write to the one after (index.FingerprintStep), and clears it when the row was not in step. So a
process killed between a file write and its index write leaves a row whose fingerprint differs from
its files, and the next start (`reconcile`) rebuilds it, whatever field the write changed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tapescribe.errors import NotFound, is_disk_full
from tapescribe.sessions.files import utc_now
from tapescribe.sessions.index import FingerprintStep, SessionIndex
from tapescribe.sessions.space import DiskSpace
from tapescribe.sessions.statuses import QUEUED, UNFINISHED, read_status
from tapescribe.sessions.store import SESSION_FILE, STATUS_FILE, TRANSCRIPTION_FILE, SessionStore
from tapescribe.sessions.tags import tags_column

log = logging.getLogger(__name__)

INDEXED_FILES = (SESSION_FILE, STATUS_FILE, TRANSCRIPTION_FILE)  # what a row and its segments are built from


@dataclass
class IndexCheck:
    """What `reconcile` did and found."""

    mended: list[str] = field(default_factory=list)  # rows rebuilt from the files, or removed
    unfinished: list[str] = field(default_factory=list)  # sessions whose status.json says queued or processing


class IndexSync:
    def __init__(self, store: SessionStore, index: SessionIndex, space: DiskSpace) -> None:
        self.store = store
        self.index = index
        self.space = space
        # Sessions whose index row is behind their files because an index write failed on a full disk.
        self._unindexed: set[str] = set()
        self._unindexed_lock = threading.Lock()
        space.on_space_back(self.catch_up)

    def write(self, session_id: str, write: Callable[[], None]) -> None:
        """Bring the index in step with a file just written. On a full disk the file (the record) has
        changed already, so the change stands: the session's row is rebuilt from its files later."""
        self.catch_up()
        try:
            write()
        except Exception as error:
            if not is_disk_full(error):
                raise
            with self._unindexed_lock:
                self._unindexed.add(session_id)
            self.space.note_full("updating the index")

    def catch_up(self) -> None:
        """Rebuild the rows that index writes on a full disk missed (rows of deleted sessions go)."""
        while True:
            with self._unindexed_lock:
                if not self._unindexed:
                    return
                session_id = self._unindexed.pop()
            try:
                if self.store.exists(session_id):
                    self.reindex_one(session_id)
                else:
                    self.index.remove(session_id)
            except Exception as error:
                if not is_disk_full(error):  # not for lack of space: `reindex` rebuilds the row
                    log.exception("could not bring the index row of session %s up to date", session_id)
                    continue
                with self._unindexed_lock:
                    self._unindexed.add(session_id)
                self.space.note_full("bringing the index up to date")
                return

    def fingerprint(self, session_id: str) -> str:
        """What the index row is built from, as the file system says it is now: cheap (three stat calls),
        and changed by every write of those files (each is a new file, renamed into place)."""
        directory = self.store.dir(session_id)
        parts = []
        for name in INDEXED_FILES:
            try:
                found = os.stat(directory / name)
            except FileNotFoundError:
                parts.append("-")
                continue
            parts.append(f"{found.st_size}:{found.st_mtime_ns}:{found.st_ino}")
        return " ".join(parts)

    def step(self, session_id: str, before: str) -> FingerprintStep:
        """The fingerprint's move by a file write that the caller made (under the session's write lock)."""
        return FingerprintStep(before, self.fingerprint(session_id))

    def row(self, session_id: str) -> dict[str, Any]:
        """The session's index row, from its files, with their fingerprint taken before they are read (a
        file written meanwhile makes it differ, never match, what the row holds)."""
        fingerprint = self.fingerprint(session_id)
        session = self.store.read(session_id, SESSION_FILE)
        status = read_status(self.store, session_id)
        return {
            "id": session_id,
            "title": session.get("title") or "",
            "created": session.get("created") or utc_now(),
            "source": session.get("source") or "",
            "filename": session.get("original_filename"),
            "duration": session.get("duration"),
            "model": session.get("model"),
            "language": session.get("language"),
            "status": status.get("status", QUEUED),
            "progress": status.get("progress"),
            "message": status.get("message"),
            "updated": status.get("updated"),
            "size_bytes": self.store.size(session_id),
            "tags": tags_column(session.get("tags")),
            "owner": session.get("owner"),
            "fingerprint": fingerprint,
        }

    def reindex_one(self, session_id: str) -> None:
        """The session's row and segments from its files, in one transaction."""
        row = self.row(session_id)
        self.index.upsert_many([(row, self.segments(session_id))])
        try:
            self.store.dir(session_id)
        except NotFound:  # deleted meanwhile (a job racing the user's delete): leave no ghost row
            self.index.remove(session_id)
            raise

    def segments(self, session_id: str, transcription: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The transcript's segments as the index takes them: with the name of each one's speaker."""
        transcription = transcription or self.store.read(session_id, TRANSCRIPTION_FILE)
        segments = (transcription or {}).get("segments") or []
        names = (self.store.read(session_id, SESSION_FILE).get("speaker_names") or {}) if segments else {}
        return [{**segment, "speaker_name": names.get(segment.get("speaker") or "")} for segment in segments]

    def reindex(self, batch: int = 500) -> int:
        """Rebuild the whole index from the session directories, `batch` sessions per transaction."""
        self.index.clear()
        count = 0
        pending: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for session_id in self.store.ids():
            try:
                pending.append((self.row(session_id), self.segments(session_id)))
            except NotFound:
                continue  # deleted while we were scanning
            if len(pending) >= batch:
                self.index.upsert_many(pending)
                count += len(pending)
                pending = []
        self.index.upsert_many(pending)
        self.index.optimize()
        return count + len(pending)

    def reconcile(self) -> IndexCheck:
        """At start, one pass over every session's status.json and the fingerprint of its files: rows a crash
        left behind their files (a file was written, the process died before the index was; any field)
        are rebuilt from the files, rows of
        sessions that are gone are removed, and the unfinished sessions are listed for the steps of
        the start that follow (finishing cut-off streams, re-queueing), so they need not read them again."""
        indexed = self.index.fingerprints()
        check = IndexCheck()
        for session_id in self.store.ids():
            try:
                status = read_status(self.store, session_id)
                recorded = indexed.pop(session_id, None)
                if recorded is None or recorded != self.fingerprint(session_id):
                    self.reindex_one(session_id)
                    check.mended.append(session_id)
            except NotFound:
                continue
            if status.get("status") in UNFINISHED:
                check.unfinished.append(session_id)
        for ghost in indexed:  # rows without a session directory
            self.index.remove(ghost)
            check.mended.append(ghost)
        if check.mended:
            log.info("brought %d index row(s) back in step with the session files", len(check.mended))
        return check
