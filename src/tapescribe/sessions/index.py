"""SessionIndex: what both index backends offer, and the parts of a search they share.

The index is a cache of the session files for fast listing and search (IndexSync.reindex
recreates it from the files at any time). It lives in an SQLite file in the data directory
(index_sqlite.py, the default: nothing to run) or in PostgreSQL (index_postgres.py), which every
host of a multi-host deployment can reach. Both read what a person types the same way
(`query_parts`), so a query finds the same sessions and marks the same words in either.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from tapescribe.sessions.scripts import query_tokens

ROW_FIELDS = (
    "id",
    "title",
    "created",
    "source",
    "filename",
    "duration",
    "model",
    "language",
    "status",
    "progress",
    "message",
    "updated",
    "size_bytes",
    "tags",  # a JSON list (sessions/tags.py)
    "owner",  # the user it belongs to (None: made before users, the first admin's)
)
# Which rows a caller may see: (owner, whether rows without an owner count: they belong to the first
# admin); None: every row (no users).
Visible = tuple[str, bool] | None
# Not shown to clients: the files a row and its segments were built from, as `IndexSync.fingerprint`
# saw them (None: unknown, so the next start rebuilds the row). A start compares it with the files.
FINGERPRINT = "fingerprint"
WRITTEN_FIELDS = (*ROW_FIELDS, FINGERPRINT)
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Search ranks at most this many matching sessions, the ones indexed last (in normal use the newest):
# ranking reads every candidate's positions, and a word said in most of 100,000 sessions would
# otherwise take seconds. Fewer matches are all ranked. Both backends pick the same candidates.
RANKED_CANDIDATES = 1000
PREVIEW_LENGTH = 160  # characters of a transcript shown in a listing


class SessionIndex(Protocol):
    """Rows of sessions plus full-text search over their titles and transcript segments."""

    needs_rebuild: bool  # new or remade at start: the caller refills it from the session files

    def upsert(self, row: dict[str, Any]) -> None: ...

    def upsert_many(self, entries: Iterable[tuple[dict[str, Any], list[dict[str, Any]] | None]]) -> None:
        """Rows (and, where given, their segments) in one transaction: how reindex stays fast."""

    def update(self, session_id: str, *, step: FingerprintStep | None = None, **fields: Any) -> None:
        """Some fields of a row; its fingerprint moves by `step` (see FingerprintStep)."""

    def set_segments(
        self, session_id: str, segments: Iterable[dict[str, Any]], *, step: FingerprintStep | None = None
    ) -> None:
        """A session's transcript segments; its fingerprint moves by `step` (see FingerprintStep)."""

    def remove(self, session_id: str) -> None: ...

    def clear(self) -> None: ...

    def optimize(self) -> None:
        """After many rows changed at once (a reindex): update the planner's statistics."""

    def page(
        self,
        limit: int,
        offset: int,
        query: str | None = None,
        tag: str | None = None,
        visible: Visible = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first. With a query, only sessions whose transcript or title matches it; with a tag, only
        sessions that have it; with `visible`, only one owner's. Each row has `preview`, the first
        PREVIEW_LENGTH characters of its transcript."""

    def search(
        self,
        query: str,
        limit: int = 20,
        hits_per_session: int = 5,
        speaker: str | None = None,
        visible: Visible = None,
    ) -> list[dict[str, Any]]:
        """Sessions with their matching segments, best matches first; each segment has `matches`,
        the [start, end) character offsets of what matched. `speaker` (an id such as S1, or a name
        the owner gave, any case) keeps only what that speaker said."""

    def fingerprints(self) -> dict[str, str | None]:
        """Every row's fingerprint: what a start compares with the files to find stale rows."""

    def totals(self, visible: Visible = None) -> dict[str, int]: ...

    def owners(self) -> dict[str | None, dict[str, int]]:
        """Sessions and bytes per owner (None: sessions made before users existed)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class FingerprintStep:
    """A change to some of a row's fields after one file write: the row's fingerprint becomes `after`
    only if it was `before` (the row was in step with the files until this write), else it is cleared,
    so a row that was already behind its files stays marked stale and the next start rebuilds it."""

    before: str
    after: str


def visible_values(visible: Visible) -> dict[str, Any]:
    """The parameters of an owner filter: `owner` None when everything is visible."""
    if visible is None:
        return {"owner": None, "unowned": True}
    return {"owner": visible[0], "unowned": visible[1]}


def step_values(step: FingerprintStep | None) -> dict[str, str | None]:
    """The parameters `before` and `after` of a partial write's SQL (without a step: the row is marked
    stale, as no fingerprint equals NULL)."""
    return {"before": step.before, "after": step.after} if step else {"before": None, "after": None}


@dataclass(frozen=True)
class QueryPart:
    """One thing every match must contain: a phrase (its tokens next to each other), in any of its spellings."""

    spellings: tuple[str, ...]  # tokens joined by spaces; the first as typed, the others ß/ss swapped
    prefix: bool  # the last token may be the start of a word


def query_parts(user_query: str) -> list[QueryPart]:
    """What a person types, as the parts a match needs, all of them (AND).

    "quoted phrases" stay phrases, and so does a word the tokenizer splits (l'homme, e-mail, 知識:
    its pieces next to each other); a trailing * keeps a prefix search. A word with ß or ss also
    matches the other spelling. Anything else (operators, punctuation) is treated as text.
    """
    parts: list[QueryPart] = []
    for phrase_match in re.finditer(r'"([^"]*)"|(\S+)', unicodedata.normalize("NFC", user_query)):
        phrase, word = phrase_match.group(1), phrase_match.group(2)
        tokens = query_tokens(phrase if phrase is not None else word)
        if tokens:
            prefix = phrase is None and word.endswith("*")
            parts.append(QueryPart(_spellings(" ".join(tokens)), prefix))
    return parts


def _spellings(phrase: str) -> tuple[str, ...]:
    """The phrase, then its ß/ss spellings: diacritics are folded by the index, ß is not folded to ss."""
    lowered = phrase.lower()
    others = dict.fromkeys([lowered.replace("ß", "ss"), lowered.replace("ss", "ß")])
    return (phrase, *(other for other in others if other != lowered))


def segment_values(session_id: str, position: int, segment: dict[str, Any]) -> tuple[Any, ...]:
    """What both backends store of a transcript segment besides its text, in their column order:
    (session_id, position, start, end, speaker, speaker_name)."""
    return (session_id, position, segment["start"], segment["end"], segment.get("speaker"), segment.get("speaker_name"))


def redacted_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def open_index(index_url: str, sqlite_path: Path) -> SessionIndex:
    """The index `index_url` names: empty for the SQLite file at `sqlite_path`, postgresql://... for PostgreSQL."""
    if not index_url:
        from tapescribe.sessions.index_sqlite import SqliteSessionIndex

        return SqliteSessionIndex(sqlite_path)
    if urlsplit(index_url).scheme in POSTGRES_SCHEMES:
        from tapescribe.sessions.index_postgres import PostgresSessionIndex

        return PostgresSessionIndex(index_url)
    raise ValueError(f"index_url must be empty or postgresql://...: {redacted_url(index_url)}")
