"""Default titles: a session nobody named is titled by what was said in it once its transcript is done.

A recording from the page ("Recording 7 Dec 2026, 09:14"), a live stream ("Live 2026-12-07 09:14") or an
upload without a file name ("Upload 2026-12-07 09:14") says only when it started; many of them in a
list look alike. Once the transcript is complete, such a title becomes its first words. A title the
owner gave (any rename, kept in title_history) is never replaced, nor a file's own name.
"""

from __future__ import annotations

import re
from typing import Any

TITLE_WORDS = 8
TITLE_CHARACTERS = 60
# The titles tapescribe makes up: a word naming how it came, then nothing or a date/time (with digits).
_DEFAULT = re.compile(r"(recording|live|upload|transcribe|audio|blob)(\s+.*\d.*)?", re.IGNORECASE)


def is_default_title(title: str | None) -> bool:
    return not title or bool(_DEFAULT.fullmatch(title.strip()))


def first_words(text: str, words: int = TITLE_WORDS, characters: int = TITLE_CHARACTERS) -> str:
    """The first few words of a transcript, cut at a word, with … when there is more."""
    found = text.split()
    title = ""
    for count, word in enumerate(found):
        candidate = f"{title} {word}".strip()
        if count >= words or len(candidate) > characters:
            return title.rstrip(",;:") + "…"
        title = candidate
    return title


def title_from_transcript(session: dict[str, Any], transcription: dict[str, Any]) -> str | None:
    """The new title for a session whose complete transcript this is, or None to keep its title."""
    if session.get("title_history") or not is_default_title(session.get("title")):
        return None
    if not transcription.get("complete"):
        return None
    title = first_words(transcription.get("text") or "")
    return title or None
