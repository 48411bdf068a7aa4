"""One model call by CTranslate2 thread count: why decoders run on one thread each on a CPU.

    python bench/threads.py [--model tiny.en] [--threads 1 2 0] [--repeats 3]

Four 30 s windows of real speech (the repeating bench file, bench/make_long_audio.py) are featurized
once; then, for each thread count (`intra_threads`; 0 lets CTranslate2 decide, which is 4, what
faster-whisper's default `cpu_threads=0` gets), it times, median of --repeats:
- one window's encode, and one window's beam search at beam 5 and at beam 3 (each window in turn);
- one beam search over the 4 windows at beam 3 (a batch, as lanes on one decoder make);
- the same 4 windows' calls on two decoders of that many threads at once (`num_workers=2`,
  two threads calling), as lanes apart make, in wall seconds for all 4.
Prints one line per thread count, seconds per window (`encode_s`, `generate_b5_s`, ...), and the
decoded tokens per window, so a faster count that stopped early would show.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_long_audio import REPO, bench_file  # noqa: E402

from tapescribe.config import Settings  # noqa: E402
from tapescribe.engine.models import resolve_model  # noqa: E402

WINDOW = 30 * 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    path = str(resolve_model(args.model, Settings().models_dir))
    _, _, _, audio = bench_file("repeating", 600, args.audio_dir, 10)
    extractor = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=1)
    features = [
        np.ascontiguousarray(extractor.feature_extractor(audio[k * WINDOW : (k + 1) * WINDOW])[:, :3000])[None]
        for k in (1, 3, 5, 7)
    ]
    tokenizer = extractor.hf_tokenizer
    prompt = [tokenizer.token_to_id("<|startoftranscript|>")]
    if extractor.model.is_multilingual:
        prompt += [tokenizer.token_to_id("<|en|>"), tokenizer.token_to_id("<|transcribe|>")]

    print(f"model={args.model} windows={len(features)} repeats={args.repeats}")
    for threads in args.threads:
        print(measure(path, threads, features, prompt, args.repeats), flush=True)


def median_seconds(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(path: str, threads: int, features: list[np.ndarray], prompt: list[int], repeats: int) -> str:
    """One line of figures for `threads` CTranslate2 threads per decoder."""
    import ctranslate2

    model = ctranslate2.models.Whisper(path, device="cpu", compute_type="int8", intra_threads=threads)
    two = ctranslate2.models.Whisper(path, device="cpu", compute_type="int8", intra_threads=threads, inter_threads=2)
    encoded = [model.encode(ctranslate2.StorageView.from_array(f), to_cpu=False) for f in features]

    def encodes() -> None:
        for f in features:
            model.encode(ctranslate2.StorageView.from_array(f), to_cpu=False)

    def generates(beam: int) -> int:
        found = [model.generate(e, [prompt], beam_size=beam, suppress_blank=True)[0] for e in encoded]
        return sum(len(result.sequences_ids[0]) for result in found)

    def batch() -> None:
        stacked = ctranslate2.StorageView.from_array(np.concatenate([np.asarray(e) for e in encoded]))
        model.generate(stacked, [prompt] * len(encoded), beam_size=3, suppress_blank=True)

    def window(f: np.ndarray) -> None:
        e = two.encode(ctranslate2.StorageView.from_array(f), to_cpu=False)
        two.generate(e, [prompt], beam_size=5, suppress_blank=True)

    def apart() -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(window, features))

    count = len(features)
    encode_s, _ = median_seconds(encodes, repeats)
    b5_s, tokens = median_seconds(lambda: generates(5), repeats)
    b3_s, _ = median_seconds(lambda: generates(3), repeats)
    batch_s, _ = median_seconds(batch, repeats)
    apart_s, _ = median_seconds(apart, repeats)
    return (
        f"threads={threads or 'ctranslate2 default'} encode_s={encode_s / count:.3f}"
        f" generate_b5_s={b5_s / count:.3f} generate_b3_s={b3_s / count:.3f}"
        f" batch_of_4_b3_s={batch_s / count:.3f} (per window)"
        f" two_decoders_encode_and_b5_s={apart_s / count:.3f} (per window, wall)"
        f" tokens_per_window={tokens / count:.0f}"
    )


if __name__ == "__main__":
    main()
