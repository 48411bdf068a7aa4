"""Subtitle cues from a transcript's segments, timed by their words.

A cue starts where its first word starts and ends where its last word ends, so a cue after a long
silence does not start at the silence (Whisper's segment times often do: a reading whose first word
is at 6.5 s had its first segment from 0.0 to 6.3 s). Within a segment the words are cut into
phrases at pauses of PAUSE_SECONDS or more; a phrase of one word joins the phrase next to it (the
nearer one, of the same speaker, in the same segment or the next) when the silence between them is
at most LONE_WORD_GAP, so a one-word cue is left only where a word was said on its own. Each phrase
is then cut into cues of at most MAX_CUE_SECONDS and two lines of MAX_LINE_WIDTH columns, with as
few one-word cues as the limits allow, then as few cues, then as even ones as may be.

A segment without word times (an edited one, a transcript made before words were timed by default)
is one cue at its own times when it fits, else it is cut evenly by words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from tapescribe.sessions.scripts import is_unspaced

MAX_CUE_SECONDS = 7.0
# Two lines of 42 columns, the usual subtitle budget; a CJK character is two columns wide, so a
# Japanese or Chinese line holds 21 characters (Netflix asks 13 to 16 of them).
MAX_LINE_WIDTH = 42
MAX_CUE_LINES = 2
PAUSE_SECONDS = 1.0  # a silence this long between two words ends a cue
LONE_WORD_GAP = 2.0  # a word alone between pauses joins a neighbour across a silence up to this long

# Whitespace a line may break at: any but the no-break spaces (French puts them inside « »).
_PIECE = re.compile(r"[^\S\u00a0\u202f]*(?:\S|[\u00a0\u202f])+")
_OPENING = {"Ps", "Pi"}
_CLOSING = {"Pe", "Pf", "Po"}
_OPENING_MARKS = "¿¡"

Cue = tuple[float, float, str, str | None]


@dataclass
class _Phrase:
    """Words said without a pause (timed), or an untimed segment's text spread over its time."""

    words: list[dict[str, Any]]
    speaker: str | None
    timed: bool

    @property
    def start(self) -> float:
        return float(self.words[0]["start"])

    @property
    def end(self) -> float:
        return float(self.words[-1]["end"])


def speaker_cues(segments: list[dict[str, Any]]) -> list[Cue]:
    """The subtitle cues, each with the speaker of its words (None when speakers were not labelled)."""
    phrases = _lone_words_joined([phrase for segment in segments for phrase in _phrases(segment)])
    return _monotonic([cue for phrase in phrases for cue in _cut(phrase)])


def _phrases(segment: dict[str, Any]) -> list[_Phrase]:
    text = segment["text"].strip()
    if not text:
        return []
    start, end = float(segment["start"]), float(segment["end"])
    speaker = segment.get("speaker")
    words = [word for word in segment.get("words") or [] if word["word"].strip()]
    if words:
        return [_Phrase(part, speaker, True) for part in _at_pauses(_glued(words))]
    if end - start <= MAX_CUE_SECONDS and _lines(text):  # one cue at the segment's own times
        return [_Phrase([{"word": text, "start": start, "end": end}], speaker, False)]
    return [_Phrase(_glued(_even_words(text, start, end)), speaker, False)]


