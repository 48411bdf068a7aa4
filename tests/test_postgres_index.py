"""The index in PostgreSQL (TAPESCRIBE_INDEX_URL): a real server transcribes a shared recording and finds
it with GET /search, `tapescribe reindex` rebuilds the PostgreSQL index from the session files, and
the URL's password never shows in a log or an error."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg

from conftest import audio_file, free_port, make_server
from tapescribe.sessions.index_postgres import PostgresSessionIndex


def with_password(url: str) -> tuple[str, str]:
    """The URL with a password (the test cluster trusts local connections and ignores it), and the password."""
    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    password = "s3cret-Pw"
    return parts._replace(netloc=f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port}").geturl(), (
        password
    )


def reindex(data_dir, index_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tapescribe", "reindex", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "TAPESCRIBE_INDEX_URL": index_url},
    )


def test_server_keeps_its_index_in_postgres_and_reindex_rebuilds_it(tmp_path_factory, postgres_database):
    url, password = with_password(postgres_database)
    server = make_server(tmp_path_factory, "postgres-index", TAPESCRIBE_INDEX_URL=url).start()
    try:
        with server.client() as client, open(audio_file("jfk.flac"), "rb") as handle:
            session_id = client.post("/transcribe-file", files={"file": ("jfk.flac", handle)}).json()["session_id"]
        assert server.wait_done(session_id)["status"]["status"] == "done"
        with server.client() as client:
            hits = client.get("/search", params={"q": "country"}).json()["results"]
            listing = client.get("/sessions", params={"q": "ask*"}).json()
    finally:
        server.stop()
    assert [hit["id"] for hit in hits] == [session_id]
    marked = [segment["text"][start:end] for segment in hits[0]["segments"] for start, end in segment["matches"]]
    assert marked and {word.lower() for word in marked} == {"country"}
    assert listing["total"] == 1
    assert not (server.data_dir / "index.sqlite3").exists()  # the index is in PostgreSQL, not in the data dir
    assert password not in server.log()

    with psycopg.connect(postgres_database, autocommit=True) as connection:
        assert connection.execute("SELECT id FROM sessions").fetchall() == [(session_id,)]
        connection.execute("TRUNCATE segments, sessions")  # the index lost (it is a cache of the files)
    result = reindex(server.data_dir, url)
    assert result.returncode == 0, result.stderr
    assert "indexed 1 session(s)" in result.stdout
    assert password not in result.stdout + result.stderr
    rebuilt = PostgresSessionIndex(postgres_database)
    try:
        assert [(hit["id"], hit["segments"]) for hit in rebuilt.search("country")] == [
            (hit["id"], hit["segments"]) for hit in hits
        ]
    finally:
        rebuilt.close()


def test_an_unreachable_index_is_named_without_its_password(tmp_path):
    port = free_port()  # nothing listens there
    result = reindex(tmp_path / "data", f"postgresql://tapescribe:s3cret-Pw@127.0.0.1:{port}/index")
    assert result.returncode != 0
    assert f"postgresql://tapescribe:***@127.0.0.1:{port}/index" in result.stderr
    assert "s3cret-Pw" not in result.stdout + result.stderr
