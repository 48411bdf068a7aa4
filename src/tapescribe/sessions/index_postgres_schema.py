"""The PostgreSQL index's tables and their migrations (sessions/index_postgres.py queries them)."""

from __future__ import annotations

from tapescribe.sessions.index_migrations import Migration, latest

SCHEMA_1 = (
    """
    CREATE TABLE sessions (
        id text PRIMARY KEY,
        title text NOT NULL DEFAULT '',
        created text NOT NULL,
        source text NOT NULL DEFAULT '',
        filename text,
        duration double precision,
        model text,
        language text,
        status text NOT NULL,
        progress double precision,
        message text,
        updated text,
        size_bytes bigint NOT NULL DEFAULT 0,
        text text NOT NULL DEFAULT '',
        terms tsvector NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX sessions_created ON sessions (created DESC, id)",
    "CREATE INDEX sessions_terms ON sessions USING gin (terms)",
    # Segments are only matched within the sessions found through sessions_terms: by primary key, no GIN.
    """
    CREATE TABLE segments (
        session_id text NOT NULL,
        position integer NOT NULL,
        start double precision NOT NULL,
        "end" double precision NOT NULL,
        speaker text,
        speaker_name text,
        text text NOT NULL,
        terms tsvector NOT NULL,
        PRIMARY KEY (session_id, position)
    )
    """,
)
MIGRATIONS = (
    Migration(1, SCHEMA_1, rebuild=True),
    # 2: the order rows were first indexed in (SQLite's rowid): search ranks the RANKED_CANDIDATES last
    Migration(2, ("ALTER TABLE sessions ADD COLUMN seq bigserial", "CREATE INDEX sessions_seq ON sessions (seq)")),
    # 3: each row's fingerprint of the files it was built from (NULL: rebuilt from the files at the next start)
    Migration(3, ("ALTER TABLE sessions ADD COLUMN fingerprint text",)),
    # 4: the session's tags, a JSON list (sessions/tags.py)
    Migration(4, ("ALTER TABLE sessions ADD COLUMN tags text NOT NULL DEFAULT '[]'",)),
    # 5: who a session belongs to (NULL: made before users existed, the first admin's)
    Migration(5, ("ALTER TABLE sessions ADD COLUMN owner text", "CREATE INDEX sessions_owner ON sessions (owner)")),
)

SCHEMA_VERSION = latest(MIGRATIONS)
TABLES = ("segments", "sessions")
