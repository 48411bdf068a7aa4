"""Transcribing a stream of audio in windows, so memory is flat for any length and a job can resume.

Audio is decoded block by block into a window of at most `window_seconds`. Each window goes
through faster-whisper's own `transcribe` (sequential decoding, the library's accuracy). When the
window is not the last, its final segment may be cut by the window edge, so it is held back and
the next window starts where the last kept segment ended. Windows are decoded independently: passing
the text kept so far as the next window's prompt made tiny.en skip whole passages (WER 38.9%
against 3.8% without it, on 3.6 minutes of the shared recordings in 60-second windows).

Because each kept segment is final, a caller that saves segments as they come can resume a job
from the end of the last saved one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE



@dataclass
class DecodeOptions:
    """What a caller may choose per job; the rest are faster-whisper's defaults."""

    language: str | None = None
    task: str = "transcribe"
    beam_size: int = 5
    vad_filter: bool = True
    word_timestamps: bool = False
    initial_prompt: str | None = None
    temperature: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "task": self.task,
            "beam_size": self.beam_size,
            "vad_filter": self.vad_filter,
            "word_timestamps": self.word_timestamps,
        }
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        return kwargs


@dataclass
class LanguageFound:
    language: str
    probability: float


@dataclass
class Resume:
    """Where a stream starts: at 0, or after segments already saved."""

    start: float = 0.0
    language: str | None = None
    language_probability: float | None = None


def segment_record(segment: Any, offset: float) -> dict[str, Any]:
    record: dict[str, Any] = {
        "start": round(segment.start + offset, 3),
        "end": round(segment.end + offset, 3),
        "text": segment.text,
        "seek": segment.seek,
        "temperature": segment.temperature,
        "compression_ratio": round(segment.compression_ratio, 4),
        "avg_logprob": round(segment.avg_logprob, 4),
        "no_speech_prob": round(segment.no_speech_prob, 4),
    }
    if segment.words:
        record["words"] = [
            {
                "start": round(word.start + offset, 3),
                "end": round(word.end + offset, 3),
                "word": word.word,
                "probability": round(word.probability, 4),
            }
            for word in segment.words
        ]
    return record


def transcribe_windows(
    model: Any,
    blocks: Iterable[np.ndarray],
    options: DecodeOptions,
    resume: Resume | None = None,
    window_seconds: float = 240.0,
    on_language: Callable[[LanguageFound], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield final segments (absolute times, seconds) of the audio in `blocks`, which starts at resume.start."""
    resume = resume or Resume()
    window_samples = int(window_seconds * SAMPLE_RATE)
    language = options.language or resume.language
    source = iter(blocks)
    pending: list[np.ndarray] = []
    pending_samples = 0
    buffer_start = resume.start
    finished_input = False
    reported_language = resume.language is not None

    while True:
        while not finished_input and pending_samples < window_samples:
            block = next(source, None)
            if block is None:
                finished_input = True
            elif len(block):
                pending.append(block)
                pending_samples += len(block)
        if pending_samples == 0:
            return
        audio = np.concatenate(pending) if len(pending) > 1 else pending[0]
        window = audio[:window_samples]
        is_last = finished_input and len(audio) <= window_samples
        segments, info = model.transcribe(
            window, language=language, initial_prompt=options.initial_prompt, **options.as_kwargs()
        )
        if not reported_language:
            reported_language = True
            if language is None:
                language = info.language
            if on_language is not None:
                probability = 1.0 if language != info.language else float(info.language_probability)
                on_language(LanguageFound(language, probability))

        held = None
        kept_end = None
        for segment in segments:
            if held is not None:
                yield segment_record(held, buffer_start)
                kept_end = held.end
            held = segment
        if is_last:
            if held is not None:
                yield segment_record(held, buffer_start)
            return

        window_length = len(window) / SAMPLE_RATE
        if kept_end is None:
            # Zero or one segment in a whole window: keep it (nothing better will come) and move on.
            if held is not None:
                yield segment_record(held, buffer_start)
            kept_end = held.end if held is not None and 0 < held.end < window_length else window_length
        advance = int(round(kept_end * SAMPLE_RATE))
        advance = max(1, min(advance, len(window)))
        rest = audio[advance:]
        pending = [rest] if len(rest) else []
        pending_samples = len(rest)
        buffer_start += advance / SAMPLE_RATE
