"""Durable file writes: every JSON file is written beside its target, fsynced, then renamed over it."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, before_replace: Callable[[], None] | None = None) -> Iterator[BinaryIO]:
    """Write `path` whole or not at all: the bytes go to a temporary file beside it, which is fsynced
    and renamed over it. Readers see the old file or the new one, never a mix. The temporary name is
    unique to this write, so two writers at once (a cancel and a progress update) cannot interleave.
    `before_replace` runs after the fsync, right before the rename: what it raises leaves `path` as it
    was (a job checks its lease there, so a worker paused mid-write cannot finish it over the files of
    the worker that took its job over)."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(partial, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(partial, path)
    except BaseException:  # a full disk, say: leave no half-written temporary behind
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    fsync_dir(path.parent)


WRITE_PART_CHARS = 64 * 1024  # a JSON file is encoded and written in parts of about this many characters


def write_json_atomic(path: Path, data: Any, before_replace: Callable[[], None] | None = None) -> None:
    """`data` as JSON (indented by 1, UTF-8: json.dumps's bytes), encoded and written a part at a time.

    json.dumps with an indent gathers every piece of the text in one list before joining it, then the
    bytes: a job saves its growing transcript every second, and at three hours with word times (4.4
    MiB of JSON) that held 35 MiB at once; written in parts, about a part's worth (issue 28)."""
    encoder = json.JSONEncoder(ensure_ascii=False, indent=1)
    with atomic_file(path, before_replace) as handle:
        part: list[str] = []
        size = 0
        for piece in encoder.iterencode(data):
            part.append(piece)
            size += len(piece)
            if size >= WRITE_PART_CHARS:
                handle.write("".join(part).encode("utf-8"))
                part, size = [], 0
        handle.write("".join(part).encode("utf-8"))


def read_json(path: Path, default: Any = None) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def append_json_line(path: Path, record: Any) -> None:
    """Append one record and fsync, so a crash loses at most the line being written. A failed append
    (a full disk) is cut off again, so the record written once space is back does not follow a torn line."""
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def read_json_lines(path: Path) -> list[Any]:
    """Read complete records; a torn last line (crash mid-append) is ignored."""
    records = []
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                try:
                    records.append(json.loads(raw))
                except json.JSONDecodeError:
                    break
    except FileNotFoundError:
        pass
    return records


def tree_size(path: Path) -> int:
    """Bytes under `path`. Files that vanish while it counts (a `.partial` renamed into place) are skipped."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
            elif entry.is_dir(follow_symlinks=False):
                total += tree_size(Path(entry.path))
        except FileNotFoundError:
            continue
    return total