def _at_pauses(words: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    parts = [[words[0]]]
    for word in words[1:]:
        if float(word["start"]) - float(parts[-1][-1]["end"]) >= PAUSE_SECONDS:
            parts.append([word])
        else:
            parts[-1].append(word)
    return parts


def _joinable(lone: _Phrase, other: _Phrase | None) -> float | None:
    """The silence between a one-word phrase and `other` when the word may join it, else None."""
    if other is None or not other.timed or other.speaker != lone.speaker:
        return None
    gap = lone.start - other.end if other.end <= lone.start else other.start - lone.end
    return max(0.0, gap) if gap <= LONE_WORD_GAP else None


def _lone_words_joined(phrases: list[_Phrase]) -> list[_Phrase]:
    """Each timed phrase of one word joined to the nearer neighbour it may join (see _joinable)."""
    joined: list[_Phrase] = []
    pending = list(phrases)
    for at, phrase in enumerate(pending):
        if not (phrase.timed and len(phrase.words) == 1):
            joined.append(phrase)
            continue
        before = _joinable(phrase, joined[-1] if joined else None)
        after = _joinable(phrase, pending[at + 1] if at + 1 < len(pending) else None)
        if before is not None and (after is None or before <= after):
            joined[-1] = _Phrase(joined[-1].words + phrase.words, phrase.speaker, True)
        elif after is not None:
            pending[at + 1] = _Phrase(phrase.words + pending[at + 1].words, phrase.speaker, True)
        else:
            joined.append(phrase)
    return joined


def _fits(words: list[dict[str, Any]]) -> bool:
    if float(words[-1]["end"]) - float(words[0]["start"]) > MAX_CUE_SECONDS:
        return False
    text = _joined(words)
    return _width(text) <= MAX_CUE_LINES * (MAX_LINE_WIDTH + 1) and bool(_lines(text))


def _cut(phrase: _Phrase) -> list[Cue]:
    """The phrase in cues that fit (a word too long for any cue stays whole, alone): fewest one-word
    cues first, then fewest cues, then the most even (least sum of squared widths)."""
    words = phrase.words
    # best[j]: (cost, where the last cue starts) of the best cut of words[:j]; a word alone always fits
    best: dict[int, tuple[tuple[int, int, int], int]] = {0: ((0, 0, 0), 0)}
    for first in range(len(words)):
        (lone, count, spread), _ = best[first]
        for last in range(first + 1, len(words) + 1):
            group = words[first:last]
            if len(group) > 1 and not _fits(group):
                break  # longer groups fit no better
            cost = (lone + (len(group) == 1), count + 1, spread + _width(_joined(group)) ** 2)
            if last not in best or cost < best[last][0]:
                best[last] = (cost, first)
    cuts, end = [], len(words)
    while end > 0:
        start = best[end][1]
        cuts.append(words[start:end])
        end = start
    return [_cue(group, phrase.speaker) for group in reversed(cuts)]


def _cue(words: list[dict[str, Any]], speaker: str | None) -> Cue:
    start = float(words[0]["start"])
    return start, max(float(words[-1]["end"]), start), _cue_text(words), speaker


def _monotonic(found: list[Cue]) -> list[Cue]:
    """Times kept in order even where the model's segments overlap slightly."""
    cleaned, previous_end = [], 0.0
    for start, end, text, speaker in found:
        start = max(start, previous_end)
        end = max(end, start + 0.01)
        cleaned.append((start, end, text, speaker))
        previous_end = end
    return cleaned


def _joined(words: list[dict[str, Any]]) -> str:
    return "".join(w["word"] for w in words).strip()


def _cue_text(words: list[dict[str, Any]]) -> str:
    """The words in lines; one word too wide for any line stays whole, on a line of its own."""
    text = _joined(words)
    return "\n".join(_lines(text) or [text])


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _lines(text: str) -> list[str]:
    """At most two lines that fit, broken between pieces, as evenly as may be; [] if none fit."""
    if _width(text) <= MAX_LINE_WIDTH:
        return [text]
    pieces = _pieces(text)
    splits = [("".join(pieces[:at]).strip(), "".join(pieces[at:]).strip()) for at in range(1, len(pieces))]
    fitting = [split for split in splits if max(map(_width, split)) <= MAX_LINE_WIDTH]
    return list(min(fitting, key=lambda split: max(map(_width, split)))) if fitting else []


def _is_opening(piece: str) -> bool:
    stripped = piece.strip()
    return bool(stripped) and all(c in _OPENING_MARKS or unicodedata.category(c) in _OPENING for c in stripped)


def _is_closing(piece: str) -> bool:
    stripped = piece.strip()
    return bool(stripped) and all(c not in _OPENING_MARKS and unicodedata.category(c) in _CLOSING for c in stripped)


def _pieces(text: str) -> list[str]:
    """What a line may not break inside, each with the space before it: a word of a spaced script,
    a CJK character; punctuation stays with its word (« Où », ¿Dónde, 「本」。)."""
    raw: list[str] = []
    for word in _PIECE.findall(text):
        at = 0
        for position in range(1, len(word)):
            if is_unspaced(word[position]) or is_unspaced(word[position - 1]):
                raw.append(word[at:position])
                at = position
        raw.append(word[at:])
    pieces: list[str] = []
    for piece in raw:
        if pieces and (_is_closing(piece) or _is_opening(pieces[-1])):
            pieces[-1] += piece
        else:
            pieces.append(piece)
    return pieces


def _glued(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Timed words with lone punctuation joined to its word, so a cue never starts with » or ends with ¿."""
    glued: list[dict[str, Any]] = []
    for word in words:
        if glued and (_is_closing(word["word"]) or _is_opening(glued[-1]["word"])):
            glued[-1] = {**glued[-1], "word": glued[-1]["word"] + word["word"], "end": word["end"]}
        else:
            glued.append(word)
    return glued


def _even_words(text: str, start: float, end: float) -> list[dict[str, Any]]:
    pieces = _pieces(text)
    step = (end - start) / max(1, len(pieces))
    return [{"word": piece, "start": start + i * step, "end": start + (i + 1) * step} for i, piece in enumerate(pieces)]
