"""Windowed decoding against one transcribe over the whole file, on long real speech.

    python bench/windows.py [--seconds 600] [--window-seconds 240] [--files repeating varied] [--seed 10]
                            [--runs 1] [--memory]

File jobs decode in windows of TAPESCRIBE_WINDOW_SECONDS so memory stays flat for any length
(engine/transcriber.py); each window starts from the text context one pass would have there. This
prints, per file and run, the WER of the server's engine (`transcribe_windows`, default settings)
and of one faster-whisper `transcribe` over the whole file with the same settings and the same VAD
clips, against the reference and against each other. `repeating` is bench/make_long_audio.py's
plain file (the shared English recordings in turn, 0.5 s pauses); `varied` is its `--varied` file
(each pass shuffled, pauses, speed and level varied, from `--seed`). `--memory` adds the windowed
engine's peak resident memory on the file (bench/memory.py's measurement, in a fresh process).

Measured (tiny.en, 2 busy CPU cores; one pass falls back to sampling on some files, so its own WER
moves between runs: 9.5% to 10.2% on the repeating file, 9.1% to 14.5% on varied seed 3):
- repeating, 607 s, 240 s windows: before, each window starting with no context, 10.2% to 18.6%
  against 9.5% in one pass; with the carried context 9.4% (vs 9.5%); with windows also starting at
  the first cycle their edge cut, 9.0% (vs 10.2% in that run). Peak memory 547 MiB (was ~563).
- Whisper floors its features below the loudest frame of what it is handed, and reflects the audio
  at its edges; windows featurized alone differed from one pass in quiet windows and in every
  window's first frames. Featurized as one pass's slice (engine/window_features.py), windowed
  minus one pass, alone -> now:
  varied seed 10, 626 s, 240 s windows: -0.4 (9.2% vs 9.6%) -> 0.0, the very same text (the
  whole file's floor alone, without the audio around the windows, gave +2.1);
  varied, 180 s, 60 s windows: seed 1 +0.59 -> 0.0, seed 2 +0.28 -> 0.0, seed 4 +0.27 -> 0.0,
  seed 5 0.0 -> 0.0, seed 6 -0.53 -> 0.0, each the very same text as one pass; seed 3, where
  decoding falls back to sampling: alone 11.8% against one pass 9.9% and 13.4% in two runs, now
  9.92% against 9.92% (the texts 1.3% apart). Reading the file once more for its loudest frame
  took 0.4 to 2.1 s on the 607 s file (up to 0.8 s of it decoding the audio), as loaded as the
  machine was; its windows took 46 s to decode.
  Peak memory on it did not move beyond the spread between runs: 573 to 619 MiB in five runs,
  against 563 to 594 MiB in three runs of windows featurized alone.
  tests/test_window_context.py pins seed 1 (5.59% both ways; windows alone 6.18%).
- The same context as text (a string prompt, or these tokens without their timestamp tokens) is
  far worse: 21.0% on the repeating file, 52.0% on varied seed 2. Without timestamps in the context
  tiny.en answers in the same style, one segment per 30 s cycle of which it writes a sentence or
  two, and each cycle then jumps a whole 30 s: half the words (188 of 376) were never written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from defaults import error_rate  # noqa: E402
from make_long_audio import FILES, REPO, bench_file  # noqa: E402
from memory import ENGINE, peak_mib  # noqa: E402

from tapescribe.config import Settings  # noqa: E402
from tapescribe.engine.audio import SAMPLE_RATE  # noqa: E402
from tapescribe.engine.speech_regions import speech_clips  # noqa: E402
from tapescribe.engine.transcriber import transcribe_windows  # noqa: E402
from tapescribe.runtime import decode_defaults, model_pool  # noqa: E402


def whole_file(model, audio: np.ndarray, options) -> str:
    """One transcribe over all of it, with the engine's settings and VAD clips found on all of it."""
    clips = speech_clips(audio, options.vad_parameters) if options.vad_filter else None
    if clips == []:
        return ""
    segments, _ = model.transcribe(audio, clip_timestamps=clips or "0", **options.as_kwargs())
    return "".join(segment.text for segment in segments)


def windowed(model, audio: np.ndarray, options, window_seconds: float) -> str:
    def blocks():
        return (audio[i : i + SAMPLE_RATE] for i in range(0, len(audio), SAMPLE_RATE))

    records = transcribe_windows(model, blocks(), options, window_seconds=window_seconds, whole_file=blocks)
    return "".join(record["text"] for record in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--window-seconds", type=float, default=Settings().window_seconds)
    parser.add_argument("--files", nargs="+", choices=FILES, default=list(FILES))
    parser.add_argument("--seed", type=int, default=10, help="of the varied file")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    args = parser.parse_args()

    settings = Settings()
    options = decode_defaults(settings)
    model = model_pool(settings).get("tiny.en")
    for name in args.files:
        kind, path, reference, audio = bench_file(name, args.seconds, args.audio_dir, args.seed)
        seconds = len(audio) / SAMPLE_RATE
        label = f"file={kind} seconds={seconds:.0f} window_seconds={args.window_seconds:g}"
        if args.memory:
            peak, _ = peak_mib(ENGINE, path, str(args.window_seconds))
            label += f" windowed_peak_mib={peak:.0f}"
        for run in range(args.runs):
            started = time.perf_counter()
            one_pass = whole_file(model, audio, options)
            whole_s = time.perf_counter() - started
            started = time.perf_counter()
            in_windows = windowed(model, audio, options, args.window_seconds)
            windowed_s = time.perf_counter() - started
            whole_wer = error_rate("en", [reference], [one_pass])
            windowed_wer = error_rate("en", [reference], [in_windows])
            print(
                f"{label} run={run} whole_file_wer={whole_wer:.2f} windowed_wer={windowed_wer:.2f}"
                f" difference={windowed_wer - whole_wer:+.2f}"
                f" windowed_vs_whole_file_wer={error_rate('en', [one_pass], [in_windows]):.2f}"
                f" whole_file_s={whole_s:.0f} windowed_s={windowed_s:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
