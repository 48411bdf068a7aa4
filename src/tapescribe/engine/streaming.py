"""The live streaming policy: which audio to transcribe at each step, and which words are settled.

Whisper transcribes whole windows, so a live stream keeps a sliding buffer of the audio not yet
settled and transcribes it again at each step (what Whisper-Streaming's OnlineASRProcessor does):

- **LocalAgreement-2.** A word is settled once two consecutive hypotheses agree on it and on every
  word before it. Words at the buffer's edge change from step to step; words the model has heard
  with enough context stop changing, and those are the ones that get settled. Settled words are
  never sent again, so nothing is lost or doubled at the edges: each hypothesis is cut to the words
  after the last settled one (by time, then by matching up to five words of settled text).
- **The buffer is trimmed at settled segments.** Once it is longer than `trim_after_seconds`, the
  audio up to the end of a Whisper segment whose words are all settled is dropped, so a step never
  costs more than one window however long the stream. The settled text before the buffer is the
  prompt (`prompt_chars`), as the model would have had it in one pass.
- **Voice activity decides what is worth transcribing** (Silero VAD, faster_whisper.vad). Silence
  is never transcribed: it costs one VAD pass (milliseconds) instead of an encoder pass, and it
  cannot come back as "Thank you." When speech is followed by `utterance_end_silence` of silence
  the utterance is over: the last hypothesis of it is settled at once (no second hypothesis to wait
  for: its audio is complete) and the buffer restarts after it. Pauses are what make the words
  before them final quickly.

The policy is pure: it is fed samples and asked to step; it does no I/O and keeps no clock, so the
caller chooses when to step (all audio received since the last step, which is how a stream that
the machine cannot keep up with degrades into longer steps instead of falling behind).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from tapescribe.engine.audio import SAMPLE_RATE


@dataclass(frozen=True)
class StreamingOptions:
    """How a live stream is transcribed. Defaults are tuned for tiny.en on two CPU cores."""

    language: str | None = None
    beam_size: int = 1  # greedy: about half the cost of beam 5 per step; agreement filters its wobbles
    min_step_seconds: float = 0.3  # at least this much new audio before a step (unless the stream ended)
    trim_after_seconds: float = 15.0  # past this, the buffer is trimmed at a settled segment's end
    max_buffer_seconds: float = 25.0  # past this, trimmed at the last settled word (one Whisper window)
    prompt_chars: int = 200  # settled text before the buffer, given as the prompt
    vad_threshold: float = 0.5
    utterance_end_silence: float = 0.5  # silence after speech that ends an utterance
    speech_pad: float = 0.2  # audio kept around detected speech
    vad_context_seconds: float = 1.0  # audio kept while silent, so speech starting in it is not cut
    no_speech_skip: float = 0.9  # a Whisper segment this sure it heard no speech is dropped


@dataclass(frozen=True)
class Word:
    """One word with absolute times (seconds from the start of the stream)."""

    start: float
    end: float
    text: str  # as Whisper writes it, with its leading space
    probability: float = 1.0
    starts_segment: bool = False  # first word of a Whisper segment: where a transcript segment may begin

    @property
    def key(self) -> str:
        """What two hypotheses must agree on: the word without case or punctuation."""
        return _KEY.sub("", self.text.lower())

    def as_record(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "word": self.text,
                "probability": round(self.probability, 4)}


_KEY = re.compile(r"[^\w']+")


@dataclass
class StepResult:
    """What one step produced: newly settled words (append them) and the unsettled rest (replace it)."""

    final: list[Word] = field(default_factory=list)
    partial: list[Word] = field(default_factory=list)
    transcribed: bool = False  # whether the model ran (silence costs only the VAD)
    audio_end: float = 0.0  # seconds of audio this step saw


def _ending_by(word: Word, limit: float) -> Word:
    """A word that ends by `limit` (Whisper stretches the last word of speech into the silence after it)."""
    return word if word.end <= limit else replace(word, end=max(word.start, limit))


def words_text(words: list[Word]) -> str:
    return "".join(word.text for word in words)


class LocalAgreement:
    """LocalAgreement-2 over hypotheses with absolute word times.

    `settle(hypothesis)` settles the longest common prefix of this hypothesis and the previous one
    (after the words already settled); `settle_all` trusts one hypothesis completely, for audio that
    is known to be complete (an utterance followed by silence, or the end of the stream).
    """

    OVERLAP_WORDS = 5
    TIME_SLACK = 0.1

    def __init__(self) -> None:
        self.settled_end = 0.0
        self.recent: list[Word] = []  # the last settled words, to recognise them at a hypothesis's start
        self.pending: list[Word] = []  # the previous hypothesis, after the settled words

    def unsettled(self, hypothesis: list[Word]) -> list[Word]:
        """The part of a hypothesis after what is already settled."""
        new = [word for word in hypothesis if word.start > self.settled_end - self.TIME_SLACK]
        if new and self.recent and abs(new[0].start - self.settled_end) < 1.0:
            for count in range(min(self.OVERLAP_WORDS, len(self.recent), len(new)), 0, -1):
                settled = self.recent[-count:]
                # The same words heard again start where the settled ones were; a real repetition
                # ("words words") starts after them.
                if [w.key for w in settled] == [w.key for w in new[:count]] and new[0].start < settled[-1].end + self.TIME_SLACK:
                    new = new[count:]
                    break
        return new

    def settle(self, hypothesis: list[Word], complete_before: float | None = None) -> list[Word]:
        """Settle what two hypotheses agree on, plus every word starting before `complete_before`
        (audio known to be complete). Returns the newly settled words."""
        new = self.unsettled(hypothesis)
        sure = 0
        if complete_before is not None:
            while sure < len(new) and new[sure].start < complete_before:
                sure += 1
        previous = self.pending
        if complete_before is not None:
            previous = [word for word in previous if word.start >= complete_before - self.TIME_SLACK]
        agreed = sure
        for earlier in previous:
            if agreed >= len(new) or new[agreed].key != earlier.key:
                break
            agreed += 1
        self._commit(new[:agreed])
        self.pending = new[agreed:]
        return new[:agreed]

    def settle_all(self, hypothesis: list[Word] | None = None) -> list[Word]:
        """Settle a whole hypothesis (or, with none, what the last one left pending)."""
        new = self.unsettled(hypothesis) if hypothesis is not None else self.pending
        self.pending = []
        self._commit(new)
        return new

    def _commit(self, words: list[Word]) -> None:
        if not words:
            return
        self.settled_end = max(self.settled_end, words[-1].end)
        self.recent = (self.recent + words)[-self.OVERLAP_WORDS:]


@dataclass(frozen=True)
class SpeechSpan:
    start: int  # samples, in the buffer
    end: int


class StreamingTranscriber:
    """One live stream's policy: feed samples, step when the caller wants, finish at the end.

    Not thread-safe: one caller (the stream's own worker) drives it. The model may be shared with
    other streams and jobs (faster-whisper models can be called from several threads).
    """

    def __init__(self, model: Any, options: StreamingOptions | None = None) -> None:
        self.model = model
        self.options = options or StreamingOptions()
        self.agreement = LocalAgreement()
        self.language = self.options.language
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # samples from the start of the stream
        self._received = 0
        self._stepped_until = 0  # samples seen by the last step
        self._history: list[Word] = []  # settled words, for the prompt (bounded)
        self._segment_ends: list[float] = []  # ends of the last hypothesis's Whisper segments
        self._new_utterance = True  # the next settled word begins a segment

    # -- input ---------------------------------------------------------------------------------

    def feed(self, samples: np.ndarray) -> None:
        """Append 16 kHz mono float32 samples."""
        if len(samples):
            self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
            self._received += len(samples)

    @property
    def received_seconds(self) -> float:
        return self._received / SAMPLE_RATE

    @property
    def unstepped_seconds(self) -> float:
        """Audio received since the last step: the caller steps once this is worth a step."""
        return (self._received - self._stepped_until) / SAMPLE_RATE

    @property
    def buffer_seconds(self) -> float:
        return len(self._buffer) / SAMPLE_RATE

    # -- stepping ------------------------------------------------------------------------------

    def step(self) -> StepResult:
        """Transcribe the unsettled buffer (if it holds speech) and settle what is sure."""
        return self._step(final=False)

    def finish(self) -> StepResult:
        """The stream ended: everything heard is settled."""
        return self._step(final=True)

    def _step(self, final: bool) -> StepResult:
        self._stepped_until = self._received
        result = StepResult(audio_end=self._received / SAMPLE_RATE)
        spans = self._speech_spans()
        if not spans:
            result.final = self.agreement.settle_all()
            self._remember(result, utterance_over=True)
            keep = 0 if final else int(self.options.vad_context_seconds * SAMPLE_RATE)
            self._drop(len(self._buffer) - keep)
            return result

        # Leading silence is dropped unless unsettled words still lie in it.
        first = spans[0].start
        if first > 0 and not self.agreement.pending:
            self._drop(first)
            spans = [SpeechSpan(s.start - first, s.end - first) for s in spans]

        length = len(self._buffer)
        closed = final or spans[-1].end < length
        # Audio known to be complete: up to the end of the last utterance followed by silence
        # (its words are settled from this one hypothesis), or all of it when the stream ended.
        if final:
            complete_until = length
        elif closed:
            complete_until = spans[-1].end
        elif len(spans) > 1:  # an utterance ended and another began within this step's audio
            complete_until = (spans[-2].end + spans[-1].start) // 2
        else:
            complete_until = 0
        words = self._transcribe(self._buffer)
        result.transcribed = True
        if closed:
            # Whisper sees the silence after the speech (it ends sentences better with it), but
            # nothing it writes there is kept: text in silence is a hallucination.
            speech_end = self._time(complete_until)
            heard = [_ending_by(w, speech_end) for w in words if w.start < speech_end]
            result.final = self.agreement.settle_all(heard)
            self._drop(complete_until)
        else:
            complete_before = self._time(complete_until) if complete_until else None
            if complete_before is not None:
                words = [_ending_by(w, complete_before) if w.start < complete_before else w for w in words]
            result.final = self.agreement.settle(words, complete_before)
            result.partial = list(self.agreement.pending)
            if complete_before is not None:
                self._drop(complete_until)
                for number, word in enumerate(result.final):
                    if word.start >= complete_before:  # the first word of the next utterance
                        result.final[number] = replace(word, starts_segment=True)
                        break
            self._trim()
        self._remember(result, utterance_over=closed)
        return result

    # -- pieces --------------------------------------------------------------------------------

    def _time(self, buffer_sample: int) -> float:
        return (self._buffer_start + buffer_sample) / SAMPLE_RATE

    def _speech_spans(self) -> list[SpeechSpan]:
        if len(self._buffer) < 512:
            return []
        options = VadOptions(
            threshold=self.options.vad_threshold,
            min_silence_duration_ms=int(self.options.utterance_end_silence * 1000),
            speech_pad_ms=int(self.options.speech_pad * 1000),
            min_speech_duration_ms=100,
        )
        found = get_speech_timestamps(self._buffer, options, sampling_rate=SAMPLE_RATE)
        return [SpeechSpan(int(span["start"]), int(span["end"])) for span in found]

    def _prompt(self) -> str | None:
        """Settled text before the buffer (text inside it is heard again, so it is not prompted)."""
        start = self._buffer_start / SAMPLE_RATE
        before = [word.text for word in self._history if word.end <= start + 0.01]
        text = "".join(before)[-self.options.prompt_chars:]
        return text.strip() or None

    def _transcribe(self, audio: np.ndarray) -> list[Word]:
        offset = self._buffer_start / SAMPLE_RATE
        segments, info = self.model.transcribe(
            audio,
            language=self.language,
            initial_prompt=self._prompt(),
            beam_size=self.options.beam_size,
            temperature=0.0,  # no sampling fallback: random re-decodes make hypotheses disagree
            word_timestamps=True,
            vad_filter=False,  # done above, on the whole buffer
            condition_on_previous_text=False,
        )
        words: list[Word] = []
        ends: list[float] = []
        for segment in segments:
            if segment.no_speech_prob > self.options.no_speech_skip:
                continue
            for number, word in enumerate(segment.words or []):
                words.append(Word(word.start + offset, word.end + offset, word.word, word.probability,
                                  starts_segment=number == 0))
            if segment.words:
                ends.append(segment.words[-1].end + offset)
        if self.language is None and info is not None:
            self.language = info.language
        self._segment_ends = ends
        return words

    def _trim(self) -> None:
        """Keep the buffer within one window: cut at the end of a settled segment, else at the last settled word."""
        if self.buffer_seconds <= self.options.trim_after_seconds:
            return
        settled_end = self.agreement.settled_end
        cut = None
        for end in self._segment_ends[:-1]:
            if end <= settled_end:
                cut = end
        if cut is None and self.buffer_seconds > self.options.max_buffer_seconds and settled_end > self._time(0):
            cut = settled_end
        if cut is not None:
            self._drop(int(round(cut * SAMPLE_RATE)) - self._buffer_start)

    def _drop(self, samples: int) -> None:
        samples = max(0, min(samples, len(self._buffer)))
        if samples:
            self._buffer = self._buffer[samples:].copy()
            self._buffer_start += samples

    def _remember(self, result: StepResult, utterance_over: bool) -> None:
        if result.final and self._new_utterance:
            result.final[0] = replace(result.final[0], starts_segment=True)
        if result.final:
            self._new_utterance = False
            self._history = (self._history + result.final)[-200:]
        if utterance_over:
            self._new_utterance = True
