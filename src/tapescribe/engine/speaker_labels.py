"""Putting speaker turns on a transcript: each word to the speaker whose turn overlaps it most, and a
segment that spans a change of speaker split at the word where the speaker changes.

Pure functions over plain dicts (the transcript as stored), so they are tested without any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch of time in which one speaker talks (`speaker` is a stable id such as "S1")."""

    speaker: str
    start: float
    end: float

    def as_dict(self) -> dict[str, Any]:
        return {"speaker": self.speaker, "start": round(self.start, 3), "end": round(self.end, 3)}


def speaker_at(start: float, end: float, turns: Sequence[SpeakerTurn]) -> str | None:
    """The speaker whose turns overlap [start, end] most; with no overlap at all, the nearest turn's
    (a word in a gap the diarizer left as silence still belongs to someone)."""
    if not turns:
        return None
    overlap: dict[str, float] = {}
    for turn in turns:
        shared = min(end, turn.end) - max(start, turn.start)
        if shared > 0:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
    if overlap:
        return max(overlap, key=lambda speaker: overlap[speaker])
    middle = (start + end) / 2
    nearest = min(turns, key=lambda turn: max(turn.start - middle, middle - turn.end, 0.0))
    return nearest.speaker


def label_segments(segments: Sequence[dict[str, Any]], turns: Sequence[SpeakerTurn]) -> list[dict[str, Any]]:
    """The segments with `speaker` on each segment and word; a segment whose words change speaker is
    split at that word (its pieces keep the segment's other fields, times come from their words).
    Segments without words (an edited one) get the speaker of their whole span."""
    labelled: list[dict[str, Any]] = []
    for segment in segments:
        words = segment.get("words") or []
        if not words:
            labelled.append({**segment, "speaker": speaker_at(segment["start"], segment["end"], turns)})
            continue
        runs: list[list[dict[str, Any]]] = []
        for word in words:
            word = {**word, "speaker": speaker_at(word["start"], word["end"], turns)}
            if runs and runs[-1][-1]["speaker"] == word["speaker"]:
                runs[-1].append(word)
            else:
                runs.append([word])
        if len(runs) == 1:
            labelled.append({**segment, "words": runs[0], "speaker": runs[0][0]["speaker"]})
            continue
        for number, run in enumerate(runs):
            labelled.append(
                {
                    **segment,
                    "start": segment["start"] if number == 0 else run[0]["start"],
                    "end": segment["end"] if number == len(runs) - 1 else run[-1]["end"],
                    "text": "".join(word["word"] for word in run),
                    "words": run,
                    "speaker": run[0]["speaker"],
                }
            )
    return labelled


def speaker_ids(count: int) -> list[str]:
    """Ids for `count` speakers, most talkative first: S1, S2, ..."""
    return [f"S{number}" for number in range(1, count + 1)]


def default_name(speaker: str) -> str:
    """What a speaker is called until the owner names them: "S2" -> "Speaker 2"."""
    return f"Speaker {speaker[1:]}" if speaker[:1] == "S" and speaker[1:].isdigit() else speaker
