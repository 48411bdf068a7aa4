"""Harder versions of the shared recordings, and audio with no speech, made reproducibly.

Every maker takes 16 kHz mono float32 samples and a seed and returns new samples; nothing is
downloaded and nothing is random but the seeded generator, so a figure made from these sets can be
made again by anyone with ../shared/audio.

- soft: the recording 30 dB quieter (a speaker far from the microphone, a low input gain).
- whispered: the voice's spectral envelope (LPC, order 18, 25 ms frames) excited by white noise
  instead of the voice's own source, frame energy kept, then 12 dB quieter: the pitch is gone, as
  in a whisper, and the words stay (the usual way to simulate whispered speech from voiced speech).
- noisy: pink noise added at 5 dB signal-to-noise ratio (speech power measured over the whole clip).
- room noise: 60 s of quiet pink noise with a 50 Hz hum and its harmonics (an empty room, a fan).
- hiss: 60 s of quiet white noise (standard deviation 0.003, about -50 dBFS: a preamp's hiss, as
  loud as the soft speech above).
- music: 60 s of synthesised chords (four voices with harmonics, a new chord every 2 s, a
  plucked envelope) and a drum-like noise burst on each beat.
- silence: 60 s of digital zeros.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE = 16_000


def _db(gain_db: float) -> float:
    return float(10 ** (gain_db / 20))


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) noise of unit RMS, by shaping white noise in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def soft(audio: np.ndarray, seed: int = 0, gain_db: float = -30.0) -> np.ndarray:
    return (audio * _db(gain_db)).astype(np.float32)


def noisy(audio: np.ndarray, seed: int = 0, snr_db: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    speech_rms = float(np.sqrt(np.mean(audio**2))) or 1e-4
    noise = _pink(len(audio), rng) * speech_rms / _db(snr_db)
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


def _lpc(frame: np.ndarray, order: int) -> np.ndarray:
    """Linear prediction coefficients [1, a1..ap] by Levinson-Durbin on the autocorrelation."""
    corr = np.correlate(frame, frame, "full")[len(frame) - 1 : len(frame) + order]
    if corr[0] <= 1e-9:
        return np.concatenate([[1.0], np.zeros(order)])
    corr[0] *= 1.0 + 1e-6
    coeffs = np.zeros(order + 1)
    coeffs[0] = 1.0
    error = corr[0]
    for i in range(1, order + 1):
        reflection = -(corr[i] + np.dot(coeffs[1:i], corr[i - 1 : 0 : -1])) / error
        coeffs[1:i] = coeffs[1:i] + reflection * coeffs[i - 1 : 0 : -1]
        coeffs[i] = reflection
        error *= 1.0 - reflection**2
        if error <= 1e-12:
            break
    return coeffs


def whispered(audio: np.ndarray, seed: int = 0, order: int = 18, gain_db: float = -12.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame, hop = 400, 200  # 25 ms frames, half overlap
    window = np.hanning(frame)
    padded = np.concatenate([audio, np.zeros(frame, dtype=np.float32)])
    out = np.zeros(len(padded))
    for start in range(0, len(audio), hop):
        piece = padded[start : start + frame] * window
        energy = float(np.sqrt(np.mean(piece**2)))
        if energy < 1e-6:
            continue
        excitation = rng.standard_normal(frame)
        shaped = lfilter([1.0], _lpc(piece, order), excitation)
        shaped *= energy / (float(np.sqrt(np.mean(shaped**2))) or 1.0)
        out[start : start + frame] += shaped * window
    out = out[: len(audio)]
    peak = float(np.max(np.abs(out))) or 1.0
    level = float(np.max(np.abs(audio))) or 1.0
    return (out / peak * level * _db(gain_db)).astype(np.float32)


def room_noise(seconds: float = 60.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3))
    return (0.01 * _pink(n, rng) + 0.004 * hum).astype(np.float32)


def music(seconds: float = 60.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n)
    chords = [(220.0, 277.2, 329.6, 440.0), (196.0, 246.9, 293.7, 392.0), (174.6, 220.0, 261.6, 349.2)]
    beat = SAMPLE_RATE // 2
    for index, start in enumerate(range(0, n, 4 * beat)):
        length = min(4 * beat, n - start)
        t = np.arange(length) / SAMPLE_RATE
        envelope = np.exp(-t * 1.5)
        chord = chords[int(rng.integers(len(chords)))] if index else chords[0]
        for note in chord:
            for harmonic in (1, 2, 3):
                out[start : start + length] += envelope * np.sin(2 * np.pi * note * harmonic * t) / (harmonic * 6)
    for start in range(0, n, beat):
        length = min(beat // 4, n - start)
        out[start : start + length] += rng.standard_normal(length) * np.exp(-np.arange(length) / 400) * 0.3
    return (0.3 * out / np.max(np.abs(out))).astype(np.float32)


def hiss(seconds: float = 60.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 7).normal(0.0, 0.003, int(seconds * SAMPLE_RATE)).astype(np.float32)


def silence(seconds: float = 60.0, seed: int = 0) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


SPEECH_CONDITIONS = {"clean": lambda audio, seed: audio, "soft": soft, "whispered": whispered, "noisy": noisy}
NO_SPEECH = {"room noise": room_noise, "hiss": hiss, "music": music, "silence": silence}
