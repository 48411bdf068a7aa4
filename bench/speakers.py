"""Speaker labels on conversations with known turns: speakers found, speech and words on the wrong
speaker, speed and peak memory; and how often a stranger is taken for a remembered voice.

    python bench/speakers.py [--cases FG:157 KL:157 EV:40 ABD:300] [--voices-dir DIR]
    python bench/speakers.py --memory 600 3600      # peak RSS of the speakers step alone, per length
    python bench/speakers.py --strangers            # remembered voices: right matches and strangers taken

A case is VOICES:SECONDS: a conversation of about SECONDS among the voices (letters of
tests/conversations.py: A-E and V from the shared recordings; F-J men and K-O women from LibriSpeech
test-other, found under --voices-dir, e.g. a checkout of resemble-ai/Resemblyzer's
audio_data/librispeech_test-other). Turns of one to three clips, random order, pauses of 0.3-1.2 s,
loudness varied. Each case is written as a WAV under --data-dir (outside git), transcribed once with
tiny.en (word times), then diarized in a fresh subprocess exactly as the job does (engine/speakers.py,
audio streamed from the file), whose peak resident memory (VmHWM: process_memory.py says why not
ru_maxrss, which here included this process's generated hour of audio) is the step's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import write_wav  # noqa: E402
from conversations import (  # noqa: E402
    VOICES,
    librispeech_voices,
    long_conversation,
    speech_on_wrong_speaker,
    words_on_wrong_speaker,
)
from tapescribe.config import Settings  # noqa: E402
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks  # noqa: E402
from tapescribe.engine.speaker_labels import SpeakerTurn, label_segments  # noqa: E402
from tapescribe.process_memory import peak_mib  # noqa: E402

DEFAULT_VOICES_DIR = REPO.parent / "scratch-spkengine" / "voices" / "audio_data" / "librispeech_test-other"


def diarize_file(path: Path, data_dir: Path, threshold: float | None) -> None:
    """The subprocess: diarize `path` as the job does and print the result and this process's peak."""
    from tapescribe.engine.speakers import DiarizerSettings, SpeakerDiarizer

    settings = Settings(data_dir=data_dir)
    merge = threshold if threshold is not None else settings.speaker_merge_threshold
    diarizer = SpeakerDiarizer(DiarizerSettings(merge_threshold=merge, numba_cache_dir=settings.numba_cache_dir))
    clock = time.monotonic()
    found = diarizer.diarize(pcm_blocks(path))
    took = time.monotonic() - clock
    turns = [turn.as_dict() for turn in found.turns]
    print(json.dumps({"turns": turns, "voices": found.voices, "seconds": took, "peak_mib": peak_mib()}))


