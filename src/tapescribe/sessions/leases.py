"""RedisLeases: per-session job locks that hold across hosts, and that another worker takes over
when their holder dies.

A lease is the key `<prefix>:lease:<session id>` holding a random token, set with NX and an expiry
(`lease_seconds`). A heartbeat thread renews it every third of that time, only while the key still
holds its token (compare-and-extend); release deletes it only then (compare-and-delete). Every lease
is also a member of the sorted set `<prefix>:leases`, scored by its expiry on the Redis clock (so
the hosts' clocks never matter). `claim_expired` takes the members whose key has expired out of
that set in one script (the earliest to expire first), so each dead holder's session is handed to
exactly one claimer (jobs/takeover.py puts it back on the queue).

Fencing: a holder that was paused past its expiry may find its session taken over. Its heartbeat
then finds the token gone and marks the lease lost; `check()` also asks Redis itself when the last
renewal is older than half the lease time (a paused process has not heard from its heartbeat), and
`confirm()` always does, renewing the lease, before a commit. A job checks its lease before each of
its writes (jobs/transcription.py `_fenced`), and for each JSON file again after its bytes are
fsynced, right before the rename that replaces the old file (`fence`). A holder paused for longer
than a whole lease time between that last check and the rename (or a journal line's write) could
still write: leases without fencing tokens checked by the storage itself cannot exclude that, so the
lease time must be far above any expected pause.

Write locks (`write`, see sessions/locks.py) are the key `<prefix>:write:<session id>`, set with NX
and the same expiry, waited for by polling, deleted only by their holder. They are held for one
change (milliseconds) and not renewed; the expiry only frees the lock of a holder that died.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import redis

from tapescribe.sessions.locks import LeaseLost

log = logging.getLogger(__name__)

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
# A lease key expires at the very millisecond its score in the lease set says (PXAT/PEXPIREAT from the
# one `now`; a relative PX counts from a moment after TIME): the set lists leases in the order they expire.

# KEYS: lease key, lease set; ARGV: token, lease ms, session id
_ACQUIRE = (
    _NOW_MS
    + """
local expires = now + tonumber(ARGV[2])
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', expires) then
    redis.call('ZADD', KEYS[2], expires, ARGV[3])
    return 1
end
return 0
"""
)
_EXTEND = (
    _NOW_MS
    + """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    local expires = now + tonumber(ARGV[2])
    redis.call('PEXPIREAT', KEYS[1], expires)
    redis.call('ZADD', KEYS[2], expires, ARGV[3])
    return 1
end
return 0
"""
)
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[2])
    return 1
end
return 0
"""
# KEYS: write lock key; ARGV: token
_RELEASE_WRITE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS: lease set; ARGV: most members to look at, lease key prefix. A member whose key is gone has expired
# (a release removes both at once): Redis's own expiry decides, and the score only puts the members that
# expire first (the expired ones) at the front. CI once found no member due a moment after its key had
# gone, whatever the cause; whether the key is there does not depend on two clock readings agreeing.
_CLAIM_EXPIRED = """
local claimed = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
    if redis.call('EXISTS', ARGV[2] .. member) == 0 then
        redis.call('ZREM', KEYS[1], member)
        table.insert(claimed, member)
    end
end
return claimed
"""


