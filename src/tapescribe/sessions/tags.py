"""Tags: short labels a person puts on sessions to organise a library (work, interview, 2026-q1).

A tag is kept as typed but trimmed and lower-cased (so "Work" and "work" are one tag), 1-40
characters of letters, digits, spaces and - _ . : / +; a session has at most 20. They live in
session.json (the record) and in the index (a JSON list, filtered by its quoted form: the
characters allowed never need escaping in JSON, so '"work"' is found only as the whole tag).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from tapescribe.errors import BadRequest

MAX_TAGS = 20
MAX_TAG_LENGTH = 40
_TAG = re.compile(r"[\w][\w .:/+-]*", re.UNICODE)


def checked_tag(tag: Any) -> str:
    """One tag, normalised; BadRequest naming what is wrong with it."""
    if not isinstance(tag, str):
        raise BadRequest("A tag must be a string.")
    cleaned = " ".join(unicodedata.normalize("NFC", tag).split()).lower()
    if not cleaned:
        raise BadRequest("A tag must not be empty.")
    if len(cleaned) > MAX_TAG_LENGTH:
        raise BadRequest(f"A tag is limited to {MAX_TAG_LENGTH} characters.", tag=cleaned[:MAX_TAG_LENGTH])
    if not _TAG.fullmatch(cleaned):
        raise BadRequest(
            "A tag may hold letters, digits, spaces and - _ . : / + (starting with a letter or digit).", tag=cleaned
        )
    return cleaned


def checked_tags(tags: Iterable[Any]) -> list[str]:
    """A list of tags, normalised, duplicates dropped, in the order given; at most MAX_TAGS."""
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise BadRequest("tags must be a list of strings.")
    cleaned = list(dict.fromkeys(checked_tag(tag) for tag in tags))
    if len(cleaned) > MAX_TAGS:
        raise BadRequest(f"A session may have at most {MAX_TAGS} tags.", count=len(cleaned))
    return cleaned


def tags_column(tags: Iterable[str] | None) -> str:
    """How the index stores a session's tags: a JSON list."""
    return json.dumps(list(tags or []), ensure_ascii=False)


def tag_needle(tag: str) -> str:
    """What a row's tags column contains exactly when it has `tag`."""
    return json.dumps(checked_tag(tag), ensure_ascii=False)


def tags_of(column: str | None) -> list[str]:
    try:
        found = json.loads(column or "[]")
    except ValueError:
        return []
    return [tag for tag in found if isinstance(tag, str)] if isinstance(found, list) else []
