"""Silero's speech probabilities turned into stretches of speech, as faster-whisper does it.

faster-whisper's `get_speech_timestamps` runs Silero over a whole recording at once (batches of
10,000 windows of 512 samples, each with the 64 samples before it as context) and then walks the
probabilities. That single pass holds about 0.37 MiB per second of audio while it runs (89 MiB
for a 240 s lane). The model's encoder reads each window alone and only its LSTM state (h, c)
carries from one batch to the next, so `whisper_adapter.speech_probabilities` runs the same
session over batches of VAD_BATCH windows, passing the state on, and gets the same probabilities
to the bit; `speeches` here is the library's walk over them, step for step (faster-whisper
version pinned in pyproject.toml; `tests/fast/test_silero_speeches.py` compares the two on real
speech of several lengths and with several options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

VAD_WINDOW = 512  # samples per Silero window at 16 kHz
VAD_CONTEXT = 64  # samples of the window before, prepended to each window
VAD_BATCH = 250  # windows per model call: 8 s of audio, a few MiB (the same speed as 10,000)


@dataclass
class _Walk:
    """The state of faster-whisper's loop over the probabilities (its local variables)."""

    threshold: float
    neg_threshold: float
    min_speech_samples: float
    max_speech_samples: float
    min_silence_samples: float
    min_silence_samples_at_max_speech: float
    triggered: bool = False
    speeches: list[dict[str, Any]] = field(default_factory=list)
    current: dict[str, Any] = field(default_factory=dict)
    temp_end: int = 0
    prev_end: int = 0
    next_start: int = 0

    def step(self, i: int, prob: float) -> None:
        sample = VAD_WINDOW * i
        if prob >= self.threshold and self.temp_end:
            self.temp_end = 0
            if self.next_start < self.prev_end:
                self.next_start = sample
        if prob >= self.threshold and not self.triggered:
            self.triggered = True
            self.current["start"] = sample
            return
        if self.triggered and sample - self.current["start"] > self.max_speech_samples and self._cut_long(sample):
            return
        if prob < self.neg_threshold and self.triggered:
            self._silence(sample)

    def _cut_long(self, sample: int) -> bool:
        """A stretch past the longest allowed: cut it; True where the library's loop goes on to the next window."""
        if self.prev_end:
            self.current["end"] = self.prev_end
            self.speeches.append(self.current)
            self.current = {}
            if self.next_start < self.prev_end:
                self.triggered = False
            else:
                self.current["start"] = self.next_start
            self.prev_end = self.next_start = self.temp_end = 0
            return False
        self.current["end"] = sample
        self.speeches.append(self.current)
        self.current = {}
        self.prev_end = self.next_start = self.temp_end = 0
        self.triggered = False
        return True

    def _silence(self, sample: int) -> None:
        if not self.temp_end:
            self.temp_end = sample
        if sample - self.temp_end > self.min_silence_samples_at_max_speech:
            self.prev_end = self.temp_end
        if sample - self.temp_end < self.min_silence_samples:
            return
        self.current["end"] = self.temp_end
        if self.current["end"] - self.current["start"] > self.min_speech_samples:
            self.speeches.append(self.current)
        self.current = {}
        self.prev_end = self.next_start = self.temp_end = 0
        self.triggered = False


def speeches(probs: np.ndarray, length: int, options: Any, sampling_rate: int = 16000) -> list[dict[str, int]]:
    """[{start, end}] in samples, from Silero's probability per window of audio `length` samples long,
    with faster-whisper's VadOptions `options`: what its get_speech_timestamps returns."""
    speech_pad_samples = sampling_rate * options.speech_pad_ms / 1000
    neg_threshold = options.neg_threshold
    walk = _Walk(
        threshold=options.threshold,
        neg_threshold=max(options.threshold - 0.15, 0.01) if neg_threshold is None else neg_threshold,
        min_speech_samples=sampling_rate * options.min_speech_duration_ms / 1000,
        max_speech_samples=sampling_rate * options.max_speech_duration_s - VAD_WINDOW - 2 * speech_pad_samples,
        min_silence_samples=sampling_rate * options.min_silence_duration_ms / 1000,
        min_silence_samples_at_max_speech=sampling_rate * 98 / 1000,
    )
    for i, prob in enumerate(probs):
        walk.step(i, prob)
    found = walk.speeches
    if walk.current and (length - walk.current["start"]) > walk.min_speech_samples:
        walk.current["end"] = length
        found.append(walk.current)
    return _padded(found, length, speech_pad_samples)


def _padded(found: list[dict[str, Any]], length: int, pad: float) -> list[dict[str, int]]:
    """The library's padding of each stretch: `pad` each side, or half the gap where two stretches are closer."""
    for i, speech in enumerate(found):
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - pad))
        if i != len(found) - 1:
            silence_duration = found[i + 1]["start"] - speech["end"]
            if silence_duration < 2 * pad:
                speech["end"] += int(silence_duration // 2)
                found[i + 1]["start"] = int(max(0, found[i + 1]["start"] - silence_duration // 2))
            else:
                speech["end"] = int(min(length, speech["end"] + pad))
                found[i + 1]["start"] = int(max(0, found[i + 1]["start"] - pad))
        else:
            speech["end"] = int(min(length, speech["end"] + pad))
    return found
