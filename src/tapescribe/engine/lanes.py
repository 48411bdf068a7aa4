"""Lanes: one long file decoded as contiguous lanes at once, each lane faster-whisper's own transcribe.

Pieces decoded independently lose the text before them, and tiny.en needs it. A lane instead is a
long contiguous stretch (75-150 s) that faster-whisper's
ordinary sequential `transcribe` decodes with its own context; only the B-1 lane starts over a file
lose it. Each lane runs in its own thread on a shallow copy of the WhisperModel whose `.model` (the
CTranslate2 Whisper) is a `BatchingWhisper`, which hands the lanes' calls to CTranslate2 in one of two ways:
- apart (the default on a CPU): the model has several single-thread decoders (CTranslate2 replicas,
  `num_workers`), and each call runs alone on a free one as soon as it comes (on one thread a beam
  search wastes no time waiting on other threads: docs/decisions/0002-lanes-on-single-thread-decoders.md).
  Each lane's text is exactly its own transcribe's, whatever the load.
- batched (a model of one decoder): concurrent `generate` calls with the same options run as one
  CTranslate2 call (each lane gets its own result back), and their `encode` calls run together, row
  by row. On several threads a batched beam search is cheaper than its searches one by one; on one
  thread it is not. CTranslate2 batches only prompts
  whose <|startoftranscript|> is at one place; `trim_context` cuts the context of a batch to its
  shortest one's latest tokens so that most prompts line up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.base import SpeechModel
from tapescribe.engine.batched import quietest_moment
from tapescribe.engine.malloc import release_free_memory
from tapescribe.engine.whisper_adapter import calling_through, decoders, generator, start_token
from tapescribe.engine.window_features import features_in_blocks

CUT_SEARCH_SECONDS = 10.0  # a lane edge is the quietest moment within this much of its even share
GATHER_SECONDS = 0.1  # a lane busy in Python longer than this is left for the next batch
CALLS_KEPT = 10_000  # BatchingWhisper.calls kept (a group of file lanes makes a few dozen calls)


def replicas(model: SpeechModel) -> int:
    """How many calls a faster_whisper.WhisperModel's CTranslate2 model runs at once (its `num_workers`)."""
    return decoders(model)


def lane_edges(audio: np.ndarray, lanes: int) -> list[float]:
    """Start seconds of `lanes` contiguous lanes (the first at 0), cut at the quietest 100 ms near even shares."""
    duration = len(audio) / SAMPLE_RATE
    edges = [0.0]
    for lane in range(1, lanes):
        target = duration * lane / lanes
        start, end = max(edges[-1] + 1.0, target - CUT_SEARCH_SECONDS), min(duration, target + CUT_SEARCH_SECONDS)
        if end - start > 0.2:
            edges.append(quietest_moment(audio, start, end))
    return edges


class OnOneThread:
    """A lane model's feature extractor that runs on one thread for all the lanes (`thread`, which
    lane_groups also gives each lane's voice activity detection).

    faster-whisper featurizes a lane's whole audio at once, and Silero VAD runs over all of it too,
    at their peaks about 0.8 and 0.6 MiB per second of it. glibc keeps what a thread freed in that
    thread's own arena, so four lane threads doing it kept four such peaks; capping malloc's arenas
    (cap_malloc_arenas) alone did not undo that, the two together did. The features are computed 30 s
    at a time (window_features.features_in_blocks: the same bits at the memory of a block). Every other
    attribute is the extractor's.
    """

    def __init__(self, extractor: Any, thread: ThreadPoolExecutor) -> None:
        self._extractor = extractor
        self._thread = thread

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._thread.submit(features_in_blocks, self._extractor, *args, **kwargs).result()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._extractor, name)


@dataclass(eq=False)  # calls are told apart by identity
class _Call:
    kind: str  # "encode" or "generate"
    features: np.ndarray
    prompts: list[Any]
    options: dict[str, Any]
    since: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    @property
    def batch_key(self) -> tuple[str, str]:
        return self.kind, repr(sorted(self.options.items()))


