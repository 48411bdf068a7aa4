"""Peak memory against file length: tapescribe's windowed engine and faster-whisper's own transcribe().

    python bench/memory.py [--minutes 1 10 30] [--lanes 4] [--file RECORDING.wav] [--skip-library]

Builds recordings of real speech of each length (bench/audio/, from ../shared/audio), then
transcribes each in a fresh process and reports that process's peak resident memory (maxrss
from wait4). tapescribe decodes in blocks into windows of TAPESCRIBE_WINDOW_SECONDS (240 s by
default), so its peak should stay flat; the library decodes the whole file first. With --lanes N
tapescribe decodes in lanes (engine/lane_groups.py: groups of up to N windows held at once). tapescribe's
model is loaded as the server loads it (TAPESCRIBE_CPU_THREADS, TAPESCRIBE_CPU_DECODERS), the library's
with faster-whisper's defaults.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_long_audio import REPO, make  # noqa: E402

from tapescribe.config import Settings  # noqa: E402

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
    from tapescribe.engine.lanes import cap_malloc_arenas

    cap_malloc_arenas()  # as the server's Runtime does when lanes are on
    records = transcribe_lane_groups(model, whole_file(), DecodeOptions(), window_seconds=seconds, lanes=lanes)
else:
    records = transcribe_windows(model, whole_file(), DecodeOptions(), window_seconds=seconds, whole_file=whole_file)
for _ in records:
    pass
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
"""


def peak_mib(code: str, path: Path, *more: str) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(path), *more], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"transcription of {path} failed")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30])
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    parser.add_argument("--skip-library", action="store_true")
    parser.add_argument("--window-seconds", type=float, default=Settings().window_seconds)
    parser.add_argument("--lanes", type=int, default=1, help="tapescribe in lanes (TAPESCRIBE_FILE_LANES)")
    parser.add_argument("--file", type=Path, help="measure this recording instead of the --minutes ones")
    args = parser.parse_args()
    for minutes in [None] if args.file else args.minutes:
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
