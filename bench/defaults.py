"""Decoding defaults by measurement: the server's settings against faster-whisper's own defaults.

python bench/defaults.py [--audio-dir ../shared/audio] [--candidates server,library,...]

For every shared recording, in every condition of bench/conditions.py (clean, soft, whispered,
noisy), each contender transcribes the clip: English with tiny.en, the other languages with base
(the models the server's Auto routing picks). Prints corpus WER per condition and contender
(Whisper's English normaliser for English, its basic normaliser for the rest; characters for
ja/ko), and the words each contender invents on 60 s of room noise, music and silence.

Contenders:
- library: `WhisperModel.transcribe(audio)` with nothing changed (faster-whisper's defaults).
- library-vad: the same with `vad_filter=True` (faster-whisper's VAD defaults: the server before).
- server: the server's engine (`transcribe_windows`) with the default Settings.
- any other name in CANDIDATES: a variation tried while choosing the defaults.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conditions import NO_SPEECH, SPEECH_CONDITIONS, room_noise

from tapescribe.config import Settings
from tapescribe.engine.audio import pcm_blocks
from tapescribe.engine.transcriber import DecodeOptions, transcribe_windows
from tapescribe.runtime import decode_defaults, model_pool

REPO = Path(__file__).resolve().parents[1]


CANDIDATES = {  # variations tried while choosing the defaults (docs/performance.md); each lost on some set
    "vad-off": lambda base: replace(base, vad_filter=False),
    "evened-0.1": lambda base: replace(base, vad_parameters={**base.vad_parameters, "threshold": 0.1}),
    "evened-5s": lambda base: replace(base, vad_parameters={**base.vad_parameters, "min_silence_duration_ms": 5000}),
}


DIGIT_SEPARATOR = re.compile(r"(?<=\d)[\s.,-]+(?=\d)")


def joined_digits(text: str) -> str:
    """Digits said one by one, written without what Whisper puts between them: "1-0-0-0-1. 9-0-2" and
    "10001 902" both become "10001902", as the reference writes them. Whisper's English normaliser
    reads "1-0-0-0-1" as five words ("one 0 0 0 one"), so one digit string written with dashes cost 16
    errors against the reference's one word, and which way a run happened to write the shared digit
    recording decided most of the difference between two runs' WER on the long bench files."""
    return DIGIT_SEPARATOR.sub("", text)


def error_rate(language: str, references: list[str], hypotheses: list[str]) -> float:
    import jiwer
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalise = EnglishTextNormalizer() if language == "en" else BasicTextNormalizer()
    refs = [normalise(joined_digits(text)) for text in references]
    hyps = [normalise(joined_digits(text)) for text in hypotheses]
    if language in ("ja", "ko", "zh"):
        return 100.0 * jiwer.cer(["".join(r.split()) for r in refs], ["".join(h.split()) for h in hyps])
    return 100.0 * jiwer.wer(refs, hyps)


def recordings(audio_dir: Path) -> list[tuple[str, str, np.ndarray, str]]:
    rows = (audio_dir / "MANIFEST.tsv").read_text().splitlines()[1:]
    found = []
    for row in rows:
        name, _, language = row.split("\t")[:3]
        path = audio_dir / name
        found.append((name, language, np.concatenate(list(pcm_blocks(path))), path.with_suffix(".txt").read_text()))
    return found


def run(
    contender: str, model, audio: np.ndarray, language: str | None, options: DecodeOptions, window: float = 240.0
) -> str:
    if contender in ("library", "library-vad"):
        segments, _ = model.transcribe(audio, language=language, vad_filter=contender == "library-vad")
        return "".join(segment.text for segment in segments).strip()
    if contender == "whole-file":  # the server's settings, one transcribe over the whole file
        segments, _ = model.transcribe(audio, language=language, **options.as_kwargs())
        return "".join(segment.text for segment in segments).strip()
    chosen = replace(options, language=language)
    blocks = (audio[i : i + 16000] for i in range(0, len(audio), 16000))
    return "".join(
        record["text"] for record in transcribe_windows(model, blocks, chosen, window_seconds=window)
    ).strip()


def with_pauses(clips: list[tuple[str, str, np.ndarray, str]]) -> tuple[np.ndarray, str]:
    """The English clips in turn clean, soft and whispered, each followed by 8 s of room noise."""
    makers = [SPEECH_CONDITIONS["clean"], SPEECH_CONDITIONS["soft"], SPEECH_CONDITIONS["whispered"]]
    pieces, texts = [], []
    for index, (_, _, audio, reference) in enumerate(clips):
        pieces += [makers[index % 3](audio, index), room_noise(8.0, index)]
        texts.append(reference.strip())
    return np.concatenate(pieces), " ".join(texts)


