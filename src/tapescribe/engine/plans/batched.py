"""The batched plan: windows through faster-whisper's BatchedInferencePipeline (engine/batched.py),
`batch_size` pieces of at most 30 s per model call: a GPU, or a CPU told to batch. Pieces are decoded
without the text before them, so windows, resume points and hooks are the windows plan's."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from tapescribe.engine.base import DecodeHooks, SpeechModel
from tapescribe.engine.batched import BatchedWhisper
from tapescribe.engine.plans import PlanSettings, windows
from tapescribe.engine.transcriber import DecodeOptions, Resume


def prepare(model: SpeechModel, batch_size: int) -> SpeechModel:
    return BatchedWhisper(model, batch_size)


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
