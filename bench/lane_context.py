"""How much text context the lanes give the model: time, WER and looping windows by context length.

    python bench/lane_context.py [--model base] [--files varied:11 varied:12 repeating] [--contexts all 128 64]
                                 [--runs 2] [--seconds 600]

Each file (bench/make_long_audio.py; "varied:S" is the varied file of seed S) is decoded as the
server decodes a file job in lanes (engine/lane_groups.py, the server's decoders, beam 5, VAD; the
language given as English), once
per context length in turn: "all" is faster-whisper's own (up to 223 tokens of the text before a
window), N keeps the latest N (TAPESCRIBE_LANE_CONTEXT_TOKENS). Prints per run the wall seconds,
the WER against the file's reference, the model's generate calls, how many were sampling fallbacks
(several hypotheses at a temperature above 0) and how many ran into the 448-token limit (a window
whose text looped), then per context the median seconds and the WER.

Measured (2 cores, quiet; `--runs 2`):
- base: all context 27.7-34.0 s (varied:11, 1-3 looping windows, 29-30 calls), 27.7-28.8 s
  (varied:12), 44 s (repeating); 128 tokens 23.0-23.9 s, 22.7-22.9 s, 29.9 s, no window looped,
  no fallback. WER all / 128: 4.41 / 4.41, 3.68 / 3.43, 3.30 / 3.38 (the library default's: 4.41,
  6.30, 4.20). 64 tokens: WER 4.66, 3.92, 3.90. varied:10 (`--runs 1`): all 30.3 s at 4.61, 128
  29.0 s at 4.69; both made 2 sampled fallbacks there and none looped, so the WER moves between runs.
- tiny.en: 128 tokens 5-15% faster but WER 3.99-4.91 against 3.23-4.33 with all (varied:10, 11, 12,
  repeating; +0.4 point on average), so English-only models keep it all.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from defaults import error_rate  # noqa: E402
from make_long_audio import REPO, bench_file  # noqa: E402

from tapescribe.config import Settings  # noqa: E402
from tapescribe.engine.audio import SAMPLE_RATE  # noqa: E402
from tapescribe.engine.lane_groups import transcribe_lane_groups  # noqa: E402
from tapescribe.engine.transcriber import DecodeOptions  # noqa: E402
from tapescribe.runtime import model_pool  # noqa: E402

MAX_LENGTH = 448  # a Whisper prompt and its text together
ALL_CONTEXT = 223  # faster-whisper's prompts hold at most this much context


class CountedCalls:
    """The CTranslate2 model, counting its generate calls: all, sampled, and those that hit MAX_LENGTH."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.generates = self.sampled = self.length_limited = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, features: Any, prompts: list[list[int]], **options: Any) -> Any:
        results = self._model.generate(features, prompts, **options)
        longest = max(len(p) + len(r.sequences_ids[0]) for p, r in zip(prompts, results, strict=True))
        with self._lock:
            self.generates += 1
            self.sampled += options.get("num_hypotheses", 1) > 1
            self.length_limited += longest >= MAX_LENGTH - 1
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--files", nargs="+", default=["varied:11", "varied:12", "repeating"])
    parser.add_argument("--contexts", nargs="+", default=["all", "128", "64"])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    args = parser.parse_args()

    settings = Settings()
    model = model_pool(settings).get(args.model)  # as the server loads it: one single-thread decoder per core
    counted = CountedCalls(model.model)
    model.model = counted
    for file in args.files:
        name, _, seed = file.partition(":")
        kind, _, reference, audio = bench_file(name, args.seconds, args.audio_dir, int(seed or 10))
        blocks = [audio[i : i + SAMPLE_RATE] for i in range(0, len(audio), SAMPLE_RATE)]
        seconds: dict[str, list[float]] = {}
        for run in range(args.runs):
            for context in args.contexts:  # in turn, so each sees about the same machine
                counted.generates = counted.sampled = counted.length_limited = 0
                started = time.perf_counter()
                records = transcribe_lane_groups(
                    model,
                    iter(blocks),
                    DecodeOptions(language="en"),
                    lanes=settings.file_lanes,
                    lane_context=ALL_CONTEXT if context == "all" else int(context),
                )
                text = " ".join(record["text"] for record in records)
                took = time.perf_counter() - started
                seconds.setdefault(context, []).append(took)
                print(
                    f"file={kind} model={args.model} run={run} context={context} seconds={took:.1f}"
                    f" wer={error_rate('en', [reference], [text]):.2f} generates={counted.generates}"
                    f" sampled={counted.sampled} length_limited={counted.length_limited}",
                    flush=True,
                )
        for context, values in seconds.items():
            print(f"file={kind} model={args.model} context={context} median_seconds={statistics.median(values):.1f}")


if __name__ == "__main__":
    main()
