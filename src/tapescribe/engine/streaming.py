"""The live streaming policy: which audio to transcribe at each step, and which words are settled.

Whisper transcribes whole windows, so a live stream keeps a sliding buffer of the audio not yet
settled and transcribes it again at each step (what Whisper-Streaming's OnlineASRProcessor does):

- **LocalAgreement** (engine/agreement.py). A word is settled once the hypotheses made over the
  last `agreement_seconds` of audio agree on it and on every word before it (LocalAgreement-2 with
  a time span: steps come every few tenths of a second, and two hypotheses that close agree on
  early guesses); a word `patience` seconds behind the audio needs only the previous hypothesis.
  Settled words are never sent again: a hypothesis begins with the settled words still inside the
  buffer, heard again, and they are cut off by matching their text (by time when it differs), so
  nothing is lost or doubled at the edges.
- **The buffer is trimmed at settled segments.** Once it is longer than `trim_after_seconds`, the
  audio up to the end of a Whisper segment whose words are all settled is dropped, so a step never
  costs more than one window however long the stream. No text prompt is given: a prompt of the
  last 200 characters of settled text made tiny.en write what followed the prompt rather than
  what was said.
- **Voice activity decides what is worth transcribing** (Silero VAD, faster_whisper.vad). Silence
  is never transcribed: it costs one VAD pass (milliseconds) instead of an encoder pass, and it
  cannot come back as "Thank you." When speech is followed by `utterance_end_silence` of silence
  the utterance is over: the last hypothesis of it is settled at once (no second hypothesis to wait
  for: its audio is complete; decoded with `final_beam_size`) and the buffer restarts after it.
  Pauses are what make the words before them final quickly.
- **A decoding loop costs little.** Each step may write at most ten tokens per second of audio,
  and text that repeats itself or stacks words on one instant is cut off (the token limit is set in
  whisper_adapter.decode_window, the cut made by agreement.without_loops).

The policy is pure: it is fed samples and asked to step; it does no I/O and keeps no clock, so the
caller chooses when to step (all audio received since the last step, which is how a stream that
the machine cannot keep up with degrades into longer steps instead of falling behind).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tapescribe.engine.agreement import LocalAgreement, Word, ending_by, without_loops, without_trailing_hallucination
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.base import SpeechModel
from tapescribe.engine.whisper_adapter import decode_window, speech_timestamps, stream_language


@dataclass(frozen=True)
class StreamingOptions:
    """How a live stream is transcribed. Defaults are tuned for tiny.en on two CPU cores."""

    language: str | None = None
    beam_size: int = 1  # greedy: about half the cost of beam 5 per step; agreement filters its wobbles
    final_beam_size: int = 5  # for an utterance's last hypothesis, which is settled without agreement
    agreement_seconds: float = 0.7  # a word is settled once every hypothesis over this much audio agrees
    min_heard_seconds: float = 1.5  # nothing is agreed on while the buffer is shorter ("How do you marry")
    min_step_seconds: float = 0.3  # at least this much new audio before a step (unless the stream ended)
    trim_after_seconds: float = 15.0  # past this, the buffer is trimmed at a settled segment's end
    max_buffer_seconds: float = 25.0  # past this, trimmed at the last settled word (one Whisper window)
    vad_threshold: float = 0.5
    utterance_end_silence: float = 0.6  # silence after speech that ends an utterance
    speech_pad: float = 0.2  # audio kept around detected speech
    vad_context_seconds: float = 1.0  # audio kept while silent, so speech starting in it is not cut
    # A pause up to this long before new speech stays in the buffer; a longer one is dropped. (Keeping
    # 3 s of the settled speech before it as well gave WER 4.9% against 3.5% on bench/audio/minute.wav.)
    short_pause_seconds: float = 1.0


@dataclass
class StepResult:
    """What one step produced: newly settled words (append them) and the unsettled rest (replace it)."""

    final: list[Word] = field(default_factory=list)
    partial: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class SpeechSpan:
    start: int  # samples, in the buffer
    end: int


class StreamingTranscriber:
    """One live stream's policy: feed samples, step when the caller wants, finish at the end.

    Not thread-safe: one caller (the stream's own worker) drives it. The model may be shared with
    other streams and jobs (faster-whisper models can be called from several threads).
    """

    def __init__(self, model: SpeechModel, options: StreamingOptions | None = None) -> None:
        self.model = model
        self.options = options or StreamingOptions()
        self.agreement = LocalAgreement(self.options.agreement_seconds, min_heard=self.options.min_heard_seconds)
        self.language = self.options.language
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # samples from the start of the stream
        self._received = 0
        self._segment_ends: list[float] = []  # ends of the last hypothesis's Whisper segments
        self._new_utterance = True  # the next settled word begins a segment
        self._closed_until = 0  # samples: end of the last utterance settled whole
        self._in_utterance = False
        self._short_pause = int(self.options.short_pause_seconds * SAMPLE_RATE)

    # -- input ---------------------------------------------------------------------------------

    def feed(self, samples: np.ndarray) -> None:
        """Append 16 kHz mono float32 samples."""
        if len(samples):
            self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
            self._received += len(samples)

    def skip(self, samples: int) -> None:
        """Count `samples` heard but not kept, before any were fed (silence a stream held back while it
        listened for its language), so that later words are timed from the stream's start."""
        if len(self._buffer):
            raise ValueError("skip() only comes before the first feed()")
        self._buffer_start += max(0, samples)
        self._received += max(0, samples)

    @property
    def received_seconds(self) -> float:
        return self._received / SAMPLE_RATE

    @property
    def buffer_seconds(self) -> float:
        return len(self._buffer) / SAMPLE_RATE

    @property
    def in_utterance(self) -> bool:
        """The last step heard speech that goes on: the next step decodes it again (between
        utterances a step costs the VAD pass only)."""
        return self._in_utterance

    # -- stepping ------------------------------------------------------------------------------

    def step(self) -> StepResult:
        """Transcribe the unsettled buffer (if it holds speech) and settle what is sure."""
        return self._step(final=False)

    def finish(self) -> StepResult:
        """The stream ended: everything heard is settled."""
        return self._step(final=True)

    def _step(self, final: bool) -> StepResult:
        result = StepResult()
        heard = max(0, self._closed_until - self._buffer_start)  # audio before this is settled
        spans = [span for span in self._speech_spans() if span.end > heard]
        self._in_utterance = False
        if not spans:  # silence: costs the VAD pass only
            result.final = self.agreement.settle_all()
            self._remember(result, utterance_over=True)
            keep = 0 if final else int(self.options.vad_context_seconds * SAMPLE_RATE)
            self._drop(len(self._buffer) - keep)
            return result

        # Audio before the new speech is dropped, except a short pause after the last utterance.
        first = spans[0].start
        if heard and first - heard <= self._short_pause:
            first = min(first, heard)
        if first > 0 and not self.agreement.pending:
            self._drop(first)
            heard = max(0, heard - first)
            spans = [SpeechSpan(span.start - first, span.end - first) for span in spans]

        # Audio known to be complete: all of it when the stream ended; else up to the end of an
        # utterance followed by enough silence (the last span, or one before a new utterance).
        closed = final or spans[-1].end < len(self._buffer)
        self._in_utterance = not closed
        complete = self._complete(spans, final, closed)
        complete_time = self._time(complete)

        words = self._transcribe(self._buffer, final_pass=closed)
        if complete:
            # Whisper stretches the last word of speech into the silence after it; anything it
            # writes inside that silence of a closed utterance is not speech.
            words = [ending_by(word, complete_time) for word in words if not closed or word.start < complete_time]
        if complete:
            self._closed_until = self._buffer_start + complete
        if closed:
            result.final = self.agreement.settle_all(without_trailing_hallucination(words), self._time(0))
            self._drop(complete)
        else:
            self._settle_open(result, words, complete)
        self._remember(result, utterance_over=closed)
        return result

    def _complete(self, spans: list[SpeechSpan], final: bool, closed: bool) -> int:
        """Samples of the buffer known to be complete (0: none)."""
        if final:
            return len(self._buffer)
        if closed:
            return spans[-1].end
        if len(spans) > 1:
            return (spans[-2].end + spans[-1].start) // 2
        return 0

    def _settle_open(self, result: StepResult, words: list[Word], complete: int) -> None:
        """Settle what agrees while an utterance goes on; `complete` samples of it (0: none) are done."""
        complete_time = self._time(complete)
        result.final = self.agreement.settle(
            words, self._time(len(self._buffer)), complete_time if complete else None, buffer_start=self._time(0)
        )
        if complete:
            self._drop(complete)
            for number, word in enumerate(result.final):
                if word.start >= complete_time:  # the first word of the next utterance
                    result.final[number] = replace(word, starts_segment=True)
                    break
        result.final += self._trim()
        result.partial = list(self.agreement.pending)

    # -- pieces --------------------------------------------------------------------------------

    def _time(self, buffer_sample: int) -> float:
        return (self._buffer_start + buffer_sample) / SAMPLE_RATE

    def _speech_spans(self) -> list[SpeechSpan]:
        if len(self._buffer) < 512:
            return []
        found = speech_timestamps(
            self._buffer,
            threshold=self.options.vad_threshold,
            min_silence_duration_ms=int(self.options.utterance_end_silence * 1000),
            speech_pad_ms=int(self.options.speech_pad * 1000),
            min_speech_duration_ms=100,
        )
        return [SpeechSpan(int(span["start"]), int(span["end"])) for span in found]

    def _transcribe(self, audio: np.ndarray, final_pass: bool = False) -> list[Word]:
        offset = self._buffer_start / SAMPLE_RATE
        if self.language is None:
            self.language = stream_language(self.model, audio)
        segments = decode_window(
            self.model,
            audio,
            language=self.language,
            beam_size=self.options.final_beam_size if final_pass else self.options.beam_size,
        )
        words: list[Word] = []
        ends: list[float] = []
        for segment in segments:
            for number, word in enumerate(segment["words"]):
                found = Word(
                    word["start"] + offset,
                    word["end"] + offset,
                    word["word"],
                    word["probability"],
                    starts_segment=number == 0,
                )
                if not found.key and words:  # bare punctuation: part of the word before it
                    words[-1] = replace(words[-1], text=words[-1].text + found.text.strip(), end=found.end)
                elif found.key:
                    words.append(found)
            if segment["words"]:
                ends.append(segment["words"][-1]["end"] + offset)
        self._segment_ends = ends
        return without_loops(words)

    def _trim(self) -> list[Word]:
        """Keep the buffer within one Whisper window; returns words settled to make room.

        Normally the cut is at the end of a Whisper segment whose words are all settled. A stream
        that outruns agreement (very long steps on a busy machine, speech without pauses) would grow
        past one window; then the current hypothesis is trusted up to its last segment.
        """
        if self.buffer_seconds <= self.options.trim_after_seconds:
            return []
        settled_end = self.agreement.settled_end
        cut = None
        for end in self._segment_ends:  # the last one too, once all its words are settled
            if end <= settled_end + 0.01:
                cut = end
        forced: list[Word] = []
        if cut is None and self.buffer_seconds > self.options.max_buffer_seconds:
            if len(self._segment_ends) > 1:
                cut = self._segment_ends[-2]
            else:
                cut = self._time(len(self._buffer)) - self.options.trim_after_seconds
            forced = self.agreement.settle_pending_until(cut)
        if cut is not None:
            self._drop(int(round(cut * SAMPLE_RATE)) - self._buffer_start)
        return forced

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
        if utterance_over:
            self._new_utterance = True
