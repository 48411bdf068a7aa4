"""Every voice kept: the server's defaults against faster-whisper's own defaults on the voices the VAD
finds hardest to hear.

python bench/voices.py [--audio-dir ../shared/audio]

Sets (English, tiny.en; corpus WER, Whisper's English normaliser):
- far-field: real far-field speech kept with the tests (tests/audio/MANIFEST.tsv: a table-top array
  microphone in a meeting room, about -51 dBFS).
- whispered, real: real whispered speech kept with the tests (tests/audio: a person whispering a short
  English phrase, about -38 dBFS).
- whispered, unheard: every shared English recording whispered as bench/conditions.py whispers it, but
  through an order-8 envelope (`whispered(audio, seed, order=8)`): a whisper Silero hears little or no
  speech in, even evened out, as in a real whispered sentence that came back empty.
- whispered: bench/conditions.py's whispered set, for comparison.
Contenders: `library` (`WhisperModel.transcribe(audio)`, nothing changed) and `server` (the server's
engine with the default Settings), as bench/defaults.py runs them. Run it with PYTHONPATH pointing at
another checkout's src for that version's figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conditions import whispered
from defaults import REPO, error_rate, recordings, run

from tapescribe.config import Settings
from tapescribe.engine.audio import pcm_blocks
from tapescribe.runtime import decode_defaults, model_pool


def kept_clips(*names: str) -> list[tuple[str, np.ndarray, str]]:
    """Recordings kept with the tests (tests/audio), with their reference transcripts."""
    folder = REPO / "tests" / "audio"
    found = []
    for name in names:
        audio = np.concatenate(list(pcm_blocks(folder / name)))
        found.append((name, audio, (folder / name).with_suffix(".txt").read_text()))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    args = parser.parse_args()
    settings = Settings()
    pool_model = model_pool(settings).get("tiny.en")
    options = decode_defaults(settings)
    english = [(name, audio, text) for name, language, audio, text in recordings(args.audio_dir) if language == "en"]
    sets = {
        "far-field": kept_clips("ami_wsj20_array1_1_T10c0201.wav"),
        "whispered, real": kept_clips("wesper_sample_whisper.wav"),
        "whispered, unheard (order 8)": [(n, whispered(a, i, order=8), t) for i, (n, a, t) in enumerate(english)],
        "whispered": [(n, whispered(a, i), t) for i, (n, a, t) in enumerate(english)],
    }
    for label, clips in sets.items():
        row = []
        for contender in ("server", "library"):
            texts = [run(contender, pool_model, audio, None, options) for _, audio, _ in clips]
            empty = sum(1 for text in texts if not text.strip())
            rate = error_rate("en", [reference for _, _, reference in clips], texts)
            row.append(f"{contender}={rate:.2f}% ({empty} empty)")
        seconds = sum(len(audio) for _, audio, _ in clips) / 16000
        print(f"{label} ({len(clips)} clips, {seconds:.0f} s): " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
