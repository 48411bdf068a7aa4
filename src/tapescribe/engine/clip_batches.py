"""ClipBatches: short clips transcribed at the same time share their model calls.

Clips sent at once in separate slots run no faster than one after another: two decodes on the same
CPU cores only share them. A beam search over ten clips' prompts in one CTranslate2 call costs little more than one
over a single prompt, as with the lanes of a long file (engine/lanes.py). So each clip still runs
faster-whisper's own `transcribe` over its own audio, in its own thread, with its own options, on a
shallow copy of the model whose CTranslate2 object is the `BatchingWhisper` of all clips decoding
on that model now: their generate calls with equal options go as one batch, their encodes one after
another (a batch of encodes is no faster on a CPU). A clip needs no text before it, so nothing of
its decoding changes but the batch it shares: each gets the text it gets alone (bench/fairness.py
measures the time through the server).
Which clips share a call depends on when they came (a call waits GATHER_SECONDS for the others);
the batcher of a model ends with its last clip, so none is kept while no clip decodes. On a model of
several single-thread decoders (the default on a CPU) a batch is no cheaper than its calls, so the
batch's calls run apart instead, each on a free decoder (engine/lanes.py): the clips still share one
decode slot, and as many of their calls run at once as there are decoders.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tapescribe.engine.base import SpeechModel
from tapescribe.engine.lanes import GATHER_SECONDS, BatchingWhisper, replicas
from tapescribe.engine.whisper_adapter import calling_through, generator, start_token


@dataclass
class _Batch:
    model: SpeechModel  # the WhisperModel whose calls are batched (kept referenced while the batch lasts)
    batcher: BatchingWhisper
    member_model: SpeechModel  # the shallow copy of `model` that calls through `batcher`
    members: int = 0


class ClipBatches:
    """The clip batches of the models in use, one per model, each alive while a clip decodes on it."""

    def __init__(self, gather_seconds: float = GATHER_SECONDS) -> None:
        self._gather_seconds = gather_seconds
        self._lock = threading.Lock()
        self._batches: dict[int, _Batch] = {}

    @contextmanager
    def join(self, model: SpeechModel) -> Iterator[SpeechModel]:
        """For the block, a model to transcribe one clip with whose calls are batched with the other
        clips' on `model` (a faster_whisper.WhisperModel)."""
        with self._lock:
            batch = self._batches.get(id(model))
            if batch is None:
                batcher = BatchingWhisper(
                    generator(model), start_token(model), gather_seconds=self._gather_seconds, apart=replicas(model)
                )
                member_model = calling_through(model, batcher)
                batch = self._batches[id(model)] = _Batch(model, batcher, member_model)
            batch.members += 1
            batch.batcher.join()
        try:
            yield batch.member_model
        finally:
            with self._lock:
                batch.batcher.lane_done()
                batch.members -= 1
                last = batch.members == 0
                if last:
                    del self._batches[id(model)]
            if last:
                batch.batcher.close()

    def members(self) -> int:
        with self._lock:
            return sum(batch.members for batch in self._batches.values())
