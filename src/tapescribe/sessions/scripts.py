"""Writing systems without spaces between words (Chinese, Japanese, Korean), for search and subtitles.

unicode61, the FTS5 tokenizer, splits words at spaces and punctuation only, so a Japanese sentence
is one token and no word inside it can be found. The index therefore keeps such text with an
invisible separator between its characters (`index_terms`), and a query is split the same way and
searched as a phrase: the characters next to each other, in order. Subtitles break lines between
these characters instead of at spaces.
"""

from __future__ import annotations

import re
import unicodedata

# Han (with extensions and compatibility forms), kana and the iteration marks: written without spaces.
UNSPACED_CHARS = (
    "\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3040-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
# Hangul: Korean puts spaces between words, but a particle or ending is part of its word (옆으로,
# 피하면서), so the index keeps it a character at a time too, while subtitles break at its spaces.
HANGUL_CHARS = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
# A control character: unicode61 treats it as a separator, and no transcript contains it.
TERM_SEPARATOR = "\x1f"
_UNSPACED = re.compile(f"[{UNSPACED_CHARS}]")
_BY_CHARACTER = f"{UNSPACED_CHARS}{HANGUL_CHARS}"
_INDEXED_BY_CHARACTER = re.compile(f"[{_BY_CHARACTER}]")
_BETWEEN = re.compile(f"(?<=[{_BY_CHARACTER}])(?=\\w)|(?<=\\w)(?=[{_BY_CHARACTER}])")
_TOKEN = re.compile(r"\w+")


def is_unspaced(char: str) -> bool:
    """Written without spaces between words: a line may break before or after it."""
    return _UNSPACED.match(char) is not None


def index_terms(text: str) -> str:
    """The text as the index keeps it: a separator on each side of every CJK or Hangul character.

    Removing TERM_SEPARATOR gives the text back (one already in it is made a space first).
    """
    text = text.replace(TERM_SEPARATOR, " ")
    if _INDEXED_BY_CHARACTER.search(text) is None:
        return text
    return _BETWEEN.sub(TERM_SEPARATOR, text)


def query_tokens(text: str) -> list[str]:
    """The tokens unicode61 would make of typed text once it is split as `index_terms` splits it."""
    return _TOKEN.findall(index_terms(unicodedata.normalize("NFC", text)))
