"""The live streaming policy (engine/streaming.py) with the real tiny.en model on real speech.

test_streaming_policy.py pins the settling rules on scripted hypotheses; this checks that they hold
with the model's own words (about a dozen short steps), wrapped only to count its encoder passes:
silence never reaches the model, an utterance followed by a pause is settled at once and whole, no
word is settled twice, each utterance starts a segment, `finish` settles everything, and the
policy says while an utterance goes on (a stream keeps the scheduler's live priority meanwhile).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import audio_file, read_pcm, reference_text, wer
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.streaming import StreamingOptions, StreamingTranscriber

STEP_SECONDS = 1.0


class CountedModel:
    """The real model; its encoder passes are counted (one per step that transcribes)."""

    def __init__(self, model) -> None:
        self._whisper = model  # not `model`: faster-whisper's own `model` attribute must show through
        self.encodes = 0

    def encode(self, features):
        self.encodes += 1
        return self._whisper.encode(features)

    def __getattr__(self, name):
        return getattr(self._whisper, name)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


@pytest.fixture(scope="module")
def streamed(library_model):
    """1 s of silence, "Go forward ten meters", a pause, a sentence, then silence: fed a second at a time."""
    first, second = read_pcm(audio_file("goforward.wav")), read_pcm(audio_file("leopard_test.wav"))
    audio = np.concatenate([silence(1.0), first, silence(1.2), second, silence(3.0)])
    first_end = (SAMPLE_RATE + len(first)) / SAMPLE_RATE
    second_start = first_end + 1.2
    second_end = second_start + len(second) / SAMPLE_RATE
    model = CountedModel(library_model)
    policy = StreamingTranscriber(model, StreamingOptions(language="en"))
    steps = []
    step_samples = int(STEP_SECONDS * SAMPLE_RATE)
    for position in range(0, len(audio), step_samples):
        policy.feed(audio[position : position + step_samples])
        encodes = model.encodes
        result = policy.step()
        steps.append(
            {
                "fed": policy.received_seconds,
                "final": result.final,
                "partial": result.partial,
                "encoded": model.encodes - encodes,
                "buffer": policy.buffer_seconds,
                "in_utterance": policy.in_utterance,
            }
        )
    finished = policy.finish()
    return {
        "steps": steps,
        "finished": finished,
        "first_end": first_end,
        "second_start": second_start,
        "second_end": second_end,
        "seconds": len(audio) / SAMPLE_RATE,
        "policy": policy,
    }


def words_text(words) -> str:
    return "".join(word.text for word in words).strip()


def settled(steps, until: float) -> list:
    return [word for step in steps if step["fed"] <= until for word in step["final"]]


def test_silence_never_reaches_the_model(streamed):
    steps = streamed["steps"]
    assert steps[0]["encoded"] == 0 and steps[0]["final"] == [] and steps[0]["partial"] == []
    # Once the second utterance is settled, the silence after it costs a VAD pass only.
    after = [step for step in steps if step["fed"] >= streamed["second_end"] + 2.0]
    assert after and all(step["encoded"] == 0 and not step["final"] and not step["partial"] for step in after)
    assert all(step["encoded"] <= 1 for step in steps)  # one encoder pass per step at most
    assert streamed["finished"].final == [] and streamed["policy"].buffer_seconds <= 1.0


def test_an_utterance_followed_by_a_pause_is_settled_at_once_and_whole(streamed):
    steps = streamed["steps"]
    paused = next(step for step in steps if step["fed"] >= streamed["first_end"] + 1.0)
    assert paused["partial"] == []  # nothing of it is left waiting for agreement
    first = settled(steps, paused["fed"])
    assert wer([reference_text("goforward.wav")], [words_text(first)]) == 0
    assert first[0].starts_segment
    assert paused["buffer"] <= paused["fed"] - streamed["first_end"]  # only the pause after it is left


def test_it_says_while_an_utterance_goes_on(streamed):
    """Between utterances a stream lets long jobs go on; within one its next step is due at once."""
    steps = streamed["steps"]
    first_end, second_start, second_end = streamed["first_end"], streamed["second_start"], streamed["second_end"]
    assert not steps[0]["in_utterance"]  # silence
    assert any(step["in_utterance"] for step in steps if step["fed"] < first_end)
    assert not next(step for step in steps if step["fed"] >= first_end + 1.0)["in_utterance"]  # the pause
    assert any(step["in_utterance"] for step in steps if second_start + 1.0 < step["fed"] < second_end)
    assert not any(step["in_utterance"] for step in steps if step["fed"] >= second_end + 1.0)


def test_every_word_is_settled_once_in_order(streamed):
    steps = streamed["steps"]
    words = settled(steps, streamed["seconds"]) + streamed["finished"].final
    starts = [word.start for word in words]
    assert starts == sorted(starts)
    assert all(word.start < word.end or word.start == word.end for word in words)
    text = words_text(words)
    both = reference_text("goforward.wav") + " " + reference_text("leopard_test.wav")
    assert wer([both], [text]) < 15, text
    second = [word for word in words if word.start >= streamed["second_start"] - 0.3]
    assert second and second[0].starts_segment  # the new utterance begins a segment
    assert all(word.end <= streamed["second_end"] + 0.5 for word in words)  # none in the trailing silence
