"""Faults inside a live stream and around a job, in-process on the real app (FastAPI's test client
drives the real `/ws/live` handler) with the real tiny.en model and real recorded speech:

- a live step that fails (a library error) loses none of the stream's audio: no `error` ends the
  stream, later steps still caption, and the recording holds every byte sent;
- numpy's lazily imported submodules, which decoding threads once raced into a RecursionError,
  are imported when the engine is;
- a start message nested too deep to read is a bad request, not a dropped connection;
- a job whose session the user deletes under it ends quietly (no traceback for the queue to log);
- a real server writes nothing under the home directory (onnxruntime's telemetry is off).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import wave

import pytest
from fastapi.testclient import TestClient
from test_live_ws import FRAME_BYTES, frames, pcm_bytes, ws_url
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import Server, audio_file, read_pcm
from tapescribe.app import create_app
from tapescribe.config import Settings
from tapescribe.engine.streaming import StreamingTranscriber
from tapescribe.sessions import files
from tapescribe.sessions.service import QUEUED
from tapescribe.sessions.store import SessionStore

SPEECH = "sense_and_sensibility_01_austen_64kb-0870.wav"
WS_URL = "ws://127.0.0.1/ws/live"  # the test client's default host, testserver, is not served


@pytest.fixture
def app_client(tmp_path):
    """The real app on a tmp data directory, without its lifespan (no queue workers: the second pass
    is not run; the SQLite index stays in this thread)."""
    app = create_app(Settings(data_dir=tmp_path / "data", model="tiny.en", workers=0))
    try:
        yield app, TestClient(app, base_url="http://127.0.0.1")
    finally:
        app.state.runtime.sessions.index.close()


def live(client, first: dict | str, pieces: list[bytes], interval: float = 0.0) -> list[dict]:
    """A stream: the start message, the pieces (`interval` s apart), a stop; every message until `done`."""
    messages = []
    with client.websocket_connect(WS_URL) as websocket:
        websocket.send_text(first if isinstance(first, str) else json.dumps(first))
        messages.append(websocket.receive_json())
        if messages[0]["type"] == "error":
            return messages
        for piece in pieces:
            websocket.send_bytes(piece)
            time.sleep(interval)
        websocket.send_text(json.dumps({"type": "stop"}))
        while messages[-1]["type"] != "done":
            messages.append(websocket.receive_json())
    return messages


def test_a_failing_live_step_loses_none_of_the_streams_audio(app_client, monkeypatch):
    app, client = app_client
    real_step = StreamingTranscriber.step
    calls = []

    def step_failing_once(self):
        calls.append(len(calls))
        if len(calls) == 2:  # as numpy's lazy import did once, during 30 uploads and 5 streams
            raise RecursionError("maximum recursion depth exceeded")
        return real_step(self)

    monkeypatch.setattr(StreamingTranscriber, "step", step_failing_once)
    audio = pcm_bytes(read_pcm(audio_file(SPEECH)))
    sent = frames(audio, FRAME_BYTES * 5)  # half-second messages, at twice the pace they are spoken
    messages = live(client, {"type": "start", "format": "pcm", "language": "en"}, sent, interval=0.25)

    kinds = [message["type"] for message in messages]
    assert "error" not in kinds, messages
    assert len(calls) > 2, "the stream stepped on after the failed step"
    done = messages[-1]
    assert done["status"] == QUEUED, done
    assert done["duration"] == pytest.approx(len(audio) / 32000, abs=0.01)
    assert "".join(message["text"] for message in messages if message["type"] == "final").strip()

    session_dir = app.state.runtime.sessions.store.dir(done["session_id"])
    chunks = sorted(session_dir.glob("chunk_*.pcm"))
    assert b"".join(path.read_bytes() for path in chunks) == audio  # every byte sent is kept
    with wave.open(str(session_dir / "original_audio.wav")) as recording:
        assert recording.readframes(recording.getnframes()) == audio


def test_a_live_stream_whose_steps_keep_failing_still_keeps_its_recording(app_client, monkeypatch):
    app, client = app_client

    def always_failing(self):
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(StreamingTranscriber, "step", always_failing)
    monkeypatch.setattr(StreamingTranscriber, "finish", always_failing)
    audio = pcm_bytes(read_pcm(audio_file("jfk.flac")))
    messages = live(client, {"type": "start", "format": "pcm"}, frames(audio, FRAME_BYTES * 5))
    assert [message["type"] for message in messages] == ["ready", "session", "done"], messages
    assert messages[-1]["status"] == QUEUED  # the second pass makes the transcript
    session_dir = app.state.runtime.sessions.store.dir(messages[-1]["session_id"])
    with wave.open(str(session_dir / "original_audio.wav")) as recording:
        assert recording.readframes(recording.getnframes()) == audio


def test_numpy_submodules_are_imported_with_the_engine():
    """np.median (word timestamps) reaches np.ma and the features np.fft through numpy's lazy
    `__getattr__`: imported at start, no decoding thread imports them."""
    code = (
        "import sys; import tapescribe.engine.streaming, tapescribe.engine.transcriber; "
        "print(sorted(name for name in ('numpy.ma', 'numpy.fft') if name in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "['numpy.fft', 'numpy.ma']", found.stderr


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_a_start_message_nested_too_deep_is_a_bad_request(server, depth):
    with server.client() as client:
        before = client.get("/sessions").json()["total"]
    nested = '{"type": "start", "format": "pcm", "title": ' + "[" * depth + "]" * depth + "}"
    with connect(ws_url(server), open_timeout=30, max_size=None) as websocket:
        websocket.send(nested)
        message = json.loads(websocket.recv(timeout=30))
        with pytest.raises(ConnectionClosed):
            websocket.recv(timeout=10)
    assert (message["type"], message["status"], message["code"]) == ("error", 400, "bad_request"), message
    assert websocket.close_code == 1008
    with server.client() as client:
        assert client.get("/sessions").json()["total"] == before
    assert os.listdir(server.data_dir / "incoming") == []


def test_a_job_whose_session_is_deleted_under_it_ends_quietly(app_client, monkeypatch):
    """A retry and a delete 2 ms apart: the delete's rename may land between a check that the session
    exists and the file operation after it. Here it lands there every time."""
    app, client = app_client
    runtime = app.state.runtime
    with open(audio_file("jfk.flac"), "rb") as handle:
        session_id = client.post("/transcribe-file", files={"file": ("jfk.flac", handle)}).json()["session_id"]
    real_dir = SessionStore.dir
    deletes = []

    def dir_then_deleted(store, wanted):
        path = real_dir(store, wanted)
        if wanted == session_id and not deletes:
            deletes.append(wanted)
            runtime.sessions.delete(wanted)  # the user's delete, right after the check
        return path

    monkeypatch.setattr(SessionStore, "dir", dir_then_deleted)
    assert runtime.transcription.run(session_id) == "deleted"
    monkeypatch.undo()
    assert deletes == [session_id] and not runtime.sessions.store.exists(session_id)
    assert client.get(f"/session/{session_id}").status_code == 404


def test_retry_racing_a_delete_is_not_found(app_client, monkeypatch):
    """The delete lands between the retry's check that the session exists and its status write."""
    app, client = app_client
    runtime = app.state.runtime
    with open(audio_file("jfk.flac"), "rb") as handle:
        session_id = client.post("/transcribe-file", files={"file": ("jfk.flac", handle)}).json()["session_id"]
    assert client.post(f"/session/{session_id}/cancel").status_code == 200
    real_write = files.write_json_atomic

    def deleted_first(path, data, fence=None):
        if path.parent.name == session_id and data.get("status") == QUEUED:
            runtime.sessions.delete(session_id)
        return real_write(path, data, fence)

    monkeypatch.setattr(files, "write_json_atomic", deleted_first)
    answer = client.post(f"/session/{session_id}/retry")
    assert answer.status_code == 404, answer.text
    assert set(answer.json()["error"]) == {"status", "code", "message", "details"}
    assert client.delete(f"/session/{session_id}").status_code == 404


def test_the_server_writes_nothing_under_the_home_directory(tmp_path):
    """onnxruntime (faster-whisper's VAD) keeps a telemetry id and event store under ~/.cache/Microsoft/."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "tmp").mkdir()
    env = {"HOME": str(home), "TAPESCRIBE_MODEL": "tiny.en"}
    env = {**env, "XDG_CACHE_HOME": ""} if "XDG_CACHE_HOME" in os.environ else env
    server = Server(data_dir=tmp_path / "data", tmp_dir=tmp_path / "tmp", env=env).start()
    try:
        with server.client() as client, open(audio_file("jfk.flac"), "rb") as handle:
            session_id = client.post("/transcribe-file", files={"file": ("jfk.flac", handle)}).json()["session_id"]
            assert server.wait_done(session_id)["status"]["status"] == "done"
    finally:
        server.stop()
    assert [str(path.relative_to(home)) for path in home.rglob("*")] == []
    assert list((tmp_path / "tmp").iterdir()) == []
