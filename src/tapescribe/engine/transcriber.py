"""Transcribing a stream of audio in windows, so memory is flat for any length and a job can resume.

Audio is decoded block by block into a window of at most `window_seconds`. Each window goes
through faster-whisper's own `transcribe` (sequential decoding, the library's accuracy), which
decodes 30 s cycles, each starting where the previous one's last whole segment ended. The cycles
that lie wholly inside the window decode what one `transcribe` over the whole file decodes there,
given the same text context; a cycle that reaches the window's end sees the edge instead of the
audio after it. So when the window is not the last, its segments are kept up to the first cycle
that reached the edge, and the next window starts where that cycle started. (When no such cycle
gave a segment, the window's last segment is held back and the next window starts where the last
kept one ended.)

Each window starts from the text context one pass would have there: the token ids of the segments
kept before it, timestamps included, cut and reset as faster-whisper does (`carried_context`),
passed as a token prompt. Without it every window began with no context and tiny.en spelled and
punctuated differently after each window edge. And each window's features are those one pass
computes there (engine/window_features.py): Whisper floors them below the loudest frame of the
audio it is handed, and reflects the audio at its edges. A file longer than one window is read once
more first, for its loudest frame; each window is floored below it and featurized with the audio
just before and after it. The ceiling is journaled with each record, so a resumed job featurizes
its windows the same (docs/decisions/0001-windows-that-decode-like-one-pass.md).

Where windows fall is therefore a function of the audio and the settings alone, counted from the
start of the file, and each segment says which window produced it (`window_start`). A resumed
stream starts again at the window of the last saved segment, so it decodes exactly the windows an
uninterrupted run decodes, and skips the segments of that window that were already saved. Decoding
a window at temperature 0 is deterministic on CPU (same audio, same segments, in one process and
across processes). A window that falls back to sampling is not: CTranslate2 seeds its per-thread
generator once, at random. Skipping by time (a segment lying mostly before the last saved end is
already saved) keeps such a window free of repeats and holes at the seam. Starting at the end of
the last saved segment instead shifted every later window, and the text differed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE, read_ahead
from tapescribe.engine.base import LanguageFound, SpeechModel
from tapescribe.engine.speech_regions import speech_clips
from tapescribe.engine.whisper_adapter import (
    FRAME_SECONDS,
    cycle_start,
    feature_extractor,
    is_multilingual,
    prompt_tokens,
)
from tapescribe.engine.window_features import EDGE, feature_ceiling, featurizes_windows, for_window, samples_before
from tapescribe.engine.word_alignment import transcribe_with_words

# The VAD (engine/speech_regions.py) only skips stretches of at least 7 s that are surely not
# speech, judged on a copy of the audio evened to one loudness. faster-whisper's VAD defaults on the
# audio as it is (threshold 0.5, 2 s of silence, 0.4 s of padding) dropped soft and whispered words;
# no VAD at all let Whisper write "You You" over a minute of silence; threshold 0.1 on the evened
# copy took a quiet hiss for speech; 5 s skipped the middle of a whispered sentence Silero could not
# hear. With these the server kept every word faster-whisper's own defaults (no VAD) keep on the
# shared recordings made soft, whispered and noisy, and wrote nothing over room noise, hiss, music or
# silence (bench/defaults.py; docs/decisions/0003-vad-defaults.md).
KEEP_SOFT_SPEECH_VAD = {"threshold": 0.5, "min_silence_duration_ms": 7000, "speech_pad_ms": 1500}
PROMPT_RESET_ON_TEMPERATURE = 0.5  # faster-whisper's `prompt_reset_on_temperature`
CYCLE_SECONDS = 30.0  # Whisper decodes 30 s at a time, each from where the previous cycle's text ended
CONTEXT_TOKENS = 223  # what faster-whisper's get_prompt keeps of the previous text: max_length // 2 - 1


@dataclass
class DecodeOptions:
    """What a caller may choose per job; the rest are faster-whisper's defaults."""

    language: str | None = None
    task: str = "transcribe"
    beam_size: int = 5
    vad_filter: bool = True
    vad_parameters: dict[str, float] = field(default_factory=lambda: dict(KEEP_SOFT_SPEECH_VAD))
    word_timestamps: bool = False  # words timed after each cycle's decoding (engine/word_alignment.py), never while
    initial_prompt: str | None = None
    temperature: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """faster-whisper's `transcribe` arguments; the VAD is applied apart (engine/speech_regions.py)."""
        kwargs: dict[str, Any] = {
            "task": self.task,
            "beam_size": self.beam_size,
            "vad_filter": False,
            # never while decoding: faster-whisper then starts each cycle at the last word's end, which
            # changes the text; words are aligned to the decoded text after each cycle (engine/word_alignment.py)
            "word_timestamps": False,
        }
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        return kwargs


