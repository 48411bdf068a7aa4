"""Where a window may hold speech: Silero VAD on a copy of the audio brought to one loudness.

Silero's speech probability depends on the level, so on the audio as it is it drops soft and
whispered words (docs/decisions/0003-vad-defaults.md). Here the VAD hears a copy whose level is
evened out every 0.2 s (quiet speech made as loud
as the rest; digital silence stays silent), and only the stretches it finds are decoded, from the
untouched audio, through faster-whisper's `clip_timestamps` (so times stay those of the file).
Room noise, a quiet hiss and music evened out the same way still read as no speech at threshold
0.5 (lower thresholds read the hiss as speech). A stretch is skipped
only when it is at least the minimum silence long, at the window's edges too, so a clip with a
short lead-in is decoded exactly as faster-whisper decodes it whole.

Silero can hear no speech at all in real whispered speech, even evened out: a 5.7 s whispered English
sentence came back empty while faster-whisper's own defaults (no VAD) wrote it exactly. So a window
in which the VAD finds nothing but which is not silent (some 0.2 s frame above SOUND_DBFS) is decoded
whole, without the VAD, as faster-whisper's defaults decode it: Whisper's own no-speech and log-prob
checks then judge it, and jobs/pipeline.heard drops text sampled where the model heard no speech.
Over a minute of room noise, hiss and music (tests/audio_conditions.py) the server writes nothing
that way; digital silence (and sound below SOUND_DBFS), where Whisper invents
"you", is still never decoded. And where Silero hears the first words of a whisper and not the
rest, a stretch it would skip is decoded when its sound rises and falls like speech
(`rises_and_falls`); steady room noise and hiss are still skipped."""

from __future__ import annotations

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.whisper_adapter import speech_timestamps

FRAME = SAMPLE_RATE // 5  # 0.2 s
TARGET_RMS = 0.05
FLOOR_RMS = 10 ** (-70 / 20)  # quieter than this is silence, not soft speech, and is not raised
PIECE_FRAMES = 150  # evened_level works 30 s at a time
SOUND_DBFS = -60.0  # a window whose every 0.2 s frame is quieter than this holds nothing to decode
SPREAD_DB = 10.0  # a stretch whose frame levels spread over this much may be speech the VAD did not hear


def frame_rms(audio: np.ndarray) -> np.ndarray:
    """The RMS of each 0.2 s frame (the last one zero-padded), PIECE_FRAMES at a time (no padded copy
    of a whole lane)."""
    frames = max(1, int(np.ceil(len(audio) / FRAME)))
    rms = np.empty(frames, dtype=np.float32)
    for first in range(0, frames, PIECE_FRAMES):
        last = min(frames, first + PIECE_FRAMES)
        piece = np.zeros((last - first) * FRAME, dtype=np.float32)
        real = audio[first * FRAME : last * FRAME]
        piece[: len(real)] = real
        rms[first:last] = np.sqrt(np.mean(piece.reshape(last - first, FRAME) ** 2, axis=1))
    return rms


def holds_sound(audio: np.ndarray) -> bool:
    """Whether some 0.2 s frame of `audio` is louder than SOUND_DBFS (not silence, not a faint floor)."""
    return len(audio) > 0 and float(np.max(frame_rms(audio))) > 10 ** (SOUND_DBFS / 20)


def rises_and_falls(audio: np.ndarray) -> bool:
    """Whether `audio` holds sound whose level rises and falls as syllables do: its whole 0.2 s frames
    spread over at least SPREAD_DB (10th to 90th percentile). Room noise and hiss stay within 4 dB;
    whispered speech Silero did not hear spread over 27 dB (music 19 dB: Whisper writes nothing there)."""
    whole = len(audio) // FRAME
    if whole < 2 or not holds_sound(audio):
        return False
    levels = 20 * np.log10(np.maximum(frame_rms(audio[: whole * FRAME]), 1e-9))
    return float(np.percentile(levels, 90) - np.percentile(levels, 10)) >= SPREAD_DB


def with_unheard_stretches(audio: np.ndarray, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`spans` (samples) of speech, joined across the stretches before, between and after them that Silero
    heard no speech in but whose sound rises and falls like speech (the rest of a whispered sentence whose
    first words it heard): those are decoded too, and Whisper's own checks judge them."""
    start, end = spans[0]
    if rises_and_falls(audio[:start]):
        start = 0
    joined = []
    for next_start, next_end in spans[1:]:
        if rises_and_falls(audio[end:next_start]):
            end = next_end
            continue
        joined.append((start, end))
        start, end = next_start, next_end
    if rises_and_falls(audio[end:]):
        end = len(audio)
    joined.append((start, end))
    return joined


def evened_level(audio: np.ndarray) -> np.ndarray:
    """The audio with its short-term RMS brought to one level, the gain changing smoothly.

    Worked out PIECE_FRAMES at a time (the per-sample gain is float64: over a whole 240 s lane at
    once it held about 0.2 MiB per second of audio), each sample as it would be all at once."""
    if len(audio) == 0:
        return audio
    rms = frame_rms(audio)
    frames = len(rms)
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


def speech_clips(audio: np.ndarray, vad_parameters: dict[str, float]) -> list[float] | None:
    """[start, end, start, end, ...] in seconds of the stretches that may hold speech; [] for none (silence),
    None for all of it, without the VAD (sound in which the VAD hears no speech: a whisper, say)."""
    chunks = speech_timestamps(evened_level(audio), **vad_parameters)
    if not chunks:
        return None if holds_sound(audio) else []
    spans = with_unheard_stretches(audio, [(chunk["start"], chunk["end"]) for chunk in chunks])
    edges = [round(edge / SAMPLE_RATE, 3) for span in spans for edge in span]
    # Silero's minimum silence applies between stretches of speech only; at the edges of the window a
    # shorter stretch is kept too, so a clip with a little lead-in is decoded exactly as a whole.
    shortest_skip = vad_parameters.get("min_silence_duration_ms", 0) / 1000
    duration = round(len(audio) / SAMPLE_RATE, 3)
    if edges and edges[0] < shortest_skip:
        edges[0] = 0.0
    if edges and duration - edges[-1] < shortest_skip:
        edges[-1] = duration
    return edges
