"""A long file job's memory does not climb with the recording's length (issue 28).

Lanes (the default for files of 2 minutes or more on a CPU) once held a group's audio three times while
reading the next one and featurized each lane whole, so a job's peak grew with the group and the file.
Here tiny.en transcribes a 3-minute and a 12-minute recording in lanes, each in a child process loaded
as the server loads it (its malloc arenas capped as the server caps them), and the 12-minute job's peak
resident memory may exceed the 3-minute one's by at most MARGIN_MIB: the child's own VmHWM, which it
prints (its ru_maxrss starts at the pytest worker's size, so with a worker larger than the job both
would read the same). The 12-minute file is one group of four 180 s lanes, the 3-minute one three 60 s
lanes: its group's audio (46 MiB against 12, now let go once the lanes are featurized) and lane features
(23 against 6) hold more by their nature (the server's peaks by length are in docs/performance.md,
Memory). Measured as VmHWM on 2 cores: 363 and 386 MiB (+24), 354 and 382 (+28) now; 374 and 429 (+55)
with the group's audio held to the group's end. Measured as ru_maxrss before: 359 and 429 MiB (+70); 432
and 488 (+56) with Silero in batches (engine/silero_speeches.py) but malloc's mmap threshold left to
rise (malloc.cap_malloc_arenas); 430 and 499 (+69) before both, and 465 and 663 MiB (+198) before the
group and feature fixes. The margin stays wide: the figures vary by tens of MiB with how the lanes'
passes meet on a busy machine (tests/test_file_lanes.py checks the group's audio is let go).

The recordings are the shared English speech with PAUSE_SECONDS of silence after each recording
(tests/long_audio.py `make`), so each lane holds speech to decode while most of the audio is read,
featurized and searched for speech as any audio is, at a fraction of the decoding.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import AUDIO_DIR
from long_audio import make

MARGIN_MIB = 100
PAUSE_SECONDS = 40.0

CHILD = """
import sys
from pathlib import Path
from tapescribe.config import Settings
from tapescribe.engine.audio import pcm_blocks
from tapescribe.engine.lane_groups import transcribe_lane_groups
from tapescribe.engine.malloc import cap_malloc_arenas
from tapescribe.engine.models import ModelPool, ModelSettings
from tapescribe.engine.transcriber import DecodeOptions
from tapescribe.process_memory import peak_mib

settings = Settings()
decoders = ModelSettings(cpu_threads=settings.cpu_threads, cpu_decoders=settings.decoders)
model = ModelPool(Path(sys.argv[2]), "tiny.en", decoders).get()
cap_malloc_arenas()  # as the server does when lanes are on (runtime.prepare_process)
segments = list(transcribe_lane_groups(model, pcm_blocks(sys.argv[1]), DecodeOptions(), lanes=settings.file_lanes))
assert segments, "no speech decoded"
print(peak_mib())
"""


def peak_mib(recording: Path, models_dir: Path) -> float:
    """Peak resident memory (MiB) of a fresh process transcribing `recording` in lanes."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(recording), str(models_dir)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"the transcription of {recording.name} failed: {done.stderr[-2000:]}"
    return float(done.stdout.split()[-1])


def test_a_long_job_peaks_where_a_short_one_does(tmp_path):
    short, _ = make(180, tmp_path / "short.wav", AUDIO_DIR, pause_seconds=PAUSE_SECONDS)
    long, _ = make(720, tmp_path / "long.wav", AUDIO_DIR, pause_seconds=PAUSE_SECONDS)
    short_peak, long_peak = peak_mib(short, tmp_path / "models"), peak_mib(long, tmp_path / "models")
    assert long_peak - short_peak <= MARGIN_MIB, f"12 minutes peaked at {long_peak:.0f} MiB, 3 at {short_peak:.0f}"
