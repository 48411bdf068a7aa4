"""Fairness under load: a short clip behind a long file, and ten clips at once against one by one.

    python bench/fairness.py [--long-seconds 660] [--slots 0] [--workers 3] [--set NAME=VALUE]
                             [--audio-dir ../shared/audio]

A server is started with its data in a new folder under bench/.data-fairness (kept, like all data;
a new one each run, so no job a run left unfinished is resumed under the next one's figures), with
TAPESCRIBE_MAX_CONCURRENT_DECODES=--slots (0: sized for the machine) and the other TAPESCRIBE_*
variables of the environment (TAPESCRIBE_MODEL=tiny.en pins the model), or as --set says
(`--set clip_batch=1`: TAPESCRIBE_CLIP_BATCH=1). After a warm-up:

- short_alone_s: `POST /transcribe` of a 5.9 s clip (leopard_test.wav) on an idle server (median of 3).
- short_behind_long_s: the same request sent 2 s after a long file (bench/make_long_audio.py, English
  speech of the shared recordings) was uploaded to `/transcribe-file`, while it transcribes
  (median of 3 sent 2 s apart; the maximum is printed too). The long job is cancelled afterwards.
- ten_clips_at_once_s: ten English clips (1.8-11 s) sent as ten concurrent `/transcribe` requests,
  until the last answer; ten_clips_mean_s is the mean time to each answer.
- ten_clips_one_by_one_s: the same ten, each sent when the one before was answered.
  Both are medians of --rounds rounds, alternated. ten_clips_same_text says for how many of the
  clips sent at once every answer had the text of the same clip sent alone.

Also printed: the server's peak resident memory and the load average (the machine may be shared).
The last line is the result: short_behind_long_s=... short_alone_s=... ten_clips_at_once_s=...
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from make_long_audio import make  # bench/ is the script's directory
from throughput import start_server

HERE = Path(__file__).resolve().parent
SHORT = "leopard_test.wav"
TEN_CLIPS = [
    "jfk.flac",
    "61-70968-0000.flac",
    "goforward.wav",
    "leopard_test.wav",
    "sense_and_sensibility_01_austen_64kb-0870.wav",
    "sense_and_sensibility_01_austen_64kb-0890.wav",
    "sense_and_sensibility_01_austen_64kb-0920.wav",
    "speechbrain_spk1_snt1.wav",
    "speechbrain_spk2_snt2.wav",
    "vosk_digits.wav",
]


def peak_rss(pid: int) -> int:
    """The server's peak resident memory in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def transcribe(url: str, path: Path) -> float:
    """Seconds from sending `path` to `/transcribe` to its transcript."""
    return transcribe_text(url, path)[0]


def transcribe_text(url: str, path: Path) -> tuple[float, str]:
    """Seconds from sending `path` to `/transcribe` to its transcript, and its text."""
    started = time.perf_counter()
    with open(path, "rb") as handle:
        response = httpx.post(url + "/transcribe", files={"audio": (path.name, handle)}, timeout=3600)
    response.raise_for_status()
    return time.perf_counter() - started, response.json()["text"]


def upload(url: str, path: Path) -> str:
    with open(path, "rb") as handle:
        response = httpx.post(url + "/transcribe-file", files={"file": (path.name, handle)}, timeout=3600)
    response.raise_for_status()
    return response.json()["session_id"]


def status(url: str, session_id: str) -> str:
    return httpx.get(f"{url}/session/{session_id}", timeout=60).json()["status"]["status"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-seconds", type=float, default=660.0)
    parser.add_argument("--slots", type=int, default=0, help="max_concurrent_decodes (0: sized for the machine)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="ten-clip rounds (medians are printed)")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: a setting of the started server")
    parser.add_argument("--audio-dir", type=Path, default=HERE.parent.parent / "shared" / "audio")
    args = parser.parse_args()

    data_dir = HERE / ".data-fairness"
    long_file, _ = make(args.long_seconds, data_dir / f"long_{int(args.long_seconds)}.wav", args.audio_dir)
    data_dir = data_dir / time.strftime("run-%Y%m%d-%H%M%S")
    short = args.audio_dir / SHORT
    clips = [args.audio_dir / name for name in TEN_CLIPS]
    settings = {"max_concurrent_decodes": str(args.slots), "workers": str(args.workers)}
    settings.update(item.split("=", 1) for item in args.set)
    process, url = start_server(data_dir, **settings)
    try:
        transcribe(url, short)  # warm-up: the model is loaded on the first job
        alone = [transcribe(url, short) for _ in range(3)]

        long_id = upload(url, long_file)
        behind = []
        for _ in range(3):
            time.sleep(2.0)
            if status(url, long_id) != "processing":
                raise SystemExit("the long job was not running when the short clip was sent; make it longer")
            behind.append(transcribe(url, short))
        long_running = status(url, long_id) == "processing"
        httpx.post(f"{url}/session/{long_id}/cancel", timeout=60)
        while status(url, long_id) in ("queued", "processing"):
            time.sleep(0.2)

        at_once, one_by_one, answers = [], [], []
        alone_texts = {clip: transcribe_text(url, clip)[1] for clip in clips}
        same_text = [True] * len(clips)
        for _ in range(args.rounds):  # alternated, so both see the same (shared, noisy) machine
            started = time.perf_counter()
            with ThreadPoolExecutor(len(clips)) as pool:
                results = list(pool.map(lambda clip: transcribe_text(url, clip), clips))
            at_once.append(time.perf_counter() - started)
            answers += [seconds for seconds, _ in results]
            texts = [text for _, text in results]
            same_text = [
                same and text == alone_texts[clip] for same, clip, text in zip(same_text, clips, texts, strict=True)
            ]
            started = time.perf_counter()
            for clip in clips:
                transcribe(url, clip)
            one_by_one.append(time.perf_counter() - started)
        decodes = httpx.get(url + "/health", timeout=60).json().get("decodes", {})  # absent before the scheduler
        peak_rss_mib = peak_rss(process.pid) / 1024
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    print(
        f"cpus={os.cpu_count()} slots={decodes.get('slots')} workers={args.workers} long_s={args.long_seconds:.0f} "
        f"settings={','.join(args.set) or 'defaults'} "
        f"peak_rss_mib={peak_rss_mib:.0f} load_average={os.getloadavg()[0]:.1f}"
    )
    print(f"ten_clips_rounds_s at_once={at_once} one_by_one={one_by_one}")
    print(f"short_behind_long_all_s={','.join(f'{value:.2f}' for value in behind)} long_still_running={long_running}")
    print(
        f"peak_running={decodes.get('peak_running')} preemptions={decodes.get('preemptions')} "
        f"ten_clips_mean_s={statistics.mean(answers):.2f} ten_clips_max_s={max(answers):.2f} "
        f"ten_clips_same_text={sum(same_text)}/{len(clips)}"
    )
    print(
        f"short_behind_long_s={statistics.median(behind):.2f} short_behind_long_max_s={max(behind):.2f} "
        f"short_alone_s={statistics.median(alone):.2f} ten_clips_at_once_s={statistics.median(at_once):.2f} "
        f"ten_clips_one_by_one_s={statistics.median(one_by_one):.2f}"
    )


if __name__ == "__main__":
    main()
