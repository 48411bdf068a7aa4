"""Wrong keys per client address: a few are free, then each one costs a wait that doubles, up to a cap.

A key guessed at network speed falls in hours; this makes guessing slow without locking the owner out
for long. Per client address (IPv6 by its /64, which one host is usually given whole):

- the first `free_failures` different wrong keys cost nothing (typos);
- each further one makes the address wait 1 s, then 2, 4, ... up to `max_wait` seconds before a key
  from it is looked at again; a key sent during the wait is refused unread (429 with Retry-After),
  even the right one, so the refusal says nothing about the key and parallel guesses gain nothing;
- the right key clears the address's record, and a record is forgotten `forget_after` seconds after
  its last wrong key.

The same wrong key sent again (a script with an old key, a browser retrying) is not a new guess and
costs nothing more. Only keys count: the login form and `Authorization: Bearer`, not the login
cookie (an HMAC no one can guess, and a stale one must not lock its browser out of signing in).
The state is this process's own, held by one object that create_app makes; at most `max_addresses`
addresses are remembered, the longest quiet forgotten first.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

REMEMBERED_KEYS = 8  # wrong keys per address remembered, so that a repeat is not a new guess


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    wait_until: float = 0.0
    recent: list[bytes] = field(default_factory=list)


def address_key(client: tuple[str, int] | None) -> str:
    """The client's address as a throttle key: IPv4 as it is, IPv6 by its /64 network."""
    if not client:
        return "unknown"
    host = client[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class KeyThrottle:
    """Failed key attempts per client address (see the module docstring)."""

    def __init__(
        self,
        free_failures: int,
        max_wait: float,
        forget_after: float,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.max_wait = max_wait
        self.forget_after = forget_after
        self.max_addresses = max_addresses
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()  # least recently failed first
        self._lock = threading.Lock()

    def wait_left(self, address: str) -> float:
        """Seconds before a key from this address is looked at again; 0 when it may try now."""
        with self._lock:
            record = self._current(address)
            return max(0.0, record.wait_until - self.clock()) if record else 0.0

    def failed(self, address: str, key: str) -> float:
        """Count a wrong key from this address; returns the wait it now has (0 while still free)."""
        digest = hashlib.sha256(key.encode("utf-8", "replace")).digest()[:16]
        with self._lock:
            now = self.clock()
            record = self._current(address) or _Record()
            self._records[address] = record
            self._records.move_to_end(address)
            record.last_failure = now
            if digest not in record.recent:
                record.recent = [*record.recent[-(REMEMBERED_KEYS - 1) :], digest]
                record.failures += 1
                extra = record.failures - self.free_failures
                if extra > 0:
                    record.wait_until = now + min(2.0 ** min(extra - 1, 30), self.max_wait)
            self._prune(now)
            return max(0.0, record.wait_until - now)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._records.pop(address, None)

    def _current(self, address: str) -> _Record | None:
        record = self._records.get(address)
        if record is not None and self.clock() - record.last_failure >= self.forget_after:
            del self._records[address]
            return None
        return record

    def _prune(self, now: float) -> None:
        """Forget quiet addresses (the oldest are first), and the oldest beyond max_addresses."""
        while self._records:
            address, oldest = next(iter(self._records.items()))
            if len(self._records) <= self.max_addresses and now - oldest.last_failure < self.forget_after:
                break
            del self._records[address]
