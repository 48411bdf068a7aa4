"""Which language a recording is in, judged on several parts of it, not only its first 30 seconds.

A recording that opens with music, a jingle or a few words of English before the speaker switches
language fools a detector that hears only the start (what `transcribe` does). Here the file is cut
into up to `parts` equal slices; from each, up to SPEECH_SECONDS of speech (Silero VAD, as the
library uses it) is judged by the multilingual model, and the per-language probabilities are
averaged over the parts. Audio is read once, block by block, and at most `scan_seconds` of each
slice is held, so memory is bounded for any length.

A part's 10 s of speech is encoded as it is, not padded to Whisper's 30 s window as the library's
`detect_language` pads it: the encoder's cost follows the audio it is given, about a third of
it for three parts, at nearly the same accuracy (docs/performance.md, Languages). Less speech is
padded to 30 s as the library pads it: encoded as it was, it was judged wrong more often
(whisper_adapter.language_probabilities).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.base import SpeechModel
from tapescribe.engine.whisper_adapter import language_probabilities, speech_samples, speech_timestamps

PART_SECONDS = 30.0  # one Whisper window: the slices are at least this far apart
SPEECH_SECONDS = 10.0  # speech judged per part: 5 s got twice as many test cases wrong, 15 s no fewer
FIRST_SCAN_SECONDS = 30.0  # audio of a slice searched for speech first; the rest only if too little was found
SCAN_SECONDS = 90.0  # audio of a slice searched for speech at most
MIN_SPEECH_SECONDS = 1.0  # a part with less speech than this is not used


@dataclass(frozen=True)
class DetectedLanguage:
    language: str
    probability: float
    parts: int  # parts with speech it was judged on; 0: no speech found, judged on the opening audio


def part_starts(duration: float, parts: int, part_seconds: float = PART_SECONDS) -> list[float]:
    """Start seconds of evenly spaced slices: one per `part_seconds` of audio, at most `parts`."""
    count = max(1, min(parts, math.ceil(duration / part_seconds)))
    return [duration * number / count for number in range(count)]


def gather_parts(
    blocks: Iterable[np.ndarray], starts: list[float], scan_seconds: float = SCAN_SECONDS
) -> list[np.ndarray]:
    """The audio from each start (at most `scan_seconds`, and never past the next start), in one pass."""
    edges = [round(start * SAMPLE_RATE) for start in starts]
    scan = round(scan_seconds * SAMPLE_RATE)
    limits = [min(edge + scan, nxt) for edge, nxt in zip(edges, [*edges[1:], 2**62], strict=True)]
    pieces: list[list[np.ndarray]] = [[] for _ in starts]
    position = 0
    for block in blocks:
        block_end = position + len(block)
        for number, (edge, limit) in enumerate(zip(edges, limits, strict=True)):
            low, high = max(edge, position), min(limit, block_end)
            if low < high:
                pieces[number].append(block[low - position : high - position])
        position = block_end
        if position >= limits[-1]:
            break
    return [np.concatenate(piece) if piece else np.zeros(0, dtype=np.float32) for piece in pieces]


def speech_only(audio: np.ndarray, keep_seconds: float = SPEECH_SECONDS) -> np.ndarray:
    """The speech in `audio` (Silero VAD with the library's defaults), at most `keep_seconds` of it.

    The first FIRST_SCAN_SECONDS are searched first; the whole of `audio` only when they hold less.
    """
    keep = round(keep_seconds * SAMPLE_RATE)
    speech = np.zeros(0, dtype=np.float32)
    for scanned in (audio[: round(FIRST_SCAN_SECONDS * SAMPLE_RATE)], audio):
        if len(scanned) and (chunks := speech_timestamps(scanned)):
            speech = speech_samples(scanned, chunks)
        if len(speech) >= keep or len(scanned) == len(audio):
            break
    return speech[:keep]


def detect_over_parts(
    model: SpeechModel,
    blocks: Iterable[np.ndarray],
    duration: float,
    parts: int = 3,
    between: Callable[[], None] | None = None,
) -> DetectedLanguage | None:
    """The language of the audio in `blocks` (`duration` seconds long) by a multilingual `model`.

    None when there is no audio at all. When no part holds speech, the opening audio is judged.
    `between` runs before each part's speech search and language model call (a job stops there).
    """
    between = between or (lambda: None)
    slices = gather_parts(blocks, part_starts(duration, parts))
    speech = []
    for audio in slices:
        between()
        speech.append(speech_only(audio))
    usable = [audio for audio in speech if len(audio) >= MIN_SPEECH_SECONDS * SAMPLE_RATE]
    if not usable:
        opening = slices[0][: round(PART_SECONDS * SAMPLE_RATE)] if slices else np.zeros(0)
        if not len(opening):
            return None
        language, probability, _ = model.detect_language(audio=opening)
        return DetectedLanguage(language, float(probability), 0)
    totals: dict[str, float] = {}
    for audio in usable:
        between()
        for language, probability in language_probabilities(model, audio):
            totals[language] = totals.get(language, 0.0) + float(probability)
    language = max(totals, key=lambda code: totals[code])
    return DetectedLanguage(language, totals[language] / len(usable), len(usable))
