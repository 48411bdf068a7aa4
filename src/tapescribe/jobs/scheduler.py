"""DecodeScheduler: the one limit on model work in a process (queued uploads, `/transcribe`, `/v1`, retranscribe).

A decode takes a slot; at most `slots` run at once, because decodes beyond what the loaded models'
decoders can run (settings.decode_slots) only share the same cores and each runs slower. With two
slots or more, one is kept for short audio (<= SHORT_AUDIO_SECONDS): a clip sent
while long files transcribe starts at once, and a long job beside it steps aside at its next segment
until it is done. A request over the limit waits for a slot
in order: shortest audio first, then arrival. A job holding a slot gives it up between segments when
a shorter job waits (`Slot.give_way`) and carries on where it was when its turn comes again: its
window and decoder state stay in memory, nothing is decoded twice. So a short clip waits at most for
the segment in progress, never for a whole long file. Waiting is bounded: beyond `max_waiting`
requests waiting to start, callers that can be answered "later" (`refuse_when_busy`) get ServerBusy;
queue workers always wait (the queue itself holds the rest).

Live captions (`/ws/live`, `/transcribe-live`) come first. `live_step` never waits for a slot (live
work is bounded by the connections a server accepts); while one is held, long jobs (> SHORT_AUDIO_SECONDS)
pause at their next segment and none starts, as they step aside for a clip in the kept slot, and they
go on where they were once none is held. A /ws/live stream holds it from a step that hears an
utterance going on until the step that settles it (live/stream.py), so no window of a long job starts
between two steps of one utterance (docs/performance.md has the latency this keeps). Short
clips go on beside live steps: each is done within a window. Only this process's jobs step aside: a
`tapescribe worker` process has its own scheduler.

Short clips batch (`clip_batch` above 1): a clip that may be batched (`slot(..., batchable=True)`)
and finds a clip batch running joins it instead of waiting for a slot, up to `clip_batch` members;
the batch holds one slot between them all, and its members' model calls run as one CTranslate2
batch (engine/clip_batches.py). Members never give way: the clips beside them are as short. A clip
waiting for a full batch can only join it, so a free slot goes to the next request in line after it
and no long job steps aside for it; and a request that may be refused is judged by the wait bound on
its own prospects once it has a ticket (a long one, or one of unknown length, never counts the
batch's room or the slot kept for short audio as its own).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from tapescribe.errors import ServerBusy, ServerStopping
from tapescribe.jobs.stopping import STOPPING_MESSAGE

RETRY_AFTER_SECONDS = 5  # what a refused client is told: about one short clip's turn under load
SHORT_AUDIO_SECONDS = 30.0  # audio this short may take the slot kept for short audio


@dataclass(order=True)
class _Ticket:
    audio_seconds: float
    arrival: int
    paused: bool = field(default=False, compare=False)
    batched: bool = field(default=False, compare=False)  # a member of the clip batch


@dataclass(frozen=True)
class SchedulerState:
    slots: int
    running: int
    batched: int  # of the running, members of the clip batch (which hold one slot between them)
    waiting: int
    paused: int
    peak_running: int
    preemptions: int
    live_steps: int


class Slot:
    """A decode slot held by one job; `give_way` lends it to a shorter job that waits."""

    def __init__(self, scheduler: DecodeScheduler, ticket: _Ticket) -> None:
        self._scheduler = scheduler
        self._ticket = ticket

    @property
    def batched(self) -> bool:
        """Whether this job is a member of the clip batch: its model calls are to be batched with the others'."""
        return self._ticket.batched

    def give_way(self) -> None:
        """Between segments: if a shorter job waits or a live step runs, let it go first, then continue
        (blocks meanwhile). ServerStopping once the process stops."""
        self._scheduler._give_way(self._ticket)


