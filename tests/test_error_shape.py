"""The one error shape on every transport: an HTTP body, a /ws/live message and a server-sent event
carry the same fields for the same kind of failure ({"status", "code", "message", "details"}).
HTTP bodies alone are pinned by test_bad_input.assert_error, which every error test there uses."""

from __future__ import annotations

import json
import shutil

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import audio_file, make_server

FIELDS = {"status", "code", "message", "details"}


@pytest.fixture(scope="module")
def broken_model_server(tmp_path_factory):
    """A server offering a model directory whose weights are broken: its jobs fail after the upload."""
    from tapescribe.config import Settings
    from tapescribe.engine.models import resolve_model

    broken = tmp_path_factory.mktemp("models") / "broken"
    broken.mkdir()
    shutil.copyfile(resolve_model("tiny.en", Settings().models_dir) / "config.json", broken / "config.json")
    (broken / "model.bin").write_bytes(b"not a model")
    server = make_server(
        tmp_path_factory, "broken-model", TAPESCRIBE_MODELS=json.dumps({"broken": str(broken)})
    ).start()
    yield server
    server.stop()


def test_a_failed_job_is_the_same_error_over_http_and_server_sent_events(broken_model_server):
    upload = {"file": ("jfk.flac", audio_file("jfk.flac").read_bytes())}
    with broken_model_server.client() as client:
        answered = client.post("/v1/audio/transcriptions", data={"model": "broken"}, files=upload)
        assert answered.status_code == 422
        http_error = answered.json()["error"]
        with client.stream(
            "POST", "/v1/audio/transcriptions", data={"model": "broken", "stream": "true"}, files=upload
        ) as streamed:
            assert streamed.status_code == 200
            events = [json.loads(line[len("data: ") :]) for line in streamed.iter_lines() if line.startswith("data: ")]
    sse_error = events[-1]["error"]
    for error in (http_error, sse_error):
        assert set(error) == FIELDS and error["status"] == 422 and error["code"] == "transcription_failed"
        assert error["details"]["session_id"] and error["message"]
    assert http_error["message"] == sse_error["message"]
    assert {key: value for key, value in http_error.items() if key != "details"} == {
        key: value for key, value in sse_error.items() if key != "details"
    }


def test_an_error_raised_inside_a_live_stream_has_the_shape_too(server):
    """The decoder thread finds the webm broken: the message carries status and details like HTTP's."""
    url = server.url.replace("http://", "ws://") + "/ws/live"
    with connect(url, open_timeout=30) as websocket:
        websocket.send(json.dumps({"type": "start", "format": "webm"}))
        assert json.loads(websocket.recv(timeout=30))["type"] == "ready"
        # A webm header's magic, then text: the decoder cannot read it. The stop makes the end of the
        # input certain (random bytes could look like an element the demuxer waits to read in full).
        websocket.send(b"\x1a\x45\xdf\xa3" + b"not a webm recording. " * 900)
        websocket.send(json.dumps({"type": "stop"}))
        messages = []
        with pytest.raises(ConnectionClosed):  # the server says what went wrong, then closes
            while True:
                messages.append(json.loads(websocket.recv(timeout=60)))
    (error,) = [message for message in messages if message["type"] == "error"]
    assert error["type"] == "error" and set(error) == FIELDS | {"type"}
    assert error["status"] == 415 and error["code"] == "unsupported_media"
    assert websocket.close_code == 1003
