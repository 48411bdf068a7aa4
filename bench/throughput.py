"""Server throughput against the library it wraps, on one file, in one run.

    python bench/throughput.py FILE [--url http://127.0.0.1:8000] [--runs 3]

Each run uploads FILE to `/transcribe-file` and waits for `done` (upload, queue, decoding,
transcription and saving all counted), then transcribes FILE with faster-whisper directly, with
the same model and settings (beam 5, VAD on, int8 on CPU). Runs alternate so both see the same
machine. Without --url a server is started with its data in bench/.data (kept, like all data).
Prints x-realtime figures (audio seconds per wall second; medians) and server/library ratio.
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


def through_server(client: httpx.Client, path: Path) -> tuple[float, float]:
    """Wall seconds from upload to done, and the seconds the job itself reported."""
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
    return elapsed, status["runs"][-1]["seconds"]


def through_library(model, path: Path, settings: Settings) -> float:
    started = time.perf_counter()
    segments, _ = model.transcribe(str(path), beam_size=settings.beam_size)  # faster-whisper's defaults
    for _ in segments:
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--url", help="a running tapescribe server (default: start one)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    from tapescribe.engine.models import resolve_model

    settings = Settings()
    model = WhisperModel(
        str(resolve_model(settings.model if settings.model != "auto" else "tiny.en", settings.models_dir)),
        device="cpu",
        compute_type="int8",
        cpu_threads=settings.cpu_threads,
    )
    duration = measure_duration(args.file)
    process = None
    url = args.url
    if url is None:
        process, url = start_server(HERE / ".data")
    try:
        server_times, job_times, library_times = [], [], []
        with httpx.Client(base_url=url, timeout=3600) as client:
            through_server(client, args.file)  # warm-up: the server loads its model on the first job
            through_library(model, args.file, settings)
            for run in range(args.runs):
                wall, job = through_server(client, args.file)
                server_times.append(wall)
                job_times.append(job)
                library_times.append(through_library(model, args.file, settings))
                print(f"run {run + 1}: server {wall:.2f} s (job {job:.2f} s), library {library_times[-1]:.2f} s")
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    server_x = duration / statistics.median(server_times)
    library_x = duration / statistics.median(library_times)
    print(f"file={args.file.name} duration_s={duration:.1f} cpus={os.cpu_count()} runs={args.runs}")
    pair_ratio = statistics.median(lib / srv for srv, lib in zip(server_times, library_times, strict=True))
    print(
        f"server_x_realtime={server_x:.1f} library_x_realtime={library_x:.1f} "
        f"ratio={server_x / library_x:.3f} median_pair_ratio={pair_ratio:.3f}"
    )


if __name__ == "__main__":
    main()
