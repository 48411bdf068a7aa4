"""Make a long recording of real speech by joining the shared English recordings (with short pauses).

python bench/make_long_audio.py SECONDS OUT.wav [--audio-dir ../shared/audio]
"""

from __future__ import annotations

import argparse
import wave
from pathlib import Path

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks

REPO = Path(__file__).resolve().parents[1]


def english_recordings(audio_dir: Path) -> list[Path]:
    rows = (audio_dir / "MANIFEST.tsv").read_text().splitlines()[1:]
    return [audio_dir / row.split("\t")[0] for row in rows if row.split("\t")[2] == "en"]


def make(seconds: float, out: Path, audio_dir: Path) -> tuple[Path, str]:
    """Write the file and return it with its reference transcript."""
    pause = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    pieces, texts, total = [], [], 0
    sources = english_recordings(audio_dir)
    while total < seconds * SAMPLE_RATE:
        for path in sources:
            samples = np.concatenate(list(pcm_blocks(path)))
            pieces += [samples, pause]
            texts.append(path.with_suffix(".txt").read_text().strip())
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", type=float)
    parser.add_argument("out", type=Path)
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    args = parser.parse_args()
    path, _ = make(args.seconds, args.out, args.audio_dir)
    print(path)
