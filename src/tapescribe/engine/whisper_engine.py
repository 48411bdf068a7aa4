"""WhisperEngine: faster-whisper/CTranslate2 behind the Engine protocol (engine/base.py).

Models come from the ModelPool (loaded once per process, an LRU); a model is prepared for its decode
plan here (the batched pipeline, or a clip batch's member), a recording's language is judged on
several parts of it (engine/language_detection.py) by the multilingual model, and decoding runs the
plan (engine/plans/). What it reaches inside faster-whisper is in engine/whisper_adapter.py.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from contextlib import ExitStack, closing
from dataclasses import replace
from typing import Any

import numpy as np

from tapescribe.engine import plans
from tapescribe.engine.base import DecodeHooks, LanguageFound, SpeechModel
from tapescribe.engine.clip_batches import ClipBatches
from tapescribe.engine.language_detection import DetectedLanguage, detect_over_parts
from tapescribe.engine.models import MULTILINGUAL_MODEL, ModelPool
from tapescribe.engine.plans import Plan, PlanSettings
from tapescribe.engine.plans import batched as batched_plan
from tapescribe.engine.plans import clip_batch as clip_batch_plan
from tapescribe.engine.records import Segment
from tapescribe.engine.transcriber import DecodeOptions, Resume
from tapescribe.engine.word_alignment import WordAligner, in_word_order, with_words


class WhisperEngine:
    name = "faster-whisper"

    def __init__(self, models: ModelPool) -> None:
        self.models = models
        self.clip_batches = ClipBatches()

    def load(self, name: str | None, plan: Plan, stack: ExitStack) -> SpeechModel:
        model: SpeechModel = self.models.get(name)
        if plan is Plan.BATCHED:
            return batched_plan.prepare(model, self.models.plan.batch_size)
        if plan is Plan.CLIP_BATCH:
            return clip_batch_plan.prepare(model, self.clip_batches, stack)
        return model

    def detect_language(
        self, blocks: Iterable[np.ndarray], duration: float, parts: int, between: Callable[[], None] | None
    ) -> DetectedLanguage | None:
        return detect_over_parts(self.models.get(MULTILINGUAL_MODEL), blocks, duration, parts, between)

    def decode(
        self,
        model: SpeechModel,
        plan: Plan,
        blocks: Iterable[np.ndarray],
        options: DecodeOptions,
        resume: Resume,
        hooks: DecodeHooks,
        settings: PlanSettings,
        whole_file: Callable[[], Iterable[np.ndarray]] | None,
    ) -> Generator[Segment, None, None]:
        """The plan's segments; with `options.word_timestamps` each with its words, timed as each cycle is
        decoded (engine/word_alignment.py), or after decoding where the plan is the batched pipeline's."""
        aligned_after = options.word_timestamps and plan is Plan.BATCHED and whole_file is not None
        languages = [options.language or resume.language]
        if aligned_after:
            hooks = replace(hooks, on_language=_also(hooks.on_language, lambda found: languages.append(found.language)))
        records = plans.decode(plan, model, blocks, options, resume, hooks, settings, whole_file)
        with closing(records):  # stopped early (a cancel, a lost lease): the plan's lanes end now
            timed: Iterable[dict[str, Any]] = records
            if aligned_after and whole_file is not None:
                aligner = WordAligner(model, whole_file(), 0.0, options.task)
                timed = with_words(records, aligner, lambda: languages[-1])
            for record in in_word_order(timed, resume.start):
                yield Segment.from_dict(record)


def _also(
    heard: Callable[[LanguageFound], None] | None, also: Callable[[LanguageFound], None]
) -> Callable[[LanguageFound], None]:
    def both(found: LanguageFound) -> None:
        also(found)
        if heard is not None:
            heard(found)

    return both
