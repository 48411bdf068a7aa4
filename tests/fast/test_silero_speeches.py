"""Silero VAD in bounded batches finds the same speech as faster-whisper's own pass, with bounded memory.

faster-whisper's get_speech_timestamps runs Silero over the whole audio at once (80 MiB while it runs on
a 240 s lane); whisper_adapter.speech_timestamps runs the same session VAD_BATCH windows at a time
(engine/silero_speeches.py). Real speech of several lengths (across our 250-window batches and the library's
10,000-window one, and ending at every kind of window edge), as it is and evened out as the lanes hear it,
with the options the server uses and others that reach every branch of the library's walk."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from faster_whisper.vad import VadOptions, get_speech_timestamps

from conftest import audio_file, read_pcm
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.speech_regions import evened_level
from tapescribe.engine.transcriber import KEEP_SOFT_SPEECH_VAD
from tapescribe.engine.whisper_adapter import speech_probabilities, speech_timestamps

RECORDINGS = [
    "acoustic_corpus.wav",
    "leopard_test.wav",
    "sense_and_sensibility_01_austen_64kb-0870.wav",
    "vosk_digits.wav",
]
OPTIONS = [
    KEEP_SOFT_SPEECH_VAD,
    {},
    {"max_speech_duration_s": 6.0, "min_speech_duration_ms": 250, "min_silence_duration_ms": 500},
    {"threshold": 0.3, "neg_threshold": 0.2, "speech_pad_ms": 100, "min_silence_duration_ms": 300},
]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 340 s of real speech with pauses and a quiet stretch (more than the library's 10,000 windows)."""
    parts: list[np.ndarray] = []
    for turn in range(4):
        for name in RECORDINGS:
            audio = read_pcm(audio_file(name))[: 30 * SAMPLE_RATE]
            parts += [audio * (0.05 if turn == 2 else 1.0), np.zeros(SAMPLE_RATE * (1 + turn), dtype=np.float32)]
    return np.concatenate(parts)[: 340 * SAMPLE_RATE]


@pytest.mark.parametrize(("seconds", "tail"), [(2.5, 0), (2.5, 500), (61.0, 0), (61.0, 100), (330.0, 500)])
def test_the_same_speech_as_the_library(speech: np.ndarray, seconds: float, tail: int) -> None:
    audio = speech[: int(seconds * SAMPLE_RATE) // 512 * 512 + tail]
    for heard in (audio, evened_level(audio)):
        for options in OPTIONS:
            assert speech_timestamps(heard, **options) == get_speech_timestamps(heard, VadOptions(**options))


def test_the_same_probabilities_to_the_bit(speech: np.ndarray) -> None:
    from faster_whisper.vad import get_vad_model

    audio = speech[: 330 * SAMPLE_RATE + 77]
    padded = np.pad(audio, (0, 512 - len(audio) % 512))
    assert np.array_equal(speech_probabilities(audio), get_vad_model()(padded))


PEAK = """
import sys
import numpy as np
from tapescribe.engine.audio import pcm_blocks
from tapescribe.engine.whisper_adapter import speech_timestamps
from tapescribe.process_memory import peak_mib
audio = np.concatenate(list(pcm_blocks(sys.argv[1])))
lane = np.tile(audio, 10)[: 16000 * 240]  # a 240 s lane of real speech
speech_timestamps(lane[: 16000 * 40])  # the model's first calls (40 s: a whole batch and more)
before = peak_mib()  # this process's own high-water mark (ru_maxrss starts at the parent's size)
speech_timestamps(lane)
print(peak_mib() - before)
"""


def test_a_long_lane_adds_little_memory() -> None:
    """faster-whisper's single pass added about 89 MiB over a 240 s lane; the batches add about 2."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK, str(audio_file("acoustic_corpus.wav"))], capture_output=True, text=True, check=True
    )
    assert float(result.stdout.strip()) < 10, result.stdout
