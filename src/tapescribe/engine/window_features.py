"""Whisper's features for a window, the very ones one pass over the whole file computes there.

faster-whisper's FeatureExtractor floors the log-mel spectrogram 8 decades (2.0 in its feature
scale) below the loudest frame of the audio it is handed: one transcribe over a file floors every
frame below the file's loudest one, a window alone below its own, lower in a quiet window, so the
window kept detail one pass wipes out and tiny.en heard some words differently. And each frame
spans 400 samples around its centre, so the first and last frames of a window alone reflected its
edges where one pass sees the audio before and after: every window's first cycle began from other
features, could write other timestamps, and the text context after it differed.

`feature_ceiling` reads the whole stream once more, block by block, for the highest feature one
pass computes; `for_window` gives a window that ceiling's floor and EDGE samples of the audio on
either side, so its features are one pass's slice, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.base import SpeechModel
from tapescribe.engine.whisper_adapter import calling_through, feature_extractor, is_sequential

FLOOR_BELOW_CEILING = 2.0  # faster-whisper: max(log_spec, log_spec.max() - 8.0), then (x + 4) / 4
BLOCK_SAMPLES = 30 * SAMPLE_RATE
HOP = 160  # every Whisper model's hop_length: frame k is centred on sample k * HOP
EDGE = 2 * HOP  # more than half an FFT (200 samples): frames this far in see only the audio one pass sees
END_PADDING = 160  # the zeros FeatureExtractor appends to what it is handed
# features_in_blocks starts each block's audio this many frames before its first frame (more than
# EDGE), a multiple of the frames the mel filters' matrix product is tiled in: every frame's column
# then sits where it sits in one pass's product, the last ones too, and gets the very same bits.
ALIGNED_FRAMES = 64


def feature_ceiling(extractor: Any, blocks: Iterable[np.ndarray]) -> float | None:
    """The highest feature value one pass of `extractor` over all of `blocks` computes (None: no audio).

    Each 30 s block is featurized with EDGE samples of its neighbours on both sides and only its
    own frames are kept, so every frame is computed from the same samples as in one pass; the last
    block gets the zero padding the whole file gets. Memory is that of a block.
    """
    highests: list[float] = []
    pending: list[np.ndarray] = []
    pending_samples = 0
    lead = 0  # pending samples before the block's first one: EDGE, but none before the file's start

    for block in blocks:
        if not len(block):
            continue
        pending.append(np.asarray(block, dtype=np.float32))
        pending_samples += len(block)
        while pending_samples >= lead + BLOCK_SAMPLES + EDGE:
            audio = np.concatenate(pending)
            features = extractor(audio[: lead + BLOCK_SAMPLES + EDGE], padding=0)
            highests.append(float(features[:, lead // HOP :][:, : BLOCK_SAMPLES // HOP].max()))
            rest = audio[lead + BLOCK_SAMPLES - EDGE :]
            pending, pending_samples, lead = [rest], len(rest), EDGE
    if not pending:
        return None
    features = extractor(np.concatenate(pending), padding=END_PADDING)
    return max([*highests, float(features[:, lead // HOP :].max())])


def samples_before(blocks: Iterable[np.ndarray], end: int) -> np.ndarray:
    """The EDGE samples of `blocks` before sample `end` (fewer near the start); reads no further."""
    kept = np.zeros(0, dtype=np.float32)
    position = 0
    for block in blocks:
        if position >= end:
            break
        kept = np.concatenate([kept, block[: end - position]])[-EDGE:]
        position += len(block)
    return kept


class WindowFeatures:
    """The FeatureExtractor for one window: features of the window with the audio around it, floored
    below the whole file's ceiling. Any other audio it is handed gets the ceiling's floor only."""

    def __init__(self, extractor: Any, ceiling: float, window: np.ndarray, before: np.ndarray, after: np.ndarray):
        self._extractor = extractor
        self._floor = np.float32(ceiling - FLOOR_BELOW_CEILING)
        before = before[-EDGE:]
        # whole frames only, so the window's frames stay centred where the extractor centres them
        self._window, self._before, self._after = window, before[len(before) % HOP :], after[:EDGE]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._extractor, name)

    def __call__(self, waveform: np.ndarray, padding: int = END_PADDING, chunk_length: int | None = None):
        if waveform is not self._window or padding != END_PADDING:
            features = self._extractor(waveform, padding=padding, chunk_length=chunk_length)
        else:
            # Where the file ends within EDGE of the window, it gets the zeros one pass gets there.
            audio = np.concatenate([self._before, waveform, self._after])
            at_end = END_PADDING if len(self._after) < EDGE else 0
            features = self._extractor(audio, padding=at_end, chunk_length=chunk_length)
            first = len(self._before) // HOP
            features = features[:, first : first + len(waveform) // HOP + 1]
        return np.maximum(features, self._floor, out=features)  # the extractor's own new array


def for_window(
    model: SpeechModel, ceiling: float, window: np.ndarray, before: np.ndarray, after: np.ndarray
) -> SpeechModel:
    """`model` for one window, featurizing it as one pass over the file does; the shared model is untouched.

    A shallow copy shares the CTranslate2 model and the tokenizer; `transcribe` reads nothing else it
    could change. Only for a sequential WhisperModel (`featurizes_windows`).
    """
    return calling_through(model, extractor=WindowFeatures(feature_extractor(model), ceiling, window, before, after))


def featurizes_windows(model: SpeechModel) -> bool:
    """Whether `model` featurizes a window as one (a sequential WhisperModel). The batched pipeline
    featurizes each piece of at most 30 s apart, as it does in one pass: nothing to make equal."""
    return is_sequential(model)


def log_mel(extractor: Any, audio: np.ndarray) -> np.ndarray:
    """faster-whisper FeatureExtractor's log10 mel spectrogram of `audio` before its floor and scaling
    (its own steps: Hann window, STFT, power, mel filters, log10); the last frame dropped as it drops it."""
    window = np.hanning(extractor.n_fft + 1)[:-1].astype("float32")
    stft = extractor.stft(audio, extractor.n_fft, extractor.hop_length, window=window, return_complex=True)
    magnitudes = np.abs(stft.astype("complex64")[..., :-1]) ** 2
    return np.log10(np.clip(extractor.mel_filters @ magnitudes, a_min=1e-10, a_max=None))


def features_in_blocks(extractor: Any, waveform: np.ndarray, padding: int = END_PADDING, chunk_length: Any = None):
    """What `extractor(waveform, padding)` returns, computed BLOCK_SAMPLES at a time: bit for bit the
    same features, at the memory of one block's transients instead of the whole audio's (about 0.7 MiB
    per second of it: 176 MiB for a 240 s lane). Each block is featurized with EDGE samples of its
    neighbours, the first from the audio's start and the last to its padded end (the reflections at
    the edges as in one pass); the whole is then floored 8 decades below its loudest frame and
    scaled, as the extractor does. A `chunk_length` goes to the extractor itself."""
    audio = np.asarray(waveform, dtype=np.float32)
    if chunk_length is not None or len(audio) <= 2 * BLOCK_SAMPLES:
        return extractor(audio, padding=padding, chunk_length=chunk_length)
    padded_length = len(audio) + padding
    frames = padded_length // HOP
    features = np.empty((len(extractor.mel_filters), frames), dtype=np.float32)
    step = BLOCK_SAMPLES // HOP // ALIGNED_FRAMES * ALIGNED_FRAMES  # frames per block
    for first in range(0, frames, step):
        last = min(frames, first + step)
        lead = min(ALIGNED_FRAMES, first) * HOP
        if last < frames:
            piece = audio[first * HOP - lead : last * HOP + EDGE]
        else:  # the end, with the zeros the extractor appends
            piece = np.pad(audio[first * HOP - lead :], (0, padding)) if padding else audio[first * HOP - lead :]
        features[:, first:last] = log_mel(extractor, piece)[:, lead // HOP :][:, : last - first]
    features = np.maximum(features, features.max() - 8.0, out=features)
    features += 4.0
    features /= 4.0
    return features
