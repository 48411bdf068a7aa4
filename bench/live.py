"""Live captions: latency and accuracy of /ws/live on one recording streamed in real time.

    python bench/live.py AUDIO REFERENCE.txt [--url http://127.0.0.1:8000] [--format pcm|webm] [--speed 1]
                         [--streams 1] [--with-long-job LONG.wav]

The recording is sent as a microphone would send it: 16 kHz PCM in 100 ms frames at the pace of
real time (or webm/opus in 250 ms MediaRecorder-like slices). The latency of a word is when its
final text arrived minus when the end of that word's audio was sent; word times come from an offline
transcript of the same file (faster-whisper, word_timestamps, the server's settings), and each live
word is matched to the offline word with the same text nearest in time. Word error rates use
Whisper's English normalisation (as the tests do): live is the final text of the stream, second pass
the transcript that replaces it when the session's job is done. Without --url a server is started
with its data in bench/.data (kept, like all data). With --streams N, N streams of the recording
run at once (one model shared, more streams than cores: each stream's steps get longer); latencies
are over all of them and the word error rates are the means. With --with-long-job FILE the streams
run again while FILE (a 10-minute recording from bench/make_long_audio.py) transcribes on the same
server, which is how live captions fare beside an upload; when the job ends before the streams do,
the latencies of the words sent while it still ran are printed as well (`while the job ran:`).
The last line of each round is its result:

    median_latency_s=... p95_latency_s=... live_wer=... second_pass_wer=...
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import statistics
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from throughput import start_server  # bench/ is the script's directory
from websockets.sync.client import connect

from tapescribe.config import Settings
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks

HERE = Path(__file__).resolve().parent
FRAME_SECONDS = 0.1
WEBM_SLICE_SECONDS = 0.25


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()
    return 100.0 * jiwer.wer(normalise(reference), normalise(hypothesis))


def key(text: str) -> str:
    return re.sub(r"[^\w']+", "", text.lower())


def offline_words(path: Path, settings: Settings) -> tuple[list[dict], str]:
    from faster_whisper import WhisperModel

    from tapescribe.engine.models import resolve_model

    model = WhisperModel(
        str(resolve_model(settings.model if settings.model != "auto" else "tiny.en", settings.models_dir)),
        device="cpu",
        compute_type="int8",
        cpu_threads=settings.cpu_threads,
    )
    segments, _ = model.transcribe(str(path), beam_size=settings.beam_size, word_timestamps=True)
    segments = list(segments)
    words = [{"end": word.end, "key": key(word.word)} for segment in segments for word in segment.words]
    return words, "".join(segment.text for segment in segments)


def webm_bytes(samples: np.ndarray) -> bytes:
    """The recording as a browser would record it: webm/opus, in memory."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype("<i2").reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for resampled in resampler.resample(frame):
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def pieces(samples: np.ndarray, fmt: str) -> list[tuple[float, bytes]]:
    """(seconds of audio up to the end of this piece, bytes) in sending order."""
    duration = len(samples) / SAMPLE_RATE
    if fmt == "pcm":
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        step = int(FRAME_SECONDS * SAMPLE_RATE) * 2
        return [
            (min(duration, (start + step) / 2 / SAMPLE_RATE), pcm[start : start + step])
            for start in range(0, len(pcm), step)
        ]
    data = webm_bytes(samples)  # slices by share of the bytes: opus is near constant bit rate
    count = max(1, int(np.ceil(duration / WEBM_SLICE_SECONDS)))
    bounds = [round(len(data) * n / count) for n in range(count + 1)]
    return [(duration * (n + 1) / count, data[bounds[n] : bounds[n + 1]]) for n in range(count)]


def stream(url: str, samples: np.ndarray, fmt: str, speed: float, title: str) -> dict:
    """Send the recording at `speed` x real time; returns the messages with their arrival times and send times."""
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://") + "/ws/live"
    sent: list[tuple[float, float]] = []  # (audio seconds sent so far, wall time)
    received: list[tuple[float, dict]] = []
    with connect(ws_url, max_size=None) as socket:
        socket.send(json.dumps({"type": "start", "format": fmt, "sample_rate": SAMPLE_RATE, "title": title}))
        received.append((time.perf_counter(), json.loads(socket.recv())))

        def send_all() -> None:
            started = time.perf_counter()
            for audio_end, data in pieces(samples, fmt):
                due = started + (audio_end - (FRAME_SECONDS if fmt == "pcm" else WEBM_SLICE_SECONDS)) / speed
                time.sleep(max(0.0, due - time.perf_counter()))
                socket.send(data)
                sent.append((audio_end, time.perf_counter()))
            socket.send(json.dumps({"type": "stop"}))

        sender = threading.Thread(target=send_all)
        sender.start()
        while True:
            message = json.loads(socket.recv())
            received.append((time.perf_counter(), message))
            if message["type"] in ("done", "error"):
                break
        sender.join()
    return {"sent": sent, "received": received}


