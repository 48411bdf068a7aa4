"""The session domain: one directory per session on disk (the record) and an SQLite index (a rebuildable cache)."""