@dataclass
class Resume:
    """Where a stream starts: at 0, or again at a window start after segments already saved.

    `start` must be a window start of an uninterrupted run (0, or a saved segment's `window_start`)
    for the windows to fall where they would have. Segments that lie mostly before `saved_until`
    (the end of the last saved segment, None when nothing is saved) are not yielded again.
    """

    start: float = 0.0
    saved_until: float | None = None
    language: str | None = None
    language_probability: float | None = None
    feature_ceiling: float | None = None  # the whole file's, as the saved records carry it
    earlier: list[dict[str, Any]] = field(default_factory=list)  # saved segments of the windows before `start`


def segment_record(segment: Any, offset: float, ceiling: float | None = None) -> dict[str, Any]:
    """A segment with absolute times; `window_start` (exact, not rounded) is where its window began,
    `feature_ceiling` the whole file's highest feature its window was floored below (None: its own)."""
    record: dict[str, Any] = {
        "window_start": offset,
        "start": round(segment.start + offset, 3),
        "end": round(segment.end + offset, 3),
        "text": segment.text,
        "tokens": list(segment.tokens),
        "seek": segment.seek,
        "temperature": segment.temperature,
        "compression_ratio": round(segment.compression_ratio, 4),
        "avg_logprob": round(segment.avg_logprob, 4),
        "no_speech_prob": round(segment.no_speech_prob, 4),
    }
    if ceiling is not None:
        record["feature_ceiling"] = ceiling
    bounds = getattr(segment, "word_bounds", None)  # words timed as decoded (engine/word_alignment.WordTimed)
    if bounds is not None:  # the times stay the decoder's here; word_alignment.in_word_order moves them
        record["word_bounds"] = [bounds[0] + offset, bounds[1] + offset]
        record["words"] = [
            {"start": word.start + offset, "end": word.end + offset, "word": word.word, "probability": word.probability}
            for word in segment.words
        ]
    elif segment.words:
        record["words"] = [
            {
                **_within(record, word.start + offset, word.end + offset),
                "word": word.word,
                "probability": round(word.probability, 4),
            }
            for word in segment.words
        ]
    return record


def _within(record: dict[str, Any], start: float, end: float) -> dict[str, float]:
    """A word's times kept inside its segment's. faster-whisper shortens a first or last word that
    looks too long to the segment's timestamp, but not below the median word length, so such a word
    may stick out of its segment by a few tenths of a second (seen with and without lanes)."""
    first = min(max(round(start, 3), record["start"]), record["end"])
    return {"start": first, "end": max(min(round(end, 3), record["end"]), first)}


# the next window's context and floor, and a resume's; the decoder's own end of a segment whose words moved it
JOURNAL_ONLY = ("tokens", "feature_ceiling", "decoded_end")


def for_transcript(record: dict[str, Any]) -> dict[str, Any]:
    """A record as a transcript keeps it, without what only the decoding (and a resume) needs."""
    return {key: value for key, value in record.items() if key not in JOURNAL_ONLY}


def carried_context(context: list[int], records: Iterable[dict[str, Any]]) -> list[int]:
    """The text context Whisper has after `records`, as one transcribe over the whole file has it.

    faster-whisper conditions each 30 s cycle on the tokens of the segments before it (timestamps
    included), the last CONTEXT_TOKENS of them, and forgets them after a cycle decoded at a
    temperature above PROMPT_RESET_ON_TEMPERATURE. A record without tokens (a journal written
    before records kept them) leaves no context, as every window had then.
    """
    for record in records:
        tokens = record.get("tokens")
        if not isinstance(tokens, list):
            context = []
            continue
        context = [*context, *tokens][-CONTEXT_TOKENS:]
        if record.get("temperature", 0.0) > PROMPT_RESET_ON_TEMPERATURE:
            context = []
    return context


