"""KeyThrottle's arithmetic on a clock the test moves: the waits, what clears them, what is a new guess."""

from __future__ import annotations

from tapescribe.api.throttle import KeyThrottle, address_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_free_failures_then_doubling_waits_up_to_the_cap():
    clock = Clock()
    throttle = KeyThrottle(free_failures=3, max_wait=10, forget_after=900, clock=clock)
    waits = []
    for guess in range(8):
        assert throttle.wait_left("198.51.100.7") == 0
        waits.append(throttle.failed("198.51.100.7", f"guess {guess}"))
        clock.now += waits[-1]  # the attacker waits exactly as long as it is told
    assert waits == [0, 0, 0, 1, 2, 4, 8, 10]
    assert throttle.wait_left("203.0.113.9") == 0  # another address is not affected


def test_the_right_key_or_quiet_clears_an_address():
    clock = Clock()
    throttle = KeyThrottle(free_failures=1, max_wait=60, forget_after=900, clock=clock)
    for guess in range(4):
        clock.now += throttle.failed("a", f"guess {guess}")
    throttle.succeeded("a")
    assert throttle.failed("a", "typo") == 0
    assert throttle.failed("a", "typo 2") == 1
    clock.now += 900
    assert throttle.wait_left("a") == 0 and throttle.failed("a", "typo 3") == 0


def test_a_repeated_wrong_key_is_not_a_new_guess():
    throttle = KeyThrottle(free_failures=2, max_wait=60, forget_after=900, clock=Clock())
    for _ in range(50):
        assert throttle.failed("a", "last year's key") == 0
    assert throttle.failed("a", "another") == 0
    assert throttle.failed("a", "a third") == 1


def test_the_table_of_addresses_is_bounded():
    throttle = KeyThrottle(free_failures=0, max_wait=60, forget_after=900, max_addresses=100, clock=Clock())
    for number in range(1000):
        throttle.failed(f"10.0.{number // 256}.{number % 256}", "guess")
    assert len(throttle._records) == 100
    assert throttle.wait_left("10.0.3.231") > 0 and throttle.wait_left("10.0.0.0") == 0


def test_addresses_are_keyed_by_host_and_ipv6_by_its_64():
    assert address_key(("192.0.2.1", 5000)) == "192.0.2.1"
    assert address_key(("2001:db8:1:2:aaaa::1", 1)) == address_key(("2001:db8:1:2:bbbb::2", 2)) == "2001:db8:1:2::/64"
    assert address_key(("::ffff:192.0.2.1", 1)) == "192.0.2.1"
    assert address_key(None) == "unknown"
