"""`/ws/live` and cancel on a full disk: the server of tests/test_disk_full.py, on a 64 MiB tmpfs filled
to the last byte (root only; skipped elsewhere).

A stream whose first audio cannot be stored gets the documented `error` message (507 shape, close
1011) and leaves nothing behind, not even an empty directory in `data/incoming/`. A stream the disk
fills under keeps every whole message that arrived, is told so, and becomes a session that is
finished (recording, second pass) once space is back. A cancel answered 507 changes nothing.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from test_disk_full import (  # noqa: F401 (fixtures)
    fill,
    journal_length,
    small_disk,
    small_disk_server,
    speech_minute,
)
from test_live_ws import FRAME_BYTES, frames, pcm_bytes, ws_url
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import audio_file, read_pcm

SECOND = 32000  # bytes of 16 kHz 16-bit mono PCM


def live_messages(websocket) -> list[dict]:
    """Every message until the server closes the connection (or sends `done` and closes)."""
    messages = []
    try:
        while True:
            messages.append(json.loads(websocket.recv(timeout=60)))
    except ConnectionClosed:
        return messages


def sent_until_refused(websocket, pieces: list[bytes]) -> int:
    """Send pieces until the server stops taking them; how many went out."""
    for number, piece in enumerate(pieces):
        try:
            websocket.send(piece)
        except ConnectionClosed:
            return number
        time.sleep(0.05)
    return len(pieces)


def assert_disk_full_error(message: dict) -> None:
    assert message["type"] == "error", message
    assert set(message) == {"type", "status", "code", "message", "details"}, message
    assert (message["status"], message["code"]) == (507, "insufficient_storage")
    assert "nothing already stored was lost" in message["message"].lower()


def test_a_live_stream_on_a_full_disk_is_refused_and_leaves_nothing(small_disk):  # noqa: F811
    server = small_disk
    sessions_before = sorted(os.listdir(server.data_dir / "sessions"))
    fill(server.data_dir)
    audio = pcm_bytes(read_pcm(audio_file("jfk.flac")))
    with connect(ws_url(server), open_timeout=30, close_timeout=5) as websocket:
        websocket.send(json.dumps({"type": "start", "format": "pcm"}))
        assert json.loads(websocket.recv(timeout=30))["type"] == "ready"
        sent_until_refused(websocket, frames(audio, FRAME_BYTES * 5))
        messages = live_messages(websocket)
    assert messages, "the server said nothing"
    assert_disk_full_error(messages[0])
    assert "session_id" not in messages[0]["details"]
    assert all(message["type"] != "session" for message in messages), messages
    assert websocket.close_code == 1011
    assert sorted(os.listdir(server.data_dir / "sessions")) == sessions_before
    assert os.listdir(server.data_dir / "incoming") == []
    assert "Traceback" not in server.log_path.read_text(errors="replace"), server.log()


def test_a_live_stream_the_disk_fills_under_keeps_what_arrived(small_disk):  # noqa: F811
    server = small_disk
    audio = pcm_bytes(read_pcm(audio_file("sense_and_sensibility_01_austen_64kb-0870.wav")))
    pieces = frames(audio, FRAME_BYTES * 5)  # half a second each
    with connect(ws_url(server), open_timeout=30, close_timeout=5) as websocket:
        websocket.send(json.dumps({"type": "start", "format": "pcm", "language": "en"}))
        assert json.loads(websocket.recv(timeout=30))["type"] == "ready"
        for piece in pieces[:6]:  # three seconds stored
            websocket.send(piece)
            time.sleep(0.05)
        session = json.loads(websocket.recv(timeout=30))
        assert session["type"] == "session", session
        session_id = session["session_id"]
        directory = server.data_dir / "sessions" / session_id
        while sum(path.stat().st_size for path in directory.glob("chunk_*.pcm")) < 6 * len(pieces[0]):
            time.sleep(0.05)
        ballast = fill(server.data_dir)
        sent = 6 + sent_until_refused(websocket, pieces[6:])
        messages = live_messages(websocket)
    errors = [message for message in messages if message["type"] == "error"]
    assert len(errors) == 1, messages
    assert_disk_full_error(errors[0])
    assert errors[0]["details"] == {"session_id": session_id}
    done = [message for message in messages if message["type"] == "done"]
    assert done and done[0]["session_id"] == session_id and done[0]["status"] == "processing", messages
    assert websocket.close_code == 1011

    # Whole messages only, every one of those that came before the disk filled.
    kept = b"".join(path.read_bytes() for path in sorted(directory.glob("chunk_*.pcm")))
    assert len(kept) % len(pieces[0]) == 0 and 6 * len(pieces[0]) <= len(kept) <= sent * len(pieces[0])
    assert kept == audio[: len(kept)]
    assert os.listdir(server.data_dir / "incoming") == []

    ballast.unlink()  # space is back: the stream is finished and transcribed again
    finished = server.wait_done(session_id, timeout=300)
    assert finished["status"]["status"] == "done", finished["status"]
    assert finished["duration"] == pytest.approx(len(kept) / SECOND, abs=0.01)
    assert (directory / "original_audio.wav").is_file()
    assert "Traceback" not in server.log_path.read_text(errors="replace"), server.log()


def test_a_cancel_refused_on_a_full_disk_changes_nothing(small_disk, speech_minute):  # noqa: F811
    server = small_disk
    with server.client() as client:
        with open(speech_minute, "rb") as handle:
            session_id = client.post("/transcribe-file", files={"file": ("speech.wav", handle)}).json()["session_id"]
        while journal_length(server, session_id) < 2:  # under way
            time.sleep(0.05)
        ballast = fill(server.data_dir)
        answer = client.post(f"/session/{session_id}/cancel")
        assert answer.status_code == 507, answer.text
        assert answer.json()["error"]["code"] == "insufficient_storage"
        assert not (server.data_dir / "sessions" / session_id / "cancel.requested").exists()
        ballast.unlink()
        finished = server.wait_done(session_id, timeout=300)
    assert finished["status"]["status"] == "done", finished["status"]
