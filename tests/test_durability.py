"""Nothing is lost: restarts, a SIGKILL in the middle of a long file, and no temp files ever.

Each test has a server and data directory of its own and makes the sessions it checks, so the
tests pass alone and in any order.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (
    ENGLISH_FILES,
    REPO,
    audio_file,
    encode_webm_opus,
    engine_records,
    joined_speech,
    make_server,
    reference_text,
    wer,
    write_wav,
)

WINDOW_SECONDS = 60  # short windows, so the long recording spans several of them and resumes mid-file


def journal(server, session_id: str) -> list[dict]:
    path = server.data_dir / "sessions" / session_id / "segments.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


@pytest.fixture
def durable(tmp_path_factory):
    """A server with an empty data directory, not started: the tests start, kill and restart it."""
    server = make_server(tmp_path_factory, "durable", TAPESCRIBE_WINDOW_SECONDS=WINDOW_SECONDS)
    yield server
    server.stop()


def upload_and_wait(server, name: str) -> str:
    with server.client() as client, open(audio_file(name), "rb") as handle:
        response = client.post("/transcribe-file", files={"file": (name, handle)})
    assert response.status_code == 202, response.text
    session_id = response.json()["session_id"]
    assert server.wait_done(session_id)["status"]["status"] == "done"
    return session_id


@pytest.fixture(scope="module")
def two_minutes(tmp_path_factory) -> tuple[Path, list[str]]:
    """A little over two minutes of real speech (the English recordings joined with short pauses, then the
    first five again): the shortest file a job decodes in lanes (two of them), as a long upload is.
    (conftest's long_recording, three minutes, only made the job and the uninterrupted run cost more.)"""
    samples, references = joined_speech(ENGLISH_FILES + ENGLISH_FILES[:5])
    assert len(samples) >= 120 * 16000
    path = write_wav(tmp_path_factory.mktemp("durable-audio") / "long_speech.wav", samples)
    return path, references


def test_kill_mid_file_resumes_after_saved_segments(durable, two_minutes, library_model):
    path, references = two_minutes
    durable.start()
    with durable.client() as client, open(path, "rb") as handle:
        response = client.post("/transcribe-file", files={"file": ("long_speech.wav", handle)})
    assert response.status_code == 202
    session_id = response.json()["session_id"]

    # Killed once a few segments are saved: in lanes (the default) a group's first lane is saved as it
    # decodes and the other lanes' segments all at once at the group's end, which is not mid-file.
    deadline = time.monotonic() + 120
    while len(journal(durable, session_id)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    durable.kill()
    saved = journal(durable, session_id)
    assert len(saved) >= 4, "the job should have saved segments before the kill"
    status = json.loads((durable.data_dir / "sessions" / session_id / "status.json").read_text())
    assert status["status"] == "processing"

    durable.start()
    body = durable.wait_done(session_id, timeout=300)
    assert body["status"]["status"] == "done", body["status"]
    runs = body["status"]["runs"]
    assert len(runs) == 2
    assert runs[0]["from_seconds"] == 0
    # The second run started again at the window of the last segment saved before the kill (so its
    # windows fall where an uninterrupted run's do), and kept those segments.
    assert runs[1]["saved_segments"] == len(saved)
    assert runs[1]["from_seconds"] == saved[-1]["window_start"] <= saved[-1]["start"]
    # the decoder's end of the last saved segment (aligned words may move its `end`)
    assert runs[1]["saved_until_seconds"] == saved[-1].get("decoded_end", saved[-1]["end"])
    segments = body["transcription"]["segments"]
    for before, after in zip(saved, segments, strict=False):
        assert (after["start"], after["end"], after["text"]) == (before["start"], before["end"], before["text"])
    assert len(segments) > len(saved)
    assert all(b["start"] >= a["start"] for a, b in itertools.pairwise(segments))
    assert segments[-1]["end"] <= body["duration"] + 0.5
    assert not (durable.data_dir / "sessions" / session_id / "segments.jsonl").exists()

    # One uninterrupted run of the server's engine (lanes or windows) gives the same text; and that is as
    # accurate as one transcribe over the whole file (tests/test_window_context.py), so the resumed job is.
    uninterrupted = engine_records(library_model, path, WINDOW_SECONDS)
    difference = wer(["".join(s["text"] for s in uninterrupted)], [body["transcription"]["text"]])
    resumed_wer = wer([" ".join(references)], [body["transcription"]["text"]])
    print(
        f"killed after {len(saved)} segments and resumed: WER {difference:.2f}% against an uninterrupted run,"
        f" {resumed_wer:.2f}% against the reference"
    )
    assert difference <= 1.0
    assert list(durable.tmp_dir.iterdir()) == []  # killed, restarted and resumed: still no temp file


def test_every_kind_of_input_then_restart_shows_everything(durable, tmp_path):
    durable.start()
    created = {}
    with durable.client() as client:
        with open(audio_file("jfk.flac"), "rb") as handle:
            created["upload"] = client.post("/transcribe-file", files={"file": ("jfk.flac", handle)}).json()[
                "session_id"
            ]
        webm = encode_webm_opus(audio_file("leopard_test.wav"), tmp_path / "leopard.webm")
        created["recording"] = client.post(
            "/transcribe", files={"audio": ("rec.webm", webm.read_bytes(), "audio/webm")}
        ).json()["session_id"]
        data = webm.read_bytes()
        half = len(data) // 2
        first = client.post("/transcribe-live", data={"chunk_index": "0"}, files={"audio": ("c0.webm", data[:half])})
        live_id = first.json()["session_id"]
        client.post(
            "/transcribe-live",
            data={"chunk_index": "1", "session_id": live_id},
            files={"audio": ("c1.webm", data[half:])},
        )
        created["live"] = live_id
        durable.wait_done(created["upload"])
        before = {row["id"]: row for row in client.get("/sessions", params={"limit": 500}).json()["sessions"]}
        transcripts = {sid: client.get(f"/session/{sid}").json()["transcription"]["text"] for sid in before}
    assert set(created.values()) <= set(before)

    durable.stop()
    durable.start()
    with durable.client() as client:
        after = {row["id"]: row for row in client.get("/sessions", params={"limit": 500}).json()["sessions"]}
        assert set(after) == set(before)
        for session_id, row in before.items():
            assert after[session_id]["status"] == row["status"]
            assert client.get(f"/session/{session_id}").json()["transcription"]["text"] == transcripts[session_id]
    assert wer([reference_text("leopard_test.wav")], [transcripts[created["live"]]]) < 20

    # Through all of it (an upload, a recording, live chunks, a restart), no temp file.
    assert list(durable.tmp_dir.iterdir()) == []


def test_user_delete_is_the_only_removal(durable):
    durable.start()
    kept = upload_and_wait(durable, "jfk.flac")
    session_id = upload_and_wait(durable, "goforward.wav")
    with durable.client() as client:
        total_before = client.get("/storage").json()
        others = [
            row["id"]
            for row in client.get("/sessions", params={"limit": 500}).json()["sessions"]
            if row["id"] != session_id
        ]
        response = client.delete(f"/session/{session_id}")
        assert response.status_code == 200 and response.json() == {"deleted": session_id}
        assert not (durable.data_dir / "sessions" / session_id).exists()
        assert client.get(f"/session/{session_id}").status_code == 404
        listed = [row["id"] for row in client.get("/sessions", params={"limit": 500}).json()["sessions"]]
        assert listed == others == [kept]
        total_after = client.get("/storage").json()
        assert total_after["session_count"] == total_before["session_count"] - 1
        assert total_after["total_bytes"] < total_before["total_bytes"]
        assert all((durable.data_dir / "sessions" / other).is_dir() for other in others)


def test_reindex_rebuilds_the_index_from_files(durable):
    durable.start()
    created = {upload_and_wait(durable, "jfk.flac"), upload_and_wait(durable, "goforward.wav")}
    durable.stop()
    index = durable.data_dir / "index.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "tapescribe", "reindex", "--data-dir", str(durable.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "indexed 2 session(s)" in result.stdout
    durable.start()
    with durable.client() as client:
        listing = client.get("/sessions", params={"limit": 500}).json()
        assert listing["total"] == 2 and {row["id"] for row in listing["sessions"]} == created
        hits = client.get("/search", params={"q": "country"}).json()["results"]
        assert len(hits) == 1 and "country" in hits[0]["segments"][0]["text"].lower()


def test_no_tempfile_in_source():
    for path in (REPO / "src").rglob("*.py"):
        text = path.read_text()
        assert "tempfile" not in text and "/tmp" not in text, path
