"""Server throughput against the library it wraps, on one file, in one run.

    python bench/throughput.py FILE [--url http://127.0.0.1:8000] [--runs 3] [--model tiny.en] [--set file_lanes=4]

Each run uploads FILE to `/transcribe-file` and waits for `done` (upload, queue, decoding,
transcription and saving all counted), then transcribes FILE with faster-whisper directly: its
default sequential `transcribe` (beam 5, int8 on CPU) and its `BatchedInferencePipeline` (batch 8,
beam 5, its own VAD). Contenders alternate so all see the same machine. Without --url a server is
started with its data in bench/.data (kept, like all data), with the settings given by --set.
Prints x-realtime figures (audio seconds per wall second; medians), each one's ratio to the library
default (median of the per-run ratios), and, when FILE has a reference transcript beside it
(FILE with .txt, as bench/make_long_audio.py writes), each one's WER.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tapescribe.config import Settings
from tapescribe.engine.audio import measure_duration

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from defaults import joined_digits  # noqa: E402


def start_server(data_dir: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    """A `tapescribe serve` on a free port; `settings` are TAPESCRIBE_* variables for it (workers="3")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, **{f"TAPESCRIBE_{name.upper()}": value for name, value in settings.items()}}
    process = subprocess.Popen(
        [sys.executable, "-m", "tapescribe", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


def through_server(client: httpx.Client, path: Path) -> tuple[float, float, str]:
    """Wall seconds from upload to done, the seconds the job itself reported, and the session id."""
    started = time.perf_counter()
    with open(path, "rb") as handle:
        response = client.post("/transcribe-file", files={"file": (path.name, handle)})
    response.raise_for_status()
    session_id = response.json()["session_id"]
    status = None
    with client.stream("GET", f"/session/{session_id}/events") as events:  # pushed, no polling
        for line in events.iter_lines():
            if line.startswith("data: ") and '"status"' in line:
                status = json.loads(line[6:])
    elapsed = time.perf_counter() - started
    if status is None or status["status"] != "done":
        raise SystemExit(f"server job ended as {status}")
    return elapsed, status["runs"][-1]["seconds"], session_id


def through_server_text(client: httpx.Client, path: Path) -> tuple[float, str]:
    """Wall seconds from upload to done, and the transcript the server saved."""
    elapsed, _, session_id = through_server(client, path)
    return elapsed, client.get(f"/session/{session_id}").json()["transcription"]["text"]


def through_library(model, path: Path, settings: Settings) -> tuple[float, str]:
    started = time.perf_counter()
    segments, _ = model.transcribe(str(path), beam_size=settings.beam_size)  # faster-whisper's defaults
    text = "".join(segment.text for segment in segments)
    return time.perf_counter() - started, text


def through_library_batched(model, path: Path, settings: Settings) -> tuple[float, str]:
    from faster_whisper import BatchedInferencePipeline

    started = time.perf_counter()
    segments, _ = BatchedInferencePipeline(model).transcribe(str(path), batch_size=8, beam_size=settings.beam_size)
    text = "".join(segment.text for segment in segments)
    return time.perf_counter() - started, text


def word_error_rate(reference: str, hypothesis: str, digits_joined: bool = True) -> float:
    """WER in percent after Whisper's English normalisation, digit strings first written without separators
    (bench/defaults.py `joined_digits` says why); `digits_joined=False` as tests/conftest.py measures it."""
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    if digits_joined:
        reference, hypothesis = joined_digits(reference), joined_digits(hypothesis)
    normalise = EnglishTextNormalizer()
    return 100.0 * jiwer.wer(normalise(reference), normalise(hypothesis))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--url", help="a running tapescribe server (default: start one)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: a setting of the started server")
    parser.add_argument("--model", default="tiny.en", help="the model of both (the server's must match)")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    from tapescribe.engine.models import resolve_model

    settings = Settings()
    # faster-whisper's own thread default (CTranslate2 decides: 4), not the server's cpu_threads; int8 as the server
    model = WhisperModel(str(resolve_model(args.model, settings.models_dir)), device="cpu", compute_type="int8")
    duration = measure_duration(args.file)
    reference_path = args.file.with_suffix(".txt")
    reference = reference_path.read_text() if reference_path.is_file() else None
    process = None
    url = args.url
    if url is None:
        server_settings = dict(item.split("=", 1) for item in args.set)
        server_settings.setdefault("model", args.model)
        process, url = start_server(HERE / ".data", **server_settings)
    contenders = {
        "server": None,
        "library_default": lambda: through_library(model, args.file, settings),
        "library_batched": lambda: through_library_batched(model, args.file, settings),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    texts: dict[str, str] = {}
    try:
        with httpx.Client(base_url=url, timeout=3600) as client:
            contenders["server"] = lambda: through_server_text(client, args.file)
            through_server(client, args.file)  # warm-up: the server loads its model on the first job
            through_library(model, args.file, settings)
            for run in range(args.runs):
                for name, contender in contenders.items():
                    seconds, texts[name] = contender()
                    times[name].append(seconds)
                print(f"run {run + 1}: " + ", ".join(f"{name} {times[name][-1]:.2f} s" for name in contenders))
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print(f"file={args.file.name} duration_s={duration:.1f} cpus={os.cpu_count()} runs={args.runs} model={args.model}")
    for name in contenders:
        x_realtime = duration / statistics.median(times[name])
        ratio = statistics.median(base / mine for base, mine in zip(times["library_default"], times[name], strict=True))
        error = ""
        if reference is not None:
            error = f" wer={word_error_rate(reference, texts[name]):.2f}"
            error += f" wer_digits_apart={word_error_rate(reference, texts[name], digits_joined=False):.2f}"
        print(f"{name}: x_realtime={x_realtime:.1f} ratio_vs_library_default={ratio:.3f}{error}")


if __name__ == "__main__":
    main()
