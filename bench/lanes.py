"""Lockstep lanes (engine/lanes.py) against faster-whisper's default sequential transcribe, on long real speech.

    python bench/lanes.py [--seconds 600] [--files repeating varied] [--seed 10] [--lanes 4t 6t 8t] [--runs 2]
                          [--lane-threads 2] [--lane-workers 1] [--model tiny.en]

Each lanes contender runs right after a library_default run of its own, so each pair sees about the
same (busy) machine; both are timed in wall seconds and in this process's CPU seconds:
- library_default: `WhisperModel(--model, device="cpu", compute_type="int8")`, `transcribe(audio)` with
  faster-whisper's defaults (beam 5, condition_on_previous_text, no VAD), over the whole file.
- lanes_B (lanes_Bt): the file cut into B contiguous lanes at quiet moments, each decoded by the same
  `transcribe` defaults in its own thread, their model calls batched (a model with --lane-threads).
  CTranslate2 batches only prompts whose start token is at one place: lanes_B batches the prompts
  with as much context as each other, lanes_Bt cuts the context of a batch to its shortest one's.
  "4t-b3": the same with beam 3; "8/2": 2 groups of 4 lanes, batched apart (see `in_lanes`).
Audio is decoded once beforehand for all. Prints x-realtime (audio seconds per wall second), the ratio
to library_default in the same pair, WERs (Whisper's English normaliser), the load average before and
after the pair, and the lanes' CTranslate2 calls (how many, rows per call, seconds).

Idle machine (load 1.0-1.75), `--lanes 4t 4t-b3 --runs 2`, medians of the pair ratios: 4t 1.80
(repeating) and 1.95 (varied seed 10), WER -0.53 and -0.40; 4t-b3 2.32 and 2.22, WER -0.83 to -1.70.

Measured (tiny.en int8, 2 CPU cores shared with another engineer's WER runs; load 1.5-4; ratio is
library_default's wall seconds over the lanes' in the same pair; library_default 12.8x-16.5x realtime,
its WER 8.7-10.5% on the repeating file, 9.6-13.3% on varied seed 10 as its sampling fallback moves):
- 4t (4 lanes, beam 5): repeating 1.44, 1.48 (load 3-4), 1.91 (load 1.8); varied 1.41, 1.66 (load
  3.1-3.5), 2.08 (load 1.6). WER 8.18% / 9.22% (lanes decode the same at temperature 0 every run):
  -0.5 to -2.0 points against library_default. Untrimmed 4 lanes: 1.74 once at load ~1, WER 7.81%.
- 6t: repeating 1.47, 1.48 (WER 9.68%, -0.8 to +0.4); varied 1.42, 1.60, WER 13.4% (+3.7): worse.
- 8t: repeating 1.47, 2.08 (WER 9.91%, -0.3 to +0.7); varied 1.88, 2.37, WER 11.0% (+1.4).
- 4t-b3 (beam 3): repeating 2.00 (load 2.1), 2.22 (load 1.8), WER 8.03% (-0.7); varied 1.73 (load
  3.4), 2.22 (load 1.6), WER 7.93% (-1.7, -5.3). 4t-b2 was no faster (1.73, 1.66) and no better.
- varied seed 2 (601 s), load 0.6-1.5, library_default 17.2x-19.1x at WER 8.31%: 4t 1.72, 1.66 at
  WER 6.51% (-1.8); 4t-b3 1.97, 2.11 at WER 7.37% (-0.9). Load 0.1-1.5: 4t-b4 2.10 (WER 6.60%,
  -1.7), repeating 1.87 (8.78% against 8.71%); 5t-b3 1.90 (WER 11.31%, +3.0), repeating 2.27 (10.51%,
  +1.8): where the lane starts fall matters more than how many there are.
- Where the time goes (4t): encodes ~0.25-0.4 s a row, in batches no cheaper on a CPU; generates
  ~0.45-0.55 s a row in batches of 4-7 (about half an unbatched beam search's time), so the lanes
  spend ~0.85 s a 30 s window against ~1.5 s for library_default (4 CTranslate2 threads on 2 cores).
  Two groups of lanes on 2 single-thread CTranslate2 workers ("8/2") were slower: 1.36-1.55.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from defaults import error_rate  # noqa: E402
from make_long_audio import FILES, REPO, bench_file  # noqa: E402

from tapescribe.config import Settings  # noqa: E402
from tapescribe.engine.audio import SAMPLE_RATE  # noqa: E402
from tapescribe.engine.lanes import transcribe_in_lanes  # noqa: E402
from tapescribe.engine.models import resolve_model  # noqa: E402


def library_default(model, audio: np.ndarray) -> str:
    segments, _ = model.transcribe(audio)
    return "".join(segment.text for segment in segments)


def in_lanes(model, audio: np.ndarray, lanes: str) -> tuple[str, list[tuple[str, int, float]]]:
    """`lanes` is a count, then "t" to trim the contexts of a batch to the shortest one's length, then
    "/G" for G groups batched apart (each on a CTranslate2 worker of its own: "8/2" is 2 groups of 4),
    then "-bN" for beam size N instead of the default 5 ("4t-b3")."""
    lanes, _, beam = lanes.partition("-b")
    count, _, groups = lanes.partition("/")
    segments, calls = transcribe_in_lanes(
        model,
        audio,
        int(count.rstrip("t")),
        groups=int(groups or 1),
        trim_context=count.endswith("t"),
        beam_size=int(beam or 5),
    )
    return "".join(segment["text"] for segment in segments), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--files", nargs="+", choices=FILES, default=list(FILES))
    parser.add_argument("--seed", type=int, default=10, help="of the varied file")
    parser.add_argument("--lanes", nargs="+", default=["4t", "6t", "8t"], help='counts; "4t": 4, contexts trimmed')
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--lane-threads", type=int, default=2, help="CTranslate2 threads per worker, lanes' model")
    parser.add_argument("--lane-workers", type=int, default=1, help="CTranslate2 workers of the lanes' model")
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    parser.add_argument("--model", default="tiny.en", help="of both; a multilingual one detects the language in each")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    path = str(resolve_model(args.model, Settings().models_dir))
    library = WhisperModel(path, device="cpu", compute_type="int8")
    lanes_model = WhisperModel(
        path, device="cpu", compute_type="int8", cpu_threads=args.lane_threads, num_workers=args.lane_workers
    )
    for name in args.files:
        kind, _, reference, audio = bench_file(name, args.seconds, args.audio_dir, args.seed)
        seconds = len(audio) / SAMPLE_RATE
        ratios: dict[str, list[float]] = {}
        for run in range(args.runs):
            for lanes in args.lanes:  # each contender right after its own library_default run: the load moves
                load = os.getloadavg()[0]
                base_s, base_cpu_s, text = timed(library_default, library, audio)
                base_wer = error_rate("en", [reference], [text])
                lanes_s, lanes_cpu_s, (text, calls) = timed(in_lanes, lanes_model, audio, lanes)
                wer = error_rate("en", [reference], [text])
                ratios.setdefault(lanes, []).append(base_s / lanes_s)
                print(
                    f"file={kind} seconds={seconds:.0f} run={run} lanes={lanes}"
                    f" load={load:.2f},{os.getloadavg()[0]:.2f}"
                    f" lanes_x_realtime={seconds / lanes_s:.1f} library_default_x_realtime={seconds / base_s:.1f}"
                    f" ratio_vs_library_default={base_s / lanes_s:.2f} cpu_ratio={base_cpu_s / lanes_cpu_s:.2f}"
                    f" lanes_wer={wer:.2f} library_default_wer={base_wer:.2f} wer_difference={wer - base_wer:+.2f}"
                    + "".join(
                        f" {kind_}_calls={len(of_kind)} {kind_}_rows={sum(r for _, r, _ in of_kind) / len(of_kind):.2f}"
                        f" {kind_}_s={sum(t for _, _, t in of_kind):.1f}"
                        for kind_ in ("encode", "generate")
                        if (of_kind := [call for call in calls if call[0] == kind_])
                    ),
                    flush=True,
                )
        for lanes, values in ratios.items():
            print(f"file={kind} lanes={lanes} median_ratio_vs_library_default={statistics.median(values):.2f}")


def timed(function, *args):
    """Wall seconds, this process's CPU seconds (all threads) and the result of function(*args)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


if __name__ == "__main__":
    main()
