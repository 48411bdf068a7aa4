"""DecodeScheduler's order: shortest audio first, then arrival; a long job lends its slot and goes on after."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager

import pytest

from tapescribe.errors import ServerBusy, ServerStopping
from tapescribe.jobs.scheduler import DecodeScheduler


def wait_until(condition) -> None:
    for _ in range(500):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition never held")


def test_waiting_jobs_run_shortest_first_and_a_long_job_gives_way_between_segments():
    scheduler = DecodeScheduler(slots=1, max_waiting=10)
    order: list[str] = []
    holding = threading.Event()
    segments_left = threading.Event()

    def long_job() -> None:
        with scheduler.slot(600.0) as slot:
            order.append("long starts")
            holding.set()
            segments_left.wait()
            slot.give_way()  # the two short ones wait: they run now
            order.append("long goes on")

    def short_job(name: str, seconds: float) -> None:
        with scheduler.slot(seconds):
            order.append(name)

    threads = [threading.Thread(target=long_job)]
    threads[0].start()
    holding.wait()
    for name, seconds in (("5 s clip", 5.0), ("3 s clip", 3.0), ("unknown length", None)):
        threads.append(threading.Thread(target=short_job, args=(name, seconds)))
        threads[-1].start()
    wait_until(lambda: scheduler.state().waiting == 3)
    segments_left.set()
    for thread in threads:
        thread.join(10)
    # the unknown length counts as longest: after the long job that arrived before it
    assert order == ["long starts", "3 s clip", "5 s clip", "long goes on", "unknown length"]
    state = scheduler.state()
    assert (state.running, state.waiting, state.paused, state.peak_running, state.preemptions) == (0, 0, 0, 1, 1)


def test_a_job_keeps_its_slot_when_nothing_shorter_waits():
    scheduler = DecodeScheduler(slots=1, max_waiting=10)
    with scheduler.slot(5.0) as slot:
        slot.give_way()
    assert scheduler.state().preemptions == 0


def test_beyond_the_wait_bound_only_requests_that_may_be_refused_are():
    scheduler = DecodeScheduler(slots=1, max_waiting=0)
    with scheduler.slot(600.0):
        with pytest.raises(ServerBusy) as refused:
            scheduler.check_room()
        assert refused.value.details["retry_after_seconds"] >= 1
        with pytest.raises(ServerBusy), scheduler.slot(5.0, refuse_when_busy=True):
            pass
    with scheduler.slot(5.0, refuse_when_busy=True):  # a free slot: never refused
        pass


def test_with_two_slots_one_is_kept_for_short_audio():
    """Long files take one slot; a short clip starts beside them at once instead of waiting."""
    scheduler = DecodeScheduler(slots=2, max_waiting=10)
    started = threading.Event()
    with scheduler.slot(600.0) as first_long:

        def waits_for_long_slot() -> None:
            with scheduler.slot(300.0):
                started.set()

        second_long = threading.Thread(target=waits_for_long_slot)
        second_long.start()
        wait_until(lambda: scheduler.state().waiting == 1)
        with scheduler.slot(5.0):  # not blocked: the slot kept for short audio
            assert scheduler.state().running == 2
        assert not started.is_set()
        first_long.give_way()  # the waiting 300 s job is shorter: it takes this slot now
        assert started.is_set()
    second_long.join(10)
    assert scheduler.state().peak_running == 2


def order_beside_a_long_job(scheduler: DecodeScheduler, other: Callable[[], ContextManager], inside=None) -> list[str]:
    """Hold a 600 s job's slot while `other()` (a short clip's slot, or a live step) starts in a thread and
    waits for the long job to step aside; `inside` runs while both are in. The order things finished in."""
    order: list[str] = []
    other_started = threading.Event()

    def other_job() -> None:
        with other():
            other_started.set()
            wait_until(lambda: scheduler.state().paused == 1)  # the long job stepped aside
            order.append("other done")

    with scheduler.slot(600.0) as long_slot:
        thread = threading.Thread(target=other_job)
        thread.start()
        assert other_started.wait(10)
        if inside is not None:
            inside()
        long_slot.give_way()
        order.append("long goes on")
    thread.join(10)
    return order


def test_a_long_job_steps_aside_while_a_short_one_uses_the_kept_slot():
    """Two decodes share the cores: the long one pauses at its next segment until the short one is done."""
    scheduler = DecodeScheduler(slots=2, max_waiting=10)
    assert order_beside_a_long_job(scheduler, lambda: scheduler.slot(5.0)) == ["other done", "long goes on"]
    with scheduler.slot(10.0), scheduler.slot(20.0) as longer_clip:
        sharing = threading.Thread(target=longer_clip.give_way)  # short clips share the cores with each other
        sharing.start()
        sharing.join(10)
        assert not sharing.is_alive()
    assert scheduler.state().preemptions == 1


def test_a_long_job_pauses_while_a_live_step_runs_and_a_live_step_never_waits():
    """Live captions come first: a live step starts with every slot taken, and the long job that holds
    one steps aside at its next segment until no live step runs; a short clip goes on beside it."""
    scheduler = DecodeScheduler(slots=1, max_waiting=10)

    def live_step_runs_with_the_only_slot_held() -> None:
        assert scheduler.state().live_steps == 1

    order = order_beside_a_long_job(scheduler, scheduler.live_step, inside=live_step_runs_with_the_only_slot_held)
    assert order == ["other done", "long goes on"]
    assert scheduler.state().preemptions == 1

    with scheduler.live_step(), scheduler.slot(20.0) as clip:
        clip.give_way()  # a short clip does not step aside
    assert scheduler.state().preemptions == 1


def test_a_long_job_waits_to_start_while_a_live_step_runs():
    scheduler = DecodeScheduler(slots=2, max_waiting=10)
    started = threading.Event()

    def long_job() -> None:
        with scheduler.slot(600.0):
            started.set()

    with scheduler.live_step():
        waiting = threading.Thread(target=long_job)
        waiting.start()
        wait_until(lambda: scheduler.state().waiting == 1)
        assert not started.is_set()
    waiting.join(10)
    assert started.is_set() and scheduler.state().live_steps == 0


def clips_that_may_batch(scheduler: DecodeScheduler, count: int, release: threading.Event, batched: list[bool]):
    """`count` clips (5 s, 6 s, ...) that may batch, started now, each holding its slot until `release`
    and noting in `batched` whether it ran in the clip batch."""

    def clip(seconds: float) -> None:
        with scheduler.slot(seconds, batchable=True) as slot:
            batched.append(slot.batched)
            release.wait(10)

    clips = [threading.Thread(target=clip, args=(5.0 + number,)) for number in range(count)]
    for thread in clips:
        thread.start()
    return clips


def test_short_clips_that_may_batch_join_one_batch_which_holds_one_slot():
    """Clips beyond the slots join the clip batch up to its size, and one waits for a member to leave;
    the batch counts as one slot, so a long job beside it steps aside as beside one clip."""
    scheduler = DecodeScheduler(slots=2, max_waiting=10, clip_batch=3)
    release = threading.Event()
    batched: list[bool] = []
    with scheduler.slot(600.0) as long_slot:
        clips = clips_that_may_batch(scheduler, 4, release, batched)
        wait_until(lambda: scheduler.state().waiting == 1)
        state = scheduler.state()
        assert (state.running, state.batched) == (4, 3)  # the long job and a batch of three clips
        pausing = threading.Thread(target=long_slot.give_way)
        pausing.start()
        wait_until(lambda: scheduler.state().paused == 1)  # beside short audio the long job steps aside
        release.set()
        for thread in [*clips, pausing]:
            thread.join(10)
    assert batched == [True] * 4  # the fourth clip joined once one left
    state = scheduler.state()
    assert (state.running, state.peak_running, state.preemptions) == (0, 4, 1)


def test_with_a_clip_batch_of_one_clips_take_slots_as_before():
    scheduler = DecodeScheduler(slots=1, max_waiting=10, clip_batch=1)
    batched: list[bool] = []

    def second_clip() -> None:
        with scheduler.slot(6.0, batchable=True) as slot:
            batched.append(slot.batched)

    with scheduler.slot(5.0, batchable=True) as slot:
        assert not slot.batched
        waiting = threading.Thread(target=second_clip)
        waiting.start()
        wait_until(lambda: scheduler.state().waiting == 1)  # no batch to join: it waits for the slot
        assert scheduler.state().running == 1
    waiting.join(10)
    assert batched == [False] and scheduler.state().peak_running == 1


def test_clips_waiting_for_a_full_batch_count_against_the_wait_bound():
    """A full batch holds one of two slots: a clip cannot use the other (there is one batch), so it waits,
    and beyond the bound a request that may be refused is."""
    scheduler = DecodeScheduler(slots=2, max_waiting=1, clip_batch=2)
    release = threading.Event()

    def clip() -> None:
        with scheduler.slot(5.0, batchable=True):
            release.wait(10)

    clips = [threading.Thread(target=clip) for _ in range(3)]
    for thread in clips:
        thread.start()
    wait_until(lambda: scheduler.state().waiting == 1)
    assert (scheduler.state().running, scheduler.state().batched) == (2, 2)
    with pytest.raises(ServerBusy):
        scheduler.check_room()
    release.set()
    for thread in clips:
        thread.join(10)
    scheduler.check_room()  # room again


def test_a_long_request_is_not_let_in_on_room_only_the_clip_batch_has():
    """With one slot held by a clip batch that has room, a long request that may be refused cannot start
    and, beyond the wait bound, is refused: the batch's room is for clips only."""
    scheduler = DecodeScheduler(slots=1, max_waiting=1, clip_batch=4)
    release = threading.Event()
    refused: list[float] = []

    def request(seconds: float, **kwargs) -> None:
        try:
            with scheduler.slot(seconds, **kwargs):
                release.wait(10)
        except ServerBusy:
            refused.append(seconds)

    clip = threading.Thread(target=request, args=(5.0,), kwargs={"batchable": True})
    clip.start()
    wait_until(lambda: scheduler.state().batched == 1)
    first_long = threading.Thread(target=request, args=(600.0,), kwargs={"refuse_when_busy": True})
    first_long.start()
    wait_until(lambda: scheduler.state().waiting == 1)  # within the bound: it waits
    second_long = threading.Thread(target=request, args=(600.0,), kwargs={"refuse_when_busy": True})
    second_long.start()
    second_long.join(10)
    assert refused == [600.0] and scheduler.state().waiting == 1
    another_clip = threading.Thread(target=request, args=(6.0,), kwargs={"batchable": True, "refuse_when_busy": True})
    another_clip.start()
    wait_until(lambda: scheduler.state().batched == 2)  # a clip still joins the batch
    release.set()
    for thread in (clip, first_long, another_clip):
        thread.join(10)
    assert refused == [600.0] and scheduler.state().running == 0


