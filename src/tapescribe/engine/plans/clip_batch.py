"""The clip batch plan: a clip of 30 s or less decoded as windows (one) on a model whose CTranslate2
calls are batched with those of the other clips decoding on the same model now (engine/clip_batches.py).
A clip needs no text before it, so it gets the text it gets alone."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np

from tapescribe.engine.base import DecodeHooks, SpeechModel
from tapescribe.engine.clip_batches import ClipBatches
from tapescribe.engine.plans import PlanSettings, windows
from tapescribe.engine.transcriber import DecodeOptions, Resume


def prepare(model: SpeechModel, clip_batches: ClipBatches, stack: ExitStack) -> SpeechModel:
    """`model` as a member of its clip batch, until `stack` closes (then the clip leaves the batch)."""
    member: SpeechModel = stack.enter_context(clip_batches.join(model))
    return member


def decode(
    model: SpeechModel,
    blocks: Iterable[np.ndarray],
    options: DecodeOptions,
    resume: Resume,
    hooks: DecodeHooks,
    settings: PlanSettings,
    whole_file: Callable[[], Iterable[np.ndarray]] | None,
) -> Iterator[dict[str, Any]]:
    return windows.decode(model, blocks, options, resume, hooks, settings, whole_file)
