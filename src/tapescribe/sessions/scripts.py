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

# Han (with extensions and compatibility forms), kana, the iteration marks, Hangul syllables and jamo.
UNSPACED_CHARS = (
    "\u1100-\u11ff\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
# A control character: unicode61 treats it as a separator, and no transcript contains it.
TERM_SEPARATOR = "\x1f"
_UNSPACED = re.compile(f"[{UNSPACED_CHARS}]")
_BETWEEN = re.compile(f"(?<=[{UNSPACED_CHARS}])(?=\\w)|(?<=\\w)(?=[{UNSPACED_CHARS}])")
_TOKEN = re.compile(r"\w+")


def is_unspaced(char: str) -> bool:
    return _UNSPACED.match(char) is not None


def index_terms(text: str) -> str:
    """The text as the index keeps it: a separator on each side of every unspaced character.

    Removing TERM_SEPARATOR gives the text back (one already in it is made a space first).
    """
    text = text.replace(TERM_SEPARATOR, " ")
    if _UNSPACED.search(text) is None:
        return text
    return _BETWEEN.sub(TERM_SEPARATOR, text)


def query_tokens(text: str) -> list[str]:
    """The tokens unicode61 would make of typed text once it is split as `index_terms` splits it."""
    return _TOKEN.findall(index_terms(unicodedata.normalize("NFC", text)))
