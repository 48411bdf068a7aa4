"""Make a long recording of real speech by joining the shared English recordings (with short pauses).

python bench/make_long_audio.py SECONDS OUT.wav [--audio-dir ../shared/audio] [--varied [--seed N]]

The plain file plays the recordings in the same order with 0.5 s pauses, so it repeats itself about
every 94 s: a window's text context can then hold the very words that come next. `--varied` makes a
file that does not repeat that way: each pass through the recordings is in its own order (shuffled
with a fixed seed), each pause lasts 0.3 to 2.0 s, and each recording is played 8% slower to 8%
faster (resampled, so its pitch moves with it) and 6 dB softer to 3 dB louder (never clipping).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the helpers live with the tests, which use them too

from long_audio import FILES, bench_file, english_recordings, make, varied  # noqa: E402

__all__ = ["FILES", "REPO", "bench_file", "english_recordings", "make", "varied"]
DEFAULT_AUDIO = Path(os.environ.get("TAPESCRIBE_TEST_AUDIO", REPO.parent / "shared" / "audio"))

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", type=float)
    parser.add_argument("out", type=Path)
    parser.add_argument("--audio-dir", type=Path, default=DEFAULT_AUDIO)
    parser.add_argument("--varied", action="store_true", help="shuffled order, varied pauses, speed and level")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--first", type=int, default=0, help="the plain file starts at this recording (0: the first)")
    args = parser.parse_args()
    path, _ = make(args.seconds, args.out, args.audio_dir, args.seed if args.varied else None, args.first)
    print(path)
