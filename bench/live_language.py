"""How a live stream with Auto chooses its model: language and model chosen, and how much audio it heard first.

    python bench/live_language.py [--audio-dir ../shared/audio] [--models-dir bench/.data/models]

Each shared recording (the language of each is in MANIFEST.tsv) is fed to live/language.py's
LiveLanguage in 0.3 s steps, as a stream's worker takes it, after 1 s of silence. One line per
recording: the language expected, the one chosen, the model, the probability, and the seconds of
audio heard when the choice was made. The last line counts the wrong choices.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks
from tapescribe.engine.models import ModelPool, ModelSettings
from tapescribe.engine.streaming import StreamingOptions
from tapescribe.live.language import LiveLanguage

HERE = Path(__file__).resolve().parent
STEP = int(0.3 * SAMPLE_RATE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--audio-dir", type=Path, default=HERE.parent.parent / "shared" / "audio")
    parser.add_argument("--models-dir", type=Path, default=HERE / ".data" / "models")
    args = parser.parse_args()
    models = ModelPool(args.models_dir, "auto", ModelSettings())
    rows = [line.split("\t") for line in (args.audio_dir / "MANIFEST.tsv").read_text().splitlines()[1:]]
    wrong = 0
    for row in rows:
        name, expected = row[0], row[2]
        audio = np.concatenate([np.zeros(SAMPLE_RATE, dtype=np.float32), *pcm_blocks(args.audio_dir / name)])
        opening = LiveLanguage(models, None, StreamingOptions())
        started = time.perf_counter()
        heard = len(audio) / SAMPLE_RATE
        for start in range(0, len(audio), STEP):
            last = start + STEP >= len(audio)
            if opening.policy(audio[start : start + STEP], ended=last) is not None:
                heard = min(len(audio), start + STEP) / SAMPLE_RATE
                break
        choice = opening.choice
        assert choice is not None
        wrong += choice.language != expected
        print(
            f"{name:48} expected={expected} chosen={choice.language} model={choice.model} "
            f"p={choice.probability} heard_s={heard:.1f} wall_s={time.perf_counter() - started:.2f}"
        )
    print(f"recordings={len(rows)} wrong={wrong}")


if __name__ == "__main__":
    main()