class DecodeScheduler:
    def __init__(self, slots: int, max_waiting: int, clip_batch: int = 1) -> None:
        self.slots = max(1, slots)
        self._long_slots = max(1, self.slots - 1)
        self.max_waiting = max(0, max_waiting)
        self.clip_batch = max(1, clip_batch)
        self._changed = threading.Condition()
        self._arrivals = itertools.count()
        self._running: list[_Ticket] = []
        self._waiting: list[_Ticket] = []
        self._live_steps = 0
        self._peak_running = 0
        self._preemptions = 0
        self._stopping = False

    def stop(self) -> None:
        """The process is stopping: no decode starts, and none goes on past its next `give_way`; every
        request waiting for a slot, and every job paused for another, gets ServerStopping now."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()

    def state(self) -> SchedulerState:
        with self._changed:
            return SchedulerState(
                slots=self.slots,
                running=len(self._running),
                batched=self._batch_members(),
                waiting=sum(not ticket.paused for ticket in self._waiting),
                paused=sum(ticket.paused for ticket in self._waiting),
                peak_running=self._peak_running,
                preemptions=self._preemptions,
                live_steps=self._live_steps,
            )

    def check_room(self) -> None:
        """ServerBusy if a request arriving now would be refused whatever its length (asked before its upload
        is received, when its length is not known yet: a long one may still be refused once it is)."""
        with self._changed:
            self._refuse_if_full()

    @contextlib.contextmanager
    def slot(
        self, audio_seconds: float | None, *, refuse_when_busy: bool = False, batchable: bool = False
    ) -> Iterator[Slot]:
        """Hold a decode slot for the block; `audio_seconds` orders the wait (None: after all known lengths).
        `batchable`: short audio whose model calls may be batched with other clips' (Slot.batched says
        whether they are to be)."""
        length = float(audio_seconds) if audio_seconds and audio_seconds > 0 else math.inf
        batched = batchable and self.clip_batch > 1 and length <= SHORT_AUDIO_SECONDS
        with self._changed:
            ticket = _Ticket(length, next(self._arrivals), batched=batched)
            if refuse_when_busy:
                self._refuse_if_full(ticket)
            self._wait_for_turn(ticket)
        try:
            yield Slot(self, ticket)
        finally:
            with self._changed:
                if ticket in self._running:  # not if it was stopped while it gave way
                    self._running.remove(ticket)
                self._changed.notify_all()

    @contextlib.contextmanager
    def live_step(self) -> Iterator[None]:
        """Live priority for the block: it starts at once, and long jobs pause at their next segment
        until no live step is held."""
        with self._changed:
            self._live_steps += 1
        try:
            yield
        finally:
            with self._changed:
                self._live_steps -= 1
                self._changed.notify_all()  # paused long jobs may go on

    # -- under self._changed ----------------------------------------------------------------------

    def _batch_members(self) -> int:
        return sum(ticket.batched for ticket in self._running)

    def _slots_taken(self) -> int:
        """Running jobs, the members of the clip batch counted as one."""
        members = self._batch_members()
        return len(self._running) - members + (1 if members else 0)

    def _could_start_now(self, ticket: _Ticket | None) -> bool:
        """Whether a request arriving now could start at once. `ticket` None: its length is not known
        yet, so it may be a clip: into the clip batch while that has room, else into a free slot (with
        a batch running, clips join it or wait for it: there is one batch). A known request: where it
        would go (unknown length waits as long audio), so a long job is not let in on room only the batch
        or the slot kept for short audio has."""
        if ticket is not None:
            return self._has_room(ticket)
        members = self._batch_members()
        if members:
            return members < self.clip_batch
        return self._slots_taken() < self.slots

    def _refuse_if_full(self, ticket: _Ticket | None = None) -> None:
        waiting = sum(not waiter.paused for waiter in self._waiting)
        if not self._could_start_now(ticket) and waiting >= self.max_waiting:
            raise ServerBusy(
                "The server is transcribing as much as it can and its queue of requests is full; "
                f"send this again in {RETRY_AFTER_SECONDS} seconds.",
                retry_after_seconds=RETRY_AFTER_SECONDS,
                running=len(self._running),
                waiting=waiting,
            )

    def _has_room(self, ticket: _Ticket) -> bool:
        if ticket.batched and self._batch_members():  # joins the batch running, which holds its slot
            return self._batch_members() < self.clip_batch
        if ticket.audio_seconds <= SHORT_AUDIO_SECONDS:
            return self._slots_taken() < self.slots
        return self._slots_taken() < self._long_slots and not self._live_steps

    def _waits_for_the_batch(self, ticket: _Ticket) -> bool:
        """A clip that can only join the running clip batch, and that batch is full: no free slot helps it."""
        return ticket.batched and self._batch_members() >= self.clip_batch

    def _first_in_line(self) -> _Ticket | None:
        """The waiting request a free slot goes to: the shortest, then the earliest, passing over clips
        that wait for the full clip batch (a slot would stay idle for them, and long jobs behind them
        paused for nothing)."""
        return min((ticket for ticket in self._waiting if not self._waits_for_the_batch(ticket)), default=None)

    def _wait_for_turn(self, ticket: _Ticket) -> None:
        self._waiting.append(ticket)
        try:
            while not (self._has_room(ticket) and self._first_in_line() is ticket) or self._stopping:
                if self._stopping:
                    raise ServerStopping(STOPPING_MESSAGE, retry_after_seconds=RETRY_AFTER_SECONDS)
                self._changed.wait()
        finally:
            self._waiting.remove(ticket)
        ticket.paused = False
        self._running.append(ticket)
        self._peak_running = max(self._peak_running, len(self._running))
        self._changed.notify_all()  # another slot may be free for the next in line

    def _should_give_way(self, ticket: _Ticket) -> bool:
        if ticket.batched:  # the clips it could give way to are as short, and join its batch
            return False
        if ticket.audio_seconds > SHORT_AUDIO_SECONDS and self._live_steps:
            return True
        first = self._first_in_line()
        if first is not None and first < ticket and not self._has_room(first):  # shorter, and waits for a slot
            return True
        # Beside a short job in the slot kept for it, the cores are shared: the long job steps aside
        # until the short one is done, which then runs about as fast as it would alone.
        return (
            ticket.audio_seconds > SHORT_AUDIO_SECONDS
            and self._slots_taken() > self._long_slots
            and any(other.audio_seconds <= SHORT_AUDIO_SECONDS for other in self._running)
        )

    def _give_way(self, ticket: _Ticket) -> None:
        with self._changed:
            if self._stopping:
                raise ServerStopping(STOPPING_MESSAGE, retry_after_seconds=RETRY_AFTER_SECONDS)
            if not self._should_give_way(ticket):
                return
            self._preemptions += 1
            self._running.remove(ticket)
            ticket.paused = True
            self._changed.notify_all()
            self._wait_for_turn(ticket)
