"""Backup and restore of a whole library as one tar archive, taken while the server keeps serving.

What goes in: every file and directory under the data directory but the ones that are made again
(model copies, caches, uploads still arriving, deletes under way, the index and the queue, which a
restore rebuilds from the session files). So sessions/ whole (audio bytes unchanged, transcripts,
versions, speaker names, tags, live chunks, journals) and any library directory a later version adds.

Consistency: each session is read while its write lock is held (sessions/locks.py, the lock every
change to its files takes), so its session.json, transcript and versions are from one moment; a job
that wants to write waits that long. Every file is read through one open descriptor, sized when it
is opened: JSON files are replaced by rename (the open one stays whole), an append-only journal or
a live chunk being written is taken as far as it was written then.

The archive ends with a manifest (MANIFEST_NAME): every file's path, size and sha256. `verify`
reads the archive and checks every file against it; `restore` verifies first, then writes each file
beside its place and renames it in, checking the bytes again as they land.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from tapescribe.errors import NotFound, TapescribeError
from tapescribe.sessions import files
from tapescribe.sessions.ids import checked_session_id
from tapescribe.sessions.usage import CACHE_DIRS, MODEL_DIRS, SESSIONS_DIR

FORMAT = "tapescribe-backup/1"
MANIFEST_NAME = "tapescribe-backup.json"
# Made again, never backed up: model copies, caches, uploads arriving, deletes under way, index, queue.
SKIPPED = {*MODEL_DIRS, *CACHE_DIRS, "incoming", "deleting"}
SKIPPED_FILE_PREFIXES = ("index.sqlite3", "queue.sqlite3")
BLOCK = 1 << 20
LockFor = Callable[[str], contextlib.AbstractContextManager[None]]


class BackupError(TapescribeError):
    code = "backup_error"


@dataclass
class BackupSummary:
    files: int = 0
    bytes: int = 0
    sessions: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)  # the manifest's files


class _Hashing(io.RawIOBase):
    """Reads at most `size` bytes of a descriptor, hashing them as tarfile copies them."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd, self._left = fd, size
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = os.read(self._fd, want) if want else b""
        self._left -= len(data)
        self.sha.update(data)
        return data


def backed_up(name: str) -> bool:
    """Whether a top-level entry of the data directory goes into a backup."""
    return name not in SKIPPED and not name.startswith(SKIPPED_FILE_PREFIXES)


def write_backup(data_dir: Path, out: IO[bytes], lock_for: LockFor, gzip: bool = False) -> BackupSummary:
    """The library under `data_dir` as a tar stream into `out` (never seeks: a pipe will do); each session
    read under `lock_for(session_id)`."""
    summary = BackupSummary()
    with tarfile.open(fileobj=out, mode="w|gz" if gzip else "w|", format=tarfile.PAX_FORMAT) as archive:
        for entry in sorted(os.scandir(data_dir), key=lambda item: item.name):
            if not backed_up(entry.name):
                continue
            if entry.name == SESSIONS_DIR and entry.is_dir(follow_symlinks=False):
                _add_sessions(archive, Path(entry.path), lock_for, summary)
            else:
                _add_tree(archive, Path(entry.path), entry.name, summary)
        manifest = json.dumps(
            {"format": FORMAT, "created": files.utc_now(), "sessions": summary.sessions, "files": summary.entries},
            indent=1,
            ensure_ascii=False,
        ).encode()
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size, info.mtime, info.mode = len(manifest), int(time.time()), 0o644
        archive.addfile(info, io.BytesIO(manifest))
    return summary


def _add_sessions(archive: tarfile.TarFile, sessions_dir: Path, lock_for: LockFor, summary: BackupSummary) -> None:
    _add_dir(archive, sessions_dir, SESSIONS_DIR)
    for entry in sorted(os.scandir(sessions_dir), key=lambda item: item.name):
        name = f"{SESSIONS_DIR}/{entry.name}"
        try:
            session_id = checked_session_id(entry.name)
        except NotFound:  # not a session: kept all the same (nothing under the data dir is left out silently)
            _add_tree(archive, Path(entry.path), name, summary)
            continue
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(lock_for(session_id))
            except (NotFound, FileNotFoundError):
                if not os.path.isdir(entry.path):
                    continue  # deleted by its owner before its turn came (a delete takes the same lock)
                # a directory with an id's name but no session.json: kept as it is, as nothing else is touching it
            _add_tree(archive, Path(entry.path), name, summary)
        summary.sessions += 1


def _add_tree(archive: tarfile.TarFile, path: Path, name: str, summary: BackupSummary) -> None:
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(found.st_mode):
        _add_dir(archive, path, name)
        try:
            entries = sorted(os.scandir(path), key=lambda item: item.name)
        except FileNotFoundError:
            return
        for entry in entries:
            _add_tree(archive, Path(entry.path), f"{name}/{entry.name}", summary)
    elif stat.S_ISREG(found.st_mode):
        _add_file(archive, path, name, summary)
    # links, sockets and the like: tapescribe makes none, and a restore would not make them either


