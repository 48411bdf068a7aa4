"""The server's word times against faster-whisper's own (`word_timestamps=True`) on the same audio.

    python bench/word_times_vs_library.py [--model tiny.en] [--data-dir DIR]

Two readings made of shared recordings (as tests/fast/test_word_alignment.py makes them: 6.5 s of
silence, then jfk, 1 s of silence and the acoustic corpus; and the two the other way round) go
through the server's pipeline in this process (the defaults: words timed as each cycle is decoded)
and through faster-whisper's `transcribe(word_timestamps=True)`. The words both write are matched in
order (difflib), and for each the larger of its start and end differences is taken; prints, per
reading, the words each wrote, how many matched, and the median, 90th percentile and largest
difference in seconds.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import audio_file, read_pcm, write_wav  # noqa: E402
from tapescribe.config import Settings  # noqa: E402
from tapescribe.engine.audio import SAMPLE_RATE  # noqa: E402
from tapescribe.jobs.pipeline import AudioInput, TranscriptionPipeline  # noqa: E402
from tapescribe.runtime import decode_scheduler, job_settings, model_pool  # noqa: E402


def readings() -> dict[str, np.ndarray]:
    jfk, corpus = read_pcm(audio_file("jfk.flac")), read_pcm(audio_file("acoustic_corpus.wav"))
    silence = np.zeros(int(6.5 * SAMPLE_RATE), dtype=np.float32)
    return {
        "jfk then the corpus": np.concatenate([silence, jfk, silence[:SAMPLE_RATE], corpus]),
        "the corpus then jfk": np.concatenate([silence, corpus, silence[:SAMPLE_RATE], jfk]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / ".data-word-times")
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)
    models = model_pool(settings)
    pipeline, scheduler = TranscriptionPipeline(models, job_settings(settings)), decode_scheduler(settings)
    library = models.get(args.model)
    for number, (name, samples) in enumerate(readings().items()):
        args.data_dir.mkdir(parents=True, exist_ok=True)
        path = write_wav(args.data_dir / f"reading-{number}.wav", samples)
        ours = pipeline.transcribe(AudioInput(path), pipeline.request(args.model, None), scheduler)
        segments, _ = library.transcribe(samples, word_timestamps=True, beam_size=5, language="en")
        theirs = [word for segment in segments for word in segment.words or []]
        mine = [word for segment in ours.segments for word in segment["words"]]
        matcher = difflib.SequenceMatcher(a=[w["word"] for w in mine], b=[w.word for w in theirs], autojunk=False)
        apart = [
            max(
                abs(mine[block.a + k]["start"] - theirs[block.b + k].start),
                abs(mine[block.a + k]["end"] - theirs[block.b + k].end),
            )
            for block in matcher.get_matching_blocks()
            for k in range(block.size)
        ]
        print(
            f"{name}: server {len(mine)} words, library {len(theirs)}, matched {len(apart)}; apart median "
            f"{np.median(apart):.3f} s, 90th percentile {np.percentile(apart, 90):.3f} s, largest {max(apart):.3f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
