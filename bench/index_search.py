"""Search latency of each index backend, SQLite and PostgreSQL, on 100,000 sessions.

    python bench/index_search.py [--sessions 100000] [--requests 200] [--postgres-url URL]

Fills each index once (kept in bench/.index-search, refilled only when it holds fewer sessions)
with sessions of 20 to 80 segments made of sentences of the shared recordings' reference
transcripts, as bench/index_latency.py does through the server, then times `search()` on the
index itself (no HTTP) for a mix of queries: single words, prefixes, three-word phrases, two
characters of the Japanese or Korean transcript, and a title number found in one session. The
sentence pool is small, so a word matches most sessions: the worst case for ranking. Without
--postgres-url a throwaway PostgreSQL cluster is started (its data kept in the same folder).

Prints `<backend>_search_p50_ms=` and `<backend>_search_p95_ms=` over the mix, then a line per
kind of query. bench/scale_out.py calls `measure_backend` for its own report.
"""

from __future__ import annotations

import argparse
import random
import re
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tapescribe.sessions.index import SessionIndex
from tapescribe.sessions.index_sqlite import SqliteSessionIndex

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

from index_latency import sentences, unspaced_pairs  # noqa: E402

DATA = HERE / ".index-search"
BATCH = 500


def fill(index: SessionIndex, count: int, pool: list[str], seed: int = 7) -> None:
    """Sessions 0..count-1 (the same on every backend), written in batches as `reindex` writes them."""
    have = index.totals()["session_count"]
    if have >= count:
        return
    if have:
        index.clear()
    rng = random.Random(seed)
    pending = []
    started = time.monotonic()
    for number in range(count):
        segments, clock = [], 0.0
        for _ in range(rng.randint(20, 80)):
            text = " " + rng.choice(pool)
            length = len(text.split()) * 0.4
            segments.append({"start": round(clock, 2), "end": round(clock + length, 2), "text": text})
            clock += length + rng.random()
        row = {
            "id": f"{number:08d}",
            "title": f"Meeting {number}",
            "created": f"2025-01-01T00:00:00.{number:06d}",
            "source": "upload",
            "duration": round(clock, 2),
            "status": "done",
            "updated": "2025-01-01T00:00:00",
            "size_bytes": 1000,
        }
        pending.append((row, segments))
        if len(pending) == BATCH:
            index.upsert_many(pending)
            pending = []
            if (number + 1) % 10_000 == 0:
                print(f"  filled {number + 1}/{count} in {time.monotonic() - started:.0f} s", flush=True)
    index.upsert_many(pending)


def query_plans(audio_dir: Path, sessions: int) -> dict[str, Callable[[random.Random], str]]:
    pool = sentences(audio_dir)
    words = sorted({w.lower() for s in pool for w in re.findall(r"[A-Za-z]{4,}", s)})
    pairs = unspaced_pairs(audio_dir)
    return {
        "word": lambda rng: rng.choice(words),
        "prefix": lambda rng: rng.choice(words)[:4] + "*",
        "phrase": lambda rng: '"' + " ".join(rng.choice(pool).split()[:3]) + '"',
        "cjk": lambda rng: rng.choice(pairs),
        "rare": lambda rng: str(rng.randrange(sessions)),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def search_latency(index: SessionIndex, audio_dir: Path, sessions: int, requests: int = 200) -> dict[str, float]:
    """Milliseconds: p50 and p95 of `requests` searches of each kind, and of all of them together."""
    rng = random.Random(11)
    plans = query_plans(audio_dir, sessions)
    for plan in plans.values():  # warm the caches once, as a running server has them
        index.search(plan(rng))
    timings: dict[str, list[float]] = {}
    for _ in range(requests):
        for kind, plan in plans.items():
            query = plan(rng)
            started = time.perf_counter()
            index.search(query)
            timings.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
    every = [sample for samples in timings.values() for sample in samples]
    figures = {"search_p50_ms": statistics.median(every), "search_p95_ms": percentile(every, 0.95)}
    for kind, samples in timings.items():
        figures[f"{kind}_p50_ms"] = statistics.median(samples)
        figures[f"{kind}_p95_ms"] = percentile(samples, 0.95)
    return figures


def report(backend: str, figures: dict[str, float]) -> None:
    print(f"{backend}_search_p50_ms={figures['search_p50_ms']:.1f}")
    print(f"{backend}_search_p95_ms={figures['search_p95_ms']:.1f}", flush=True)
    kinds = sorted({name.rsplit("_", 2)[0] for name in figures} - {"search"})
    for kind in kinds:
        print(f"  {backend} {kind}: p50 {figures[f'{kind}_p50_ms']:.1f} ms, p95 {figures[f'{kind}_p95_ms']:.1f} ms")


def measure_backend(
    backend: str, sessions: int, requests: int, audio_dir: Path, postgres_url: str = ""
) -> dict[str, float]:
    """Fill `backend`'s index with `sessions` sessions (once; kept in bench/.index-search) and time its searches.

    Without `postgres_url` the PostgreSQL backend gets a throwaway cluster of its own.
    """
    DATA.mkdir(exist_ok=True)
    cluster = None
    if backend == "sqlite":
        index: SessionIndex = SqliteSessionIndex(DATA / f"index-{sessions}.sqlite3")
    else:
        from postgres_cluster import PostgresCluster, create_database, find_initdb
        from tapescribe.sessions.index_postgres import PostgresSessionIndex

        url = postgres_url
        if not url:
            initdb = find_initdb()
            if initdb is None:
                raise SystemExit("PostgreSQL is not installed: give --postgres-url")
            (DATA / "postgres").mkdir(exist_ok=True)
            cluster = PostgresCluster(DATA / "postgres", free_port()).start(initdb)
            url = cluster.url.rsplit("/", 1)[0] + f"/bench_{sessions}"
            try:
                create_database(cluster.url, f"bench_{sessions}")
            except Exception:  # kept from an earlier run
                pass
        index = PostgresSessionIndex(url)
    try:
        started = time.monotonic()
        fill(index, sessions, sentences(audio_dir))
        index.optimize()  # as `reindex` does
        print(f"{backend}: {index.totals()['session_count']} sessions ({time.monotonic() - started:.0f} s to fill)")
        return search_latency(index, audio_dir, sessions, requests)
    finally:
        index.close()
        if cluster is not None:
            cluster.stop(remove=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="searches of each kind")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default="", help="a database the benchmark may fill (default: its own)")
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        report(backend, measure_backend(backend, args.sessions, args.requests, args.audio_dir, args.postgres_url))


if __name__ == "__main__":
    main()
