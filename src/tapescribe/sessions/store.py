"""SessionStore: the session directories on disk, which are the record of everything.

Layout of one session (compatible with the original system):

    sessions/<id>/session.json        what it is
    sessions/<id>/status.json         where its job is
    sessions/<id>/transcription.json  the result (rewritten as segments arrive)
    sessions/<id>/speakers.json       speaker turns found in the audio (the speakers step's checkpoint)
    sessions/<id>/segments.jsonl      journal of saved segments while a job runs (resume point)
    sessions/<id>/original_audio.<ext>
    sessions/<id>/chunk_<n>.webm      live chunks: MediaRecorder slices (/transcribe-live, /ws/live)
    sessions/<id>/chunk_<n>.pcm       live chunks: raw 16 kHz PCM from /ws/live, ten seconds a file
    sessions/<id>/live.json           /transcribe-live's settled state
    sessions/<id>/versions/           earlier transcripts (before edits, re-transcription, live drafts)
    sessions/<id>/.job.lock           flock of the job working on the session (SQLite queue)
    sessions/<id>/.write.lock         flock of one change to the session's files and index (SQLite queue)

Paths are only ever built from ids that passed `checked_session_id`, and from fixed names.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tapescribe.errors import NotFound
from tapescribe.sessions import files
from tapescribe.sessions.ids import checked_session_id, new_session_id

SESSION_FILE = "session.json"
STATUS_FILE = "status.json"
TRANSCRIPTION_FILE = "transcription.json"
SPEAKERS_FILE = "speakers.json"
JOURNAL_FILE = "segments.jsonl"
LOCK_FILE = ".job.lock"
WRITE_LOCK_FILE = ".write.lock"
AUDIO_STEM = "original_audio"
VERSIONS_DIR = "versions"


CHUNK_EXTENSIONS = ("webm", "pcm")


def chunk_name(index: int, extension: str = "webm") -> str:
    """The one naming of live chunks: chunk_<n>.webm (MediaRecorder slices) or chunk_<n>.pcm (raw PCM)."""
    if extension not in CHUNK_EXTENSIONS:
        raise ValueError(f"unknown chunk extension {extension!r}")
    return f"chunk_{int(index)}.{extension}"


def chunk_files(directory: Path, extension: str | None = None) -> list[Path]:
    """Chunk files in a session directory, in index order; only `extension` ones if given."""
    found = []
    for entry in os.scandir(directory):
        stem, _, kind = entry.name.partition(".")
        number = stem[len("chunk_") :]
        if (
            stem.startswith("chunk_")
            and number.isascii()
            and number.isdecimal()
            and kind in CHUNK_EXTENSIONS
            and extension in (None, kind)
            and entry.is_file(follow_symlinks=False)
        ):
            found.append((int(number), Path(entry.path)))
    return [path for _, path in sorted(found)]


class SessionStore:
    def __init__(self, sessions_dir: Path, incoming_dir: Path) -> None:
        self.sessions_dir = sessions_dir
        self.incoming_dir = incoming_dir
        self._deleting_dir = sessions_dir.parent / "deleting"
        for directory in (sessions_dir, incoming_dir, self._deleting_dir):
            directory.mkdir(parents=True, exist_ok=True)

    # -- where things are ---------------------------------------------------------------------

    def dir(self, session_id: str) -> Path:
        """The directory of an existing session; NotFound for anything else."""
        path = self.sessions_dir / checked_session_id(session_id)
        if not (path / SESSION_FILE).is_file():
            raise NotFound("No such session.")
        return path

    def exists(self, session_id: str) -> bool:
        try:
            self.dir(session_id)
        except NotFound:
            return False
        return True

    def ids(self) -> list[str]:
        found = []
        for entry in os.scandir(self.sessions_dir):
            try:
                session_id = checked_session_id(entry.name)
            except NotFound:
                continue
            if (Path(entry.path) / SESSION_FILE).is_file():
                found.append(session_id)
        return found

    def audio_path(self, session_id: str) -> Path | None:
        directory = self.dir(session_id)
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(AUDIO_STEM + ".") and entry.is_file():
                return entry
        return None

    def chunk_path(self, session_id: str, index: int, extension: str = "webm") -> Path:
        return self.dir(session_id) / chunk_name(index, extension)

    def chunk_paths(self, session_id: str, extension: str | None = "webm") -> list[Path]:
        """The session's live chunks in order: webm slices by default, `None` for every kind."""
        return chunk_files(self.dir(session_id), extension)

    # -- creating -----------------------------------------------------------------------------

    def new_incoming(self) -> tuple[str, Path]:
        """A fresh id and a private directory to receive an upload into (not yet a session)."""
        session_id = new_session_id()
        path = self.incoming_dir / session_id
        path.mkdir()
        return session_id, path

    def discard_incoming(self, session_id: str) -> None:
        """Remove an upload that never became a session (rejected: empty, too large, aborted)."""
        shutil.rmtree(self.incoming_dir / checked_session_id(session_id), ignore_errors=True)

    def publish(self, session_id: str, session: dict[str, Any], status: dict[str, Any]) -> Path:
        """Write the metadata into the incoming directory, then rename it into place in one step."""
        source = self.incoming_dir / checked_session_id(session_id)
        files.write_json_atomic(source / STATUS_FILE, status)
        files.write_json_atomic(source / SESSION_FILE, session)
        (source / WRITE_LOCK_FILE).touch()  # made now, so no later write needs a new file for its lock
        target = self.sessions_dir / session_id
        os.replace(source, target)
        files.fsync_dir(self.sessions_dir)
        return target

    def withdraw(self, session_id: str) -> None:
        """Undo `publish` (and the receiving) of an upload that was refused: back to incoming, then gone."""
        session_id = checked_session_id(session_id)
        published = self.sessions_dir / session_id
        if published.is_dir():
            os.replace(published, self.incoming_dir / session_id)
        self.discard_incoming(session_id)

    # -- reading and writing the JSON files ----------------------------------------------------

    def read(self, session_id: str, name: str) -> Any:
        """One JSON file of the session (None if it has none); NotFound once the session is deleted,
        also when the delete lands between the check and the read."""
        data = files.read_json(self.dir(session_id) / name)
        if data is None:
            self.dir(session_id)
        return data

    def write(self, session_id: str, name: str, data: Any, fence: Callable[[], None] | None = None) -> None:
        """Write one JSON file of the session; `fence` runs right before it replaces the old one.
        NotFound once the session is deleted, also when the delete lands during the write."""
        with self._gone_is_not_found(session_id):
            files.write_json_atomic(self.dir(session_id) / name, data, fence)

    @contextlib.contextmanager
    def _gone_is_not_found(self, session_id: str) -> Iterator[None]:
        """A file operation that failed because the user's delete moved the session away meanwhile
        is NotFound, as it would have been a moment earlier (a retry or a job racing a delete)."""
        try:
            yield
        except FileNotFoundError as error:
            if self.exists(session_id):
                raise
            raise NotFound("No such session.") from error

    def journal(self, session_id: str) -> list[dict[str, Any]]:
        return files.read_json_lines(self.dir(session_id) / JOURNAL_FILE)

    def append_journal(self, session_id: str, record: dict[str, Any]) -> None:
        with self._gone_is_not_found(session_id):
            files.append_json_line(self.dir(session_id) / JOURNAL_FILE, record)

    def clear_journal(self, session_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir(session_id) / JOURNAL_FILE).unlink()

    def save_version(self, session_id: str, label: str, transcription: Any) -> int:
        """Keep a transcript (before an edit or a re-transcription) under versions/; returns its number."""
        versions = self.dir(session_id) / VERSIONS_DIR
        versions.mkdir(exist_ok=True)
        number = len(self.versions(session_id)) + 1
        record = {"number": number, "label": label, "saved": files.utc_now(), "transcription": transcription}
        files.write_json_atomic(versions / f"{number:04d}-{label}.json", record)
        return number

    def versions(self, session_id: str) -> list[Path]:
        versions = self.dir(session_id) / VERSIONS_DIR
        return sorted(versions.glob("[0-9][0-9][0-9][0-9]-*.json")) if versions.is_dir() else []

    def version(self, session_id: str, number: int) -> dict[str, Any]:
        for path in self.versions(session_id):
            if path.name.startswith(f"{int(number):04d}-"):
                return files.read_json(path)
        raise NotFound("No such version of this transcript.")

    def size(self, session_id: str) -> int:
        return files.tree_size(self.dir(session_id))

    # -- the only way data goes away -----------------------------------------------------------

    def begin_delete(self, session_id: str) -> None:
        """The user's deletion, committed: the directory leaves sessions/ in one durable rename.

        From here on the session is gone for every reader; `finish_delete` removes the bytes, and
        `unfinished_deletes` lets a restart finish what a crash interrupted.
        """
        source = self.dir(session_id)
        with self._gone_is_not_found(session_id):  # a second delete of it at the same moment
            os.replace(source, self._deleting_dir / session_id)
        files.fsync_dir(self.sessions_dir)
        files.fsync_dir(self._deleting_dir)

    def finish_delete(self, session_id: str) -> None:
        shutil.rmtree(self._deleting_dir / checked_session_id(session_id), ignore_errors=True)

    def unfinished_deletes(self) -> list[str]:
        """Sessions whose deletion was committed but not finished (the process died in between)."""
        found = []
        for entry in os.scandir(self._deleting_dir):
            try:
                found.append(checked_session_id(entry.name))
            except NotFound:
                continue
        return found

    # -- one job at a time per session, across threads and processes ----------------------------

    @contextlib.contextmanager
    def job_lock(self, session_id: str) -> Iterator[bool]:
        """Yield True if this caller holds the session's job lock. It is an flock: the kernel drops it when
        the process holding it ends, however it ends, so a dead process's lock never blocks anyone; a
        session "being transcribed elsewhere" is held by a live process. The holder writes who it is into
        the file (`lock_holder` reads it, to say which process that is)."""
        path = self.dir(session_id) / LOCK_FILE
        with self._gone_is_not_found(session_id):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                _write_holder(fd)
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def write_lock(self, session_id: str) -> Iterator[None]:
        """Hold the session's write lock for the block, waiting while another thread or process has it
        (each caller opens the file anew, so threads of one process exclude each other too)."""
        path = self.dir(session_id) / WRITE_LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def lock_holder(self, session_id: str) -> str | None:
        """Who holds (or last held) the session's job lock, as its holder wrote it: "pid 1234 on host since
        <time>", with a note when that pid is gone from this host (then a process it forked holds the
        lock); None when unknown."""
        try:
            text = (self.dir(session_id) / LOCK_FILE).read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return None
        parts = text.split()
        if len(parts) < 4 or parts[0] != "pid" or not parts[1].isdigit():
            return None
        if parts[3] == socket.gethostname() and not _process_exists(int(parts[1])):
            text += " (that process is gone: one it started holds the lock)"
        return text


def _write_holder(fd: int) -> None:
    """Who holds the lock, for `lock_holder`; only a help to the operator, so a full disk does not stop a job."""
    record = f"pid {os.getpid()} on {socket.gethostname()} since {files.utc_now()}\n".encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
