"""Speaker labels on a long conversation with known turns: how much is put on the wrong speaker, and how fast.

    python bench/speakers.py [--seconds 1200] [--thresholds 0.5 0.55 0.6 0.65 0.7]

Joins the shared recordings of three voices into a conversation (tests/conversations.py: turns of
one to three clips, random order, pauses of 0.3-1.2 s, loudness varied), transcribes it once with
tiny.en (word times), then for each merge threshold diarizes it with the server's engine
(engine/speakers.py) and labels the words as the job does. Prints per threshold: speakers found,
speech time on the wrong speaker (%), speech time missed (%), words on the wrong speaker (%), the
diarization's seconds and x real time, and this process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conversations import long_conversation, speech_on_wrong_speaker, truth_at, words_on_wrong_speaker  # noqa: E402
from tapescribe.config import Settings  # noqa: E402
from tapescribe.engine.audio import SAMPLE_RATE  # noqa: E402
from tapescribe.engine.models import ModelPool, ModelSettings  # noqa: E402
from tapescribe.engine.speaker_labels import label_segments  # noqa: E402
from tapescribe.engine.speakers import DiarizerSettings, SpeakerDiarizer  # noqa: E402
from tapescribe.engine.transcriber import DecodeOptions, transcribe_windows  # noqa: E402
from tapescribe.engine.word_alignment import WordAligner, with_words  # noqa: E402


def blocks(samples, seconds: float = 1.0):
    step = int(seconds * SAMPLE_RATE)
    for at in range(0, len(samples), step):
        yield samples[at : at + step]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def confused_and_missed(turns, found, matching) -> tuple[float, float]:
    """Speech time given to another voice, and speech time given to nobody, in % of all speech."""
    total = sum(turn.end - turn.start for turn in turns)
    covered = 0.0
    for turn in turns:
        for piece in found:
            covered += max(0.0, min(turn.end, piece["end"]) - max(turn.start, piece["start"]))
    wrong = speech_on_wrong_speaker(turns, found, matching)  # confused + missed
    missed = 100.0 * (total - covered) / total
    return wrong - missed, missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1200.0)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.55, 0.6, 0.65, 0.7])
    parser.add_argument("--voices", default="ABD", help="voices of tests/conversations.py VOICES (default ABD)")
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / ".data")
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only diarize once with the first threshold and print this process's peak memory (run it alone)",
    )
    args = parser.parse_args()

    settings = Settings(data_dir=args.data_dir)
    conversation = long_conversation(args.audio_dir, args.seconds, args.voices)
    samples = conversation.samples()
    seconds = len(samples) / SAMPLE_RATE
    print(f"conversation: {seconds:.0f} s, {len(conversation.turns)} turns of voices {', '.join(args.voices)}")
    if args.memory_only:
        before = peak_mib()
        clock = time.monotonic()
        turns = SpeakerDiarizer(DiarizerSettings(args.thresholds[0], settings.numba_cache_dir)).diarize(samples)
        print(
            f"diarized in {time.monotonic() - clock:.0f} s, {len({t.speaker for t in turns})} speakers; peak "
            f"memory {before:.0f} MiB with the samples, {peak_mib():.0f} MiB after diarizing"
        )
        return

    clock = time.monotonic()
    model = ModelPool(settings.models_dir, "tiny.en", ModelSettings()).get()
    options = DecodeOptions(beam_size=settings.beam_size, vad_filter=settings.vad_filter, word_timestamps=True)
    decoded = transcribe_windows(model, blocks(samples), options, window_seconds=settings.window_seconds)
    # words are aligned after decoding, as a job aligns them (engine/word_alignment.py)
    segments = list(with_words(decoded, WordAligner(model, blocks(samples), 0.0), lambda: "en"))
    print(f"transcribed with tiny.en in {time.monotonic() - clock:.0f} s; peak memory so far {peak_mib():.0f} MiB")
    words = sum(len(segment.get("words") or []) for segment in segments)
    turn_words = sum(
        1
        for segment in segments
        for word in segment.get("words") or []
        if truth_at(conversation.turns, word["start"], word["end"])
    )
    print(f"{words} words ({turn_words} matched to a turn)")

    print("threshold | speakers | speech on wrong speaker % | speech missed % | words on wrong speaker % | s | x RT")
    for threshold in args.thresholds:
        diarizer = SpeakerDiarizer(DiarizerSettings(threshold, settings.numba_cache_dir))
        clock = time.monotonic()
        turns = diarizer.diarize(samples)
        took = time.monotonic() - clock
        found = [turn.as_dict() for turn in turns]
        wrong_words, matching = words_on_wrong_speaker(conversation.turns, label_segments(segments, turns))
        confused, missed = confused_and_missed(conversation.turns, found, matching)
        count = len({turn.speaker for turn in turns})
        print(
            f"{threshold:.3f} | {count} | {confused:.2f} | {missed:.2f} | {wrong_words:.2f} | {took:.1f} | "
            f"{took / seconds:.3f}"
        )
    print(f"peak resident memory of this process: {peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
