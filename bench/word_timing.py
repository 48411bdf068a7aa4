"""What word timestamps cost a stored job, and what they do to its subtitles: one file, one server, one run.

    python bench/word_timing.py FILE [--url URL] [--runs 3] [--set file_lanes=4] [--alignment [--no-server]]

Each run uploads FILE to `/transcribe-file` twice, once with word_timestamps=true and once with
false, in alternating order (so both see the same noisy machine), and waits for `done`. Prints each
run's seconds (upload to done, the job's own seconds from its status, and, for a server this script
started, the CPU seconds the server process used: on a machine shared with other work the wall
times swing with its load, the CPU seconds much less), the medians, the median of the per-run
ratios (words on / off), and for each its SRT: cues, the share of one-word cues and the first cue's
start against the first word's. Without --url a server is started with its
data in bench/.data-word-timing (kept, like all data), with the settings given by --set. Make a
10-minute file of real speech with `python bench/make_long_audio.py 600 bench/audio/ten.wav --varied`.

With --alignment it also runs the server's pipeline in this process over FILE (the default decode plan),
with words and without, alternating, and prints seconds, x-realtime and CPU seconds of each and the
seconds spent aligning words, summed over the lanes (engine/word_alignment.py: each cycle's words are
aligned after it is decoded, against the encoder output the decoding made, so the decoding, and the
text, is the same either way and the aligning is the whole cost; a run in which a window fell back to
sampling, temperature above 0, writes a different text each time, words or not).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import start_server  # noqa: E402

from tapescribe.engine.audio import measure_duration  # noqa: E402


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU seconds of process `pid` so far, all its threads (0 without a pid)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_job(client: httpx.Client, path: Path, words: bool, pid: int | None) -> tuple[float, float, float, str]:
    """Wall seconds from upload to done, the job's own seconds, the server's CPU seconds, the session id."""
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    with open(path, "rb") as handle:
        response = client.post(
            "/transcribe-file", files={"file": (path.name, handle)}, data={"word_timestamps": str(words).lower()}
        )
    response.raise_for_status()
    session_id = response.json()["session_id"]
    status = None
    with client.stream("GET", f"/session/{session_id}/events") as events:
        for line in events.iter_lines():
            if line.startswith("data: ") and '"status"' in line:
                status = json.loads(line[6:])
    elapsed = time.perf_counter() - started
    if status is None or status["status"] != "done":
        raise SystemExit(f"server job ended as {status}")
    return elapsed, status["runs"][-1]["seconds"], cpu_seconds(pid) - cpu, session_id


def subtitle_figures(client: httpx.Client, session_id: str) -> str:
    """Cues, one-word cues, and the first cue's start against the first word's (when words were timed)."""
    import srt

    segments = client.get(f"/session/{session_id}").json()["transcription"]["segments"]
    cues = list(srt.parse(client.get(f"/session/{session_id}/export/srt").text))
    lone = sum(1 for cue in cues if len(cue.content.split()) == 1)
    words = [word for segment in segments for word in segment.get("words") or []]
    first_word = f"{words[0]['start']:.3f}" if words else "untimed"
    return (
        f"cues={len(cues)} one_word_cues={lone} ({100 * lone / max(1, len(cues)):.1f}%) "
        f"first_cue_start={cues[0].start.total_seconds():.3f} first_word_start={first_word} "
        f"words_timed={bool(words)}"
    )


def alignment_share(path: Path, runs: int, model_name: str) -> str:
    """The server's pipeline in this process over `path` (the default plan: lanes on a CPU), with words and
    without, alternating: seconds, x-realtime and CPU seconds of each, and the seconds spent aligning words
    (engine/word_alignment.py), which are the whole cost: the decoding is the same either way."""
    from dataclasses import replace

    from tapescribe.config import Settings
    from tapescribe.engine import whisper_adapter
    from tapescribe.jobs.pipeline import AudioInput, TranscriptionPipeline
    from tapescribe.runtime import decode_scheduler, job_settings, model_pool

    settings = Settings(data_dir=HERE / ".data-word-timing")
    models, defaults, scheduler = model_pool(settings), job_settings(settings), decode_scheduler(settings)
    pipelines = {
        words: TranscriptionPipeline(models, replace(defaults, decoding=replace(defaults.decoding, word_timestamps=on)))
        for words, on in ((True, True), (False, False))
    }
    spent = [0.0]  # seconds in the alignment step, summed over the lanes' threads
    align = whisper_adapter.align_in_cycle

    def timed_align(*args, **kwargs):
        started = time.perf_counter()
        try:
            return align(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started  # += of floats under the GIL: lanes may lose a few

    duration = measure_duration(path)
    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    aligning: list[float] = []
    texts: dict[bool, list[str]] = {True: [], False: []}
    sampled: dict[bool, list[int]] = {True: [], False: []}  # segments decoded at a temperature above 0
    whisper_adapter.align_in_cycle = timed_align
    try:
        pipelines[False].transcribe(AudioInput(path), pipelines[False].request(model_name, None), scheduler)  # warm-up
        for run in range(runs):
            for words in (True, False) if run % 2 == 0 else (False, True):
                pipeline, spent[0] = pipelines[words], 0.0
                started, cpu_started = time.perf_counter(), time.process_time()
                result = pipeline.transcribe(AudioInput(path), pipeline.request(model_name, None), scheduler)
                wall[words].append(time.perf_counter() - started)
                cpu[words].append(time.process_time() - cpu_started)
                texts[words].append(result.text)
                sampled[words].append(sum(1 for segment in result.segments if segment["temperature"] > 0))
                if words:
                    aligning.append(spent[0])
            print(
                f"in-process run {run + 1}: words on {wall[True][-1]:.2f} s (cpu {cpu[True][-1]:.2f} s, aligning "
                f"{aligning[-1]:.2f} s), words off {wall[False][-1]:.2f} s (cpu {cpu[False][-1]:.2f} s); same text: "
                f"{texts[True][-1] == texts[False][-1]}; segments sampled (temperature > 0): on {sampled[True][-1]}, "
                f"off {sampled[False][-1]}",
                flush=True,
            )
    finally:
        whisper_adapter.align_in_cycle = align
    on, off = statistics.median(wall[True]), statistics.median(wall[False])
    every = zip(texts[True] + texts[False], sampled[True] + sampled[False], strict=True)
    unsampled = [text for text, count in every if not count]
    return (
        f"in-process, {path.name} ({duration:.1f} s), {model_name}, {runs} runs: words on median {on:.2f} s "
        f"({duration / on:.1f}x realtime, cpu {statistics.median(cpu[True]):.2f} s), words off {off:.2f} s "
        f"({duration / off:.1f}x realtime, cpu {statistics.median(cpu[False]):.2f} s); aligning median "
        f"{statistics.median(aligning):.2f} s ({100 * statistics.median(aligning) / on:.1f}% of the run with words); "
        f"runs without sampling: {len(unsampled)}, all the same text: {len(set(unsampled)) <= 1}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--url", help="a running tapescribe server (default: start one)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: a setting of the started server")
    parser.add_argument("--alignment", action="store_true", help="also words on and off in-process, and the aligning")
    parser.add_argument("--model", default="tiny.en", help="the model of the in-process runs")
    parser.add_argument("--no-server", action="store_true", help="only --alignment, no server runs")
    args = parser.parse_args()
    if args.alignment:
        print(alignment_share(args.file, args.runs, args.model), flush=True)
    if args.no_server:
        return
    duration = measure_duration(args.file)
    process, url = None, args.url
    if url is None:
        process, url = start_server(HERE / ".data-word-timing", **dict(item.split("=", 1) for item in args.set))
    pid = process.pid if process is not None else None
    wall: dict[bool, list[float]] = {True: [], False: []}
    job: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    last: dict[bool, str] = {}
    try:
        with httpx.Client(base_url=url, timeout=3600) as client:
            timed_job(client, args.file, False, pid)  # warm-up: the server loads its model on the first job
            for run in range(args.runs):
                for words in (True, False) if run % 2 == 0 else (False, True):
                    seconds, job_seconds, cpu_used, last[words] = timed_job(client, args.file, words, pid)
                    wall[words].append(seconds)
                    job[words].append(job_seconds)
                    cpu[words].append(cpu_used)
                print(
                    f"run {run + 1}: "
                    + ", ".join(
                        f"words {name} {wall[on][-1]:.2f} s (job {job[on][-1]:.2f} s, cpu {cpu[on][-1]:.2f} s)"
                        for on, name in ((True, "on"), (False, "off"))
                    ),
                    flush=True,
                )
            figures = {words: subtitle_figures(client, last[words]) for words in (True, False)}
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print(f"file={args.file.name} duration_s={duration:.1f} cpus={os.cpu_count()} runs={args.runs}")
    for words, name in ((True, "words on"), (False, "words off")):
        print(
            f"{name}: median {statistics.median(wall[words]):.2f} s upload to done, "
            f"job {statistics.median(job[words]):.2f} s, cpu {statistics.median(cpu[words]):.2f} s; {figures[words]}"
        )
    for label, seconds in (("job seconds", job), ("server cpu seconds", cpu)):
        if all(seconds[False]):
            ratios = [on / off for on, off in zip(seconds[True], seconds[False], strict=True)]
            print(f"words on / off ({label}, median of per-run ratios): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