class BatchingWhisper:
    """A CTranslate2 Whisper whose calls from concurrent lanes run as one batch, or apart on its decoders.

    Batched: calls go when every live lane has one waiting, or `gather_seconds` after the oldest came
    (or the last batch ended); with `gather_seconds` None only when every live lane has one waiting, so
    which calls share a batch depends on the audio alone, never on timing, and a run decodes as any
    other. Waiting encodes go first, alone: lanes out of step (some encoding, some generating) then
    meet again at their next generate. Generates that differ in options (a temperature fallback) or in
    where their prompt starts run as batches of their own.
    Apart (`apart` > 1, the model's decoder count): every call goes as soon as it comes, alone, to one
    of `apart` threads, each waiting on a free decoder; nothing is gathered, so no lane waits for
    another's call and each call's result is the one it gets alone, except that encodes run one at a
    time (the memory of two at once set a long job's peak).
    With `context_tokens` every prompt keeps at most that many tokens of the text before its window
    (engine/lane_groups.py says why the multilingual model's lanes do).
    Every other attribute is the wrapped model's. Its thread ends when the `lanes` block does.
    `between_calls` runs on that thread before each batch, or each handing-out of calls (a file job
    lends its decode slot there, and no call goes meanwhile); what it raises is raised in the lanes of
    those calls. A batch the model fails is made again call by call, so only a call whose own input
    fails gets an error (clip batches put calls of several requests together).
    """

    def __init__(
        self,
        model: Any,
        start_token: int,
        trim_context: bool = False,
        gather_seconds: float | None = GATHER_SECONDS,
        between_calls: Callable[[], None] | None = None,
        apart: int = 1,
        context_tokens: int | None = None,
        release_every: float | None = None,
    ) -> None:
        self._model = model
        self._release_every = release_every  # seconds: malloc_trim after a call at most this often (file lanes)
        self._released_at = time.monotonic()
        self._releasing = threading.Lock()
        # one encoder pass at a time, also apart: each holds its attention (tiny.en: 6 heads x 1500 x 1500
        # float32, about 54 MiB a layer) while it runs, and two at once made a job's peak (docs/performance.md,
        # Memory); a generate on the other decoder goes on meanwhile
        self._encoding = threading.Lock()
        self._context_tokens = context_tokens  # None: prompts keep all the context faster-whisper gives them
        self._between_calls = between_calls
        # apart > 1: each call runs alone, as soon as it comes, on one of that many CTranslate2 replicas
        self._apart = ThreadPoolExecutor(apart, thread_name_prefix="lane-call") if apart > 1 else None
        self._start_token = start_token  # <|startoftranscript|>: CTranslate2 batches only prompts with it at one place
        self._trim_context = trim_context
        self._gather_seconds = gather_seconds
        self._ready = threading.Condition()
        self._waiting: list[_Call] = []
        self._live_lanes = 0
        self._closed = False
        # (kind, rows, seconds) of the latest CTranslate2 calls, for measuring; bounded, since a clip batch
        # under steady traffic may serve for as long as the server runs
        self.calls: deque[tuple[str, int, float]] = deque(maxlen=CALLS_KEPT)
        self._server = threading.Thread(target=self._serve, name="lane-batcher", daemon=True)
        self._server.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    @contextmanager
    def lanes(self, count: int) -> Iterator[None]:
        """Count `count` lanes live (before any of them calls); each leaves with `lane_done`."""
        with self._ready:
            self._live_lanes += count
        try:
            yield
        finally:
            self.close()

    def join(self) -> None:
        """Count one more lane live, on a batcher already serving (a clip joining a clip batch)."""
        with self._ready:
            self._live_lanes += 1

    def lane_done(self) -> None:
        with self._ready:
            self._live_lanes -= 1
            self._ready.notify_all()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._server.join()
        if self._apart is not None:
            self._apart.shutdown(wait=True)  # no cancel_futures: a cancelled call would never answer its lane

    def encode(self, features: Any, to_cpu: bool = False) -> Any:  # to_cpu: outputs are on the CPU already
        return self._call(_Call("encode", np.asarray(features), [], {}))

    def generate(self, features: Any, prompts: list[Any], **options: Any) -> list[Any]:
        return self._call(_Call("generate", np.asarray(features), list(prompts), options))

    def _call(self, call: _Call) -> Any:
        with self._ready:
            if self._closed:
                raise RuntimeError("the lanes are closed")
            self._waiting.append(call)
            self._ready.notify_all()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def _serve(self) -> None:
        last_batch = time.monotonic()
        while True:
            with self._ready:
                while True:
                    if self._waiting and self._apart is not None:
                        break  # nothing to gather: each call goes alone as soon as it comes
                    if self._waiting:
                        left = None
                        if self._gather_seconds is not None:
                            left = max(self._waiting[0].since, last_batch) + self._gather_seconds - time.monotonic()
                        if len(self._waiting) >= self._live_lanes or (left is not None and left <= 0) or self._closed:
                            break
                    elif self._closed:
                        return
                    else:
                        left = None
                    self._ready.wait(left)
                calls = self._next_calls()
            if self._apart is not None:
                self._run_apart(calls)
                continue
            groups: dict[tuple[Any, ...], list[_Call]] = {}
            for call in calls:
                groups.setdefault((*call.batch_key, self._start_place(call)), []).append(call)
            for group in groups.values():
                self._run(group)
            last_batch = time.monotonic()

    def _next_calls(self) -> list[_Call]:
        """The waiting encodes if there are any, else every waiting call.

        Lanes out of step (some encoding, some generating) would stay so if both ran at once; the
        generates wait for the encoding lanes to come back with generates of their own.
        """
        if self._apart is not None:
            calls, self._waiting = self._waiting, []
            return calls
        encodes = [call for call in self._waiting if call.kind == "encode"]
        calls = encodes or self._waiting
        self._waiting = [call for call in self._waiting if call not in calls] if encodes else []
        return calls

    def _start_place(self, call: _Call) -> int:
        """Where the prompts' start token is; with trim_context only whether there is context before it."""
        if call.kind != "generate":
            return 0
        places = {prompt.index(self._start_token) for prompt in call.prompts}
        place = places.pop() if len(places) == 1 else -1
        return min(place, 1) if self._trim_context else place

    def _trimmed(self, prompts: list[list[int]]) -> list[list[int]]:
        """Prompts whose context (after <|startofprev|>) is cut to the same latest tokens: as many as the
        shortest one has, so that the start tokens line up in a batch, and at most `context_tokens`."""
        places = [prompt.index(self._start_token) for prompt in prompts]
        if min(places) == 0:  # no context (a batch's prompts all have some, or none: _start_place)
            return prompts
        keep = min(places) - 1
        if self._context_tokens is not None:
            keep = min(keep, self._context_tokens)
        if keep == 0:
            return [prompt[place:] for prompt, place in zip(prompts, places, strict=True)]
        return [prompt[:1] + prompt[place - keep :] for prompt, place in zip(prompts, places, strict=True)]

    def _run(self, group: list[_Call]) -> None:
        try:
            if self._between_calls is not None:
                self._between_calls()  # what it raises (a cancel, a lost lease) is every caller's
            try:
                self._call_model(group)
            except Exception:
                if len(group) == 1:
                    raise
                for call in group:  # each alone: a call whose input fails the model fails alone
                    try:
                        self._call_model([call])
                    except Exception as error:
                        call.error = error
        except BaseException as error:
            for call in group:
                call.error = error
        for call in group:
            call.done.set()

    def _run_apart(self, calls: list[_Call]) -> None:
        """Hand each call alone to a free replica (the model's `num_workers`); the serving thread goes
        on at once, so a call never waits for another lane's."""
        assert self._apart is not None
        try:
            if self._between_calls is not None:
                self._between_calls()  # what it raises (a cancel, a lost lease) is every caller's
        except BaseException as error:
            for call in calls:
                call.error = error
                call.done.set()
            return
        for call in calls:
            try:
                self._apart.submit(self._run_alone, call)
            except RuntimeError as error:  # the interpreter is shutting down: the lane fails, never hangs
                call.error = error
                call.done.set()

    def _run_alone(self, call: _Call) -> None:
        try:
            self._call_model([call])
        except BaseException as error:
            call.error = error
        call.done.set()

    def _call_model(self, group: list[_Call]) -> None:
        import ctranslate2

        rows = [len(call.features) for call in group]
        started = time.perf_counter()
        if group[0].kind == "encode":  # row by row: a batch of encodes was no faster on a CPU, often slower
            with self._encoding:
                for call in group:
                    call.result = self._model.encode(ctranslate2.StorageView.from_array(call.features), to_cpu=False)
        else:
            features = ctranslate2.StorageView.from_array(np.concatenate([call.features for call in group]))
            prompts = self._trimmed([p for c in group for p in c.prompts])
            results = self._model.generate(features, prompts, **group[0].options)
            first = 0
            for call in group:
                call.result = results[first : first + len(call.prompts)]
                first += len(call.prompts)
        self.calls.append((group[0].kind, sum(rows), time.perf_counter() - started))
        if self._release_every is not None and time.monotonic() - self._released_at >= self._release_every:
            if self._releasing.acquire(blocking=False):  # one thread trims; another call's thread goes on
                try:
                    release_free_memory()
                    self._released_at = time.monotonic()
                finally:
                    self._releasing.release()


