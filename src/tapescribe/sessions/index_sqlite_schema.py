"""The SQLite index's tables and their migrations (sessions/index_sqlite.py queries them)."""

from __future__ import annotations

from tapescribe.sessions.index_migrations import Migration, latest

SCHEMA = """
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
-- Covers count and total size, so storage totals never read the wide rows (they hold transcripts).
CREATE INDEX IF NOT EXISTS sessions_size ON sessions (size_bytes);
-- One row per segment; its rowid is the rowid of its text in the FTS table, so a session's
-- segments are found through an ordinary index (FTS5 cannot index session_id).
CREATE TABLE IF NOT EXISTS segment_rows (
    rowid INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    speaker TEXT,
    speaker_name TEXT
);
CREATE INDEX IF NOT EXISTS segment_rows_session ON segment_rows (session_id);
CREATE VIRTUAL TABLE IF NOT EXISTS segment_text USING fts5(
    text,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3 4'
);
-- Title and whole transcript per session, kept in step with `sessions` by triggers: ranking and
-- filtering whole sessions reads one row per session instead of every matching segment. The
-- triggers index `index_terms` of the text (a function each connection registers).
CREATE VIRTUAL TABLE IF NOT EXISTS session_text USING fts5(
    title, text,
    content = 'sessions', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3 4'
);
CREATE TRIGGER IF NOT EXISTS sessions_fts_insert AFTER INSERT ON sessions BEGIN
    INSERT INTO session_text (rowid, title, text) VALUES (new.rowid, index_terms(new.title), index_terms(new.text));
END;
CREATE TRIGGER IF NOT EXISTS sessions_fts_delete AFTER DELETE ON sessions BEGIN
    INSERT INTO session_text (session_text, rowid, title, text)
        VALUES ('delete', old.rowid, index_terms(old.title), index_terms(old.text));
END;
CREATE TRIGGER IF NOT EXISTS sessions_fts_update AFTER UPDATE OF title, text ON sessions BEGIN
    INSERT INTO session_text (session_text, rowid, title, text)
        VALUES ('delete', old.rowid, index_terms(old.title), index_terms(old.text));
    INSERT INTO session_text (rowid, title, text) VALUES (new.rowid, index_terms(new.title), index_terms(new.text));
END;
"""
TABLES = ("session_text", "sessions", "segment_rows", "segment_text", "segments")

# Versions 1-6 kept the version in PRAGMA user_version only; each was a rebuild, as is 7.
MIGRATIONS = (
    Migration(7, (SCHEMA,), rebuild=True),  # 7: segments keep their speaker (id and name) for search by speaker
    # 8: each row's fingerprint of the files it was built from (NULL: rebuilt from the files at the next start)
    Migration(8, ("ALTER TABLE sessions ADD COLUMN fingerprint TEXT",)),
    # 9: the session's tags, a JSON list (rows of sessions tagged before this are rebuilt by reconcile's
    # fingerprint check only if their files changed; no session had tags before)
    Migration(9, ("ALTER TABLE sessions ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'",)),
    # 10: who a session belongs to (NULL: made before users existed, the first admin's)
    Migration(10, ("ALTER TABLE sessions ADD COLUMN owner TEXT", "CREATE INDEX sessions_owner ON sessions (owner)")),
)

SCHEMA_VERSION = latest(MIGRATIONS)
