"""The conditions (soft, whispered, noisy; audio with no speech) live in tests/audio_conditions.py,
which the tests use too; the benchmarks import them from here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from audio_conditions import (
    NO_SPEECH,
    SAMPLE_RATE,
    SPEECH_CONDITIONS,
    hiss,
    music,
    noisy,
    room_noise,
    silence,
    soft,
    whispered,
)

__all__ = [
    "NO_SPEECH",
    "SAMPLE_RATE",
    "SPEECH_CONDITIONS",
    "hiss",
    "music",
    "noisy",
    "room_noise",
    "silence",
    "soft",
    "whispered",
]
