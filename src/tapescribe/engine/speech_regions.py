"""Where a window may hold speech: Silero VAD on a copy of the audio brought to one loudness.

Silero's speech probability depends on the level, so on the audio as it is it drops soft and
whispered words (docs/decisions/0003-vad-defaults.md). Here the VAD hears a copy whose level is
evened out every 0.2 s (quiet speech made as loud
as the rest; digital silence stays silent), and only the stretches it finds are decoded, from the
untouched audio, through faster-whisper's `clip_timestamps` (so times stay those of the file).
Room noise, a quiet hiss and music evened out the same way still read as no speech at threshold
0.5 (lower thresholds read the hiss as speech). A stretch is skipped
only when it is at least the minimum silence long, at the window's edges too, so a clip with a
short lead-in is decoded exactly as faster-whisper decodes it whole."""

from __future__ import annotations

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE

FRAME = SAMPLE_RATE // 5  # 0.2 s
TARGET_RMS = 0.05
FLOOR_RMS = 10 ** (-70 / 20)  # quieter than this is silence, not soft speech, and is not raised
PIECE_FRAMES = 150  # evened_level works 30 s at a time


def evened_level(audio: np.ndarray) -> np.ndarray:
    """The audio with its short-term RMS brought to one level, the gain changing smoothly.

    Worked out PIECE_FRAMES at a time (the per-sample gain is float64: over a whole 240 s lane at
    once it held about 0.2 MiB per second of audio), each sample as it would be all at once."""
    if len(audio) == 0:
        return audio
    frames = max(1, int(np.ceil(len(audio) / FRAME)))
    rms = np.empty(frames, dtype=np.float32)
    for first in range(0, frames, PIECE_FRAMES):
        last = min(frames, first + PIECE_FRAMES)
        piece = np.zeros((last - first) * FRAME, dtype=np.float32)
        real = audio[first * FRAME : last * FRAME]
        piece[: len(real)] = real
        rms[first:last] = np.sqrt(np.mean(piece.reshape(last - first, FRAME) ** 2, axis=1))
    # the loudest of each frame and its neighbours, so a word's onset is not raised above the word
    spread = np.maximum.reduce([np.roll(rms, shift) for shift in (-2, -1, 0, 1, 2)])
    gain = TARGET_RMS / np.maximum(spread, FLOOR_RMS)
    centres = np.arange(frames) * FRAME + FRAME / 2
    evened = np.empty(len(audio), dtype=np.float32)
    for first in range(0, len(audio), PIECE_FRAMES * FRAME):
        last = min(len(audio), first + PIECE_FRAMES * FRAME)
        per_sample = np.interp(np.arange(first, last), centres, gain)
        evened[first:last] = np.clip(audio[first:last] * per_sample, -1.0, 1.0)
    return evened


def speech_clips(audio: np.ndarray, vad_parameters: dict[str, float]) -> list[float]:
    """[start, end, start, end, ...] in seconds of the stretches that may hold speech ([] for none)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(evened_level(audio), VadOptions(**vad_parameters))
    edges = [round(edge / SAMPLE_RATE, 3) for chunk in chunks for edge in (chunk["start"], chunk["end"])]
    # Silero's minimum silence applies between stretches of speech only; at the edges of the window a
    # shorter stretch is kept too, so a clip with a little lead-in is decoded exactly as a whole.
    shortest_skip = vad_parameters.get("min_silence_duration_ms", 0) / 1000
    duration = round(len(audio) / SAMPLE_RATE, 3)
    if edges and edges[0] < shortest_skip:
        edges[0] = 0.0
    if edges and duration - edges[-1] < shortest_skip:
        edges[-1] = duration
    return edges
