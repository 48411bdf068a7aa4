"""SessionService: the session operations, keeping the files (the record) and the index (the cache) in step.

Every change writes the file first, then the index, under the session's write lock (`writing`), so
concurrent read-modify-writes of one session queue up instead of losing each other's changes, and
the index gets them in the order the files did. A crash between the file and the index write leaves
the row's fingerprint behind its files, and the next start rebuilds it (index_sync.py); an index
write that fails on a full disk is redone from the files once space is back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tapescribe.engine.audio import ChainedFiles, chunk_recordings
from tapescribe.engine.records import Transcript
from tapescribe.errors import BadRequest, Conflict, NotFound
from tapescribe.sessions import files
from tapescribe.sessions.files import utc_now
from tapescribe.sessions.index import SessionIndex, Visible
from tapescribe.sessions.index_sync import IndexSync
from tapescribe.sessions.locks import FileLocks, SessionLocks
from tapescribe.sessions.space import DiskSpace

# the status names, re-exported for the modules that import them from here
from tapescribe.sessions.statuses import CANCELLED as CANCELLED
from tapescribe.sessions.statuses import DONE as DONE
from tapescribe.sessions.statuses import ERROR as ERROR
from tapescribe.sessions.statuses import PROCESSING as PROCESSING
from tapescribe.sessions.statuses import QUEUED as QUEUED
from tapescribe.sessions.statuses import STATUSES as STATUSES
from tapescribe.sessions.statuses import UNFINISHED as UNFINISHED
from tapescribe.sessions.statuses import read_status, status_record
from tapescribe.sessions.store import (
    SESSION_FILE,
    STATUS_FILE,
    TRANSCRIPTION_FILE,
    SessionStore,
)
from tapescribe.sessions.tags import checked_tags, tags_of
from tapescribe.sessions.titles import title_from_transcript
from tapescribe.sessions.usage import data_dir_usage

if TYPE_CHECKING:
    from tapescribe.sessions.watch import SessionWatch

# The index row's fields that come from session.json (the others are status.json's and the size).
SESSION_FIELDS = ("title", "created", "source", "filename", "duration", "model", "language", "tags")
MAX_TITLE_LENGTH = 200
MAX_SEGMENT_LENGTH = 5000
Fence = Callable[[], None]  # a writer's last check before a file is replaced: what it raises stops the write


class SessionService:
    def __init__(
        self, store: SessionStore, index: SessionIndex, space: DiskSpace, locks: SessionLocks | None = None
    ) -> None:
        self.store = store
        self.locks = locks or FileLocks(store)  # who may work on a session (sessions/locks.py)
        self.index = index
        self.space = space
        self.index_sync = IndexSync(store, index, space)
        self._writing = threading.local()  # the sessions whose write lock this thread holds

    @contextlib.contextmanager
    def writing(self, session_id: str) -> Iterator[None]:
        """Hold the session's write lock (sessions/locks.py) for a change: read what it changes, write the
        files, then the index. Waits while another thread, process or host has it; re-entrant in a thread."""
        held: set[str] = self._writing.__dict__.setdefault("sessions", set())
        if session_id in held:
            yield
            return
        with self.locks.write(session_id):
            held.add(session_id)
            try:
                yield
            finally:
                held.discard(session_id)

    # -- creating -----------------------------------------------------------------------------

    @staticmethod
    def new_session_record(session_id: str, *, source: str, title: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": session_id,
            "title": title[:MAX_TITLE_LENGTH],
            "created": utc_now(),
            "source": source,
            "original_filename": None,
            "size": None,
            "duration": None,
            "model": None,
            "language": None,
            **fields,
        }

    def publish(self, session_id: str, session: dict[str, Any], status: dict[str, Any]) -> None:
        """Make a received upload a session: files first, then the index."""
        self.store.publish(session_id, session, status)
        self.index_sync.write(session_id, lambda: self.index_sync.reindex_one(session_id))

    def new_incoming(self) -> tuple[str, Path]:
        """A fresh session id and the private directory its upload is received into."""
        return self.store.new_incoming()

    def discard_incoming(self, session_id: str) -> None:
        """An upload that never became a session (rejected, cut off, or taken over by a session)."""
        self.store.discard_incoming(session_id)

    def withdraw(self, session_id: str) -> None:
        """Take back an upload whose client was told it failed (507): the client sends it again, so
        keeping it would leave a duplicate nobody asked for. Never used on an acknowledged session."""
        self.store.withdraw(session_id)
        self.index_sync.write(session_id, lambda: self.index.remove(session_id))

    def create(self, *, source: str, title: str, status: dict[str, Any], **fields: Any) -> str:
        """A new session with no audio yet. All or nothing: if it cannot be made (a full disk), nothing
        of it is left behind, not even its empty directory in incoming/."""
        session_id, _ = self.store.new_incoming()
        session = self.new_session_record(session_id, source=source, title=title, **fields)
        try:
            self.publish(session_id, session, status)
        except BaseException:
            with contextlib.suppress(Exception):  # the error that stopped it is the one to report
                self.withdraw(session_id)
            raise
        return session_id

    # -- reading ------------------------------------------------------------------------------

    def session(self, session_id: str) -> dict[str, Any]:
        return self.store.read(session_id, SESSION_FILE)

    def status(self, session_id: str) -> dict[str, Any]:
        return read_status(self.store, session_id)

    def transcription(self, session_id: str) -> dict[str, Any] | None:
        return self.store.read(session_id, TRANSCRIPTION_FILE)

    def get(self, session_id: str) -> dict[str, Any]:
        """Everything about one session, read from its files (the truth)."""
        session = self.session(session_id)
        audio = self.store.audio_path(session_id)
        return {
            **session,
            "status": self.status(session_id),
            "transcription": self.transcription(session_id),
            "size_bytes": self.store.size(session_id),
            "has_audio": audio is not None,
            "chunks": len(self.store.chunk_paths(session_id, extension=None)),
        }

    def listing(
        self,
        limit: int = 50,
        offset: int = 0,
        query: str | None = None,
        tag: str | None = None,
        visible: Visible = None,
    ) -> dict[str, Any]:
        """A page of the index, newest first; `query` narrows to matching transcripts, `tag` to tagged
        sessions, `visible` to one owner's."""
        if not 1 <= limit <= 500:
            raise BadRequest("limit must be between 1 and 500.")
        if offset < 0:
            raise BadRequest("offset must not be negative.")
        rows, total = self.index.page(limit, offset, query, tag, visible)
        for row in rows:
            row["tags"] = tags_of(row.get("tags"))
        return {"sessions": rows, "total": total, "limit": limit, "offset": offset}

    def watch(self, session_id: str) -> SessionWatch:
        """Follow one session's status and new segments as its job makes them (NotFound if there is none)."""
        from tapescribe.sessions.watch import SessionWatch  # watch.py builds on this module

        return SessionWatch(self, session_id)

    def search(
        self, query: str, limit: int = 20, speaker: str | None = None, visible: Visible = None
    ) -> list[dict[str, Any]]:
        """Sessions whose transcript matches, best first, each with its matching segments and times;
        only what `speaker` (an id such as S1, or a name the owner gave) said, when given."""
        return self.index.search(query, limit=limit, speaker=speaker, visible=visible)

    def version(self, session_id: str, number: int) -> dict[str, Any]:
        return self.store.version(session_id, number)

    def audio_file(self, session_id: str) -> Path | None:
        """The session's one recording (an upload, or a finished live stream), if it has one."""
        return self.store.audio_path(session_id)

    def chunk_audio(self, session_id: str) -> Iterator[bytes]:
        """The first recording of a /transcribe-live session's chunks, as bytes (it has no single file).
        NotFound when there are none."""
        chunks = self.store.chunk_paths(session_id)
        if not chunks:
            raise NotFound("This session has no audio.")
        first = chunk_recordings(chunks)[0]

        def read() -> Iterator[bytes]:
            with ChainedFiles(first) as joined:
                while block := joined.read(1 << 16):
                    yield block

        return read()

    def storage(self, visible: Visible = None) -> dict[str, Any]:
        """Totals from the index (the caller's own sessions, with users), free space with the low-space
        warning from the disk, the bytes of uploads a crash cut off before they became sessions (kept in
        incoming/, shown, never hidden), and the data directory's bytes by kind (the whole library's)."""
        totals = self.index.totals()
        return {
            **(totals if visible is None else self.index.totals(visible)),
            **self.space.report(),
            "incomplete_upload_bytes": files.tree_size(self.store.incoming_dir),
            **data_dir_usage(self.store.sessions_dir.parent, totals["total_bytes"]),
        }

    # -- changing -----------------------------------------------------------------------------

    def update_session(self, session_id: str, *, fence: Fence | None = None, **fields: Any) -> dict[str, Any]:
        """`fence` (here and in set_status, save_transcription): run right before the file is replaced."""
        with self.writing(session_id):
            before = self.index_sync.fingerprint(session_id)
            session = {**self.session(session_id), **fields}
            self.store.write(session_id, SESSION_FILE, session, fence)
            if "speaker_names" in fields:  # the segments carry their speaker's name
                self.index_sync.write(session_id, lambda: self.index_sync.reindex_one(session_id))
            else:
                row = self.index_sync.row(session_id)
                row = {key: row[key] for key in (*SESSION_FIELDS, "size_bytes") if key != "title" or "title" in fields}
                step = self.index_sync.step(session_id, before)
                self.index_sync.write(session_id, lambda: self.index.update(session_id, step=step, **row))
        return session

    def rename(self, session_id: str, title: str) -> dict[str, Any]:
        """A new title; earlier titles are kept in title_history."""
        title = (title or "").strip()
        if not title:
            raise BadRequest("A title must not be empty.")
        with self.writing(session_id):
            session = self.session(session_id)
            history = list(session.get("title_history") or [])
            history.append({"title": session.get("title"), "until": utc_now()})
            return self.update_session(session_id, title=title[:MAX_TITLE_LENGTH], title_history=history)

    def set_tags(self, session_id: str, tags: list[str]) -> dict[str, Any]:
        """Replace the session's tags (validated and normalised: sessions/tags.py)."""
        return self.update_session(session_id, tags=checked_tags(tags))

    def change_tags(
        self, session_id: str, add: list[str] | None = None, remove: list[str] | None = None
    ) -> dict[str, Any]:
        """Add and remove some tags, keeping the others: read and written under the write lock."""
        add, remove = checked_tags(add or []), checked_tags(remove or [])
        with self.writing(session_id):
            kept = [tag for tag in self.session(session_id).get("tags") or [] if tag not in remove]
            return self.set_tags(session_id, [*kept, *add])

    def edit_segment(self, session_id: str, position: int, text: str) -> dict[str, Any]:
        """Change one segment's text. The transcript as it was is kept as a version first."""
        text = " ".join((text or "").split())
        if len(text) > MAX_SEGMENT_LENGTH:
            raise BadRequest(f"A segment's text is limited to {MAX_SEGMENT_LENGTH} characters.")
        with self.writing(session_id):
            return self._edit_segment(session_id, position, text)

    def _edit_segment(self, session_id: str, position: int, text: str) -> dict[str, Any]:
        if self.status(session_id)["status"] in UNFINISHED:
            raise Conflict("The transcript is still being made; edit it once it is done.")
        transcription = self.transcription(session_id) or {}
        segments = (transcription or {}).get("segments") or []
        if not 0 <= position < len(segments):
            raise NotFound(f"This transcript has no segment {position}.")
        self.store.save_version(session_id, "before-edit", transcription)
        segment = {key: value for key, value in segments[position].items() if key != "words"}
        segments[position] = {**segment, "text": " " + text if text else "", "edited": utc_now()}
        transcription = {
            **transcription,
            "segments": segments,
            "text": "".join(item["text"] for item in segments).strip(),
            "edited": utc_now(),
        }
        self.save_transcription(session_id, transcription)
        return transcription

    def versions(self, session_id: str) -> list[dict[str, Any]]:
        """Earlier transcripts of the session, oldest first (the current one is not among them)."""
        listing = []
        for path in self.store.versions(session_id):
            number = int(path.name[:4])
            record = self.store.version(session_id, number)
            text = (record.get("transcription") or {}).get("text", "")
            listing.append(
                {"number": number, "label": record["label"], "saved": record["saved"], "preview": text[:200]}
            )
        return listing

    def restore_version(self, session_id: str, number: int) -> dict[str, Any]:
        """Make version `number` the current transcript; the current one is kept as a version first
        (label before-restore), so a restore is undone by restoring that one."""
        with self.writing(session_id):
            if self.status(session_id)["status"] in UNFINISHED:
                raise Conflict("The transcript is still being made; restore a version once it is done.")
            restored = self.version(session_id, number).get("transcription")
            if not isinstance(restored, dict):
                raise Conflict(f"Version {number} holds no transcript to restore.")
            self.store.save_version(session_id, "before-restore", self.transcription(session_id))
            restored = {**restored, "restored_from": number, "edited": utc_now()}
            self.save_transcription(session_id, restored)
            return restored

    def set_status(
        self,
        session_id: str,
        status: str,
        progress: float | None = None,
        message: str | None = None,
        *,
        fence: Fence | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        record = status_record(status, progress, message, **extra)
        with self.writing(session_id):
            before = self.index_sync.fingerprint(session_id)
            self.store.write(session_id, STATUS_FILE, record, fence)
            size = self.store.size(session_id)
            step = self.index_sync.step(session_id, before)
            self.index_sync.write(
                session_id,
                lambda: self.index.update(
                    session_id,
                    step=step,
                    status=status,
                    progress=progress,
                    message=message,
                    updated=record["updated"],
                    size_bytes=size,
                ),
            )
        return record

    def save_transcription(
        self,
        session_id: str,
        transcription: Transcript | dict[str, Any],
        *,
        index: bool = True,
        fence: Fence | None = None,
    ) -> None:
        """transcription.json, from a typed Transcript (made a dict here, at the storage edge) or a dict."""
        if isinstance(transcription, Transcript):
            transcription = transcription.to_dict()
        with self.writing(session_id):
            self.store.write(session_id, TRANSCRIPTION_FILE, transcription, fence)
            session = self.session(session_id)
            title = title_from_transcript(session, transcription)
            if title is not None:  # a made-up title ("Recording <time>") becomes the first words said
                self.store.write(
                    session_id, SESSION_FILE, {**session, "title": title, "default_title": session.get("title")}, fence
                )
            if index:  # the whole row: its size and fingerprint change too
                self.index_sync.write(session_id, lambda: self.index_sync.reindex_one(session_id))
            # else the row stays behind the file (its fingerprint says so) until a later write or start

    def delete(self, session_id: str) -> None:
        """The user's own deletion: the only code path that removes stored data.

        The rename out of sessions/ is the commit point; a crash after it is finished by
        `finish_deletes` at the next start, so a delete is all or nothing.
        """
        with self.writing(session_id):  # a change under way finishes first; the next finds no session
            self.store.begin_delete(session_id)
        self.index_sync.write(session_id, lambda: self.index.remove(session_id))
        self.store.finish_delete(session_id)

    def finish_deletes(self) -> list[str]:
        """At start: finish deletions a crash interrupted (index row and files)."""
        unfinished = self.store.unfinished_deletes()
        for session_id in unfinished:
            self.index.remove(session_id)
            self.store.finish_delete(session_id)
        return unfinished
