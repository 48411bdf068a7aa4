"""Search terms made in Python for the PostgreSQL index, the way SQLite's FTS5 makes them.

PostgreSQL's own parsers split and fold text their own way (e-mail addresses, URLs and hyphenated
words become single tokens; unaccent needs an extension and folds more than FTS5 does). To find
exactly what the SQLite index finds, the PostgreSQL index is given tsvectors and tsqueries built
here: words are runs of letters and digits, Chinese, Japanese and Korean characters are a word
each (as `scripts.index_terms` makes them for FTS5), case is folded and diacritics are removed
from Latin letters (unicode61's remove_diacritics 2: ü is u, ß stays ß). PostgreSQL still does the
matching, with its GIN index; the marked spans of a hit are found here, from the same tokens.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from tapescribe.sessions.index import QueryPart
from tapescribe.sessions.scripts import HANGUL_CHARS, UNSPACED_CHARS

_BY_CHARACTER = f"{UNSPACED_CHARS}{HANGUL_CHARS}"
_COMBINING = "\u0300-\u036f"  # marks a decomposed Latin letter carries: part of its word, removed by folding
_TOKEN = re.compile(f"[{_BY_CHARACTER}]|(?:[^\\W_{_BY_CHARACTER}][{_COMBINING}]*)+")
_LATIN_END = "\u0250"  # diacritics are removed from letters below this (Latin), as unicode61 does
MAX_POSITION = 16383  # PostgreSQL keeps positions up to this in a tsvector
MAX_POSITIONS = 256  # and at most this many per lexeme
MAX_WORD = 500  # characters of a word kept as a lexeme (PostgreSQL takes up to 2047 bytes, 4 a character)


@functools.lru_cache(maxsize=65536)
def fold(token: str) -> str:
    """Lower case, without the diacritics of Latin letters: what the index stores and a query asks."""
    kept: list[str] = []
    for char in unicodedata.normalize("NFD", token.lower()):
        if unicodedata.combining(char) and kept and kept[-1] < _LATIN_END:
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def tokens(text: str) -> list[tuple[str, int, int]]:
    """Each word of the text, folded, with its [start, end) character offsets."""
    return [(fold(match.group()), match.start(), match.end()) for match in _TOKEN.finditer(text)]


def tsvector(*texts: str) -> str:
    """A tsvector literal of the texts' words, each text after the last with a gap of one position,
    so no phrase runs from one text (a title) into the next (the transcript).

    A word past position 16383, or seen more than 256 times, is kept without positions: PostgreSQL
    takes such a word as next to anything, so a phrase with it is found (too often) rather than missed.
    """
    positions: dict[str, list[int]] = {}
    position = 0
    for text in texts:
        for word, _, _ in tokens(text):
            position += 1
            positions.setdefault(word, []).append(position)
        position += 1
    return " ".join(
        _lexeme(word)
        + (":" + ",".join(map(str, places)) if places[-1] <= MAX_POSITION and len(places) <= MAX_POSITIONS else "")
        for word, places in positions.items()
    )


def tsquery(parts: Iterable[QueryPart]) -> str | None:
    """A tsquery literal: every part (AND), any of its spellings (OR), each a phrase (<->), a prefix
    part's last word as a prefix (:*). None if some part has no word: nothing can match it."""
    rendered = []
    for part in parts:
        spellings = []
        for spelling in part.spellings:
            words = [_lexeme(word) for word, _, _ in tokens(spelling)]
            if not words:
                return None
            if part.prefix:
                words[-1] += ":*"
            spellings.append(" <-> ".join(words))
        rendered.append("(" + " | ".join(spellings) + ")")
    return " & ".join(rendered) if rendered else None


def marked_spans(text: str, parts: Iterable[QueryPart]) -> list[list[int]]:
    """The [start, end) offsets of each phrase found in the text, overlapping ones joined (as FTS5's highlight())."""
    words = tokens(text)
    folded = [word for word, _, _ in words]
    found: list[tuple[int, int]] = []
    for part in parts:
        for spelling in part.spellings:
            wanted = [word for word, _, _ in tokens(spelling)]
            found += [
                (at, at + len(wanted))
                for at in range(len(folded) - len(wanted) + 1)
                if _is_at(folded, at, wanted, part.prefix)
            ]
    spans: list[list[int]] = []
    last_end = -1
    for first, end in sorted(found):
        if spans and first < last_end:  # overlaps the one before
            last_end = max(last_end, end)
            spans[-1][1] = words[last_end - 1][2]
            continue
        spans.append([words[first][1], words[end - 1][2]])
        last_end = end
    return spans


def _is_at(words: list[str], at: int, wanted: list[str], prefix: bool) -> bool:
    if not wanted:
        return False
    *whole, last = wanted
    candidate = words[at + len(whole)]
    return words[at : at + len(whole)] == whole and (candidate.startswith(last) if prefix else candidate == last)


def _lexeme(word: str) -> str:
    return "'" + word[:MAX_WORD].replace("\\", "\\\\").replace("'", "''") + "'"
