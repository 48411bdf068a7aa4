"""Throughput with 1 and 2 `tapescribe worker` processes on the Redis queue, one decode thread each.

    python bench/scale_out.py [--jobs 8] [--seconds 90] [--workers 1,2] [--runs 1] [--search-sessions 100000]

For each worker count: a fresh data directory (bench/.data-scale-out/), `serve --workers 0` (the API,
no jobs), that many `tapescribe worker --workers 1` processes with TAPESCRIBE_CPU_THREADS=1, all on
one redis-server started here. `--jobs` copies of SECONDS of joined real speech are uploaded at once;
the time is from the first upload to the last `done` (model loading included: about a second per
worker). Prints x-realtime (audio seconds per wall second) per worker count, medians over `--runs`
(alternating), and the ratio of the largest count to 1. On a machine shared with other work the
figures move with the other load: run it on an idle machine for figures to keep.

Then, unless `--search-sessions 0`, search latency p50/p95 on that many sessions for each index
backend, SQLite and PostgreSQL (bench/index_search.py's measurement, which says how).

Measured on an idle 2-core machine (8 uploads of 92 s): 1 worker 19.7x and 19.0x realtime, 2 workers
35.8x and 35.4x, ratio 1.82 and 1.86 (`--runs 2`, `--runs 3`). With the machine loaded to 6-11 by
other runs it was 1.24-1.42.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis
from index_search import measure_backend, report
from make_long_audio import make
from throughput import start_server

from tapescribe.engine.audio import measure_duration

HERE = Path(__file__).resolve().parent
SETTINGS = {"model": "tiny.en", "cpu_threads": "1", "queue_backend": "redis", "speakers": "off"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def run_once(workers: int, recording: Path, jobs: int, duration: float, redis_port: int, data_dir: Path) -> float:
    """x-realtime of `jobs` uploads of `recording` with `workers` worker processes."""
    shutil.rmtree(data_dir, ignore_errors=True)  # the bench's own data from an earlier run of this count
    redis.Redis(port=redis_port).flushdb()
    settings = {**SETTINGS, "redis_url": f"redis://127.0.0.1:{redis_port}/0"}
    api, url = start_server(data_dir, workers="0", **settings)
    env = {**os.environ, **{f"TAPESCRIBE_{name.upper()}": value for name, value in settings.items()}}
    command = [sys.executable, "-m", "tapescribe", "worker", "--workers", "1", "--data-dir", str(data_dir)]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)
    ]
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            started = time.perf_counter()
            session_ids = []
            for _ in range(jobs):
                with open(recording, "rb") as handle:
                    response = client.post("/transcribe-file", files={"file": (recording.name, handle)})
                response.raise_for_status()
                session_ids.append(response.json()["session_id"])
            while session_ids:
                status = client.get(f"/session/{session_ids[0]}").json()["status"]["status"]
                if status in ("queued", "processing"):
                    time.sleep(0.1)
                    continue
                if status != "done":
                    raise SystemExit(f"a job ended as {status}")
                session_ids.pop(0)
            elapsed = time.perf_counter() - started
    finally:
        for process in [*processes, api]:
            process.send_signal(signal.SIGINT if process in processes else signal.SIGTERM)
            process.wait(timeout=60)
    return jobs * duration / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=90.0, help="length of each upload")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, comma-separated")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--search-sessions", type=int, default=100_000, help="0 skips the search latency")
    args = parser.parse_args()
    counts = [int(part) for part in args.workers.split(",")]
    base = HERE / ".data-scale-out"
    audio_dir = HERE.parent.parent / "shared" / "audio"
    recording, _ = make(args.seconds, base / "audio" / f"speech-{int(args.seconds)}s.wav", audio_dir)
    duration = measure_duration(recording)
    server, port = start_redis(base / "redis")
    figures: dict[int, list[float]] = {count: [] for count in counts}
    try:
        for run in range(args.runs):
            for count in counts if run % 2 == 0 else counts[::-1]:
                speed = run_once(count, recording, args.jobs, duration, port, base / f"data-{count}")
                figures[count].append(speed)
                print(f"run {run + 1}: {count} worker(s): {speed:.1f}x realtime", flush=True)
    finally:
        server.terminate()
        server.wait()
    print(f"\n{args.jobs} uploads of {duration:.0f} s, one decode thread per worker, {os.cpu_count()} CPU(s):")
    medians = {count: statistics.median(values) for count, values in figures.items()}
    for count, median in medians.items():
        print(f"  {count} worker(s): {median:.1f}x realtime")
    if 1 in medians and len(medians) > 1:
        top = max(medians)
        print(f"  ratio {top} workers / 1 worker: {medians[top] / medians[1]:.2f}")
    if args.search_sessions:
        print(f"\nsearch on {args.search_sessions} sessions:", flush=True)
        for backend in ("sqlite", "postgres"):
            report(backend, measure_backend(backend, args.search_sessions, 200, audio_dir))


if __name__ == "__main__":
    main()
