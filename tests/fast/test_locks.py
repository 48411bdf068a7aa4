"""The per-session flock (FileLocks, the lock of the SQLite queue): a lock whose process is gone never
blocks a job (the kernel drops it), and a lock that is held says which process holds it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from tapescribe.sessions.index_sqlite import SqliteSessionIndex
from tapescribe.sessions.locks import FileLocks
from tapescribe.sessions.service import QUEUED, SessionService, status_record
from tapescribe.sessions.space import DiskSpace
from tapescribe.sessions.store import SessionStore

# Holds the session's lock (as a job does) and says so; with "fork", a child it forked shares the lock.
HOLDER = """
import os, sys, time
from tapescribe.sessions.store import SessionStore
from pathlib import Path
store = SessionStore(Path(sys.argv[1]), Path(sys.argv[2]))
with store.job_lock(sys.argv[3]) as held:
    assert held
    child = os.fork() if sys.argv[4] == "fork" else None
    if child == 0:
        time.sleep(120)
        os._exit(0)
    print("held", child or "", flush=True)
    time.sleep(120)
"""


def holding(store: SessionStore, session_id: str, mode: str) -> tuple[subprocess.Popen, int | None]:
    dirs = [str(store.sessions_dir), str(store.incoming_dir)]
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *dirs, session_id, mode], stdout=subprocess.PIPE, text=True
    )
    words = (process.stdout.readline() if process.stdout else "").split()
    assert words[0] == "held", words
    return process, int(words[1]) if len(words) > 1 else None


def test_a_dead_holders_lock_never_blocks_and_a_live_holder_is_named(tmp_path):
    store = SessionStore(tmp_path / "sessions", tmp_path / "incoming")
    sessions = SessionService(store, SqliteSessionIndex(tmp_path / "index.sqlite3"), DiskSpace(tmp_path, 0))
    session_id = sessions.create(source="upload", title="held", status=status_record(QUEUED))
    locks = FileLocks(store)

    process, _ = holding(store, session_id, "alone")
    with locks.hold(session_id) as lease:
        assert lease is None  # a live process holds it
    assert locks.holder(session_id).startswith(f"pid {process.pid} on {socket.gethostname()} since ")
    process.kill()  # SIGKILL: nothing of the process runs, the kernel drops its flock
    process.wait()
    with locks.hold(session_id) as lease:
        assert lease is not None
        assert locks.holder(session_id).startswith(f"pid {os.getpid()} on ")

    # A process that forked while holding it: the child holds it on, and the note says so.
    process, child = holding(store, session_id, "fork")
    process.kill()
    process.wait()
    assert child is not None
    try:
        with locks.hold(session_id) as lease:
            assert lease is None
        assert locks.holder(session_id).endswith("(that process is gone: one it started holds the lock)")
    finally:
        os.kill(child, signal.SIGKILL)
    for _ in range(200):  # the child is reaped by init, not by us: wait for its lock to go
        with locks.hold(session_id) as lease:
            if lease is not None:
                break
        time.sleep(0.05)
    else:
        raise AssertionError("the lock outlived every process that held it")
