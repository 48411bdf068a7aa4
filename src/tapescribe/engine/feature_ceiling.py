"""Whisper's feature floor taken from the whole file, so every window's features are one pass's.

faster-whisper's FeatureExtractor floors the log-mel spectrogram 8 decades (2.0 in its feature
scale) below the loudest frame of the audio it is handed. One transcribe over a file floors every
frame below the file's loudest one; a window alone floors below its own, lower in a quiet window,
so it kept detail one pass wipes out and tiny.en heard some words differently (bench/windows.py).
`feature_ceiling` reads the whole stream once more, block by block, for the highest feature one
pass computes, and `with_feature_ceiling` gives a window the floor that ceiling sets.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE

FLOOR_BELOW_CEILING = 2.0  # faster-whisper: max(log_spec, log_spec.max() - 8.0), then (x + 4) / 4
BLOCK_SAMPLES = 30 * SAMPLE_RATE
HOP = 160  # FeatureExtractor's hop_length: frame k is centred on sample k * HOP
OVERLAP = 2 * HOP  # more than half an FFT (200 samples), so a block's frames see the audio one pass sees
END_PADDING = 160  # the zeros FeatureExtractor appends to what it is handed


def feature_ceiling(extractor: Any, blocks: Iterable[np.ndarray]) -> float | None:
    """The highest feature value one pass of `extractor` over all of `blocks` computes (None: no audio).

    Each 30 s block is featurized with OVERLAP samples of its neighbours on both sides and only its
    own frames are kept, so every frame is computed from the same samples as in one pass; the last
    block gets the zero padding the whole file gets. Memory is that of a block.
    """
    highest: float | None = None
    pending: list[np.ndarray] = []
    pending_samples = 0
    lead = 0  # samples before the current block's first one that are pending (OVERLAP after the first)

    def with_highest_of(audio: np.ndarray, padding: int, frames: int | None) -> float:
        features = extractor(audio, padding=padding)[:, lead // HOP :][:, :frames]
        value = float(features.max())
        return value if highest is None else max(highest, value)

    for block in blocks:
        if not len(block):
            continue
        pending.append(np.asarray(block, dtype=np.float32))
        pending_samples += len(block)
        while pending_samples >= lead + BLOCK_SAMPLES + OVERLAP:
            audio = np.concatenate(pending)
            highest = with_highest_of(audio[: lead + BLOCK_SAMPLES + OVERLAP], 0, BLOCK_SAMPLES // HOP)
            rest = audio[lead + BLOCK_SAMPLES - OVERLAP :]
            pending, pending_samples, lead = [rest], len(rest), OVERLAP
    if not pending:
        return None
    return with_highest_of(np.concatenate(pending), END_PADDING, None)


class CeiledFeatures:
    """A FeatureExtractor whose floor is set by a given ceiling (a whole file's) where that is higher."""

    def __init__(self, extractor: Any, ceiling: float) -> None:
        self._extractor = extractor
        self._floor = np.float32(ceiling - FLOOR_BELOW_CEILING)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._extractor, name)

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return np.maximum(self._extractor(*args, **kwargs), self._floor)


def with_feature_ceiling(model: Any, ceiling: float | None) -> Any:
    """`model` for one job, its features floored below `ceiling`; the shared model is left as it is.

    Only a sequential WhisperModel featurizes the window it is handed as one (a shallow copy shares
    its CTranslate2 model and tokenizer; `transcribe` reads nothing else it could change). The
    batched pipeline featurizes each piece of at most 30 s apart, as it does in one pass: unchanged.
    """
    from faster_whisper import WhisperModel

    if ceiling is None or not isinstance(model, WhisperModel):
        return model
    ceiled = copy.copy(model)
    ceiled.feature_extractor = CeiledFeatures(model.feature_extractor, ceiling)
    return ceiled


def needs_ceiling(model: Any) -> bool:
    """Whether `with_feature_ceiling` would change this model's features (so the ceiling is worth reading)."""
    from faster_whisper import WhisperModel

    return isinstance(model, WhisperModel)
