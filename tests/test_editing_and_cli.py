"""Edits are versioned and survive re-transcription; the CLI works on the same data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import audio_file, make_server


@pytest.fixture(scope="module")
def editing(tmp_path_factory):
    running = make_server(tmp_path_factory, "editing").start()
    yield running
    running.stop()


def upload_done(server, name: str) -> str:
    with server.client() as client, open(audio_file(name), "rb") as handle:
        session_id = client.post("/transcribe-file", files={"file": (name, handle)}).json()["session_id"]
    assert server.wait_done(session_id)["status"]["status"] == "done"
    return session_id


def test_edits_are_versioned_and_searchable(editing):
    session_id = upload_done(editing, "jfk.flac")
    with editing.client() as client:
        original = client.get(f"/session/{session_id}").json()["transcription"]
        edited = client.patch(
            f"/session/{session_id}/segments/0", json={"text": "And so, my fellow citizens of Zanzibar,"}
        )
        assert edited.status_code == 200
        assert edited.json()["segments"][0]["text"] == " And so, my fellow citizens of Zanzibar,"
        assert "Zanzibar" in client.get(f"/session/{session_id}").json()["transcription"]["text"]
        client.patch(f"/session/{session_id}/segments/0", json={"text": "And so, my fellow people of Zanzibar,"})
        versions = client.get(f"/session/{session_id}/versions").json()["versions"]
        assert [v["label"] for v in versions] == ["before-edit", "before-edit"]
        first = client.get(f"/session/{session_id}/versions/1").json()
        assert first["transcription"]["text"] == original["text"]
        second = client.get(f"/session/{session_id}/versions/2").json()
        assert "citizens of Zanzibar" in second["transcription"]["text"]
        hits = client.get("/search", params={"q": "zanzibar"}).json()["results"]
        assert [hit["id"] for hit in hits] == [session_id]
        assert client.patch(f"/session/{session_id}/segments/99", json={"text": "x"}).status_code == 404
        assert client.get(f"/session/{session_id}/versions/7").status_code == 404


def test_retranscribe_keeps_the_edited_version(editing):
    session_id = upload_done(editing, "61-70968-0000.flac")
    with editing.client() as client:
        client.patch(
            f"/session/{session_id}/segments/0", json={"text": "He began a confused complaint against the sorcerer."}
        )
        client.patch(f"/session/{session_id}", json={"title": "Wizard story"})
        response = client.post(f"/session/{session_id}/retranscribe", json={"language": "en"})
        assert response.status_code == 202 and response.json()["status"] == "queued"
        done = editing.wait_done(session_id)
        assert done["status"]["status"] == "done"
        assert "wizard" in done["transcription"]["text"].lower()  # the new transcript
        assert done["title"] == "Wizard story"
        assert done["title_history"][0]["title"] == "61-70968-0000"
        versions = client.get(f"/session/{session_id}/versions").json()["versions"]
        labels = [v["label"] for v in versions]
        assert "before-retranscribe" in labels
        kept = client.get(f"/session/{session_id}/versions/{labels.index('before-retranscribe') + 1}").json()
        assert "sorcerer" in kept["transcription"]["text"]  # the edit is not lost


def test_edit_while_processing_is_refused(editing, long_recording):
    path, _ = long_recording
    with editing.client() as client, open(path, "rb") as handle:
        session_id = client.post("/transcribe-file", files={"file": ("long.wav", handle)}).json()["session_id"]
        response = client.patch(f"/session/{session_id}/segments/0", json={"text": "x"})
        assert response.status_code == 409
        assert client.post(f"/session/{session_id}/retranscribe", json={}).status_code == 409
        assert client.post(f"/session/{session_id}/cancel").status_code == 200


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tapescribe", *args], capture_output=True, text=True)


def test_cli_sessions_and_search(editing):
    session_id = upload_done(editing, "goforward.wav")
    data = str(editing.data_dir)
    listing = run_cli("sessions", "list", "--data-dir", data)
    assert listing.returncode == 0 and session_id in listing.stdout and "goforward" in listing.stdout
    shown = json.loads(run_cli("sessions", "show", session_id, "--data-dir", data).stdout)
    assert shown["id"] == session_id and shown["status"]["status"] == "done"
    exported = run_cli("sessions", "export", session_id, "--format", "vtt", "--data-dir", data).stdout
    assert exported.startswith("WEBVTT") and "forward" in exported.lower()
    found = run_cli("search", "forward", "--data-dir", data).stdout
    assert session_id in found
    missing = run_cli("sessions", "show", "../../etc/passwd", "--data-dir", data)
    assert missing.returncode == 2 and "No such session" in missing.stderr
    deleted = run_cli("sessions", "delete", session_id, "--yes", "--data-dir", data)
    assert deleted.returncode == 0 and not (editing.data_dir / "sessions" / session_id).exists()
    assert session_id not in run_cli("sessions", "list", "--data-dir", data).stdout
