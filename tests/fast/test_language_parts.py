"""How the router finds the speech it judges a language on (engine/language_detection.py), Silero VAD only."""

from __future__ import annotations

import numpy as np

from conftest import audio_file, read_pcm
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.language_detection import FIRST_SCAN_SECONDS, SCAN_SECONDS, gather_parts, speech_only


def test_speech_after_a_long_silence_is_still_found():
    """The first 30 s of a slice are searched first; when they hold no speech the rest is searched."""
    speech = read_pcm(audio_file("acoustic_corpus.wav"))
    silence = np.zeros(int((FIRST_SCAN_SECONDS + 10) * SAMPLE_RATE), dtype=np.float32)
    part = np.concatenate([silence, speech])[: int(SCAN_SECONDS * SAMPLE_RATE)]
    found = speech_only(part)
    assert len(found) == 10 * SAMPLE_RATE
    assert np.mean(found != 0) > 0.9  # the recording, not the silence before it


def test_parts_are_read_in_one_pass_and_no_further_than_needed():
    audio = np.arange(100 * SAMPLE_RATE, dtype=np.float32)
    blocks = (audio[start : start + 4000] for start in range(0, len(audio), 4000))
    first, second = gather_parts(blocks, [0.0, 50.0], scan_seconds=20.0)
    assert np.array_equal(first, audio[: 20 * SAMPLE_RATE])
    assert np.array_equal(second, audio[50 * SAMPLE_RATE : 70 * SAMPLE_RATE])
