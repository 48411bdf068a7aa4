"""Redis session leases against a real redis-server: one holder at a time, a stale holder can neither
renew nor release the new holder's lease, and a dead holder's lease is claimed by exactly one process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import redis

from tapescribe.sessions.leases import RedisLeases
from tapescribe.sessions.locks import LeaseLost

SESSION = "0123456789abcdef0123456789abcdef"


def database_2(redis_url: str) -> str:
    """The URL of Redis database 2, which no other test file uses (from_url's `db=` loses to the URL's own
    /0: this file once shared database 0 with test_queue_backends' server, whose takeover claims dead
    leases). The tests of this file must also run on one worker (`make test`'s --dist loadfile): each
    flushes the database, and spread over two workers one flushed the dead-holder test's lease away."""
    return redis_url.rsplit("/", 1)[0] + "/2"


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(database_2(redis_url))
    connection.flushdb()
    yield connection
    connection.flushdb()


def leases(client: redis.Redis, owner: str, seconds: float = 5.0) -> RedisLeases:
    return RedisLeases(client, seconds, owner)


def test_one_holder_at_a_time(client):
    first, second = leases(client, "host-a:1"), leases(client, "host-b:2")
    with first.hold(SESSION) as held:
        assert held is not None
        with second.hold(SESSION) as refused:
            assert refused is None
        assert first.holders()[SESSION].startswith("host-a:1:")
        assert second.holder(SESSION) == "host-a:1"  # named in the log of the one refused
    with second.hold(SESSION) as held:  # released on leaving the block
        assert held is not None
    assert first.holders() == {} and client.zcard(first.set_key) == 0


def test_a_holder_whose_lease_was_taken_over_stops_and_leaves_the_new_lease_alone(client):
    stale, new = leases(client, "host-a:1"), leases(client, "host-b:2")
    with stale.hold(SESSION) as old:
        client.delete(stale.key_prefix + SESSION)  # what expiry does while its holder is paused
        with new.hold(SESSION) as current:
            assert current is not None
            with pytest.raises(LeaseLost):
                old.confirm()
            with pytest.raises(LeaseLost):
                old.check()  # known lost now, without asking Redis again
            assert not stale.release(SESSION, old.token)  # compare-and-delete: not its token
    assert stale.holders() == {}  # the new holder released its own; the stale one deleted nothing


def test_a_lease_key_expires_when_its_place_in_the_lease_set_says(client):
    """Both come from one reading of the Redis clock, so the set lists leases in the order their keys
    expire, and a claimer looking at its first members finds the expired ones."""
    holder = leases(client, "host-a:1")
    with holder.hold(SESSION) as held:
        assert held is not None
        assert client.pexpiretime(holder.key_prefix + SESSION) == client.zscore(holder.set_key, SESSION)
        held.confirm()  # a renewal moves both
        assert client.pexpiretime(holder.key_prefix + SESSION) == client.zscore(holder.set_key, SESSION)


def test_whether_a_lease_expired_is_its_keys_not_the_clocks(client):
    """Redis's expiry of the key decides: a lease whose key is gone is claimed even where a clock reading
    would not call it due yet, and a held one never is, wherever its score lies."""
    other = "fedcba9876543210fedcba9876543210"
    holder = leases(client, "host-a:1")
    with holder.hold(SESSION) as held, holder.hold(other) as gone:
        assert held is not None and gone is not None
        client.zadd(holder.set_key, {SESSION: 0})  # the held one listed first, as if long due
        client.delete(holder.key_prefix + other)  # the other expired, its score still ahead
        assert leases(client, "claimer:1").claim_expired() == [other]
        assert holder.holders() == {SESSION: held.token}


def test_a_dead_holders_lease_is_claimed_by_exactly_one_claimer(client, redis_url):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, redis\n"
            "from tapescribe.sessions.leases import RedisLeases\n"
            f"leases = RedisLeases(redis.Redis.from_url({database_2(redis_url)!r}), 1.0, 'dead:1')\n"
            f"with leases.hold({SESSION!r}) as lease:\n"
            "    print('held' if lease is not None else 'refused', flush=True)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        claimers = [leases(client, f"claimer:{number}") for number in range(4)]
        assert claimers[0].claim_expired() == []  # renewed by its heartbeat: not claimable
    finally:
        holder.kill()
        holder.wait()
    while client.exists(claimers[0].key_prefix + SESSION):  # its last renewal runs out
        time.sleep(0.05)
    place, now = client.zscore(claimers[0].set_key, SESSION), client.time()
    claimed: list[str] = []
    threads = [threading.Thread(target=lambda c=c: claimed.extend(c.claim_expired())) for c in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # (what Redis held just before the claims, should this fail again as it once did on CI)
    assert claimed == [SESSION], (
        f"its place {place}, Redis time {now}, the set now {client.zrange(claimers[0].set_key, 0, -1, withscores=True)}"
    )
    assert claimers[0].claim_expired() == []


def counted_under(lock, counter, writers: int = 12) -> int:
    """`writers` threads, released at once, each read-increment-write a counter file under `lock()`."""
    start = threading.Barrier(writers)

    def increment() -> None:
        start.wait()
        with lock():
            value = int(counter.read_text())
            time.sleep(0.01)  # wide enough for every other writer to read the same value without the lock
            counter.write_text(str(value + 1))

    threads = [threading.Thread(target=increment) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return int(counter.read_text())


def test_redis_write_locks_queue_writers_of_one_session_across_holders(client, tmp_path):
    """Write locks are waited for, not refused: every read-modify-write of one session happens alone,
    whichever process (here: a RedisLeases per thread, as on different hosts) makes it."""
    counter = tmp_path / "counter"
    counter.write_text("0")
    assert counted_under(lambda: leases(client, "host-x:1").write(SESSION), counter) == 12
    assert client.keys("tapescribe:write:*") == []  # each released its own
    with leases(client, "host-a:1").hold(SESSION) as held:  # a job's lease is another lock: both may be held
        assert held is not None
        with leases(client, "host-b:2").write(SESSION):
            pass


def test_a_dead_writers_redis_write_lock_expires(client):
    writer = leases(client, "host-a:1", seconds=0.3)
    client.set(writer.write_prefix + SESSION, "host-dead:9:token", px=300)  # its holder died holding it
    began = time.monotonic()
    with writer.write(SESSION):
        assert client.get(writer.write_prefix + SESSION).decode().startswith("host-a:1:")
    assert time.monotonic() - began < 10


def test_file_write_locks_queue_writers_of_one_session_across_threads(tmp_path):
    from tapescribe.sessions.locks import FileLocks
    from tapescribe.sessions.store import SessionStore

    store = SessionStore(tmp_path / "sessions", tmp_path / "incoming")
    session_id, _ = store.new_incoming()
    store.publish(session_id, {"id": session_id}, {"status": "done"})
    counter = tmp_path / "counter"
    counter.write_text("0")
    assert counted_under(lambda: FileLocks(store).write(session_id), counter) == 12