def latencies(run: dict, offline: list[dict], sent_before: float | None = None) -> list[tuple[float, str, float]]:
    """(latency, word, end of the word in the recording) for each live word matched to an offline one
    (with `sent_before`, a perf_counter time, only words whose audio was all sent before it)."""
    sent_times = [wall for _, wall in run["sent"]]
    sent_ends = [audio_end for audio_end, _ in run["sent"]]
    used: set[int] = set()
    found = []
    for arrived, message in run["received"]:
        if message["type"] != "final":
            continue
        for word in message["words"]:
            best = None
            for number, candidate in enumerate(offline):
                if number in used or candidate["key"] != key(word["word"]) or abs(candidate["end"] - word["end"]) > 1.5:
                    continue
                if best is None or abs(candidate["end"] - word["end"]) < abs(offline[best]["end"] - word["end"]):
                    best = number
            if best is None:
                continue
            used.add(best)
            index = min(int(np.searchsorted(sent_ends, offline[best]["end"] - 1e-6)), len(sent_times) - 1)
            if sent_before is None or sent_times[index] < sent_before:
                found.append((arrived - sent_times[index], word["word"], offline[best]["end"]))
    return sorted(found)


def wait_done(client: httpx.Client, session_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/session/{session_id}").json()
        if body["status"]["status"] not in ("queued", "processing"):
            return body
        time.sleep(0.2)
    raise SystemExit(f"session {session_id} did not finish")


def start_long_job(client: httpx.Client, path: Path) -> str:
    """Upload `path` and wait until its job is in its segment loop (past language detection)."""
    with open(path, "rb") as handle:
        response = client.post("/transcribe-file", files={"file": (path.name, handle)})
    response.raise_for_status()
    session_id = response.json()["session_id"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = client.get(f"/session/{session_id}").json()["status"]
        if status["status"] == "processing" and status["progress"]:
            return session_id
        if status["status"] not in ("queued", "processing"):
            raise SystemExit(f"the long job ended as {status}")
        time.sleep(0.2)
    raise SystemExit("the long job never started")


def run_streams(url: str, samples: np.ndarray, args: argparse.Namespace, label: str) -> list[dict]:
    """`args.streams` streams of the recording at once, each to its `done` message."""
    runs: list[dict] = [{} for _ in range(args.streams)]

    def one(number: int) -> None:
        runs[number] = stream(url, samples, args.format, args.speed, f"bench {args.audio.name} {label} #{number + 1}")

    threads = [threading.Thread(target=one, args=(number,)) for number in range(args.streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs


def second_passes(url: str, runs: list[dict]) -> tuple[list, dict]:
    """The streams' sessions once their second pass is done, and the first one's versions."""
    sessions, versions = [], {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for run in runs:
            done = run["received"][-1][1]
            if done["type"] != "done":
                raise SystemExit(f"a stream ended with {done}")
            sessions.append(wait_done(client, done["session_id"]))
            versions = versions or client.get(f"/session/{done['session_id']}/versions").json()
    return sessions, versions


def job_end_watcher(client: httpx.Client, session_id: str) -> tuple[threading.Event, dict]:
    """Polls the long job until it leaves `processing` or the returned event is set; the dict gets
    `ended`, the perf_counter time it ended (None while it still runs)."""
    stop, found = threading.Event(), {"ended": None}

    def watch() -> None:
        while not stop.is_set():
            if client.get(f"/session/{session_id}").json()["status"]["status"] != "processing":
                found["ended"] = time.perf_counter()
                return
            stop.wait(0.2)

    threading.Thread(target=watch, daemon=True).start()
    return stop, found


def report(
    label: str,
    runs: list,
    sessions: list,
    versions: dict,
    samples,
    offline,
    offline_text,
    reference,
    args,
    job_ended: float | None = None,
):
    def live_text(run: dict) -> str:
        return "".join(message["text"] for _, message in run["received"] if message["type"] == "final")

    def second_text(session: dict) -> str:
        return (session.get("transcription") or {}).get("text", "")

    timed = sorted(found for run in runs for found in latencies(run, offline))
    found = [latency for latency, _, _ in timed]
    run, session = runs[0], sessions[0]
    finals = [message for _, message in run["received"] if message["type"] == "final"]
    print(f"== {label}")
    print(
        f"file={args.audio.name} duration_s={len(samples) / SAMPLE_RATE:.1f} format={args.format} "
        f"speed={args.speed} streams={args.streams} cpus={os.cpu_count()} session={session['id']}"
    )
    print(f"live: {live_text(run).strip()}")
    print(f"second pass ({session['status']['status']}): {second_text(session)}")
    print(
        f"offline_wer={word_error_rate(reference, offline_text):.2f} final_messages={len(finals)} "
        f"words_timed={len(found)}/{len(offline) * len(runs)} "
        f"stop_to_done_s={max(run['received'][-1][0] - run['sent'][-1][1] for run in runs):.2f} "
        f"versions={[version['label'] for version in versions['versions']]}"
    )
    print(
        "slowest words: "
        + ", ".join(f"{word.strip()!r}@{end:.1f}s {latency:.2f}s" for latency, word, end in timed[-5:])
    )
    live_wer = statistics.mean(word_error_rate(reference, live_text(run)) for run in runs)
    second_wer = statistics.mean(word_error_rate(reference, second_text(session)) for session in sessions)
    if job_ended is not None:  # the long job ended during the streams: the words sent while it ran
        beside = sorted(latency for run in runs for latency, _, _ in latencies(run, offline, job_ended))
        if beside:
            print(
                f"while the job ran: words={len(beside)} median_latency_s={statistics.median(beside):.2f} "
                f"p95_latency_s={beside[int(0.95 * (len(beside) - 1))]:.2f}"
            )
    print(
        f"median_latency_s={statistics.median(found):.2f} p95_latency_s={found[int(0.95 * (len(found) - 1))]:.2f} "
        f"live_wer={live_wer:.2f} second_pass_wer={second_wer:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", type=Path)
    parser.add_argument("reference", type=Path)
    parser.add_argument("--url", help="a running tapescribe server (default: start one)")
    parser.add_argument("--format", choices=("pcm", "webm"), default="pcm")
    parser.add_argument("--speed", type=float, default=1.0, help="x real time (1: as a microphone)")
    parser.add_argument("--streams", type=int, default=1, help="this many streams at once")
    parser.add_argument(
        "--with-long-job",
        type=Path,
        metavar="FILE",
        help="after the streams alone, upload FILE (bench/make_long_audio.py 600 ...) and stream again while "
        "it transcribes; the job is cancelled after the streams",
    )
    args = parser.parse_args()

    settings = Settings()
    samples = np.concatenate(list(pcm_blocks(args.audio)))
    reference = args.reference.read_text(encoding="utf-8").strip()
    offline, offline_text = offline_words(args.audio, settings)
    process = None
    url = args.url
    if url is None:
        process, url = start_server(HERE / ".data")
    rounds = []
    try:
        stream(url, samples[: 2 * SAMPLE_RATE], "pcm", 8.0, "bench warm-up")  # the server loads its model
        runs = run_streams(url, samples, args, "alone")
        rounds.append(("alone", runs, *second_passes(url, runs)))
        if args.with_long_job is not None:
            with httpx.Client(base_url=url, timeout=600) as client:
                long_id = start_long_job(client, args.with_long_job)
                before = client.get(f"/session/{long_id}").json()["status"]["progress"]
                with httpx.Client(base_url=url, timeout=60) as watching:
                    stop_watching, job = job_end_watcher(watching, long_id)
                    started = time.perf_counter()
                    runs = run_streams(url, samples, args, "beside a long job")
                    stop_watching.set()
                after = client.get(f"/session/{long_id}").json()["status"]
                client.post(f"/session/{long_id}/cancel")
            ran = f"it ended {job['ended'] - started:.1f} s into the streams" if job["ended"] else "it still ran"
            label = (
                f"beside a long job ({args.with_long_job.name}: progress {before:.3f} -> "
                f"{after['progress'] or 0:.3f}, {after['status']} when the streams ended; {ran})"
            )
            rounds.append((label, runs, *second_passes(url, runs), job["ended"]))
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    for label, runs, sessions, versions, *job_ended in rounds:
        report(label, runs, sessions, versions, samples, offline, offline_text, reference, args, *job_ended)


if __name__ == "__main__":
    main()
