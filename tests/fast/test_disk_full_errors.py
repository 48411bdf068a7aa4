"""`is_disk_full`, the one test for "the disk is full" that uploads, jobs, the index and the queue
share: a real SQLite "database or disk is full" (a database capped at its size), OSErrors by errno,
and the same errors wrapped by a library. Anything else is not a full disk."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from tapescribe.errors import InsufficientStorage, is_disk_full


def sqlite_full_error(tmp_path) -> sqlite3.OperationalError:
    connection = sqlite3.connect(tmp_path / "capped.sqlite3")
    connection.execute("CREATE TABLE t (blob BLOB)")
    page_count = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count={page_count}")
    try:
        with pytest.raises(sqlite3.OperationalError) as raised:
            connection.execute("INSERT INTO t VALUES (zeroblob(1000000))")
    finally:
        connection.close()
    return raised.value


def test_sqlite_full_is_a_full_disk(tmp_path):
    error = sqlite_full_error(tmp_path)
    assert "full" in str(error)
    assert is_disk_full(error)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_no_space_and_quota_are_a_full_disk(code):
    assert is_disk_full(OSError(code, "no room"))
    assert is_disk_full(InsufficientStorage("full"))


def test_a_wrapped_full_disk_is_recognised():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("the library's own error") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EACCES, "Permission denied"),
        FileNotFoundError(errno.ENOENT, "gone"),
        sqlite3.OperationalError("database is locked"),
        ValueError("no"),
        None,
    ],
)
def test_other_errors_are_not_a_full_disk(error):
    assert not is_disk_full(error)