def _add_dir(archive: tarfile.TarFile, path: Path, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    with contextlib.suppress(FileNotFoundError):
        info.mtime = int(os.stat(path).st_mtime)
    archive.addfile(info)


def _add_file(archive: tarfile.TarFile, path: Path, name: str, summary: BackupSummary) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return  # replaced or removed between the listing and now (a journal cleared at a job's end)
    try:
        found = os.fstat(fd)
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = found.st_size, found.st_mtime, stat.S_IMODE(found.st_mode)
        reader = _Hashing(fd, found.st_size)
        archive.addfile(info, reader)
    finally:
        os.close(fd)
    summary.files += 1
    summary.bytes += found.st_size
    summary.entries.append({"path": name, "size": found.st_size, "sha256": reader.sha.hexdigest()})


# -- reading an archive ----------------------------------------------------------------------------


def checked_member_name(name: str) -> PurePosixPath:
    """A member's path, relative and inside the data directory, or BackupError: an archive is input."""
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(part in ("", ".", "..") for part in path.parts):
        raise BackupError(f"The archive holds a path that cannot be restored: {name!r}.")
    if "\x00" in name or not backed_up(path.parts[0]):
        raise BackupError(f"The archive holds a path that is not part of a library: {name!r}.")
    return path


def _members(stream: IO[bytes]) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for member in archive:
                yield member, archive
    except (tarfile.TarError, EOFError, OSError) as error:
        raise BackupError(f"The archive cannot be read: {error}.") from error


def _file_bytes(archive: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
    reader = archive.extractfile(member)
    if reader is None:
        raise BackupError(f"The archive's entry {member.name!r} cannot be read.")
    while block := reader.read(BLOCK):
        yield block


def verify(stream: IO[bytes]) -> dict[str, Any]:
    """Check an archive: every file's sha256 and size against its manifest, none missing, none extra.
    Returns the manifest; BackupError saying what is wrong."""
    seen: dict[str, tuple[int, str]] = {}
    manifest: dict[str, Any] | None = None
    for member, archive in _members(stream):
        if member.name == MANIFEST_NAME:
            manifest = _read_manifest(b"".join(_file_bytes(archive, member)))
            continue
        checked_member_name(member.name)
        if member.isdir():
            continue
        if not member.isfile():
            raise BackupError(f"The archive's entry {member.name!r} is not a file or a directory.")
        sha = hashlib.sha256()
        size = 0
        for block in _file_bytes(archive, member):
            sha.update(block)
            size += len(block)
        seen[member.name] = (size, sha.hexdigest())
    if manifest is None:
        raise BackupError("The archive has no manifest: it is not a tapescribe backup, or it was cut short.")
    _compare(manifest, seen)
    return manifest


def _read_manifest(data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise BackupError("The archive's manifest is damaged.") from error
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), list)
    ):
        raise BackupError(f"The archive's manifest is not a {FORMAT} manifest.")
    return manifest


def _compare(manifest: dict[str, Any], seen: dict[str, tuple[int, str]]) -> None:
    expected = {entry["path"]: (entry["size"], entry["sha256"]) for entry in manifest["files"]}
    damaged = sorted(path for path in expected.keys() & seen.keys() if expected[path] != seen[path])
    missing = sorted(expected.keys() - seen.keys())
    extra = sorted(seen.keys() - expected.keys())
    if damaged or missing or extra:
        parts = [
            f"{label}: {', '.join(paths[:5])}{' …' if len(paths) > 5 else ''}"
            for label, paths in (("damaged", damaged), ("missing", missing), ("not in the manifest", extra))
            if paths
        ]
        raise BackupError("The archive does not match its manifest (" + "; ".join(parts) + ").")


def is_empty_dir(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def restore(open_archive: Callable[[], IO[bytes]], data_dir: Path, force: bool = False) -> dict[str, Any]:
    """Write the library of a verified archive into `data_dir`: refused when it holds anything, unless
    `force` (then the archive's files replace theirs, and nothing else there is touched). The index is
    not written here: the caller rebuilds it from the restored files. Returns the manifest."""
    if not is_empty_dir(data_dir) and not force:
        raise BackupError(f"{data_dir} is not empty: restore into an empty directory, or pass --force.")
    if data_dir.exists() and not data_dir.is_dir():
        raise BackupError(f"{data_dir} is not a directory.")
    with open_archive() as stream:
        manifest = verify(stream)
    expected = {entry["path"]: entry["sha256"] for entry in manifest["files"]}
    data_dir.mkdir(parents=True, exist_ok=True)
    root = data_dir.resolve()
    with open_archive() as stream:
        for member, archive in _members(stream):
            if member.name == MANIFEST_NAME:
                continue
            target = root.joinpath(*checked_member_name(member.name).parts)
            if not target.parent.resolve().is_relative_to(root):  # a link placed in an existing dir (--force)
                raise BackupError(f"{member.name!r} would land outside {data_dir}.")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                _restore_file(archive, member, target, expected[member.name])
    return manifest


def _restore_file(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path, sha256: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".restoring")
    sha = hashlib.sha256()
    with open(partial, "wb") as out:
        for block in _file_bytes(archive, member):
            sha.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if sha.hexdigest() != sha256:
        partial.unlink()
        raise BackupError(f"{member.name!r} changed in the archive while it was restored.")
    os.chmod(partial, member.mode & 0o777 or 0o644)
    os.utime(partial, (member.mtime, member.mtime))
    os.replace(partial, target)