def test_long_jobs_do_not_pause_for_a_clip_that_waits_for_the_full_batch():
    """A clip waiting for a full clip batch cannot use a slot a long job would lend it (there is one
    batch): the long job goes on, and a long job that arrives starts in a free slot ahead of that clip."""
    scheduler = DecodeScheduler(slots=4, max_waiting=10, clip_batch=2)
    release_clips = threading.Event()
    clip_ran: list[bool] = []
    with scheduler.slot(600.0) as long_slot:
        clips = clips_that_may_batch(scheduler, 3, release_clips, clip_ran)
        wait_until(lambda: scheduler.state().waiting == 1)  # the third clip waits for the full batch
        assert (scheduler.state().running, scheduler.state().batched) == (3, 2)
        giving_way = threading.Thread(target=long_slot.give_way)
        giving_way.start()
        giving_way.join(2)
        assert not giving_way.is_alive()  # it went on: pausing would only leave its slot idle
        assert scheduler.state().paused == 0 and scheduler.state().preemptions == 0
        started = threading.Event()

        def second_long_job() -> None:
            with scheduler.slot(900.0):
                started.set()

        second = threading.Thread(target=second_long_job)
        second.start()
        second.join(2)
        assert started.is_set()  # a free long slot went to it, not kept for the clip that cannot use it
        release_clips.set()
        for thread in [*clips, giving_way, second]:
            thread.join(10)
    assert clip_ran == [True] * 3 and scheduler.state().running == 0


