"""The speakers step's memory does not grow with what it has embedded (issue 28).

oneDNN, under torch's convolutions, makes and caches about 100 primitives for each input shape CAM++
is given (up to 1,024), each holding 0.5-1.5 MiB that stays: when each piece of a recording (and each
recording) ended with a batch of a size not seen before, the step's peak climbed piece by piece, 720
to 905 MiB over the first 8 minutes of an hour, and a server kept what every job had added. Now CAM++
always gets one shape (engine/speakers.py, FULL_FRAMES). Here a child process embeds three cuts of
one recording (3, 7 and 10 subsegments, three batch sizes before the fix) and its resident memory
after the last may exceed that after the first by at most MARGIN_MIB: measured +113 MiB before (661,
709, 773), 624, 620, 616 now.
"""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import AUDIO_DIR

MARGIN_MIB = 40
CUTS_SECONDS = (3, 5, 7)

CHILD = """
import sys
from pathlib import Path
import numpy as np
from tapescribe.engine.audio import pcm_blocks
from tapescribe.engine.speakers import DiarizerSettings, SpeakerDiarizer, embed_stream

def resident_mib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) // 1024

speech = np.concatenate(list(pcm_blocks(Path(sys.argv[1]))))
model = SpeakerDiarizer(DiarizerSettings(numba_cache_dir=Path(sys.argv[2])))._loaded()
after = []
for seconds in [float(cut) for cut in sys.argv[3:]]:
    found = embed_stream(model, [speech[: int(seconds * 16000)]])
    after.append((len(found.subsegments), resident_mib()))
print(after)
"""


def test_the_speakers_embedder_keeps_no_memory_per_batch_shape(tmp_path):
    recording = AUDIO_DIR / "sense_and_sensibility_01_austen_64kb-0870.wav"
    command = [sys.executable, "-c", CHILD, str(recording), str(tmp_path / "numba"), *map(str, CUTS_SECONDS)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    after = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    counts = [count for count, _ in after]
    assert len(set(counts)) == len(CUTS_SECONDS), f"the cuts should give different numbers of subsegments: {after}"
    grown = after[-1][1] - after[0][1]
    assert grown <= MARGIN_MIB, f"resident memory after each embedding (subsegments, MiB): {after}"