def transcribe_in_lanes(
    model: SpeechModel, audio: np.ndarray, lanes: int, groups: int = 1, trim_context: bool = False, **options: Any
) -> tuple[list[dict[str, Any]], list[tuple[str, int, float]]]:
    """Segments ({start, end, text}, absolute seconds) of `audio` decoded as `lanes` lockstep lanes whose
    calls are batched (bench/lanes.py measures them so), and (kind, rows, seconds) of each model call.

    The lanes form `groups` groups, each batched on its own: with a model of as many CTranslate2
    workers (`num_workers`), one group can encode while another generates. `options` go to every
    lane's `WhisperModel.transcribe`.
    """
    edges = lane_edges(audio, lanes)
    bounds = list(zip(edges, [*edges[1:], len(audio) / SAMPLE_RATE], strict=True))
    batchers = [
        BatchingWhisper(generator(model), start_token(model), trim_context) for _ in range(min(groups, len(bounds)))
    ]
    lane_models = [calling_through(model, batcher) for batcher in batchers]

    def run_lane(lane: int) -> list[dict[str, Any]]:
        start, end = bounds[lane]
        try:
            piece = audio[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
            segments, _ = lane_models[lane % len(batchers)].transcribe(piece, **options)
            return [{"start": start + s.start, "end": start + s.end, "text": s.text} for s in segments]
        finally:
            batchers[lane % len(batchers)].lane_done()

    with ExitStack() as stack:
        for number, batcher in enumerate(batchers):
            stack.enter_context(batcher.lanes(len(range(number, len(bounds), len(batchers)))))
        with ThreadPoolExecutor(len(bounds)) as pool:
            per_lane = list(pool.map(run_lane, range(len(bounds))))
    return [segment for lane in per_lane for segment in lane], [call for b in batchers for call in b.calls]