def cut_by_the_edge(cycle_start: float, window_length: float) -> bool:
    """Whether a cycle starting there (seconds into the window) saw the window's end, not the next 30 s.

    A cycle at 0 never counts: the window must move on, even one shorter than a cycle.
    """
    return 0 < cycle_start and cycle_start + CYCLE_SECONDS > window_length + FRAME_SECONDS / 2


def transcribe_windows(
    model: SpeechModel,
    blocks: Iterable[np.ndarray],
    options: DecodeOptions,
    resume: Resume | None = None,
    window_seconds: float = 240.0,
    on_language: Callable[[LanguageFound], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
    whole_file: Callable[[], Iterable[np.ndarray]] | None = None,
    between_segments: Callable[[], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield final segments (absolute times, seconds) of the audio in `blocks`, which starts at resume.start.

    `on_progress` hears the second reached after each window, also when it held no speech, so a
    caller can show progress through long silence. `between_segments` runs after each segment the
    caller took (a job gives way to shorter work there and notices a cancel), as
    engine/lane_groups.py runs its `between_calls`. `whole_file` gives the audio again from 0, read
    when the file does not fit in one window: for the feature ceiling (unless the resume carries it)
    and, on a resume, for the audio just before the first window. Without it each window is
    featurized alone.
    """
    run = _Windows(model, options, resume or Resume(), window_seconds, whole_file)
    run.on_language, run.on_progress, run.between_segments = on_language, on_progress, between_segments
    yield from run.records(blocks)


class _Windows:
    """One transcribe_windows run: where it is in the audio, the language heard, the text context and
    how its windows are featurized."""

    def __init__(
        self,
        model: SpeechModel,
        options: DecodeOptions,
        resume: Resume,
        window_seconds: float,
        whole_file: Callable[[], Iterable[np.ndarray]] | None,
    ) -> None:
        self.model, self.options, self.resume, self.whole_file = model, options, resume, whole_file
        self.on_language: Callable[[LanguageFound], None] | None = None
        self.on_progress: Callable[[float], None] | None = None
        self.between_segments: Callable[[], None] | None = None
        self.window_samples = int(window_seconds * SAMPLE_RATE)
        self.language = options.language or resume.language
        self.reported_language = resume.language is not None
        self.pending: list[np.ndarray] = []
        self.pending_samples = 0
        self.finished_input = False
        # Positions are counted in samples, so a window start read back from a journal is the same number.
        self.buffer_sample = round(resume.start * SAMPLE_RATE)
        # The first window starts from the caller's prompt; every later one from the tokens Whisper would
        # have in context there had it gone through the whole file in one transcribe.
        self.context: list[int] | None = None
        self.ceiling = resume.feature_ceiling
        self.before = np.zeros(0, dtype=np.float32)  # the EDGE samples before the window (none at the file's start)
        self.as_one_pass: bool | None = None  # whether windows are featurized as one pass's slices; decided once

    def records(self, blocks: Iterable[np.ndarray]) -> Iterator[dict[str, Any]]:
        if self.resume.start > 0:
            self.context = carried_context(prompt_tokens(self.model, self.options.initial_prompt), self.resume.earlier)
        source = iter(blocks)
        while True:
            if not self.finished_input:
                self.pending_samples, self.finished_input = read_ahead(
                    source, self.pending, self.pending_samples, self.window_samples + EDGE
                )
            if self.pending_samples == 0:
                self._report_unheard_language()
                return
            audio = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
            window = audio[: self.window_samples]
            is_last = self.finished_input and len(audio) <= self.window_samples
            kept_end = yield from self._window(audio, window, is_last)
            if kept_end is None:  # the last window
                if self.on_progress is not None:
                    self.on_progress(self.buffer_sample / SAMPLE_RATE + len(window) / SAMPLE_RATE)
                self._report_unheard_language()
                return
            self._advance(audio, window, kept_end)

    def _report_unheard_language(self) -> None:
        """No window held speech, so Whisper never said: the language asked for, or English for an English model."""
        known = self.language or (None if is_multilingual(self.model) else "en")
        if not self.reported_language and known is not None and self.on_language is not None:
            self.on_language(LanguageFound(known, 1.0))

    def _window(
        self, audio: np.ndarray, window: np.ndarray, is_last: bool
    ) -> Generator[dict[str, Any], None, float | None]:
        """Yield the window's kept records; return where the next window starts (seconds into this one),
        None after the last window."""
        buffer_start = self.buffer_sample / SAMPLE_RATE
        decoder, floored_below = self._decoder(audio, window, is_last)
        segments = self._segments(decoder, window)
        kept: list[dict[str, Any]] = []
        window_length = len(window) / SAMPLE_RATE
        held: Any = None
        kept_end = None
        restart = None
        for segment in segments:
            if not is_last and cut_by_the_edge(cycle_start(segment), window_length):
                restart = cycle_start(segment)
                break
            if held is not None:
                kept_end = held.end
                yield from self._keep(held, buffer_start, kept, floored_below)
            held = segment
        if restart is not None or is_last or kept_end is None:
            # Everything before the first cycle the edge cut came out as one pass gives it (the next
            # window starts with that cycle, from the context one pass has there); the last window keeps
            # its final segment; so does a window with zero or one segment (nothing better will come for it).
            if held is not None:
                yield from self._keep(held, buffer_start, kept, floored_below)
            if restart is not None:
                kept_end = restart
            elif is_last:
                return None
            else:
                kept_end = held.end if held is not None and 0 < held.end < window_length else window_length
        if self.context is None:
            self.context = prompt_tokens(self.model, self.options.initial_prompt)
        self.context = carried_context(self.context, kept)
        return kept_end

    def _decoder(self, audio: np.ndarray, window: np.ndarray, is_last: bool) -> tuple[SpeechModel, float | None]:
        """The model to decode the window with, and the ceiling its records say it was floored below."""
        if self.as_one_pass is None:
            # Unless the window is the whole file, featurize every window as one pass over the file does.
            self.as_one_pass = False
            whole_file = self.whole_file
            if whole_file is not None and featurizes_windows(self.model) and not (self.buffer_sample == 0 and is_last):
                if self.ceiling is None:
                    self.ceiling = feature_ceiling(feature_extractor(self.model), whole_file())
                if self.buffer_sample > 0:
                    self.before = samples_before(whole_file(), self.buffer_sample)
                self.as_one_pass = self.ceiling is not None
        if self.as_one_pass and self.ceiling is not None:
            after = audio[self.window_samples :]
            return for_window(self.model, self.ceiling, window, self.before, after), self.ceiling
        return self.model, None

    def _segments(self, decoder: SpeechModel, window: np.ndarray) -> Iterable[Any]:
        """The window's segments as the model decodes them (none where nothing may be speech)."""
        clips = speech_clips(window, self.options.vad_parameters) if self.options.vad_filter else None
        if clips == []:  # [] is nothing that may be speech: nothing to decode, no text to invent
            return ()
        segments, info = transcribe_with_words(
            decoder,
            window,
            self.options.word_timestamps,
            language=self.language,
            initial_prompt=self.options.initial_prompt if self.context is None else (self.context or None),
            clip_timestamps=clips or "0",
            **self.options.as_kwargs(),
        )
        if not self.reported_language and info is not None:
            self.reported_language = True
            if self.language is None:
                self.language = info.language
            if self.on_language is not None:
                probability = 1.0 if self.language != info.language else float(info.language_probability)
                self.on_language(LanguageFound(self.language, probability))
        return segments

    def _keep(
        self, segment: Any, offset: float, kept: list[dict[str, Any]], ceiling: float | None
    ) -> Iterator[dict[str, Any]]:
        """The segment's record, for the context, and for the caller unless a resumed run saved it."""
        record = segment_record(segment, offset, ceiling)
        kept.append(record)
        saved_until = self.resume.saved_until
        if saved_until is None or (record["start"] + record["end"]) / 2 > saved_until:
            yield record
            if self.between_segments is not None:
                self.between_segments()

    def _advance(self, audio: np.ndarray, window: np.ndarray, kept_end: float) -> None:
        """Move on to the next window, `kept_end` seconds into this one."""
        advance = max(1, min(round(kept_end * SAMPLE_RATE), len(window)))
        self.before = np.concatenate([self.before, audio[:advance]])[-EDGE:]
        rest = audio[advance:]
        self.pending = [rest] if len(rest) else []
        self.pending_samples = len(rest)
        self.buffer_sample += advance
        if self.on_progress is not None:
            self.on_progress(self.buffer_sample / SAMPLE_RATE)
