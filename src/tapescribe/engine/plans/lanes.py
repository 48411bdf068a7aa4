"""The lanes plan: a file in groups of windows, each group cut into lanes whose model calls run at once
on the model's decoders (engine/lane_groups.py, engine/lanes.py). Lanes are featurized alone, so the
whole file is not read again."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from tapescribe.engine.base import DecodeHooks, SpeechModel
from tapescribe.engine.lane_groups import transcribe_lane_groups
from tapescribe.engine.plans import PlanSettings
from tapescribe.engine.transcriber import DecodeOptions, Resume


def decode(
    model: SpeechModel,
    blocks: Iterable[np.ndarray],
    options: DecodeOptions,
    resume: Resume,
    hooks: DecodeHooks,
    settings: PlanSettings,
    whole_file: Callable[[], Iterable[np.ndarray]] | None,
) -> Iterator[dict[str, Any]]:
    return transcribe_lane_groups(
        model,
        blocks,
        options,
        resume,
        settings.window_seconds,
        settings.file_lanes,
        settings.lane_beam_size,
        hooks.on_language,
        hooks.window_done,
        hooks.between_calls,
        hooks.on_position,
        settings.lane_context_tokens,
    )
