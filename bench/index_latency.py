"""List and search latency through the real server with 10,000 sessions of realistic transcripts.

    python bench/index_latency.py [--sessions 10000] [--requests 300]

Fills bench/.index-data (once; kept) with session directories whose transcripts are sentences
of the shared recordings' reference transcripts, 20 to 80 segments each, builds the index with
`reindex`, starts `tapescribe serve` on it and times GET /sessions (random pages, and with a
query) and GET /search (single words, prefixes and phrases) from a client on this machine.
Prints p50 and p95 in milliseconds for each. The sentence pool is small, so a word query matches
most of the 10,000 sessions: a worst case. search_rare looks up a title number (one session).
The pool holds the other languages' reference transcripts too; search_cjk looks up two characters
of the Japanese, Chinese-script or Korean ones (indexed a character at a time).
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import statistics
import sys
import time
from pathlib import Path

import httpx

from tapescribe.config import Settings
from tapescribe.runtime import Runtime
from tapescribe.sessions.files import write_json_atomic
from tapescribe.sessions.service import DONE, SessionService, status_record

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_long_audio import REPO  # noqa: E402
from throughput import start_server  # noqa: E402


def sentences(audio_dir: Path) -> list[str]:
    found = []
    for path in sorted(audio_dir.glob("*.txt")):
        if path.stem.startswith("leopard_test_"):
            found.append(path.read_text().strip())  # one sentence in another language
            continue
        found += [s.strip() for s in re.split(r"(?<=[.!?])\s+", path.read_text()) if len(s.split()) > 2]
    return found


def unspaced_pairs(audio_dir: Path) -> list[str]:
    """Every two neighbouring characters of the Japanese and Korean reference transcripts."""
    pairs = []
    for language in ("ja", "ko"):
        text = (audio_dir / f"leopard_test_{language}.txt").read_text().strip()
        pairs += [text[at : at + 2] for at in range(len(text) - 1) if all(c.isalnum() for c in text[at : at + 2])]
    return pairs


def fill(data_dir: Path, count: int, audio_dir: Path) -> None:
    runtime = Runtime(Settings(data_dir=data_dir))
    sessions: SessionService = runtime.sessions
    have = len(sessions.store.ids())
    pool = sentences(audio_dir)
    rng = random.Random(7)
    for number in range(have, count):
        session_id, incoming = sessions.store.new_incoming()
        segments, clock = [], 0.0
        for position in range(rng.randint(20, 80)):
            text = " " + rng.choice(pool)
            length = len(text.split()) * 0.4
            segments.append({"id": position, "start": round(clock, 2), "end": round(clock + length, 2), "text": text})
            clock += length + rng.random()
        record = sessions.new_session_record(
            session_id,
            source="upload",
            title=f"Meeting {number}",
            duration=round(clock, 2),
            model="tiny.en",
            language="en",
        )
        write_json_atomic(
            incoming / "transcription.json",
            {
                "text": "".join(s["text"] for s in segments).strip(),
                "language": "en",
                "segments": segments,
            },
        )
        sessions.store.publish(session_id, record, status_record(DONE, progress=1.0))
        if number % 1000 == 0:
            print(f"filled {number}/{count}", flush=True)
    if have < count:
        print(f"indexed {sessions.reindex()} sessions", flush=True)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50_ms={statistics.median(ordered) * 1000:.1f} p95_ms={p95 * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    args = parser.parse_args()
    data_dir = HERE / ".index-data"
    fill(data_dir, args.sessions, args.audio_dir)

    words = sorted({w.lower() for s in sentences(args.audio_dir) for w in re.findall(r"[A-Za-z]{4,}", s)})
    pairs = unspaced_pairs(args.audio_dir)
    rng = random.Random(11)
    process, url = start_server(data_dir)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            total = client.get("/sessions", params={"limit": 1}).json()["total"]
            plans = {
                "list_page": lambda: client.get("/sessions", params={"limit": 50, "offset": rng.randrange(0, total)}),
                "list_query": lambda: client.get("/sessions", params={"limit": 50, "q": rng.choice(words)}),
                "search_word": lambda: client.get("/search", params={"q": rng.choice(words)}),
                "search_prefix": lambda: client.get("/search", params={"q": rng.choice(words)[:4] + "*"}),
                "search_cjk": lambda: client.get("/search", params={"q": rng.choice(pairs)}),
                "search_rare": lambda: client.get("/search", params={"q": str(rng.randrange(total))}),
                "search_phrase": lambda: client.get(
                    "/search",
                    params={"q": '"' + " ".join(rng.choice([s for s in sentences(args.audio_dir)]).split()[:3]) + '"'},
                ),
            }
            print(f"sessions={total}")
            for name, call in plans.items():
                samples = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    response = call()
                    samples.append(time.perf_counter() - started)
                    response.raise_for_status()
                print(f"{name} {percentiles(samples)}", flush=True)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
