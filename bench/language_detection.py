"""Language detection of the job router: speech encoded unpadded against padded to 30 s, right and wrong.

    python bench/language_detection.py [--audio-dir ../shared/audio] [--cases]

Every shared recording is judged alone and joined with itself to about 40 s, each clean, 30 dB
softer, noisy at 5 dB SNR and whispered (bench/conditions.py), and four files open with 38 s of
English before 80 s of German, Spanish, French or Japanese (the language of the file is the
second). Each case goes through `detect_over_parts` (3 parts, SPEECH_SECONDS of speech each,
encoded as it is when there is that much, padded to 30 s when there is less) and through the way it
judged before: up to 30 s of speech per part from 90 s of audio, each padded to Whisper's 30 s window
by faster-whisper's own `detect_language`. Prints, per method, the cases it got wrong and the seconds
it spent (VAD and model, the audio in memory).

Measured on 2 CPU cores (the base model; other runs loading the machine, so the ratio of the times
is what counts): 180 cases; padded 3 wrong (whispered Italian alone, soft spoken digits alone and
joined) in 481 s; `detect_over_parts` 4 wrong (whispered Italian alone and joined, soft digits alone
and joined) in 218 s. Before short speech was padded (all of it encoded as it is) it was 4 wrong too
(whispered Italian alone and joined, one soft English sentence of 2.7 s alone, soft digits joined),
in about a fifth of the padded method's time instead of half. An earlier trial (the same cases, 90 s
searched for speech every time) got 6 wrong with 5 s of speech per part, 3 with 10 s or 15 s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import conditions
import numpy as np

from tapescribe.engine import language_detection
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks
from tapescribe.engine.models import ModelPool, ModelSettings

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = ("clean", "soft", "noisy", "whispered")


def padded(model, audio: np.ndarray) -> str | None:
    """The router's earlier judgement: 30 s of speech from up to 90 s of each part, padded to 30 s."""
    slices = language_detection.gather_parts([audio], language_detection.part_starts(len(audio) / SAMPLE_RATE, 3))
    totals: dict[str, float] = {}
    for piece in slices:
        from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

        chunks = get_speech_timestamps(piece, VadOptions()) if len(piece) else []
        speech = np.concatenate(collect_chunks(piece, chunks)[0])[: 30 * SAMPLE_RATE] if chunks else piece[:0]
        if len(speech) < SAMPLE_RATE:
            continue
        for language, probability in model.detect_language(audio=speech)[2]:
            totals[language] = totals.get(language, 0.0) + probability
    return max(totals, key=lambda code: totals[code]) if totals else None


def unpadded(model, audio: np.ndarray) -> str | None:
    found = language_detection.detect_over_parts(model, [audio], len(audio) / SAMPLE_RATE, 3)
    return found.language if found is not None and found.parts else None


def cases(audio_dir: Path) -> list[tuple[str, str, np.ndarray]]:
    rows = [line.split("\t") for line in (audio_dir / "MANIFEST.tsv").read_text().splitlines()[1:]]

    def read(name: str) -> np.ndarray:
        return np.concatenate(list(pcm_blocks(audio_dir / name)))

    pause = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    made = []
    for name, _, language, *_ in rows:
        clip = read(name)
        joined = np.concatenate([clip, pause] * max(1, int(40 // (len(clip) / SAMPLE_RATE + 0.5))))
        for condition in CONDITIONS:
            for label, audio in (("alone", clip), ("joined", joined)):
                changed = audio if condition == "clean" else getattr(conditions, condition)(audio)
                made.append((f"{name} {condition} {label}", language, changed))
    english = [read("acoustic_corpus.wav"), read("jfk.flac")]
    for language in ("de", "es", "fr", "ja"):
        name = next(row[0] for row in rows if row[2] == language)
        second = np.zeros(SAMPLE_RATE, dtype=np.float32)
        made.append((f"English, then {language}", language, np.concatenate([*english, *([read(name), second] * 14)])))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    parser.add_argument("--cases", action="store_true", help="print each case's answers")
    args = parser.parse_args()
    model = ModelPool(REPO / "bench" / ".data" / "models", "tiny.en", ModelSettings()).get("base")
    methods: dict[str, Callable] = {"padded_30s": padded, "unpadded": unpadded}
    wrong: dict[str, list[str]] = {name: [] for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    made = cases(args.audio_dir)
    for label, language, audio in made:
        answers = []
        for name, method in methods.items():
            started = time.perf_counter()
            answer = method(model, audio)
            seconds[name] += time.perf_counter() - started
            answers.append(f"{name}={answer}")
            if answer != language:
                wrong[name].append(label)
        if args.cases:
            print(f"{label}: {language} {' '.join(answers)}", flush=True)
    for name in methods:
        print(f"{name}: wrong={len(wrong[name])}/{len(made)} seconds={seconds[name]:.1f} cases={wrong[name]}")


if __name__ == "__main__":
    main()
