"""Peak memory against file length: a fresh `tapescribe serve` per length, and faster-whisper's own transcribe().

    python bench/memory.py [--minutes 10 60 180] [--audio-dir DIR] [--work-dir DIR] [--set NAME=VALUE]
    python bench/memory.py --in-process [--minutes 1 10 30] [--lanes 4] [--skip-library]

By default each length gets a fresh server (`python -m tapescribe serve`, data in --work-dir, with
the default settings unless --set says otherwise): one upload of that many minutes of real speech
(the varied file of bench/make_long_audio.py, seed 10, written to --work-dir), and the resident
memory of the server's process tree sampled every SAMPLE_SECONDS from the upload until the job is
done. Prints the tree's resident memory before the upload and its peak during the job, and the
job's wall time: the 180-minute peak should be within 10% of the 10-minute one.

With --in-process the engine runs in a child process without a server (as before: its peak is the
child's own VmHWM, which it prints), against faster-whisper's transcribe(file) unless --skip-library.
tapescribe decodes in blocks into windows of TAPESCRIBE_WINDOW_SECONDS (240 s by default); with
--lanes N in lanes (engine/lane_groups.py: groups of up to N windows held at once). tapescribe's
model is loaded as the server loads it (TAPESCRIBE_CPU_THREADS, TAPESCRIBE_CPU_DECODERS), the
library's with faster-whisper's defaults.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_long_audio import REPO, make  # noqa: E402

from tapescribe.config import Settings  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.2

ENGINE = """
import sys
from pathlib import Path
from tapescribe.engine.audio import pcm_blocks
from tapescribe.config import Settings
from tapescribe.engine.models import ModelPool, ModelSettings
from tapescribe.engine.lane_groups import transcribe_lane_groups
from tapescribe.engine.transcriber import DecodeOptions, transcribe_windows
settings = Settings()  # the server's decoders (one single-thread one per core), without importing the server
decoders = ModelSettings(cpu_threads=settings.cpu_threads, cpu_decoders=settings.decoders)
model = ModelPool(Path("unused"), "tiny.en", decoders).get()
def whole_file():
    return pcm_blocks(sys.argv[1])
seconds, lanes = float(sys.argv[2]), int(sys.argv[3])
if lanes > 1:
    from tapescribe.engine.malloc import cap_malloc_arenas

    cap_malloc_arenas()  # as the server's Runtime does when lanes are on
    records = transcribe_lane_groups(model, whole_file(), DecodeOptions(), window_seconds=seconds, lanes=lanes)
else:
    records = transcribe_windows(model, whole_file(), DecodeOptions(), window_seconds=seconds, whole_file=whole_file)
for _ in records:
    pass
from tapescribe.process_memory import peak_mib
print(peak_mib())
"""

LIBRARY = """
import sys
from pathlib import Path
from faster_whisper import WhisperModel
from tapescribe.engine.models import resolve_model
from tapescribe.engine.transcriber import DecodeOptions
model = WhisperModel(str(resolve_model("tiny.en", Path("unused"))), device="cpu", compute_type="int8")
segments, _ = model.transcribe(sys.argv[1], **DecodeOptions().as_kwargs())
for _ in segments:
    pass
from tapescribe.process_memory import peak_mib
print(peak_mib())
"""


def peak_mib(code: str, path: Path, *more: str) -> tuple[float, float]:
    """The peak resident memory (MiB) a child running `code` over `path` prints, and its wall time."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(path), *more], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"transcription of {path} failed: {done.stderr[-2000:]}")
    return float(done.stdout.split()[-1]), time.perf_counter() - started


def tree_rss(root: int) -> int:
    """Resident bytes of process `root` and all its descendants (from /proc; 0 once it is gone)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for pid in tree:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total


def through_server(path: Path, data_dir: Path, settings: dict[str, str]) -> tuple[float, float, float]:
    """(MiB before the upload, peak MiB during the job, seconds) of a fresh server transcribing `path`."""
    from throughput import start_server
    from throughput import through_server as upload_and_wait

    process, url = start_server(data_dir, **settings)
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(process.pid))
            stop.wait(SAMPLE_SECONDS)

    try:
        with httpx.Client(base_url=url, timeout=None) as client:
            client.get("/health").raise_for_status()
            before = tree_rss(process.pid)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            seconds, _, _ = upload_and_wait(client, path)
            stop.set()
            sampler.join()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
    return before / 2**20, peak[0] / 2**20, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+")
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    parser.add_argument("--work-dir", type=Path, default=HERE / ".data-memory", help="recordings and server data")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: a setting of the started servers")
    parser.add_argument("--in-process", action="store_true", help="the engine in a child process, no server")
    parser.add_argument("--skip-library", action="store_true")
    parser.add_argument("--window-seconds", type=float, default=Settings().window_seconds)
    parser.add_argument("--lanes", type=int, default=1, help="tapescribe in lanes (TAPESCRIBE_FILE_LANES)")
    parser.add_argument("--file", type=Path, help="measure this recording instead of the --minutes ones")
    args = parser.parse_args()
    if not args.in_process:
        settings = dict(item.split("=", 1) for item in args.set)
        for minutes in args.minutes or [10, 60, 180]:
            path = args.work_dir / f"varied_{minutes:g}min.wav"
            if not path.exists():
                make(minutes * 60, path, args.audio_dir, seed=10)
            data_dir = args.work_dir / f"data_{minutes:g}min_{time.strftime('%H%M%S')}"
            before, peak, seconds = through_server(path, data_dir, settings)
            print(f"file={path.name} idle_mib={before:.0f} peak_mib={peak:.0f} job_s={seconds:.1f}", flush=True)
        return
    for minutes in [None] if args.file else args.minutes or [1, 10, 30]:
        path = args.file or HERE / "audio" / f"speech_{minutes:g}min.wav"
        if not path.exists():
            make(minutes * 60, path, args.audio_dir)
        engine_mib, engine_s = peak_mib(ENGINE, path, str(args.window_seconds), str(args.lanes))
        line = f"file={path.name} lanes={args.lanes} tapescribe_peak_mib={engine_mib:.0f} tapescribe_s={engine_s:.1f}"
        if not args.skip_library:
            library_mib, library_s = peak_mib(LIBRARY, path)
            line += f" library_peak_mib={library_mib:.0f} library_s={library_s:.1f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
