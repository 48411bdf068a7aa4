"""PostgresSessionIndex: the session index in PostgreSQL, which every host of a deployment can reach.

Same rows, same answers as the SQLite index. Each session row holds a tsvector of its title and
transcript under a GIN index: finding and ranking sessions is PostgreSQL's full-text search.
The tsvectors and tsqueries are built in Python (search_terms.py) with FTS5's tokens and folding,
so both backends find the same sessions for the same query; the segments of the sessions found
are matched in PostgreSQL too, and their marked spans are found from the same tokens.

Connections come from a pool, so the server's threads each use their own. Writes to one session
take a transaction-scoped advisory lock on its id: concurrent writers queue up instead of mixing
segments. A transaction left idle longer than `idle_transaction_seconds` is ended by PostgreSQL:
ours take milliseconds, so such a one belongs to a process that was paused or hung mid-write (a
worker whose job another one took over), and its locks must not hold that session's writers back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from tapescribe.errors import IndexUnavailable
from tapescribe.sessions.index import (
    PREVIEW_LENGTH,
    RANKED_CANDIDATES,
    ROW_FIELDS,
    WRITTEN_FIELDS,
    FingerprintStep,
    Visible,
    query_parts,
    redacted_url,
    segment_values,
    step_values,
    visible_values,
)
from tapescribe.sessions.index_migrations import apply_pending
from tapescribe.sessions.index_postgres_schema import MIGRATIONS, SCHEMA_VERSION, TABLES
from tapescribe.sessions.scripts import TERM_SEPARATOR
from tapescribe.sessions.search_terms import marked_spans, tsquery, tsvector
from tapescribe.sessions.tags import tag_needle

log = logging.getLogger(__name__)

# Rows a caller may see (index.visible_values): everything when owner is NULL.
_VISIBLE = "(%(owner)s::text IS NULL OR owner = %(owner)s OR (%(unowned)s AND owner IS NULL))"
# A partial write moves the fingerprint only from the one the row had before the file write (FingerprintStep).
_STEP = "fingerprint = CASE WHEN fingerprint IS NOT DISTINCT FROM %(before)s THEN %(after)s ELSE NULL END"
_MIGRATION_LOCK = 0x7A9E5C01  # an advisory lock id: one process at a time migrates
_SEGMENT_COLUMNS = ("session_id", "position", "start", "end", "speaker", "speaker_name", "text", "terms")
IDLE_TRANSACTION_SECONDS = (
    30.0  # a transaction of ours idle this long is a paused or hung process's: PostgreSQL ends it
)


class PostgresSessionIndex:
    def __init__(
        self,
        url: str,
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        ranked_candidates: int = RANKED_CANDIDATES,
        idle_transaction_seconds: float = IDLE_TRANSACTION_SECONDS,
    ) -> None:
        self.url = redacted_url(url)  # what logs and errors may show
        self.ranked_candidates = ranked_candidates
        idle = f"-c idle_in_transaction_session_timeout={round(idle_transaction_seconds * 1000)}"
        self._pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, name="tapescribe-index", kwargs={"options": idle}
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as error:
            self._pool.close()
            raise IndexUnavailable(f"could not connect to the PostgreSQL index at {self.url}", url=self.url) from (
                _without_password(error, url)
            )
        with self._pool.connection() as connection:
            self.needs_rebuild = self._migrate(connection)

    def close(self) -> None:
        self._pool.close()

    def _migrate(self, connection: psycopg.Connection) -> bool:
        """Bring the schema to SCHEMA_VERSION, one process at a time. True if the tables were made anew
        (a new database, or a schema that cannot be changed in place): the caller refills them.

        A schema newer than this version is refused, not remade: the database is shared, and during an
        upgrade an older host must not drop what a newer one built."""
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        (current,) = connection.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone() or (0,)
        if current > SCHEMA_VERSION:
            raise IndexUnavailable(
                f"the PostgreSQL index at {self.url} has schema version {current}, made by a newer tapescribe;"
                f" this one knows versions up to {SCHEMA_VERSION}: upgrade tapescribe on this host",
                url=self.url,
                schema_version=current,
            )
        rebuild = apply_pending(connection.execute, MIGRATIONS, current, TABLES)
        if current < SCHEMA_VERSION:
            connection.execute("DELETE FROM schema_version")
            connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
        return rebuild

    # -- writing ------------------------------------------------------------------------------

    def upsert(self, row: dict[str, Any]) -> None:
        self.upsert_many([(row, None)])

    def upsert_many(self, entries: Iterable[tuple[dict[str, Any], list[dict[str, Any]] | None]]) -> None:
        """Rows (and, where given, their segments) in one transaction: how reindex stays fast."""
        fields = (*WRITTEN_FIELDS, "text", "terms")
        columns = ", ".join(fields)
        placeholders = ", ".join(f"%({field})s" for field in fields)
        updates = ", ".join(f"{field}=excluded.{field}" for field in fields if field != "id")
        row_updates = ", ".join(f"{field}=excluded.{field}" for field in WRITTEN_FIELDS if field != "id")
        with self._pool.connection() as connection, connection.cursor() as cursor:
            for row, segments in entries:
                title: str = row.get("title") or ""
                values = {field: row.get(field) for field in WRITTEN_FIELDS}
                values["size_bytes"] = values["size_bytes"] or 0
                values["title"] = title
                values["source"] = values["source"] or ""
                values["tags"] = values["tags"] or "[]"
                _lock(cursor, row["id"])
                if segments is None:
                    found = cursor.execute("SELECT title, text FROM sessions WHERE id=%s", (row["id"],)).fetchone()
                    old_title, text = found if found else (None, "")
                    values["text"] = text
                    values["terms"] = tsvector(title, text)
                    # an unchanged title needs no new terms (the transcript's are the costly part)
                    keep_terms = old_title == title
                    cursor.execute(
                        f"INSERT INTO sessions ({columns}) VALUES ({placeholders}) "
                        f"ON CONFLICT (id) DO UPDATE SET {row_updates if keep_terms else updates}",
                        values,
                    )
                else:
                    text = _joined(segments)
                    values["text"] = text
                    values["terms"] = tsvector(title, text)
                    cursor.execute(
                        f"INSERT INTO sessions ({columns}) VALUES ({placeholders}) "
                        f"ON CONFLICT (id) DO UPDATE SET {updates}",
                        values,
                    )
                    self._replace_segments(cursor, row["id"], segments)

    def update(self, session_id: str, *, step: FingerprintStep | None = None, **fields: Any) -> None:
        unknown = set(fields) - set(ROW_FIELDS)
        if unknown:
            raise ValueError(f"not index fields: {sorted(unknown)}")
        with self._pool.connection() as connection, connection.cursor() as cursor:
            _lock(cursor, session_id)
            if "title" in fields:
                found = cursor.execute("SELECT text FROM sessions WHERE id=%s", (session_id,)).fetchone()
                fields = {**fields, "terms": tsvector(fields["title"] or "", found[0] if found else "")}
            assignments = ", ".join([*(f"{field}=%({field})s" for field in fields), _STEP])
            cursor.execute(
                f"UPDATE sessions SET {assignments} WHERE id=%(id)s", {**fields, **step_values(step), "id": session_id}
            )

    def set_segments(
        self, session_id: str, segments: Iterable[dict[str, Any]], *, step: FingerprintStep | None = None
    ) -> None:
        listed = list(segments)
        with self._pool.connection() as connection, connection.cursor() as cursor:
            _lock(cursor, session_id)
            found = cursor.execute("SELECT title FROM sessions WHERE id=%s", (session_id,)).fetchone()
            text = _joined(listed)
            cursor.execute(
                f"UPDATE sessions SET text=%(text)s, terms=%(terms)s, {_STEP} WHERE id=%(id)s",
                {
                    "text": text,
                    "terms": tsvector(found[0] if found else "", text),
                    **step_values(step),
                    "id": session_id,
                },
            )
            self._replace_segments(cursor, session_id, listed)

    @staticmethod
    def _replace_segments(cursor: psycopg.Cursor, session_id: str, segments: list[dict[str, Any]]) -> None:
        cursor.execute("DELETE FROM segments WHERE session_id=%s", (session_id,))
        columns = ", ".join(f'"{column}"' for column in _SEGMENT_COLUMNS)
        with cursor.copy(f"COPY segments ({columns}) FROM STDIN") as copy:
            for position, segment in enumerate(segments):
                text = segment["text"].strip()
                copy.write_row((*segment_values(session_id, position, segment), text, tsvector(text)))

    def remove(self, session_id: str) -> None:
        with self._pool.connection() as connection, connection.cursor() as cursor:
            _lock(cursor, session_id)
            cursor.execute("DELETE FROM segments WHERE session_id=%s", (session_id,))
            cursor.execute("DELETE FROM sessions WHERE id=%s", (session_id,))

    def clear(self) -> None:
        with self._pool.connection() as connection:
            connection.execute("TRUNCATE segments, sessions")

    def optimize(self) -> None:
        """Statistics for the planner (without them it scans every row instead of using sessions_terms),
        and the GIN index's list of pending entries merged, which every search would otherwise read."""
        with self._pool.connection() as connection:
            connection.execute("ANALYZE sessions")
            connection.execute("ANALYZE segments")
            connection.execute("SELECT gin_clean_pending_list('sessions_terms')")

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
        match = tsquery(query_parts(query)) if query else None
        if query and match is None:
            return [], 0
        conditions = (
            [_VISIBLE]
            + (["terms @@ %(match)s::tsquery"] if match else [])
            + (["strpos(tags, %(needle)s) > 0"] if tag is not None else [])
        )
        where = "WHERE " + " AND ".join(conditions)
        params = {
            "match": match,
            "needle": tag_needle(tag) if tag is not None else None,
            **visible_values(visible),
        }
        columns = ", ".join(ROW_FIELDS)
        with self._pool.connection() as connection, connection.cursor(row_factory=dict_row) as cursor:
            counted = cursor.execute(f"SELECT count(*) AS n FROM sessions {where}", params).fetchone()
            total = counted["n"] if counted else 0
            rows = cursor.execute(
                f"SELECT {columns}, left(text, %(preview)s) AS preview FROM sessions {where} "
                "ORDER BY created DESC, id LIMIT %(limit)s OFFSET %(offset)s",
                {**params, "preview": PREVIEW_LENGTH, "limit": limit, "offset": offset},
            ).fetchall()
        return rows, total

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
        parts = query_parts(query)
        match = tsquery(parts)
        if match is None:
            return []
        by_speaker = (
            "" if speaker is None else "AND (speaker = %(speaker)s OR lower(speaker_name) = lower(%(speaker)s)) "
        )
        with self._pool.connection() as connection, connection.cursor(row_factory=dict_row) as cursor:
            ranked = cursor.execute(
                # the ranked_candidates sessions indexed last that match, found without ranking, as SQLite picks them
                "WITH candidates AS MATERIALIZED (SELECT seq FROM sessions WHERE terms @@ %(match)s::tsquery "
                f"AND {_VISIBLE} "
                "ORDER BY seq DESC LIMIT %(candidates)s) "
                # rank: lower is better, as SQLite's bm25()
                "SELECT id, title, created, duration, status, -ts_rank(terms, %(match)s::tsquery) AS rank "
                "FROM sessions WHERE seq IN (SELECT seq FROM candidates) ORDER BY rank, created DESC LIMIT %(limit)s",
                {
                    **visible_values(visible),
                    "match": match,
                    "candidates": self.ranked_candidates,
                    # a session may match only in what others said: look further down the ranking
                    "limit": limit if speaker is None else limit * 10,
                },
            ).fetchall()
            hits = cursor.execute(
                'SELECT session_id, position, start, "end", speaker, text FROM ('
                "SELECT *, row_number() OVER (PARTITION BY session_id ORDER BY position) AS nth FROM segments "
                f"WHERE session_id = ANY(%(ids)s) AND terms @@ %(match)s::tsquery {by_speaker}) AS hit "
                "WHERE nth <= %(hits)s",
                {"ids": [row["id"] for row in ranked], "match": match, "hits": hits_per_session, "speaker": speaker},
            ).fetchall()
        by_session: dict[str, list[dict[str, Any]]] = {}
        for hit in hits:
            by_session.setdefault(hit["session_id"], []).append(hit)
        results = []
        for row in ranked:
            found = by_session.get(row["id"], [])
            if speaker is not None and not found:
                continue
            segments = [
                {
                    "index": hit["position"],
                    "start": hit["start"],
                    "end": hit["end"],
                    "text": hit["text"].replace(TERM_SEPARATOR, " "),
                    "matches": marked_spans(hit["text"], parts),
                    **({"speaker": hit["speaker"]} if hit["speaker"] else {}),
                }
                for hit in found
            ]
            segments.sort(key=lambda segment: segment["start"])
            results.append({**row, "segments": segments})
            if len(results) == limit:
                break
        return results

    def fingerprints(self) -> dict[str, str | None]:
        """Every row's fingerprint: what a start compares with the files to find stale rows."""
        with self._pool.connection() as connection:
            rows = connection.execute("SELECT id, fingerprint FROM sessions").fetchall()
        return dict(rows)

    def totals(self, visible: Visible = None) -> dict[str, int]:
        with self._pool.connection() as connection:
            count, total = connection.execute(
                f"SELECT count(*), coalesce(sum(size_bytes), 0) FROM sessions WHERE {_VISIBLE}", visible_values(visible)
            ).fetchone() or (0, 0)
        return {"session_count": count, "total_bytes": int(total)}

    def owners(self) -> dict[str | None, dict[str, int]]:
        with self._pool.connection() as connection:
            rows = connection.execute(
                "SELECT owner, count(*), coalesce(sum(size_bytes), 0) FROM sessions GROUP BY owner"
            ).fetchall()
        return {row[0]: {"session_count": row[1], "total_bytes": int(row[2])} for row in rows}


def _lock(cursor: psycopg.Cursor, session_id: str) -> None:
    """Until the transaction ends, no other writer changes this session (rows and segments stay one set)."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (session_id,))


def _joined(segments: list[dict[str, Any]]) -> str:
    return " ".join(segment["text"].strip() for segment in segments).strip()


def _without_password(error: BaseException, url: str) -> BaseException:
    """The error, its message cleared of the URL's password should a library have put it there."""
    password = urlsplit(url).password
    if password and password in str(error):
        return IndexUnavailable(str(error).replace(password, "***"))
    return error
