"""SqliteSessionIndex: SQLite table of sessions plus FTS5 over transcript segments (the default index).

Writes use BEGIN IMMEDIATE so concurrent writers (server, worker processes) queue up instead of
failing half-way.

Text is indexed by unicode61 with diacritics removed, so "fur", "für" and "Für" find each other;
ß and ss are tried both ways in the query. Chinese, Japanese and Korean are indexed a character
at a time (`scripts.index_terms`) and searched as phrases, so a word inside a sentence is found.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tapescribe.sessions.index import (
    PREVIEW_LENGTH,
    RANKED_CANDIDATES,
    ROW_FIELDS,
    WRITTEN_FIELDS,
    FingerprintStep,
    QueryPart,
    Visible,
    query_parts,
    segment_values,
    step_values,
    visible_values,
)
from tapescribe.sessions.index_migrations import apply_pending
from tapescribe.sessions.index_sqlite_schema import MIGRATIONS, SCHEMA_VERSION, TABLES
from tapescribe.sessions.scripts import TERM_SEPARATOR, index_terms
from tapescribe.sessions.tags import tag_needle

# Rows a caller may see (index.visible_values): everything when :owner is NULL.
_VISIBLE = "(:owner IS NULL OR s.owner = :owner OR (:unowned AND s.owner IS NULL))"
# A partial write moves the fingerprint only from the one the row had before the file write (FingerprintStep).
_STEP = "fingerprint = CASE WHEN fingerprint IS :before THEN :after ELSE NULL END"


def fts_query(user_query: str) -> str | None:
    """What a person types as a safe FTS5 query: every token quoted (so it is text, never syntax),
    parts ANDed, the spellings of a part ORed, a prefix part starred."""
    parts = [_fts_part(part) for part in query_parts(user_query)]
    return " AND ".join(parts) if parts else None


def _fts_part(part: QueryPart) -> str:
    star = "*" if part.prefix else ""
    quoted = [f'"{spelling}"{star}' for spelling in part.spellings]
    return quoted[0] if len(quoted) == 1 else "(" + " OR ".join(quoted) + ")"


def _marked_spans(marked: str) -> list[list[int]]:
    """Character offsets [start, end) into the segment text of each match (from highlight()'s markers)."""
    spans: list[list[int]] = []
    plain = start = 0
    for char in marked:
        if char == TERM_SEPARATOR:
            continue
        if char == "\x02":
            start = plain
        elif char == "\x03":
            spans.append([start, plain])
        else:
            plain += 1
    return spans


class SqliteSessionIndex:
    def __init__(self, path: Path, ranked_candidates: int = RANKED_CANDIDATES) -> None:
        self.path = path
        self.ranked_candidates = ranked_candidates
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            self.needs_rebuild = self._migrate(connection)
        # Held open for the life of the index. SQLite deletes the -wal and -shm files when the last
        # connection closes, and the next read has to create them again: on a full disk that fails
        # ("disk I/O error") and every listing and search would fail with it. While this connection
        # is open the files stay, so reads need no space.
        self._keeper = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._keeper.execute("SELECT count(*) FROM sessions").fetchone()

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> bool:
        """Bring the schema to SCHEMA_VERSION. True if the tables were (re)made empty: a new file, or
        one from a schema that cannot be changed in place; the caller refills it from the files."""
        has_version = connection.execute("SELECT count(*) FROM sqlite_master WHERE name='schema_version'").fetchone()[0]
        if has_version:
            current = connection.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        else:  # an index from before the table: its version is in user_version (0 in a new file)
            current = connection.execute("PRAGMA user_version").fetchone()[0]
        has_sessions = connection.execute("SELECT count(*) FROM sqlite_master WHERE name='sessions'").fetchone()[0]
        if current > SCHEMA_VERSION or not has_sessions:  # made by a newer tapescribe, or empty: start anew
            current = 0
        rebuild = apply_pending(connection.executescript, MIGRATIONS, current, TABLES)
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        if current < SCHEMA_VERSION or not has_version:
            connection.execute("DELETE FROM schema_version")
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        return rebuild

    def close(self) -> None:
        self._keeper.close()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.create_function("index_terms", 1, index_terms, deterministic=True)
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
        self.upsert_many([(row, None)])

    def upsert_many(self, entries: Iterable[tuple[dict[str, Any], list[dict[str, Any]] | None]]) -> None:
        """Rows (and, where given, their segments) in one transaction: how reindex stays fast."""
        columns = ", ".join(WRITTEN_FIELDS)
        placeholders = ", ".join(f":{field}" for field in WRITTEN_FIELDS)
        updates = ", ".join(f"{field}=excluded.{field}" for field in WRITTEN_FIELDS if field != "id")
        with self._write() as connection:
            for row, segments in entries:
                values = {field: row.get(field) for field in WRITTEN_FIELDS}
                values["size_bytes"] = values["size_bytes"] or 0
                values["title"] = values["title"] or ""
                values["source"] = values["source"] or ""
                values["tags"] = values["tags"] or "[]"
                connection.execute(
                    f"INSERT INTO sessions ({columns}) VALUES ({placeholders}) ON CONFLICT(id) DO UPDATE SET {updates}",
                    values,
                )
                if segments is not None:
                    self._replace_segments(connection, row["id"], segments)

    def update(self, session_id: str, *, step: FingerprintStep | None = None, **fields: Any) -> None:
        unknown = set(fields) - set(ROW_FIELDS)
        if unknown:
            raise ValueError(f"not index fields: {sorted(unknown)}")
        assignments = ", ".join([*(f"{field}=:{field}" for field in fields), _STEP])
        with self._write() as connection:
            connection.execute(
                f"UPDATE sessions SET {assignments} WHERE id=:id", {**fields, **step_values(step), "id": session_id}
            )

    def set_segments(
        self, session_id: str, segments: Iterable[dict[str, Any]], *, step: FingerprintStep | None = None
    ) -> None:
        with self._write() as connection:
            self._replace_segments(connection, session_id, list(segments))
            connection.execute(f"UPDATE sessions SET {_STEP} WHERE id=:id", {**step_values(step), "id": session_id})

    @staticmethod
    def _replace_segments(connection: sqlite3.Connection, session_id: str, segments: list[dict[str, Any]]) -> None:
        text = " ".join(segment["text"].strip() for segment in segments).strip()
        SqliteSessionIndex._delete_segments(connection, session_id)
        for position, segment in enumerate(segments):
            rowid = connection.execute(
                "INSERT INTO segment_rows (session_id, position, start, end, speaker, speaker_name) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                segment_values(session_id, position, segment),
            ).lastrowid
            connection.execute(
                "INSERT INTO segment_text (rowid, text) VALUES (?, ?)", (rowid, index_terms(segment["text"].strip()))
            )
        connection.execute("UPDATE sessions SET text=? WHERE id=?", (text, session_id))

    @staticmethod
    def _delete_segments(connection: sqlite3.Connection, session_id: str) -> None:
        connection.execute(
            "DELETE FROM segment_text WHERE rowid IN (SELECT rowid FROM segment_rows WHERE session_id=?)",
            (session_id,),
        )
        connection.execute("DELETE FROM segment_rows WHERE session_id=?", (session_id,))

    def remove(self, session_id: str) -> None:
        with self._write() as connection:
            self._delete_segments(connection, session_id)
            connection.execute("DELETE FROM sessions WHERE id=?", (session_id,))

    def clear(self) -> None:
        with self._write() as connection:
            connection.execute("DELETE FROM segment_text")
            connection.execute("DELETE FROM segment_rows")
            connection.execute("DELETE FROM sessions")
            connection.execute("INSERT INTO session_text (session_text) VALUES ('delete-all')")

    def optimize(self) -> None:
        with self._connect() as connection:
            connection.execute("PRAGMA optimize")

    # -- reading ------------------------------------------------------------------------------

    def page(
        self,
        limit: int,
        offset: int,
        query: str | None = None,
        tag: str | None = None,
        visible: Visible = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first. With a query, only sessions whose transcript or title matches it; with a tag,
        only sessions that have it; with `visible`, only one owner's."""
        columns = ", ".join(f"s.{field}" for field in ROW_FIELDS)
        match = fts_query(query) if query else None
        if query and match is None:
            return [], 0
        conditions: list[str] = [_VISIBLE]
        params: dict[str, Any] = {"preview": PREVIEW_LENGTH, **visible_values(visible)}
        if match:
            conditions.append("s.rowid IN (SELECT rowid FROM session_text WHERE session_text MATCH :match)")
            params["match"] = match
        if tag is not None:
            conditions.append("instr(s.tags, :needle) > 0")
            params["needle"] = tag_needle(tag)
        where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
        with self._connect() as connection:
            total = connection.execute(f"SELECT count(*) FROM sessions s {where}", params).fetchone()[0]
            rows = connection.execute(
                f"SELECT {columns}, substr(s.text, 1, :preview) AS preview FROM sessions s {where} "
                "ORDER BY s.created DESC, s.id LIMIT :limit OFFSET :offset",
                {**params, "limit": limit, "offset": offset},
            ).fetchall()
        return [dict(row) for row in rows], total

    def search(
        self,
        query: str,
        limit: int = 20,
        hits_per_session: int = 5,
        speaker: str | None = None,
        visible: Visible = None,
    ) -> list[dict[str, Any]]:
        """Sessions with their matching segments and start times, best matches first. `speaker` (an id
        such as S1, or a name the owner gave, any case) keeps only what that speaker said."""
        match = fts_query(query)
        if match is None:
            return []
        by_speaker = (
            "" if speaker is None else "AND (r.speaker = :speaker OR r.speaker_name = :speaker COLLATE NOCASE) "
        )
        with self._connect() as connection:
            ranked = connection.execute(
                "SELECT s.id, s.title, s.created, s.duration, s.status, bm25(session_text) AS rank "
                "FROM session_text JOIN sessions s ON s.rowid = session_text.rowid "
                f"WHERE session_text MATCH :match AND {_VISIBLE} AND session_text.rowid >= coalesce(("
                # the ranked_candidates sessions indexed last (rowid order) that match and the caller may
                # see, found without ranking (other people's matches do not crowd the caller's out)
                "SELECT t.rowid FROM session_text t JOIN sessions s ON s.rowid = t.rowid "
                f"WHERE t.session_text MATCH :match AND {_VISIBLE} "
                "ORDER BY t.rowid DESC LIMIT 1 OFFSET :candidates), 0) "
                "ORDER BY rank LIMIT :limit",
                {
                    **visible_values(visible),
                    "match": match,
                    "candidates": self.ranked_candidates - 1,
                    # a session may match only in what others said: look further down the ranking
                    "limit": limit if speaker is None else limit * 10,
                },
            ).fetchall()
            results: dict[str, dict[str, Any]] = {}
            for row in ranked:
                # A session's segments are inserted together, so their rowids form one range.
                low, high = connection.execute(
                    "SELECT min(rowid), max(rowid) FROM segment_rows WHERE session_id=?", (row["id"],)
                ).fetchone()
                hits = (
                    []
                    if low is None
                    else connection.execute(
                        "SELECT r.position, r.start, r.end, r.speaker, segment_text.text, "
                        "highlight(segment_text, 0, char(2), char(3)) AS marked "
                        "FROM segment_text JOIN segment_rows r ON r.rowid = segment_text.rowid "
                        "WHERE segment_text MATCH :match AND segment_text.rowid BETWEEN :low AND :high "
                        f"{by_speaker}ORDER BY segment_text.rowid LIMIT :hits",
                        {"match": match, "low": low, "high": high, "hits": hits_per_session, "speaker": speaker},
                    ).fetchall()
                )
                if speaker is not None and not hits:
                    continue
                results[row["id"]] = {
                    **dict(row),
                    "segments": [
                        {
                            "index": hit["position"],
                            "start": hit["start"],
                            "end": hit["end"],
                            "text": hit["text"].replace(TERM_SEPARATOR, ""),
                            "matches": _marked_spans(hit["marked"]),
                            **({"speaker": hit["speaker"]} if hit["speaker"] else {}),
                        }
                        for hit in hits
                    ],
                }
                if len(results) == limit:
                    break
        for entry in results.values():
            entry["segments"].sort(key=lambda segment: segment["start"])
        return list(results.values())

    def fingerprints(self) -> dict[str, str | None]:
        """Every row's fingerprint: what a start compares with the files to find stale rows."""
        with self._connect() as connection:
            rows = connection.execute("SELECT id, fingerprint FROM sessions").fetchall()
        return {row["id"]: row["fingerprint"] for row in rows}

    def totals(self, visible: Visible = None) -> dict[str, int]:
        with self._connect() as connection:
            count, total = connection.execute(
                f"SELECT count(*), coalesce(sum(size_bytes), 0) FROM sessions s WHERE {_VISIBLE}",
                visible_values(visible),
            ).fetchone()
        return {"session_count": count, "total_bytes": total}

    def owners(self) -> dict[str | None, dict[str, int]]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT owner, count(*), coalesce(sum(size_bytes), 0) FROM sessions GROUP BY owner"
            ).fetchall()
        return {row[0]: {"session_count": row[1], "total_bytes": row[2]} for row in rows}
