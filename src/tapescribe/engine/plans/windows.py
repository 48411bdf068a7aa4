"""The windows plan: faster-whisper's sequential `transcribe` window by window (engine/transcriber.py),
each window with the text context and the features one pass over the whole file has there."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from tapescribe.engine.base import DecodeHooks, SpeechModel
from tapescribe.engine.plans import PlanSettings
from tapescribe.engine.transcriber import DecodeOptions, Resume, transcribe_windows


def decode(
    model: SpeechModel,
    blocks: Iterable[np.ndarray],
    options: DecodeOptions,
    resume: Resume,
    hooks: DecodeHooks,
    settings: PlanSettings,
    whole_file: Callable[[], Iterable[np.ndarray]] | None,
) -> Iterator[dict[str, Any]]:
    return transcribe_windows(
        model,
        blocks,
        options,
        resume,
        settings.window_seconds,
        hooks.on_language,
        hooks.window_done,
        whole_file,
        hooks.between_calls,
    )