def test_a_stop_ends_every_wait_for_a_slot_and_every_pause_and_starts_nothing():
    """At a stop (SIGINT, SIGTERM) a job paused for a live step and a request waiting for a slot both get
    ServerStopping at once, instead of waiting for what they wait for; nothing starts afterwards."""
    scheduler = DecodeScheduler(slots=1, max_waiting=10)
    raised: dict[str, BaseException] = {}
    holding, live = threading.Event(), threading.Event()

    def long_job() -> None:
        try:
            with scheduler.slot(600.0) as slot:
                holding.set()
                live.wait(5)
                slot.give_way()  # a live step runs: the job pauses here
        except ServerStopping as error:
            raised["paused"] = error

    def waiting_request() -> None:
        try:
            with scheduler.slot(5.0):
                pass
        except ServerStopping as error:
            raised["waiting"] = error

    threads = [threading.Thread(target=long_job)]
    threads[0].start()
    holding.wait(5)
    with scheduler.live_step():  # held past the stop: without the stop nothing would wake them
        live.set()
        wait_until(lambda: scheduler.state().paused == 1)
        with scheduler.slot(3.0):  # a short request takes the slot the long job lent
            threads.append(threading.Thread(target=waiting_request))
            threads[-1].start()
            wait_until(lambda: scheduler.state().waiting == 1)
            scheduler.stop()
            for thread in threads:
                thread.join(5)
                assert not thread.is_alive()
    assert set(raised) == {"paused", "waiting"}
    assert scheduler.state().running == 0
    with pytest.raises(ServerStopping), scheduler.slot(1.0):
        pass