class RedisLease:
    """One held lease, renewed by its heartbeat thread until `end()`."""

    def __init__(self, leases: RedisLeases, session_id: str, token: str) -> None:
        self.leases = leases
        self.session_id = session_id
        self.token = token
        self.confirmed_at = time.monotonic()  # when a renewal that succeeded was sent
        self._lost = threading.Event()
        self._ended = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name=f"lease-{session_id[:8]}", daemon=True)
        self._heartbeat.start()

    def check(self) -> None:
        if self._lost.is_set():
            raise LeaseLost(self.session_id)
        if time.monotonic() - self.confirmed_at > self.leases.seconds / 2:
            self.confirm()  # the heartbeat is late (this process was paused?): ask Redis now

    def confirm(self) -> None:
        if not self._renew():
            raise LeaseLost(self.session_id)

    def end(self) -> None:
        self._ended.set()
        self._heartbeat.join()
        if not self._lost.is_set():
            with contextlib.suppress(redis.RedisError):  # unreachable: the lease expires and is taken over
                self.leases.release(self.session_id, self.token)

    def _renew(self) -> bool:
        """Extend the lease if it is still ours. False when it is gone, or when that cannot be known and
        it may have expired."""
        if self._lost.is_set():
            return False
        sent = time.monotonic()
        try:
            extended = self.leases.extend(self.session_id, self.token)
        except redis.RedisError as error:
            log.warning("could not renew the lease of session %s: %s", self.session_id, error)
            if time.monotonic() - self.confirmed_at >= self.leases.seconds:
                self._lost.set()
            return False
        if not extended:
            log.warning("session %s: lease lost; another worker takes its job over", self.session_id)
            self._lost.set()
            return False
        self.confirmed_at = sent
        return True

    def _beat(self) -> None:
        while not self._ended.wait(self.leases.seconds / 3):
            self._renew()
            if self._lost.is_set():
                return


class RedisLeases:
    """Session leases in Redis (see the module's docstring)."""

    def __init__(self, client: redis.Redis, seconds: float, owner: str, prefix: str = "tapescribe") -> None:
        self.client = client
        self.seconds = seconds
        self.owner = owner  # host:pid, kept in the token so an operator (or a test) sees who holds what
        self.set_key = f"{prefix}:leases"
        self.key_prefix = f"{prefix}:lease:"
        self.write_prefix = f"{prefix}:write:"
        self._acquire = client.register_script(_ACQUIRE)
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)
        self._claim = client.register_script(_CLAIM_EXPIRED)
        self._release_write = client.register_script(_RELEASE_WRITE)

    @property
    def milliseconds(self) -> int:
        return max(1, int(self.seconds * 1000))

    @contextlib.contextmanager
    def hold(self, session_id: str) -> Iterator[RedisLease | None]:
        token = f"{self.owner}:{secrets.token_hex(8)}"
        keys = [self.key_prefix + session_id, self.set_key]
        if not self._acquire(keys=keys, args=[token, self.milliseconds, session_id]):
            yield None
            return
        lease = RedisLease(self, session_id, token)
        try:
            yield lease
        finally:
            lease.end()

    @contextlib.contextmanager
    def write(self, session_id: str) -> Iterator[None]:
        key = self.write_prefix + session_id
        token = f"{self.owner}:{secrets.token_hex(8)}"
        wait = 0.002
        while not self.client.set(key, token, nx=True, px=self.milliseconds):
            time.sleep(wait)
            wait = min(wait * 2, 0.05)
        try:
            yield
        finally:
            with contextlib.suppress(redis.RedisError):  # unreachable: the key expires
                self._release_write(keys=[key], args=[token])

    def extend(self, session_id: str, token: str) -> bool:
        keys = [self.key_prefix + session_id, self.set_key]
        return bool(self._extend(keys=keys, args=[token, self.milliseconds, session_id]))

    def release(self, session_id: str, token: str) -> bool:
        return bool(self._release(keys=[self.key_prefix + session_id, self.set_key], args=[token, session_id]))

    def holders(self) -> dict[str, str]:
        """Session id -> token of every lease held now (for operators and tests)."""
        found = {}
        members: Any = self.client.zrange(self.set_key, 0, -1)
        for member in members:
            session_id = member.decode()
            token: Any = self.client.get(self.key_prefix + session_id)
            if token is not None:
                found[session_id] = token.decode()
        return found

    def holder(self, session_id: str) -> str | None:
        """The host:pid whose lease holds the session now (None: none does)."""
        token: Any = self.client.get(self.key_prefix + session_id)
        return token.decode().rsplit(":", 1)[0] if token is not None else None

    def claim_expired(self, limit: int = 100) -> list[str]:
        return [member.decode() for member in self._claim(keys=[self.set_key], args=[limit, self.key_prefix])]
