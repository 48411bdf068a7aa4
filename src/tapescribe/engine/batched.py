"""Batched decoding for file jobs on a GPU: faster-whisper's BatchedInferencePipeline behind `transcribe`.

`BatchedWhisper` is a WhisperModel whose `transcribe` decodes the speech of one window as pieces of
at most 30 s, `batch_size` of them per model call. transcribe_windows calls it exactly as it calls
the model, so windows, the decode scheduler (a job still gives way between segments) and the
journal (resuming at a window start) are the same as for sequential decoding. The pieces are the
window's speech stretches (engine/speech_regions.py) cut into equal parts of at most 30 s. Pieces
are decoded independently, at temperature 0, without the text before them as a prompt: that is
what makes them one batch, and why on a CPU, where a batch only shares the same cores, decoding
stays sequential (engine/models.py: compute_plan).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE

PIECE_SECONDS = 30.0  # Whisper's window: the pipeline decodes at most this much of each piece


def batch_pieces(clips: list[float] | str, duration: float) -> list[dict[str, float]]:
    """Speech stretches ([start, end, ...] seconds, or "0" for the whole window) as pieces of at most 30 s.

    No piece ends after the audio (the pipeline asserts it: a stretch's end rounded to milliseconds may).
    """
    edges = [0.0, duration] if isinstance(clips, str) else [min(edge, duration) for edge in clips]
    pieces = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        count = max(1, math.ceil((end - start) / PIECE_SECONDS - 1e-9))
        cuts = [start + (end - start) * n / count for n in range(count + 1)]
        pieces += [{"start": min(round(a, 3), end), "end": min(round(b, 3), end)} for a, b in itertools.pairwise(cuts)]
    return [piece for piece in pieces if piece["end"] > piece["start"]]


class BatchedWhisper:
    """A WhisperModel whose `transcribe` is batched; every other attribute is the model's own."""

    def __init__(self, model: Any, batch_size: int) -> None:
        from faster_whisper import BatchedInferencePipeline

        self._whisper = model  # not `model`: faster-whisper's own `model` attribute must show through
        self._pipeline = BatchedInferencePipeline(model)
        self.batch_size = batch_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._whisper, name)

    def transcribe(self, audio: np.ndarray, *, clip_timestamps: list[float] | str = "0", **options: Any):
        """`WhisperModel.transcribe`'s call, answered by the batched pipeline (VAD done by the caller)."""
        options.pop("vad_filter", None)
        return self._pipeline.transcribe(
            audio,
            clip_timestamps=batch_pieces(clip_timestamps, len(audio) / SAMPLE_RATE),
            batch_size=self.batch_size,
            vad_filter=False,
            without_timestamps=False,  # segments of sentences, not one per piece: finer resume points
            **options,
        )
