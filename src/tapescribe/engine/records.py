"""Typed transcript records: `Transcript`, `Segment`, `Word`, as every way in builds them.

transcription.json keeps the shape clients and old sessions rely on, key for key and in the same order;
these records convert to and from it at the storage edge only (`to_dict`, `from_dict`). A segment keeps
every field it was made with (the decoding's own: `window_start`, `seek`, `temperature`, ...; a
speaker's name), in their order, with typed access to what the code reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. `speaker`

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Word:
        known = ("start", "end", "word", "probability")
        extra = {key: value for key, value in record.items() if key not in known}
        return cls(float(record["start"]), float(record["end"]), str(record["word"]), record.get("probability"), extra)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "word": self.word, "probability": self.probability, **self.extra}


@dataclass(frozen=True)
class Segment:
    """One transcript segment: `fields` as stored (its order kept), read through the typed properties."""

    fields: Mapping[str, Any]

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Segment:
        for key in ("start", "end"):
            if not isinstance(record.get(key), (int, float)):
                raise ValueError(f"a segment's {key} must be a number")
        if not isinstance(record.get("text"), str):
            raise ValueError("a segment's text must be a string")
        return cls(dict(record))

    @property
    def start(self) -> float:
        return float(self.fields["start"])

    @property
    def end(self) -> float:
        return float(self.fields["end"])

    @property
    def text(self) -> str:
        return str(self.fields["text"])

    @property
    def words(self) -> list[Word]:
        return [Word.from_dict(word) for word in self.fields.get("words") or []]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.fields)


@dataclass(frozen=True)
class Transcript:
    """A session's transcript (transcription.json): a job's (`complete` once it is whole), a live draft
    (`live`), or the CLI's (`choice`: how the model was chosen, beside `model`; no `complete`)."""

    text: str
    language: str | None
    language_probability: float | None
    model: str | None
    segments: list[Segment]
    complete: bool | None = True
    live: bool = False
    choice: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        segments: Iterable[Mapping[str, Any]],
        language: str | None,
        language_probability: float | None,
        model: str | None,
        complete: bool | None = True,
        *,
        live: bool = False,
        choice: Mapping[str, Any] | None = None,
    ) -> Transcript:
        """From segment records numbered in order (`id`); the text is theirs joined."""
        made = [Segment.from_dict({"id": number, **segment}) for number, segment in enumerate(segments)]
        text = "".join(segment.text for segment in made).strip()
        return cls(text, language, language_probability, model, made, complete, live, dict(choice or {}))

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "text": self.text,
            "language": self.language,
            "language_probability": self.language_probability,
            "model": self.model,
            **self.choice,
        }
        if self.complete is not None:
            record["complete"] = self.complete
        if self.live:
            record["live"] = True
        record["segments"] = [segment.to_dict() for segment in self.segments]
        return record
