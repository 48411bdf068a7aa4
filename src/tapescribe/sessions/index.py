"""SessionIndex: SQLite table of sessions plus FTS5 over transcript segments.

A cache of the session files for fast listing and search; `rebuild` recreates it from the files at
any time. Writes use BEGIN IMMEDIATE so concurrent writers (server, worker processes) queue up
instead of failing half-way.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    filename TEXT,
    duration REAL,
    model TEXT,
    language TEXT,
    status TEXT NOT NULL,
    progress REAL,
    message TEXT,
    updated TEXT,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    text TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_created ON sessions (created DESC, id);
CREATE VIRTUAL TABLE IF NOT EXISTS segments USING fts5(
    text,
    session_id UNINDEXED,
    position UNINDEXED,
    start UNINDEXED,
    end UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);
"""

_ROW_FIELDS = (
    "id", "title", "created", "source", "filename", "duration", "model", "language",
    "status", "progress", "message", "updated", "size_bytes",
)

_TOKEN = re.compile(r"\w+", re.UNICODE)


def fts_query(user_query: str) -> str | None:
    """Turn what a person types into a safe FTS5 query.

    Words are ANDed; "quoted phrases" stay phrases; a trailing * keeps a prefix search. Anything
    else (FTS operators, punctuation) is treated as text, so no input can make the query fail.
    """
    parts: list[str] = []
    for phrase_match in re.finditer(r'"([^"]*)"|(\S+)', user_query):
        phrase, word = phrase_match.group(1), phrase_match.group(2)
        if phrase is not None:
            tokens = _TOKEN.findall(phrase)
            if tokens:
                parts.append('"' + " ".join(tokens) + '"')
            continue
        tokens = _TOKEN.findall(word)
        for position, token in enumerate(tokens):
            prefix = word.endswith("*") and position == len(tokens) - 1
            parts.append(f'"{token}"' + ("*" if prefix else ""))
    return " AND ".join(parts) if parts else None


class SessionIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # -- writing ------------------------------------------------------------------------------

    def upsert(self, row: dict[str, Any]) -> None:
        values = {field: row.get(field) for field in _ROW_FIELDS}
        values["size_bytes"] = values["size_bytes"] or 0
        values["title"] = values["title"] or ""
        values["source"] = values["source"] or ""
        columns = ", ".join(_ROW_FIELDS)
        placeholders = ", ".join(f":{field}" for field in _ROW_FIELDS)
        updates = ", ".join(f"{field}=excluded.{field}" for field in _ROW_FIELDS if field != "id")
        with self._write() as connection:
            connection.execute(
                f"INSERT INTO sessions ({columns}) VALUES ({placeholders}) "
                f"ON CONFLICT(id) DO UPDATE SET {updates}",
                values,
            )

    def update(self, session_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_ROW_FIELDS)
        if unknown:
            raise ValueError(f"not index fields: {sorted(unknown)}")
        assignments = ", ".join(f"{field}=:{field}" for field in fields)
        with self._write() as connection:
            connection.execute(f"UPDATE sessions SET {assignments} WHERE id=:id", {**fields, "id": session_id})

    def set_segments(self, session_id: str, segments: Iterable[dict[str, Any]]) -> None:
        segments = list(segments)
        text = " ".join(segment["text"].strip() for segment in segments).strip()
        with self._write() as connection:
            connection.execute("DELETE FROM segments WHERE session_id=?", (session_id,))
            connection.executemany(
                "INSERT INTO segments (text, session_id, position, start, end) VALUES (?, ?, ?, ?, ?)",
                [
                    (segment["text"].strip(), session_id, position, segment["start"], segment["end"])
                    for position, segment in enumerate(segments)
                ],
            )
            connection.execute("UPDATE sessions SET text=? WHERE id=?", (text, session_id))

    def remove(self, session_id: str) -> None:
        with self._write() as connection:
            connection.execute("DELETE FROM segments WHERE session_id=?", (session_id,))
            connection.execute("DELETE FROM sessions WHERE id=?", (session_id,))

    def clear(self) -> None:
        with self._write() as connection:
            connection.execute("DELETE FROM segments")
            connection.execute("DELETE FROM sessions")

    # -- reading ------------------------------------------------------------------------------

    def list(self, limit: int, offset: int, query: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """Newest first. With a query, only sessions whose transcript or title matches it."""
        columns = ", ".join(f"s.{field}" for field in _ROW_FIELDS)
        with self._connect() as connection:
            match = fts_query(query) if query else None
            if query and match is None:
                return [], 0
            if match:
                where = (
                    "WHERE s.id IN (SELECT session_id FROM segments WHERE segments MATCH :match) "
                    "OR s.title LIKE :like"
                )
                params: dict[str, Any] = {"match": match, "like": f"%{query.strip()}%"}
            else:
                where, params = "", {}
            total = connection.execute(f"SELECT count(*) FROM sessions s {where}", params).fetchone()[0]
            rows = connection.execute(
                f"SELECT {columns} FROM sessions s {where} ORDER BY s.created DESC, s.id LIMIT :limit OFFSET :offset",
                {**params, "limit": limit, "offset": offset},
            ).fetchall()
        return [dict(row) for row in rows], total

    def search(self, query: str, limit: int = 20, hits_per_session: int = 5) -> list[dict[str, Any]]:
        """Sessions with their matching segments and start times, best matches first."""
        match = fts_query(query)
        if match is None:
            return []
        with self._connect() as connection:
            hits = connection.execute(
                "SELECT session_id, position, start, end, text, "
                "highlight(segments, 0, '[', ']') AS marked, bm25(segments) AS rank "
                "FROM segments WHERE segments MATCH ? ORDER BY rank LIMIT ?",
                (match, limit * hits_per_session * 4),
            ).fetchall()
            results: dict[str, dict[str, Any]] = {}
            for hit in hits:
                entry = results.get(hit["session_id"])
                if entry is None:
                    if len(results) >= limit:
                        continue
                    row = connection.execute(
                        "SELECT id, title, created, duration, status FROM sessions WHERE id=?",
                        (hit["session_id"],),
                    ).fetchone()
                    if row is None:
                        continue
                    entry = results[hit["session_id"]] = {**dict(row), "rank": hit["rank"], "segments": []}
                if len(entry["segments"]) < hits_per_session:
                    entry["segments"].append(
                        {
                            "index": hit["position"],
                            "start": hit["start"],
                            "end": hit["end"],
                            "text": hit["text"],
                            "highlighted": hit["marked"],
                        }
                    )
        for entry in results.values():
            entry["segments"].sort(key=lambda segment: segment["start"])
        return list(results.values())

    def totals(self) -> dict[str, int]:
        with self._connect() as connection:
            count, total = connection.execute(
                "SELECT count(*), coalesce(sum(size_bytes), 0) FROM sessions"
            ).fetchone()
        return {"session_count": count, "total_bytes": total}

    def ids_with_status(self, statuses: Iterable[str]) -> list[str]:
        statuses = list(statuses)
        marks = ", ".join("?" for _ in statuses)
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT id FROM sessions WHERE status IN ({marks}) ORDER BY created", statuses
            ).fetchall()
        return [row["id"] for row in rows]
