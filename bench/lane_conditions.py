"""File jobs' two engines on long files that are soft, noisy or whispered, against faster-whisper's defaults.

    python bench/lane_conditions.py [--seconds 300] [--seed 10] [--conditions clean soft noisy whispered]
                                    [--lanes 4]

The varied long file of bench/make_long_audio.py (`--seed`, `--seconds`), changed by each condition
of bench/conditions.py (soft: 30 dB softer; noisy: pink noise at 5 dB SNR; whispered: LPC-whispered,
12 dB softer), goes through, in turn on the same samples:
- library_default: `WhisperModel(tiny.en).transcribe(audio)`, nothing changed;
- windows: the server's file engine with its default Settings (`transcribe_windows`, one lane);
- lanes: the same Settings decoded in lockstep lanes (`transcribe_lane_groups`, --lanes, at the
  server's lane beam size), as a job with TAPESCRIBE_FILE_LANES does.
Prints each one's WER (Whisper's English normaliser) and x real time per condition.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from conditions import SPEECH_CONDITIONS  # noqa: E402
from defaults import error_rate  # noqa: E402
from make_long_audio import REPO, bench_file  # noqa: E402

from tapescribe.config import Settings  # noqa: E402
from tapescribe.engine.audio import SAMPLE_RATE  # noqa: E402
from tapescribe.engine.lane_groups import transcribe_lane_groups  # noqa: E402
from tapescribe.engine.transcriber import transcribe_windows  # noqa: E402
from tapescribe.runtime import decode_defaults  # noqa: E402


def blocks(audio: np.ndarray):
    return (audio[start : start + SAMPLE_RATE] for start in range(0, len(audio), SAMPLE_RATE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--conditions", nargs="+", choices=list(SPEECH_CONDITIONS), default=list(SPEECH_CONDITIONS))
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    from tapescribe.engine.models import resolve_model

    settings = Settings()
    model = WhisperModel(str(resolve_model("tiny.en", settings.models_dir)), device="cpu", compute_type="int8")
    options = decode_defaults(settings)
    _, _, reference, clean = bench_file("varied", args.seconds, args.audio_dir, args.seed)
    seconds = len(clean) / SAMPLE_RATE
    contenders = {
        "library_default": lambda audio: [s.text for s in model.transcribe(audio)[0]],
        "windows": lambda audio: [
            r["text"]
            for r in transcribe_windows(
                model, blocks(audio), options, None, settings.window_seconds, whole_file=lambda: blocks(audio)
            )
        ],
        "lanes": lambda audio: [
            r["text"]
            for r in transcribe_lane_groups(
                model, blocks(audio), options, None, settings.window_seconds, args.lanes, settings.lane_beam_size
            )
        ],
    }
    for condition in args.conditions:
        audio = SPEECH_CONDITIONS[condition](clean, args.seed).astype(np.float32)
        figures = []
        for name, contender in contenders.items():
            started = time.perf_counter()
            text = "".join(contender(audio))
            elapsed = time.perf_counter() - started
            figures.append(f"{name}_wer={error_rate('en', [reference], [text]):.2f} {name}_x={seconds / elapsed:.1f}")
        print(f"condition={condition} seconds={seconds:.0f} " + " ".join(figures), flush=True)


if __name__ == "__main__":
    main()
