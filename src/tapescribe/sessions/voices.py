"""Remembered voices: a speaker the owner named with `remember`, kept so later recordings name them.

Each voice is one file, data/voices/<id>.json (written atomically): its id (made here, 32 hex digits),
the name, the voice (a unit-length CAM++ embedding, the mean of that speaker's embeddings in the
recording it was named in), when and where it was taken. Nothing removes one but `DELETE /voices/<id>`.

A new recording's speaker is taken for a remembered voice when their embeddings are at least
`threshold` alike (cosine) and that voice is the closest; one voice names at most one speaker of a
recording (the closest). How often a stranger was taken for a remembered voice on the measured sets
is in docs/performance.md.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from tapescribe.errors import BadRequest, NotFound
from tapescribe.sessions.files import read_json, utc_now, write_json_atomic

_VOICE_ID = re.compile(r"[0-9a-f]{32}")
_EMBEDDING_SIZE = 192


def checked_voice_id(candidate: object) -> str:
    if isinstance(candidate, str) and _VOICE_ID.fullmatch(candidate):
        return candidate
    raise NotFound("No such voice.")


class VoiceStore:
    def __init__(self, voices_dir: Path) -> None:
        self.dir = voices_dir

    def _path(self, voice_id: str) -> Path:
        return self.dir / f"{checked_voice_id(voice_id)}.json"

    def all(self) -> list[dict[str, Any]]:
        """Every remembered voice, oldest first (what GET /voices shows: no embedding)."""
        if not self.dir.is_dir():
            return []
        voices = [read_json(path) for path in self.dir.glob("*.json") if _VOICE_ID.fullmatch(path.stem)]
        return sorted((v for v in voices if v), key=lambda voice: voice.get("created", ""))

    def get(self, voice_id: str) -> dict[str, Any]:
        voice = read_json(self._path(voice_id))
        if not voice:
            raise NotFound("No such voice.")
        return voice

    def remember(
        self, name: str, embedding: list[float], source: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any]:
        """Keep a new voice of `owner` (the owner of the session it was heard in); its id is made here."""
        vector = np.asarray(embedding, dtype=np.float64)
        if vector.shape != (_EMBEDDING_SIZE,) or not np.isfinite(vector).all() or not np.linalg.norm(vector):
            raise BadRequest("This speaker has no voice to remember; find the speakers again first.")
        vector /= np.linalg.norm(vector)
        self.dir.mkdir(parents=True, exist_ok=True)
        voice = {
            "id": uuid.uuid4().hex,
            "name": name,
            "created": utc_now(),
            "source": source,
            **({"owner": owner} if owner else {}),
            "embedding": [round(float(x), 5) for x in vector],
        }
        write_json_atomic(self._path(str(voice["id"])), voice)
        return voice

    def forget(self, voice_id: str) -> None:
        path = self._path(voice_id)
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFound("No such voice.") from None

    def match(
        self,
        speakers: dict[str, list[float]],
        threshold: float,
        refused: dict[str, str] | None = None,
        owner: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """The remembered voice of `owner` each speaker is taken for: {speaker: {voice, name, similarity}},
        for the speakers at least `threshold` alike to a voice. A voice names one speaker at most (the
        closest), and never one that the owner said it is not (`refused`: speaker -> voice id). One
        person's voices never name another person's speakers."""
        voices = [v for v in self.all() if len(v.get("embedding") or []) == _EMBEDDING_SIZE and v.get("owner") == owner]
        if not voices or not speakers:
            return {}
        names = [s for s in speakers if len(speakers[s]) == _EMBEDDING_SIZE]
        known = np.asarray([v["embedding"] for v in voices], dtype=np.float64)
        heard = np.asarray([speakers[s] for s in names], dtype=np.float64).reshape(len(names), -1)
        similarity = _unit(heard) @ _unit(known).T
        for row, speaker in enumerate(names):
            for column, voice in enumerate(voices):
                if (refused or {}).get(speaker) == voice["id"]:
                    similarity[row, column] = -1.0
        matches: dict[str, dict[str, Any]] = {}
        while similarity.size and similarity.max() >= threshold:
            row, column = (int(i) for i in np.unravel_index(np.argmax(similarity), similarity.shape))
            voice = voices[column]
            matches[names[row]] = {
                "voice": voice["id"],
                "name": voice["name"],
                "similarity": round(float(similarity[row, column]), 3),
            }
            similarity[row, :] = -1.0
            similarity[:, column] = -1.0
        return matches


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms == 0, 1.0, norms))
