"""Batched decoding for file jobs on a GPU: faster-whisper's BatchedInferencePipeline behind `transcribe`.

`BatchedWhisper` is a WhisperModel whose `transcribe` decodes the speech of one window as pieces of
at most 30 s, `batch_size` of them per model call. transcribe_windows calls it exactly as it calls
the model, so windows, the decode scheduler (a job still gives way between segments) and the
journal (resuming at a window start) are the same as for sequential decoding. The pieces are the
window's speech stretches (engine/speech_regions.py) cut at quiet moments into parts of at most
30 s. Pieces are decoded independently, at temperature 0, without the text before them as a
prompt: that is what makes them one batch, and why on a CPU, where a batch only shares the same
cores, decoding stays sequential (engine/models.py: compute_plan).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.base import SpeechModel
from tapescribe.engine.whisper_adapter import batched_pipeline

PIECE_SECONDS = 30.0  # Whisper's window: the pipeline decodes at most this much of each piece
CUT_SEARCH_SECONDS = 10.0  # a long stretch is cut at the quietest moment of this much before the limit


def batch_pieces(clips: list[float] | str, audio: np.ndarray) -> list[dict[str, float]]:
    """Speech stretches ([start, end, ...] seconds, or "0" for the whole window) as pieces of at most 30 s.

    A stretch longer than that is cut at the quietest 100 ms of the last CUT_SEARCH_SECONDS before
    each 30 s limit, most often a pause between words: a piece is decoded without the one before
    it, so a word cut in two is lost or doubled. No piece ends after the audio (the pipeline asserts it).
    """
    duration = len(audio) / SAMPLE_RATE
    edges = [0.0, duration] if isinstance(clips, str) else [min(edge, duration) for edge in clips]
    pieces = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        while end - start > PIECE_SECONDS:
            cut = quietest_moment(audio, start + PIECE_SECONDS - CUT_SEARCH_SECONDS, start + PIECE_SECONDS)
            pieces.append({"start": start, "end": cut})
            start = cut
        if end > start:
            pieces.append({"start": start, "end": end})
    return pieces


def quietest_moment(audio: np.ndarray, start: float, end: float) -> float:
    """The middle of the quietest 100 ms between `start` and `end` (seconds); the latest of equals, so
    pieces stay long."""
    frame = SAMPLE_RATE // 10
    first = int(start * SAMPLE_RATE)
    frames = audio[first : first + int((end - start) * SAMPLE_RATE) // frame * frame].reshape(-1, frame)
    loudness = np.square(frames).mean(axis=1)
    quietest = len(loudness) - 1 - int(np.argmin(loudness[::-1]))
    return (first + quietest * frame + frame // 2) / SAMPLE_RATE


class BatchedWhisper:
    """A WhisperModel whose `transcribe` is batched; every other attribute is the model's own."""

    def __init__(self, model: SpeechModel, batch_size: int) -> None:
        self._whisper = model  # not `model`: faster-whisper's own `model` attribute must show through
        self._pipeline = batched_pipeline(model)
        self.batch_size = batch_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._whisper, name)

    def transcribe(self, audio: np.ndarray, *, clip_timestamps: list[float] | str = "0", **options: Any):
        """`WhisperModel.transcribe`'s call, answered by the batched pipeline (VAD done by the caller)."""
        options.pop("vad_filter", None)
        return self._pipeline.transcribe(
            audio,
            clip_timestamps=batch_pieces(clip_timestamps, audio),
            batch_size=self.batch_size,
            vad_filter=False,
            without_timestamps=False,  # segments of sentences, not one per piece: finer resume points
            **options,
        )
