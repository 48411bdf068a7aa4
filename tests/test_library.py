"""A library for a small team: tags, bulk actions, version restore, default titles, storage by kind, and
`tapescribe backup` / `restore` taken while an upload transcribes and a live stream runs. One server for
the whole file."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from conftest import audio_file, make_server, read_pcm


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    running = make_server(tmp_path_factory, "library").start()
    yield running
    running.stop()


def upload(client: httpx.Client, name: str, filename: str | None = None, **data) -> str:
    with open(audio_file(name), "rb") as handle:
        response = client.post("/transcribe-file", data=data, files={"file": (filename or name, handle)})
    assert response.status_code == 202, response.text
    return response.json()["session_id"]


@pytest.fixture(scope="module")
def two_done(library) -> list[str]:
    with library.client() as client:
        ids = [upload(client, "goforward.wav", language="en"), upload(client, "jfk.flac", language="en")]
    for session_id in ids:
        assert library.wait_done(session_id)["status"]["status"] == "done"
    return ids


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "tapescribe", *args], capture_output=True, text=True, timeout=120, env=os.environ
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def tagged(client: httpx.Client, tag: str) -> list[str]:
    answer = client.get("/sessions", params={"tag": tag, "limit": 500})
    assert answer.status_code == 200, answer.text
    return [row["id"] for row in answer.json()["sessions"]]


def test_tags_set_filter_validate_and_survive_reindex(library, two_done):
    first, second = two_done
    with library.client() as client:
        answer = client.patch(f"/session/{first}", json={"tags": ["Work", " interview  2026 ", "work"]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["tags"] == ["work", "interview 2026"]
        client.patch(f"/session/{second}", json={"tags": ["work"], "title": "Kennedy"})
        assert sorted(tagged(client, "work")) == sorted(two_done)
        assert tagged(client, "Interview 2026") == [first]
        assert tagged(client, "interview") == []  # a whole tag, never a part of one
        rows = {row["id"]: row for row in client.get("/sessions").json()["sessions"]}
        assert rows[first]["tags"] == ["work", "interview 2026"] and rows[second]["title"] == "Kennedy"
        for bad in (["x" * 41], ["a,b"], ['"quoted"'], [""], [f"t{n}" for n in range(21)], "work", [3]):
            refused = client.patch(f"/session/{first}", json={"tags": bad})
            assert refused.status_code in (400, 422), (bad, refused.text)
            assert set(refused.json()["error"]) == {"status", "code", "message", "details"}
        assert client.get(f"/session/{first}").json()["tags"] == ["work", "interview 2026"]  # nothing lost
        assert client.patch(f"/session/{first}", json={}).status_code == 400
    stored = json.loads((library.data_dir / "sessions" / first / "session.json").read_text())
    assert stored["tags"] == ["work", "interview 2026"]
    cli("reindex", "--data-dir", str(library.data_dir))  # the index rebuilt from the files keeps them
    with library.client() as client:
        assert sorted(tagged(client, "work")) == sorted(two_done)
        assert tagged(client, "interview 2026") == [first]


def test_listing_shows_language_and_first_words(library, two_done):
    with library.client() as client:
        rows = {row["id"]: row for row in client.get("/sessions").json()["sessions"]}
    kennedy = rows[two_done[1]]
    assert kennedy["language"] == "en"
    assert "ask not what your country" in kennedy["preview"].lower().replace(",", "")


def test_a_recording_is_titled_by_its_first_words_unless_named(library):
    with library.client() as client:
        recorded = upload(client, "jfk.flac", filename="Recording 7 Dec 2026, 09:14.flac", language="en")
        named = upload(client, "jfk.flac", filename="Speech at the inauguration.flac", language="en")
    recorded_title = library.wait_done(recorded)["title"]
    assert recorded_title.lower().replace(",", "").startswith("and so my fellow americans"), recorded_title
    assert library.wait_done(named)["title"] == "Speech at the inauguration"


def test_bulk_tag_untag_export_delete(library):
    with library.client() as client:
        ids = [upload(client, "goforward.wav", language="en") for _ in range(2)]
        for session_id in ids:
            library.wait_done(session_id)
        client.patch(f"/session/{ids[0]}", json={"title": "Same title"})
        client.patch(f"/session/{ids[1]}", json={"title": "Same title"})
        missing = "0" * 32
        answer = client.post("/sessions/bulk", json={"ids": [*ids, missing], "action": "tag", "tags": ["batch", "x"]})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [item["ok"] for item in results] == [True, True, False]
        assert results[0]["tags"] == ["batch", "x"] and results[2]["error"]["code"] == "not_found"
        assert sorted(tagged(client, "batch")) == sorted(ids)
        untag = client.post("/sessions/bulk", json={"ids": ids[:1], "action": "untag", "tags": ["x"]})
        assert untag.json()["results"][0]["tags"] == ["batch"] and tagged(client, "x") == [ids[1]]
        assert client.post("/sessions/bulk", json={"ids": ids, "action": "tag", "tags": []}).status_code == 400
        assert client.post("/sessions/bulk", json={"ids": ids, "action": "tag", "tags": ["a b!"]}).status_code == 400
        assert client.post("/sessions/bulk", json={"ids": ids, "action": "burn"}).status_code == 422

        exported = client.post("/sessions/export", json={"ids": ids, "format": "srt"})
        assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
            names = sorted(archive.namelist())
            assert names == sorted(f"Same title ({session_id}).srt" for session_id in ids)
            assert "forward" in archive.read(names[0]).decode().lower()
        assert client.post("/sessions/export", json={"ids": [*ids, missing]}).status_code == 404
        assert client.post("/sessions/export", json={"ids": ids, "format": "doc"}).status_code == 422

        deleted = client.post("/sessions/bulk", json={"ids": [ids[0], missing, ids[1]], "action": "delete"})
        assert [item["ok"] for item in deleted.json()["results"]] == [True, False, True]
        assert all(client.get(f"/session/{session_id}").status_code == 404 for session_id in ids)
    assert not any((library.data_dir / "sessions" / session_id).exists() for session_id in ids)


def test_restore_a_version(library, two_done):
    session_id = two_done[0]
    with library.client() as client:
        original = client.get(f"/session/{session_id}").json()["transcription"]
        edited = client.patch(f"/session/{session_id}/segments/0", json={"text": "Edited words."})
        assert edited.status_code == 200, edited.text
        versions = client.get(f"/session/{session_id}/versions").json()["versions"]
        before_edit = versions[-1]
        assert before_edit["label"] == "before-edit"
        restored = client.post(f"/session/{session_id}/versions/{before_edit['number']}/restore")
        assert restored.status_code == 200, restored.text
        assert restored.json()["text"] == original["text"]
        now = client.get(f"/session/{session_id}").json()["transcription"]
        assert now["segments"] == original["segments"]
        after = client.get(f"/session/{session_id}/versions").json()["versions"]
        assert after[-1]["label"] == "before-restore" and "Edited words." in after[-1]["preview"]
        assert client.post(f"/session/{session_id}/versions/999/restore").status_code == 404
        assert client.post(f"/session/{'0' * 32}/versions/1/restore").status_code == 404
        hits = client.get("/search", params={"q": "edited"}).json()["results"]
        assert session_id not in [hit["id"] for hit in hits]  # the index follows the restored transcript


def test_storage_counts_models_and_caches_apart(library, two_done):
    models = library.data_dir / "models" / "fake-model"
    models.mkdir(parents=True, exist_ok=True)
    (models / "model.bin").write_bytes(b"m" * 100_000)
    with library.client() as client:
        storage = client.get("/storage").json()
    assert storage["model_bytes"] >= 100_000
    assert storage["library_bytes"] >= storage["total_bytes"]
    assert storage["data_dir_bytes"] == storage["library_bytes"] + storage["model_bytes"] + storage["cache_bytes"]


def library_files(data_dir: Path, session_id: str) -> dict[str, bytes]:
    directory = data_dir / "sessions" / session_id
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.endswith(".lock")
    }


def wait_progress(server, session_id: str, timeout: float = 120) -> None:
    """Until the job has saved part of its transcript (progress above 0)."""
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while time.monotonic() < deadline:
            status = client.get(f"/session/{session_id}").json()["status"]
            if status["status"] == "processing" and (status["progress"] or 0) > 0:
                return
            time.sleep(0.2)
    raise AssertionError(f"no progress on {session_id}:\n{server.log()}")


def test_backup_while_transcribing_restores_an_identical_library(library, two_done, long_recording, tmp_path):
    second = two_done[1]
    with library.client() as client:
        client.patch(f"/session/{second}", json={"tags": ["keep"]})
        client.patch(f"/session/{second}/segments/0", json={"text": "And so, my fellow Americans."})
        long_path, _ = long_recording
        with open(long_path, "rb") as handle:  # three minutes: still being transcribed while the backup runs
            answer = client.post("/transcribe-file", data={"language": "en"}, files={"file": ("long.wav", handle)})
        busy = answer.json()["session_id"]
        wait_progress(library, busy)
        journal = library.data_dir / "sessions" / busy / "segments.jsonl"
        deadline = time.monotonic() + 300
        while not journal.exists() and time.monotonic() < deadline:  # its first segments saved
            time.sleep(0.2)
        sessions_then = {
            row["id"]: row["status"] for row in client.get("/sessions", params={"limit": 500}).json()["sessions"]
        }
        archive = tmp_path / "library.tar"
        pcm = (np.clip(read_pcm(audio_file("jfk.flac")), -1.0, 1.0) * 32767).astype("<i2").tobytes()
        half = len(pcm) // 4 * 2
        ws_url = library.url.replace("http://", "ws://") + "/ws/live"
        with connect(ws_url, max_size=None, open_timeout=30, close_timeout=5) as live:  # a live stream runs too
            live.send(json.dumps({"type": "start", "format": "pcm", "model": "tiny.en", "language": "en"}))
            assert json.loads(live.recv(timeout=30))["type"] == "ready"
            live.send(pcm[:half])
            live_id = None
            while live_id is None:
                message = json.loads(live.recv(timeout=120))
                live_id = message.get("session_id") if message["type"] == "session" else None
            cli("backup", str(archive), "--data-dir", str(library.data_dir))
            live.send(pcm[half:])
            live.send(json.dumps({"type": "stop"}))
            while json.loads(live.recv(timeout=180))["type"] not in ("done", "error"):
                pass
        done_then = [session_id for session_id, status in sessions_then.items() if status == "done"]
        source = {session_id: library_files(library.data_dir, session_id) for session_id in done_then}
        hits_before = client.get("/search", params={"q": "fellow"}).json()["results"]
    with tarfile.open(archive) as opened:
        archived_status = json.loads(opened.extractfile(f"sessions/{busy}/status.json").read())
        names = opened.getnames()
    assert archived_status["status"] == "processing"  # taken while the upload was being transcribed
    assert f"sessions/{busy}/segments.jsonl" in names  # with the segments saved so far
    chunks = sorted(
        (name for name in names if name.startswith(f"sessions/{live_id}/chunk_")),
        key=lambda name: int(name.rsplit("_", 1)[1].split(".")[0]),
    )
    with tarfile.open(archive) as opened:
        streamed = b"".join(opened.extractfile(name).read() for name in chunks)
    assert streamed and pcm.startswith(streamed)  # the live stream's audio as it was when the backup ran
    assert not any(name.startswith(("models", "index.sqlite3", "queue.sqlite3")) for name in names)
    assert names[-1] == "tapescribe-backup.json"
    assert "ok:" in cli("backup", "--verify", str(archive)).stdout

    restored = tmp_path / "restored"
    cli("restore", str(archive), "--data-dir", str(restored))
    for session_id, files in source.items():
        assert library_files(restored, session_id) == files, session_id  # audio, transcript, versions, tags
    restored_chunks = sorted(
        (restored / "sessions" / live_id).glob("chunk_*"), key=lambda path: int(path.stem.split("_")[1])
    )
    assert b"".join(path.read_bytes() for path in restored_chunks) == streamed
    busy_audio = next((restored / "sessions" / busy).glob("original_audio.*"))
    assert busy_audio.read_bytes() == long_path.read_bytes()
    assert json.loads((restored / "sessions" / second / "session.json").read_text())["tags"] == ["keep"]
    assert list((restored / "sessions" / second / "versions").glob("*-before-edit.json"))

    from tapescribe.sessions.index_sqlite import SqliteSessionIndex

    index = SqliteSessionIndex(restored / "index.sqlite3")
    try:
        hits_after = index.search("fellow")
        tagged_rows, _ = index.page(50, 0, tag="keep")
    finally:
        index.close()
    # the same hits in the sessions that were done (one mid-job is searchable on the server once it is done)
    assert [(hit["id"], hit["segments"]) for hit in hits_after if hit["id"] in source] == [
        (hit["id"], hit["segments"]) for hit in hits_before if hit["id"] in source
    ]
    assert len([hit for hit in hits_before if hit["id"] in source]) >= 1
    assert [row["id"] for row in tagged_rows] == [second]

    refused = cli("restore", str(archive), "--data-dir", str(restored), check=False)
    assert refused.returncode != 0 and "not empty" in refused.stderr
    with library.client() as client:
        client.post(f"/session/{busy}/cancel")  # the rest of the file is not needed


def test_verify_catches_a_flipped_byte(library, two_done, tmp_path):
    archive = tmp_path / "library.tar"
    cli("backup", str(archive), "--data-dir", str(library.data_dir))
    with tarfile.open(archive) as opened:
        member = opened.getmember(f"sessions/{two_done[1]}/original_audio.flac")
    data = bytearray(archive.read_bytes())
    data[member.offset_data + member.size // 2] ^= 0x01  # one bit of the recording's bytes
    archive.write_bytes(bytes(data))
    checked = cli("backup", "--verify", str(archive), check=False)
    assert checked.returncode != 0 and "damaged" in checked.stderr and "original_audio.flac" in checked.stderr
    refused = cli("restore", str(archive), "--data-dir", str(tmp_path / "empty"), check=False)
    assert refused.returncode != 0 and not (tmp_path / "empty" / "sessions").exists()
