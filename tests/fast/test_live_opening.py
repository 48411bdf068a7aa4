"""A live stream's opening held until its language is known (live/language.py), with the real models.

Silence before the first words is skipped rather than held (memory stays bounded while a stream
waits), yet the words are timed from the stream's start; nothing is captioned before the choice;
and a stream whose request fixed its model starts at once.
"""

from __future__ import annotations

import numpy as np

from conftest import audio_file, read_pcm
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.models import ModelPool, ModelSettings
from tapescribe.engine.streaming import StreamingOptions
from tapescribe.live.language import KEEP_SILENCE_SECONDS, MAX_HOLD_SECONDS, LiveLanguage

STEP = SAMPLE_RATE // 2  # half a second of audio per step


def test_silence_is_skipped_and_words_are_timed_from_the_start(tmp_path):
    models = ModelPool(tmp_path / "models", "auto", ModelSettings())
    opening = LiveLanguage(models, None, StreamingOptions())
    silence = np.zeros(SAMPLE_RATE * 20, dtype=np.float32)
    for start in range(0, len(silence), STEP):
        assert opening.policy(silence[start : start + STEP], ended=False) is None
        assert opening.held_seconds <= KEEP_SILENCE_SECONDS + 0.5  # not the 20 s heard
    speech = read_pcm(audio_file("jfk.flac"))
    policy = None
    for start in range(0, len(speech), STEP):
        policy = opening.policy(speech[start : start + STEP], ended=False)
        if policy is not None:
            heard = (start + STEP) / SAMPLE_RATE
            break
    assert policy is not None and opening.choice is not None
    assert heard <= 1.0 + MAX_HOLD_SECONDS, heard  # judged on the first seconds, not the whole clip
    assert (opening.choice.model, opening.choice.language) == ("tiny.en", "en"), opening.choice
    assert policy.received_seconds == 20 + heard
    policy.feed(speech[start + STEP :])
    words = policy.finish().final
    assert words and "country" in "".join(word.text for word in words).lower()
    assert 20.0 <= words[0].start < 21.5, words[0]  # jfk's first word is 0.3 s in; the silence counts


def test_a_fixed_model_starts_at_once(tmp_path):
    models = ModelPool(tmp_path / "models", "auto", ModelSettings())
    opening = LiveLanguage(models, "tiny.en", StreamingOptions(language="en"))
    policy = opening.policy(np.zeros(STEP, dtype=np.float32), ended=False)
    assert policy is not None and opening.choice is None and policy.received_seconds == 0.5
