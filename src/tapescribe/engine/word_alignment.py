"""Word times for segments already decoded: the text is fixed first, then its words are placed.

faster-whisper times words while it decodes (`word_timestamps=True`), and then starts each 30 s cycle
at the last word's end instead of at the last timestamp token, which changes what it decodes next: on
whispered and noisy speech that wrote more errors than its own defaults (docs/performance.md). Here
the decoding runs without word times, and its segments are aligned with faster-whisper's own step
(`WhisperModel.add_word_timestamps`: cross-attention and DTW over the decoded tokens). The text is
the decoder's, byte for byte; each segment gets `words` (start, end, word, probability) and, as
faster-whisper does, start and end moved to its first and last word unless that word looks too long.

- As decoded (`transcribe_with_words`, the windows, lanes and clip batch plans): each cycle's segments
  are aligned as soon as the cycle is decoded, before they are handed out, against the encoder output
  the decoding computed for it (faster-whisper's own unit of alignment), the DTW over the cycle up to
  TAIL_SECONDS after its last segment (engine/whisper_adapter.timing_words_as_decoded). No second
  encoder pass: that pass cost 28-45% more CPU than decoding alone.
- After decoding (`WordAligner`, `with_words`: faster-whisper's batched pipeline, whose pieces this
  module does not see encoded): groups of consecutive segments spanning at most GROUP_SECONDS, each
  against an encoder pass over its own audio, read a second time as a stream beside the segments;
  only the current group's (at most CHUNK_SECONDS, plus one block) is held, so memory does not grow
  with the file's length.

Either way `in_word_order` then moves each record to its words, none before the words already given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.base import SpeechModel
from tapescribe.engine.whisper_adapter import (
    align_words,
    end_of_text,
    is_sequential,
    timing_words_as_decoded,
    word_tokenizer,
)

CHUNK_SECONDS = 30.0  # one encoder window
LEAD_SECONDS = 0.3  # audio before a group's first segment start (Whisper's segment starts can be late)
TAIL_SECONDS = 2.0  # audio after its last segment end (the last word may outlast the timestamp)
GROUP_SECONDS = CHUNK_SECONDS - LEAD_SECONDS - TAIL_SECONDS  # segments aligned together span at most this
FRAMES_PER_SECOND = 100  # Whisper's mel frames


def _frame(seconds: float) -> int:
    return max(0, int(round(seconds * FRAMES_PER_SECOND)))


class _AudioWindow:
    """The stream of 16 kHz blocks from `origin` seconds on, of which only what is still needed is held."""

    def __init__(self, blocks: Iterable[np.ndarray], origin: float) -> None:
        self._source = iter(blocks)
        self._held: list[np.ndarray] = []
        self._start = int(round(origin * SAMPLE_RATE))  # the sample `_held` starts at
        self._samples = 0

    @property
    def start_seconds(self) -> float:
        return self._start / SAMPLE_RATE

    def slice(self, start: float, end: float) -> np.ndarray:
        """Samples from `start` to `end` seconds (fewer where the audio ends); what lies before `start` is dropped."""
        first, last = int(round(start * SAMPLE_RATE)), int(round(end * SAMPLE_RATE))
        self.forget_before(start)
        while self._start + self._samples < last:
            block = next(self._source, None)
            if block is None:
                break
            if len(block):
                self._held.append(block)
                self._samples += len(block)
        if not self._held:
            return np.zeros(0, dtype=np.float32)
        audio = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        self._held, self._samples = [audio], len(audio)
        return audio[max(0, first - self._start) : max(0, last - self._start)]

    def forget_before(self, seconds: float) -> None:
        drop = int(round(seconds * SAMPLE_RATE)) - self._start
        while drop > 0 and self._held:
            head = self._held[0]
            if drop >= len(head):
                self._held.pop(0)
                self._samples -= len(head)
                self._start += len(head)
                drop -= len(head)
            else:
                self._held[0] = head[drop:]
                self._samples -= drop
                self._start += drop
                drop = 0
        if drop > 0:  # nothing held: skip the source ahead (a stretch with no segments)
            self._start += self._skip(drop)

    def _skip(self, samples: int) -> int:
        skipped = 0
        while skipped < samples:
            block = next(self._source, None)
            if block is None:
                return skipped
            if skipped + len(block) > samples:
                rest = block[samples - skipped :]
                self._held, self._samples = [rest], len(rest)
                return samples
            skipped += len(block)
        return skipped


class WordAligner:
    """Aligns groups of decoded segments of one stream of audio with `model` (a faster_whisper.WhisperModel)."""

    def __init__(
        self, model: SpeechModel, blocks: Iterable[np.ndarray], origin: float, task: str = "transcribe"
    ) -> None:
        self.model = model
        self.task = task
        self._audio = _AudioWindow(blocks, origin)
        self._last_speech = origin  # faster-whisper's `last_speech_timestamp`: where the last words ended
        self._words_end = origin  # no word starts before the words already given (groups may overlap a little)
        self._tokenizers: dict[str | None, Any] = {}

    def _tokenizer(self, language: str | None) -> Any:
        if language not in self._tokenizers:
            self._tokenizers[language] = word_tokenizer(self.model, language, self.task)
        return self._tokenizers[language]

    def align(self, group: list[dict[str, Any]], language: str | None) -> list[dict[str, Any]]:
        """The segments of `group` (consecutive records, absolute seconds) with their words timed."""
        tokenizer = self._tokenizer(language)
        first = group[0]["start"]
        start = max(self._audio.start_seconds, min(first, max(self._last_speech, first - LEAD_SECONDS)))
        start = _frame(start) / FRAMES_PER_SECOND
        # Not the whole 30 s, as faster-whisper aligns a cycle: there the DTW stretched the last word over
        # the speech after it (" there's" 24.38-29.96 s on tests/fast/test_word_alignment.py's reading)
        end = min(start + CHUNK_SECONDS, max(record["end"] for record in group) + TAIL_SECONDS)
        audio = self._audio.slice(start, end)
        parts = [_part(record, tokenizer, start) for record in group]
        if len(audio) < SAMPLE_RATE // FRAMES_PER_SECOND or not any(_text_tokens(part, tokenizer) for part in parts):
            return [{**record, "words": []} for record in group]
        self._last_speech = align_words(
            self.model, audio, parts, tokenizer, int(CHUNK_SECONDS * FRAMES_PER_SECOND), self._last_speech
        )
        self._audio.forget_before(group[-1]["start"])  # the next group may start a little before this one's end
        timed = []
        for record, part in zip(group, parts, strict=True):
            timed.append(_timed(record, part, self._words_end))
            self._words_end = max(self._words_end, timed[-1]["end"])
        return timed


def _part(record: dict[str, Any], tokenizer: Any, chunk_start: float) -> dict[str, Any]:
    """A record as faster-whisper's add_word_timestamps takes a segment: times absolute, `seek` the chunk's."""
    tokens = record.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        tokens = tokenizer.encode(record["text"]) if record["text"].strip() else []
    return {"seek": _frame(chunk_start), "start": record["start"], "end": record["end"], "tokens": list(tokens)}


def _text_tokens(part: dict[str, Any], tokenizer: Any) -> list[int]:
    return [token for token in part["tokens"] if token < end_of_text(tokenizer)]


def _timed(record: dict[str, Any], part: dict[str, Any], floor: float) -> dict[str, Any]:
    """The record with the aligned times, none before `floor`: its words, and its start and end where
    faster-whisper moved them."""
    start = max(round(float(part["start"]), 3), floor)
    end = max(round(float(part["end"]), 3), start)
    words = []
    for word in part.get("words") or []:
        first = min(max(round(float(word["start"]), 3), start), end)
        words.append(
            {
                "start": first,
                "end": max(min(round(float(word["end"]), 3), end), first),
                "word": word["word"],
                "probability": round(float(word["probability"]), 4),
            }
        )
    # a resumed job skips the re-decoded segments that end by the decoder's end of the last one saved
    return {**record, "start": start, "end": end, "words": words, "decoded_end": record["end"]}


def with_words(
    segments: Iterable[dict[str, Any]],
    aligner: WordAligner,
    language: Callable[[], str | None],
) -> Iterator[dict[str, Any]]:
    """`segments` as they come (time order), each with its words, in groups of at most GROUP_SECONDS;
    `language` says the language decoded (known once the first segment is)."""
    group: list[dict[str, Any]] = []
    for record in segments:
        if group and record["end"] - group[0]["start"] > GROUP_SECONDS:
            yield from aligner.align(group, language())
            group = []
        group.append(record)
    if group:
        yield from aligner.align(group, language())


@dataclass(frozen=True)
class TimedWord:
    start: float
    end: float
    word: str
    probability: float


class WordTimed:
    """A segment as faster-whisper decoded it, every attribute its own (the plans' windows and lanes go
    by the decoder's times), with its words and where they put its start and end (`word_bounds`), in
    seconds of the audio given to `transcribe`. engine/transcriber.segment_record keeps both."""

    def __init__(self, segment: Any, words: list[TimedWord], bounds: tuple[float, float]) -> None:
        self._segment = segment
        self.words = words
        self.word_bounds = bounds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._segment, name)


def transcribe_with_words(
    model: SpeechModel, audio: np.ndarray, words: bool, **kwargs: Any
) -> tuple[Iterable[Any], Any]:
    """`model.transcribe(audio, **kwargs)`; with `words`, its segments as WordTimed, each cycle's words
    timed as soon as the cycle is decoded, against the encoder output the decoding made for it. A model
    that is not faster-whisper's sequential one (the batched pipeline) gives its segments as they are."""
    if not words or not is_sequential(model):
        return model.transcribe(audio, **kwargs)
    timing, words_of = timing_words_as_decoded(model, TAIL_SECONDS)
    segments, info = timing.transcribe(audio, **kwargs)
    return (_word_timed(segment, words_of(segment)) for segment in segments), info


def _word_timed(segment: Any, timing: tuple[list[dict[str, Any]], float, float] | None) -> Any:
    if timing is None:
        return segment
    words, start, end = timing
    timed = [TimedWord(float(w["start"]), float(w["end"]), w["word"], float(w["probability"])) for w in words]
    return WordTimed(segment, timed, (start, end))


def in_word_order(records: Iterable[dict[str, Any]], floor: float) -> Iterator[dict[str, Any]]:
    """Records as they come; those whose words the decoding timed (`word_bounds`, absolute seconds)
    moved to their words, none before the words of the records before them (or `floor`)."""
    for record in records:
        bounds = record.pop("word_bounds", None)
        if bounds is None:
            yield record
            continue
        timed = _timed(record, {"start": bounds[0], "end": bounds[1], "words": record.get("words") or []}, floor)
        floor = max(floor, timed["end"])
        yield timed