def long_file(clips: list[tuple[str, str, np.ndarray, str]], seconds: float) -> tuple[np.ndarray, str]:
    """The English clips joined with 0.5 s pauses until `seconds` (as bench/make_long_audio.py does)."""
    pause = np.zeros(8000, dtype=np.float32)
    pieces, texts, total = [], [], 0
    while total < seconds * 16000:
        for _, _, audio, reference in clips:
            pieces += [audio, pause]
            texts.append(reference.strip())
            total += len(audio) + len(pause)
            if total >= seconds * 16000:
                break
    return np.concatenate(pieces), " ".join(texts)


def no_speech_rows(group: str, model: Any, contenders: list[str], options: dict[str, Any]) -> None:
    """Words each contender writes over a minute of each kind of no speech."""
    for name, make_noise in NO_SPEECH.items():
        audio = make_noise(60.0, 0)
        row = []
        for contender in contenders:
            text = run(contender, model, audio, None, options[contender])
            row.append(f"{contender}={len(text.split())} words {text[:60]!r}")
        print(f"[{group}] {name} (60 s): " + " | ".join(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-dir", type=Path, default=REPO.parent / "shared" / "audio")
    parser.add_argument("--candidates", default="library,server")
    parser.add_argument("--languages", default="all", help="'en', 'other' or 'all'")
    parser.add_argument("--conditions", default=",".join(SPEECH_CONDITIONS))
    parser.add_argument("--no-speech", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pauses", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--long-seconds", type=float, default=600.0, help="0: no long-file comparison")
    parser.add_argument("--window-seconds", type=float, default=None, help="default: the server's")
    args = parser.parse_args()

    settings = Settings()
    pool = model_pool(settings)
    base = decode_defaults(settings)
    contenders = args.candidates.split(",")
    options = {name: CANDIDATES[name](base) if name in CANDIDATES else base for name in contenders}
    clips = recordings(args.audio_dir)
    groups = {"en": [c for c in clips if c[1] == "en"], "other": [c for c in clips if c[1] != "en"]}
    if args.languages != "all":
        groups = {args.languages: groups[args.languages]}
    print(f"server defaults: beam_size={settings.beam_size} vad_filter={settings.vad_filter}")
    for group, members in groups.items():
        model = pool.get("tiny.en" if group == "en" else "base")
        for condition in args.conditions.split(","):
            make = SPEECH_CONDITIONS[condition]
            row = []
            for contender in contenders:
                started = time.perf_counter()
                by_language: dict[str, tuple[list[str], list[str]]] = {}
                for index, (_, language, audio, reference) in enumerate(members):
                    # The server detects the language itself (Auto); so does the library by default.
                    text = run(contender, model, make(audio, index), None, options[contender])
                    refs, hyps = by_language.setdefault(language, ([], []))
                    refs.append(reference)
                    hyps.append(text)
                rates = {lang: error_rate(lang, refs, hyps) for lang, (refs, hyps) in by_language.items()}
                mean = sum(rates.values()) / len(rates)
                detail = " ".join(f"{lang}={rate:.1f}" for lang, rate in rates.items()) if group == "other" else ""
                row.append(f"{contender}={mean:.2f}% ({time.perf_counter() - started:.0f}s) {detail}")
            print(f"[{group}] {condition}: " + " | ".join(row), flush=True)
        if args.no_speech:
            no_speech_rows(group, model, contenders, options)
    english = groups.get("en")
    if english and args.pauses:
        audio, reference = with_pauses(english)
        model = pool.get("tiny.en")
        row = []
        for contender in contenders:
            text = run(contender, model, audio, None, options[contender])
            row.append(f"{contender}={error_rate('en', [reference], [text]):.2f}%")
        print(f"[en] {len(audio) / 16000:.0f} s, pauses of room noise: " + " | ".join(row), flush=True)
    if english and args.long_seconds:
        audio, reference = long_file(english, args.long_seconds)
        model = pool.get("tiny.en")
        window = args.window_seconds or settings.window_seconds
        row = []
        for contender in ("library", "whole-file", "server"):
            started = time.perf_counter()
            text = run(contender, model, audio, None, base, window)
            rate = error_rate("en", [reference], [text])
            row.append(f"{contender}={rate:.2f}% ({time.perf_counter() - started:.0f}s)")
        print(f"[en] {len(audio) / 16000:.0f} s file, {window:.0f} s windows: " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
