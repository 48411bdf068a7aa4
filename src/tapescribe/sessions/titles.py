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
# The titles tapescribe and its page make up: a word naming how it came, then nothing or a date and time
# in any locale's format ("Recording 7 Dec 2026, 09:14", "Live 2026-12-07 09:14", "Recording 07.12.2026 9:14 PM").
_DEFAULT = re.compile(r"(recording|live|upload|audio)(?:\s+(.*))?", re.IGNORECASE)


def is_default_title(title: str | None) -> bool:
    """A title that says only how and when a session came: at least three groups of digits (a date and a
    time) and at most two words beside them (a month, AM/PM). "Recording of grandma 1998" is a name."""
    if not title or not title.strip():
        return True
    found = _DEFAULT.fullmatch(title.strip())
    if found is None:
        return False
    rest = found.group(2) or ""
    words = re.findall(r"[^\W\d_]+", rest)
    return not rest or (len(re.findall(r"\d+", rest)) >= 3 and len(words) <= 2)


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
