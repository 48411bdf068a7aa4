"""Long recordings of real speech made by joining the shared English recordings (with short pauses).

The tests and the benchmarks share these (bench/make_long_audio.py is the command line). The plain
file plays the recordings in the same order with 0.5 s pauses, so it repeats itself about every 94 s:
a window's text context can then hold the very words that come next. The varied file does not repeat
that way: each pass through the recordings is in its own order (shuffled with a fixed seed), each
pause lasts 0.3 to 2.0 s, and each recording is played 8% slower to 8% faster (resampled, so its
pitch moves with it) and 6 dB softer to 3 dB louder (never clipping).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks

REPO = Path(__file__).resolve().parents[1]
FILES = ("repeating", "varied")  # the plain file, and the --varied one


def english_recordings(audio_dir: Path) -> list[Path]:
    rows = (audio_dir / "MANIFEST.tsv").read_text().splitlines()[1:]
    return [audio_dir / row.split("\t")[0] for row in rows if row.split("\t")[2] == "en"]


def changed_speed(samples: np.ndarray, speed: float) -> np.ndarray:
    """The recording played `speed` times as fast (linear resampling: tempo and pitch move together)."""
    length = max(1, round(len(samples) / speed))
    return np.interp(np.linspace(0, len(samples) - 1, length), np.arange(len(samples)), samples).astype(np.float32)


def varied(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sped = changed_speed(samples, rng.uniform(0.92, 1.08))
    gain = 10 ** (rng.uniform(-6.0, 3.0) / 20)
    peak = float(np.max(np.abs(sped))) or 1.0
    return sped * min(gain, 0.99 / peak)


def make(
    seconds: float, out: Path, audio_dir: Path, seed: int | None = None, first: int = 0, pause_seconds: float = 0.5
) -> tuple[Path, str]:
    """Write the file and return it with its reference transcript; a `seed` makes the varied file, and
    the plain file's passes start at the `first` recording, each followed by `pause_seconds` of silence."""
    rng = np.random.default_rng(seed) if seed is not None else None
    paths = english_recordings(audio_dir)
    paths = paths[first % len(paths) :] + paths[: first % len(paths)]
    recordings = {path: np.concatenate(list(pcm_blocks(path))) for path in paths}
    texts_of = {path: path.with_suffix(".txt").read_text().strip() for path in recordings}
    pieces, texts, total = [], [], 0
    while total < seconds * SAMPLE_RATE:
        order = list(recordings) if rng is None else [list(recordings)[i] for i in rng.permutation(len(recordings))]
        for path in order:
            samples = recordings[path] if rng is None else varied(recordings[path], rng)
            pause_length = pause_seconds if rng is None else rng.uniform(0.3, 2.0)
            pause = np.zeros(round(pause_length * SAMPLE_RATE), dtype=np.float32)
            pieces += [samples, pause]
            texts.append(texts_of[path])
            total += len(samples) + len(pause)
            if total >= seconds * SAMPLE_RATE:
                break
    audio = np.concatenate(pieces)
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    reference = " ".join(texts)
    out.with_suffix(".txt").write_text(reference + "\n")
    return out, reference


def bench_file(name: str, seconds: float, audio_dir: Path, seed: int) -> tuple[str, Path, str, np.ndarray]:
    """(label, path, reference transcript, samples) of the long file `name` (one of FILES), made `seconds`
    long under bench/audio, for the benchmarks that compare decoders on it; `seed` is the varied file's."""
    seed_of_file = seed if name == "varied" else None
    kind = name if seed_of_file is None else f"{name} seed={seed_of_file}"
    path = REPO / "bench" / "audio" / f"{kind.replace(' seed=', '_seed')}_{seconds:g}s.wav"
    _, reference = make(seconds, path, audio_dir, seed_of_file)
    return kind, path, reference, np.concatenate(list(pcm_blocks(path)))
