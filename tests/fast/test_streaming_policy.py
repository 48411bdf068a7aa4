"""The live streaming policy (engine/streaming.py) on hypotheses written out per step.

A scripted model stands in for Whisper inside engine/whisper_adapter.py (decode_window): it has the parts of
faster-whisper's WhisperModel that decode_window calls (feature extractor, encoder, generator,
segment split, word alignment) and answers each buffer with the words a script gives for the
audio it was handed. Voice activity is still found by Silero VAD on real speech (25 s of the
shared recordings without a pause), so the steps see the audio a live stream sees; only the
words are scripted. This pins the settling rules on exact inputs: the words of the script settle
once each and in order across trims of the buffer, an unstable last word is never settled, a
word settles within a bounded delay, the buffer stays within one Whisper window, and the end of
an utterance is decoded with the final beam and settled at once.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tokenizers

from conftest import audio_file, read_pcm
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.models import resolve_model
from tapescribe.engine.streaming import StreamingOptions, StreamingTranscriber

SPEECH = [f"sense_and_sensibility_01_austen_64kb-{number}.wav" for number in ("0870", "0880", "0890", "0920", "0930")]
STEP_SECONDS = 0.5
WORD_SECONDS = 0.4  # a scripted word every 0.4 s, 0.3 s long
WORDS_PER_SEGMENT = 6
UNSTABLE_SECONDS = 0.6  # a word ending this close to the buffer's end is heard differently at each step


class Features:
    """The feature extractor's interface; the audio it is handed is what the scripted model answers."""

    time_per_frame = 0.01

    def __init__(self) -> None:
        self.audio: np.ndarray | None = None

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        self.audio = audio
        return np.zeros((80, len(audio) // 160 + 1), dtype=np.float32)


class ScriptedWhisper:
    """faster-whisper's WhisperModel as decode_window uses it, answering from `script(start, end, step)`.

    The buffer's place in the stream is found by looking its samples up in the whole signal, so the
    script works in stream time, as a transcript does.
    """

    max_length = 448
    model = SimpleNamespace(is_multilingual=False)

    def __init__(self, signal: np.ndarray, script) -> None:
        self.signal = signal
        self.script = script
        tiny = resolve_model("tiny.en", Path("unused"))
        self.hf_tokenizer = tokenizers.Tokenizer.from_file(str(tiny / "tokenizer.json"))  # the real one
        self.feature_extractor = Features()
        self.calls: list[dict] = []  # each buffer handed in: start, end (stream seconds) and beam size
        self._segments: list[dict] = []

    def _buffer_start(self, audio: np.ndarray) -> int:
        for candidate in np.flatnonzero(self.signal == audio[0]):
            if np.array_equal(self.signal[candidate : candidate + len(audio)], audio):
                return int(candidate)
        raise AssertionError("the policy handed the model audio that is not part of the stream")

    def encode(self, features):
        return None

    def get_prompt(self, tokenizer, previous_tokens) -> list[int]:
        return list(tokenizer.sot_sequence)

    def generate_with_fallback(self, encoder_output, prompt, tokenizer, options):
        audio = self.feature_extractor.audio
        start = self._buffer_start(audio) / SAMPLE_RATE
        end = start + len(audio) / SAMPLE_RATE
        self.calls.append({"start": start, "end": end, "beam_size": options.beam_size})
        segments = self.script(start, end, len(self.calls))
        self._segments = [
            {
                "seek": 0,
                "start": words[0][1] - start,
                "end": words[-1][2] - start,
                "tokens": tokenizer.encode("".join(" " + text for text, _, _ in words)),
                "words": [
                    {
                        "word": " " + text,
                        "start": round(word_start - start, 3),
                        "end": round(word_end - start, 3),
                        "probability": 0.9,
                    }
                    for text, word_start, word_end in words
                ],
            }
            for words in segments
            if words
        ]
        tokens = [token for segment in self._segments for token in segment["tokens"]]
        return SimpleNamespace(sequences_ids=[tokens], no_speech_prob=0.01), -0.2, 0.0, 1.2

    def _split_segments_by_timestamps(self, tokenizer, tokens, time_offset, size, duration, seek):
        return (
            [{key: value for key, value in segment.items() if key != "words"} for segment in self._segments],
            0,
            False,
        )

    def add_word_timestamps(self, segment_groups, *args, **kwargs):
        for segment, scripted in zip(segment_groups[0], self._segments, strict=True):
            segment["words"] = scripted["words"]


def speech_then_silence() -> tuple[np.ndarray, float]:
    speech = np.concatenate([read_pcm(audio_file(name)) for name in SPEECH])
    # Faint noise instead of digital silence, so every buffer can be found in the signal; VAD hears silence.
    pause = np.random.default_rng(7).normal(0, 1e-4, 2 * SAMPLE_RATE).astype(np.float32)
    return np.concatenate([speech, pause]), len(speech) / SAMPLE_RATE


SIGNAL, SPEECH_END = speech_then_silence()
TRUTH = [
    (f"w{number}", round(0.3 + number * WORD_SECONDS, 3), round(0.3 + number * WORD_SECONDS + 0.3, 3))
    for number in range(int((SPEECH_END - 0.8) / WORD_SECONDS))
]


def stable_script(start: float, end: float, step: int) -> list[list[tuple[str, float, float]]]:
    """The words heard in [start, end], in segments of six; the last one is unsure while it is at the edge."""
    segments: dict[int, list] = {}
    for number, (text, word_start, word_end) in enumerate(TRUTH):
        if word_start >= start - 0.01 and word_end <= end:
            segments.setdefault(number // WORDS_PER_SEGMENT, []).append((text, word_start, word_end))
    heard = list(segments.values())
    if heard and end - heard[-1][-1][2] < UNSTABLE_SECONDS and end < SPEECH_END + 0.5:
        text, word_start, word_end = heard[-1][-1]
        heard[-1][-1] = (f"{text}-guess{step}", word_start, word_end)
    return heard


def stream(model, options: StreamingOptions) -> dict:
    policy = StreamingTranscriber(model, options)
    steps = []
    size = int(STEP_SECONDS * SAMPLE_RATE)
    for position in range(0, len(SIGNAL), size):
        policy.feed(SIGNAL[position : position + size])
        calls = len(model.calls)
        result = policy.step()
        steps.append(
            {
                "fed": policy.received_seconds,
                "final": result.final,
                "partial": result.partial,
                "buffer": policy.buffer_seconds,
                "calls": model.calls[calls:],
            }
        )
    return {"steps": steps, "finished": policy.finish()}


@pytest.fixture(scope="module")
def stable():
    model = ScriptedWhisper(SIGNAL, stable_script)
    return stream(model, StreamingOptions(language="en")), model


def settled_words(run: dict) -> list:
    return [word for step in run["steps"] for word in step["final"]] + run["finished"].final


def test_every_scripted_word_settles_once_in_order_with_its_times(stable):
    run, _ = stable
    words = settled_words(run)
    assert [(word.text.strip(), round(word.start, 3), round(word.end, 3)) for word in words] == TRUTH
    assert not any("guess" in word.text for step in run["steps"] for word in step["final"])


def test_a_word_settles_once_later_hypotheses_agree_on_it(stable):
    run, _ = stable
    for step in run["steps"]:
        for word in step["final"]:
            assert step["fed"] >= word.end + UNSTABLE_SECONDS  # never while it was still unsure
            if step["fed"] < SPEECH_END:  # before the pause: by agreement, within a bounded delay
                assert step["fed"] <= word.end + UNSTABLE_SECONDS + 0.7 + 2 * STEP_SECONDS, (word, step["fed"])


def test_the_buffer_is_trimmed_at_settled_segment_ends(stable):
    run, model = stable
    assert max(step["buffer"] for step in run["steps"]) <= 15.0 + STEP_SECONDS
    segment_ends = {TRUTH[number][2] for number in range(WORDS_PER_SEGMENT - 1, len(TRUTH), WORDS_PER_SEGMENT)}
    starts = sorted({round(call["start"], 3) for call in model.calls})
    trimmed = [start for start in starts if start > 1.0]
    assert trimmed and set(trimmed) <= segment_ends  # cut only where a segment whose words are settled ends


def test_the_end_of_an_utterance_is_decoded_with_the_final_beam_and_settled_at_once(stable):
    run, _ = stable
    closing = next(step for step in run["steps"] if any(call["beam_size"] == 5 for call in step["calls"]))
    assert SPEECH_END + 0.6 <= closing["fed"] <= SPEECH_END + 1.0 + STEP_SECONDS  # the pause shows it ended
    assert [call["beam_size"] for call in closing["calls"]] == [5]
    assert closing["final"] and closing["partial"] == []
    assert closing["final"][-1].text.strip() == TRUTH[-1][0]
    earlier = [call["beam_size"] for step in run["steps"] if step["fed"] < SPEECH_END for call in step["calls"]]
    assert earlier and set(earlier) == {1}
    later = [step for step in run["steps"] if step["fed"] > closing["fed"]]
    assert all(not step["calls"] and not step["final"] for step in later)  # silence: no model call


def test_without_agreement_the_buffer_still_stays_within_one_window():
    """Hypotheses that never agree (every one hears the first word differently) would grow the buffer
    for ever; past max_buffer_seconds the current hypothesis is trusted up to its last segment."""

    def flickering(start, end, step):
        segments = stable_script(start, end, step)
        if segments:
            text, word_start, word_end = segments[0][0]
            segments[0][0] = (f"{text.split('-')[0]}-guess{step}", word_start, word_end)
        return segments

    model = ScriptedWhisper(SIGNAL, flickering)
    run = stream(model, StreamingOptions(language="en", max_buffer_seconds=12.0, trim_after_seconds=6.0))
    assert max(step["buffer"] for step in run["steps"]) <= 12.0 + STEP_SECONDS
    forced = [word for step in run["steps"] if step["fed"] < SPEECH_END for word in step["final"]]
    assert forced, "words are settled to make room"
    words = settled_words(run)
    times = [(round(word.start, 3), round(word.end, 3)) for word in words]
    assert times == [(start, end) for _, start, end in TRUTH]  # none lost or doubled at the forced cuts