def run_diarizer(path: Path, data_dir: Path, threshold: float | None = None) -> dict:
    command = [sys.executable, __file__, "--diarize-file", str(path), "--data-dir", str(data_dir)]
    if threshold is not None:
        command += ["--threshold", str(threshold)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def conversation_file(case: str, clips: dict, args: argparse.Namespace):
    voices, seconds = case.split(":")
    conversation = long_conversation(args.audio_dir, float(seconds), voices, clips=clips)
    path = args.data_dir / f"conversation_{voices}_{seconds}.wav"
    args.data_dir.mkdir(parents=True, exist_ok=True)
    samples = conversation.samples()
    write_wav(path, samples)
    return conversation, path, len(samples) / SAMPLE_RATE


def transcribe(path: Path, settings: Settings) -> list[dict]:
    from tapescribe.engine.models import ModelPool, ModelSettings
    from tapescribe.engine.transcriber import DecodeOptions, transcribe_windows
    from tapescribe.engine.word_alignment import in_word_order

    model = ModelPool(settings.models_dir, "tiny.en", ModelSettings()).get()
    options = DecodeOptions(beam_size=settings.beam_size, vad_filter=settings.vad_filter, word_timestamps=True)
    decoded = transcribe_windows(model, pcm_blocks(path), options, window_seconds=settings.window_seconds)
    # words timed as each cycle is decoded, then moved into order, as a job's are (engine/word_alignment.py)
    return list(in_word_order(decoded, 0.0))


def table(args: argparse.Namespace, clips: dict) -> None:
    settings = Settings(data_dir=args.data_dir)
    print("| conversation | length | voices | found | speech on wrong speaker | words on wrong speaker ", end="")
    print("| x real time | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        conversation, path, seconds = conversation_file(case, clips, args)
        segments = transcribe(path, settings)
        result = run_diarizer(path, args.data_dir, args.threshold)
        turns = [SpeakerTurn(t["speaker"], t["start"], t["end"]) for t in result["turns"]]
        words, matching = words_on_wrong_speaker(conversation.turns, label_segments(segments, turns))
        speech = speech_on_wrong_speaker(conversation.turns, result["turns"], matching)
        count = len({turn.speaker for turn in turns})
        total = sum(len(s.get("words") or []) for s in segments)
        voices = case.split(":")[0]
        print(
            f"| {voices} | {seconds / 60:.1f} min | {len(set(voices))} | {count} | {speech:.1f}% | "
            f"{words:.1f}% of {total} | {result['seconds'] / seconds:.3f} | {result['peak_mib']:.0f} MiB |",
            flush=True,
        )


def memory(args: argparse.Namespace, clips: dict) -> None:
    print("| speech | diarized in | x real time | peak RSS of the step's process |")
    print("|---|---|---|---|")
    for seconds in args.memory:
        _, path, length = conversation_file(f"{args.memory_voices}:{seconds:.0f}", clips, args)
        result = run_diarizer(path, args.data_dir, args.threshold)
        took = result["seconds"]
        peak = result["peak_mib"]
        print(f"| {length / 60:.0f} min | {took:.0f} s | {took / length:.3f} | {peak:.0f} MiB |", flush=True)


def strangers(args: argparse.Namespace, clips: dict) -> None:
    """Each voice is remembered from one conversation (its first five clips with another voice) and
    looked for in conversations of its last five clips with each other voice: right matches, and
    strangers (voices not remembered) taken for a remembered one, at several thresholds."""
    import numpy as np

    from tapescribe.engine.speakers import DiarizerSettings, SpeakerDiarizer

    settings = Settings(data_dir=args.data_dir)
    diarizer = SpeakerDiarizer(DiarizerSettings(numba_cache_dir=settings.numba_cache_dir))
    letters = [v for v in args.stranger_voices if len(clips.get(v, [])) >= 6]
    remembered, heard = {}, []
    for letter in letters:
        for half, store in ((0, True), (1, False)):
            own = clips[letter][:5] if half == 0 else clips[letter][5:]
            other = letters[(letters.index(letter) + 1 + half) % len(letters)]
            part = {letter: own, other: clips[other][5:] if half == 0 else clips[other][:5]}
            conversation = long_conversation(args.audio_dir, 60, letter + other, clips=part)
            found = diarizer.diarize(iter([conversation.samples()]))
            segments = [{"words": [{"start": t.start, "end": t.end, "speaker": t.speaker}]} for t in found.turns]
            _, matching = words_on_wrong_speaker(conversation.turns, segments)
            for speaker, voice in found.voices.items():
                if matching.get(speaker) == letter and store:
                    remembered[letter] = np.asarray(voice)
                elif matching.get(speaker) == letter:
                    heard.append((letter, np.asarray(voice)))
    print("| threshold | remembered voices recognised | strangers taken for a remembered voice |")
    print("|---|---|---|")
    for threshold in args.match_thresholds:
        own = [remembered[who] @ v for who, v in heard if who in remembered]
        others = [remembered[other] @ v for who, v in heard for other in remembered if other != who]
        right = sum(1 for similarity in own if similarity >= threshold)
        wrong = sum(1 for similarity in others if similarity >= threshold)
        print(f"| {threshold:.2f} | {right} of {len(own)} | {wrong} of {len(others)} pairs |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["EV:40", "FG:157", "KL:157", "HI:157", "ABD:300"])
    parser.add_argument("--memory", type=float, nargs="+", help="lengths in seconds: peak RSS of the step alone")
    parser.add_argument("--memory-voices", default="FGKL")
    parser.add_argument("--strangers", action="store_true")
    parser.add_argument("--stranger-voices", default="FGHIJKLMNO")
    parser.add_argument("--match-thresholds", type=float, nargs="+", default=[0.5, 0.55, 0.6, 0.65, 0.7])
    parser.add_argument("--threshold", type=float, help="merge threshold (default: the server's setting)")
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    parser.add_argument("--voices-dir", type=Path, default=DEFAULT_VOICES_DIR)
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / ".data")
    parser.add_argument("--diarize-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.diarize_file:
        return diarize_file(args.diarize_file, args.data_dir, args.threshold)
    clips = {**VOICES, **librispeech_voices(args.voices_dir)}
    if args.memory:
        return memory(args, clips)
    if args.strangers:
        return strangers(args, clips)
    return table(args, clips)


if __name__ == "__main__":
    main()
