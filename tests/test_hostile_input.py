"""Input an attacker or a broken client sends: every answer is a 4xx in the one error shape, and
nothing already stored changes. Each case here was a 500, a silent overwrite or a wrong answer once."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from urllib.parse import unquote

import pytest
from test_bad_input import assert_error, session_dirs
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import audio_file, make_server, read_pcm

UPLOAD_ROUTES = [("/transcribe-file", "file"), ("/transcribe", "audio"), ("/v1/audio/transcriptions", "file")]


def wav_with_format(tag: int, bits: int) -> bytes:
    """A WAV whose header names a format tag / sample size no decoder knows."""
    data = b"\x01\x02" * 8000
    fmt = struct.pack("<HHIIHH", tag, 1, 16000, 32000, 2, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def flac_claiming(seconds: float, tmp_path: Path) -> bytes:
    """jfk.flac re-encoded, with STREAMINFO's total-samples field claiming `seconds`."""
    import av

    samples = read_pcm(audio_file("jfk.flac"))
    target = tmp_path / "claim.flac"
    with av.open(str(target), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype("<i2").reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(target.read_bytes())
    assert data[:4] == b"fLaC"
    info = 8  # "fLaC" + the metadata block header; STREAMINFO's bytes 13..17 end with the 36-bit sample count
    packed = int.from_bytes(data[info + 13 : info + 18], "big")
    total = int(seconds * 16000)
    packed = (packed & ~((1 << 36) - 1)) | total
    data[info + 13 : info + 18] = packed.to_bytes(5, "big")
    return bytes(data)


def ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/ws/live"


def upload_jfk(client, filename: str = "jfk.flac") -> str:
    response = client.post("/transcribe", files={"audio": (filename, audio_file("jfk.flac").read_bytes())})
    assert response.status_code == 200, response.text
    return response.json()["session_id"]


@pytest.mark.parametrize("tag, bits", [(0x1234, 16), (1, 0), (3, 16)])
@pytest.mark.parametrize("route, field", UPLOAD_ROUTES)
def test_wav_with_unknown_format_becomes_an_error_session(server, route, field, tag, bits):
    payload = wav_with_format(tag, bits)
    with server.client() as client:
        error = assert_error(client.post(route, files={field: ("odd.wav", payload)}), 415, "unsupported_media")
        stored = client.get(f"/session/{error['details']['session_id']}").json()
        assert stored["status"]["status"] == "error"
        assert client.get(f"/session/{stored['id']}/audio").content == payload  # the bytes are kept
    assert os.listdir(server.data_dir / "incoming") == []  # nothing orphaned


@pytest.mark.parametrize("title", ["日本語", "Ελληνικά", 'naïve — “quoted” "name"; x=1'])
def test_exports_and_downloads_of_any_title(server, title):
    with server.client() as client:
        session_id = upload_jfk(client, f"{title.replace(chr(34), '')}.wav")  # a title from the file name
        assert client.get(f"/session/{session_id}").json()["title"] == title.replace('"', "")
        assert client.patch(f"/session/{session_id}", json={"title": title}).json()["title"] == title
        for fmt in ("txt", "srt", "vtt", "json", "tsv"):
            response = client.get(f"/session/{session_id}/export/{fmt}")
            assert response.status_code == 200, response.text
            disposition = response.headers["content-disposition"]
            assert disposition.startswith("attachment;")
            name = unquote(disposition.split("filename*=UTF-8''")[1])
            assert name.endswith(f".{fmt}") and (name == f"{title}.{fmt}" or not title.isalnum())
            disposition.encode("latin-1")  # a header must be Latin-1: the ASCII name stands in for it
        download = client.get(f"/session/{session_id}/audio", params={"download": "true"})
        assert download.status_code == 200 and download.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize("length", [101, 256, 4000])
@pytest.mark.parametrize("route, field", UPLOAD_ROUTES)
def test_long_model_names_are_refused_before_anything_is_stored(server, route, field, length):
    before = session_dirs(server)
    with server.client() as client:
        response = client.post(
            route, data={"model": "m" * length}, files={field: ("a.wav", audio_file("goforward.wav").read_bytes())}
        )
        assert_error(response, 400, "bad_request")
    assert session_dirs(server) == before


@pytest.mark.parametrize("spelling", ["MODEL_DIR", "MODEL_DIR/", "MODEL_DIR/.", "/etc", "/nonexistent/x", "../.."])
def test_paths_are_never_model_names(server, spelling):
    """Every path answers alike (nothing about the server's files leaks) and nothing is loaded or stored."""
    from tapescribe.config import Settings
    from tapescribe.engine.models import resolve_model

    spelling = spelling.replace("MODEL_DIR", str(resolve_model("tiny.en", Settings().models_dir)))
    before = session_dirs(server)
    with server.client() as client:
        error = assert_error(
            client.post(
                "/transcribe-file",
                data={"model": spelling},
                files={"file": ("a.wav", audio_file("goforward.wav").read_bytes())},
            ),
            400,
            "model_unavailable",
        )
        offered = client.get("/models").json()["models"]
    assert error["message"].replace(spelling, "NAME").startswith("Model 'NAME' is not offered by this server")
    assert all("/" not in entry["id"] for entry in offered)
    assert session_dirs(server) == before


@pytest.mark.parametrize(
    "start",
    [
        {"type": "start", "format": "pcm", "language": 5},
        {"type": "start", "format": "pcm", "language": ["en"]},
        {"type": "start", "format": "pcm", "language": {"code": "en"}},
        {"type": "start", "format": "pcm", "model": "m" * 300},
        {"type": "start", "format": "pcm", "model": 7},
        {"type": "start", "format": "pcm", "title": {"x": 1}},
    ],
)
def test_bad_start_fields_get_an_error_message_not_a_dropped_connection(server, start):
    with connect(ws_url(server), open_timeout=30) as websocket:
        websocket.send(json.dumps(start))
        message = json.loads(websocket.recv(timeout=30))
        assert message["type"] == "error" and message["status"] == 400 and message["code"] == "bad_request"
        assert set(message) >= {"status", "code", "message", "details"}
        with pytest.raises(ConnectionClosed):
            websocket.recv(timeout=30)
        assert websocket.close_code == 1008


def test_huge_offsets_and_odd_chunk_indexes_are_4xx(server):
    with server.client() as client:
        assert_error(client.get("/sessions", params={"offset": "9223372036854775808"}), 422, "invalid_request")
        assert_error(client.get("/sessions", params={"offset": str(2**63 - 1)}), 422, "invalid_request")
        for index in ("²", "٣", "1e3", " ", "0x10", "9999999"):
            assert_error(
                client.post(
                    "/transcribe-live",
                    data={"chunk_index": index},
                    files={"audio": ("c.wav", audio_file("goforward.wav").read_bytes())},
                ),
                400,
                "bad_request",
            )


@pytest.mark.parametrize(
    "payload",
    [
        os.urandom(30_000),
        b"\x89PNG\r\n\x1a\n" + os.urandom(2_000),
        b"Just some text, not audio at all.\n" * 50,
        b"\x1a\x45\xdf\xa3" + os.urandom(5_000),  # a webm header magic followed by noise
    ],
)
def test_live_chunks_that_are_not_audio_are_refused(server, payload):
    before = session_dirs(server)
    with server.client() as client:
        error = assert_error(
            client.post("/transcribe-live", data={"chunk_index": "0"}, files={"audio": ("c.webm", payload)}),
            415,
            "unsupported_media",
        )
    assert "not audio" in error["message"]
    assert session_dirs(server) == before


def test_a_chunk_that_adds_no_audio_is_refused_and_the_recording_goes_on(server, tmp_path):
    from conftest import encode_webm_opus

    recording = encode_webm_opus(audio_file("jfk.flac"), tmp_path / "jfk.webm").read_bytes()
    middle = len(recording) // 2
    with server.client() as client:
        first = client.post(
            "/transcribe-live", data={"chunk_index": "0"}, files={"audio": ("c.webm", recording[:middle])}
        )
        assert first.status_code == 200, first.text
        session_id = first.json()["session_id"]
        error = assert_error(
            client.post(
                "/transcribe-live",
                data={"chunk_index": "1", "session_id": session_id},
                files={"audio": ("c.webm", os.urandom(8_000))},
            ),
            415,
            "unsupported_media",
        )
        assert error["details"]["chunk_index"] == 1
        assert not (server.data_dir / "sessions" / session_id / "chunk_1.webm").exists()
        second = client.post(
            "/transcribe-live",
            data={"chunk_index": "1", "session_id": session_id},
            files={"audio": ("c.webm", recording[middle:])},
        )
        assert second.status_code == 200, second.text
        assert "country" in second.json()["text"].lower()


def test_chunks_never_join_a_session_that_transcribe_live_did_not_make(server):
    chunk = audio_file("goforward.wav").read_bytes()
    with server.client() as client:
        upload_id = upload_jfk(client)
        with connect(ws_url(server), open_timeout=30) as websocket:  # a /ws/live session: also source "live"
            websocket.send(json.dumps({"type": "start", "format": "pcm"}))
            json.loads(websocket.recv(timeout=30))
            pcm = (read_pcm(audio_file("goforward.wav")) * 32767).astype("<i2").tobytes()
            websocket.send(pcm)
            websocket.send(json.dumps({"type": "stop"}))
            while (message := json.loads(websocket.recv(timeout=60)))["type"] != "done":
                pass
        stream_id = message["session_id"]
        server.wait_done(stream_id)
        for session_id in (upload_id, stream_id):
            before = client.get(f"/session/{session_id}").json()
            files_before = sorted(os.listdir(server.data_dir / "sessions" / session_id))
            for chunk_index in ("0", "7"):  # the session's first chunk index, and a later one
                answer = client.post(
                    "/transcribe-live",
                    data={"session_id": session_id, "chunk_index": chunk_index},
                    files={"audio": ("c.wav", chunk)},
                )
                assert_error(answer, 409, "conflict")
            after = client.get(f"/session/{session_id}").json()
            assert after["transcription"] == before["transcription"] and after["duration"] == before["duration"]
            assert sorted(os.listdir(server.data_dir / "sessions" / session_id)) == files_before


def test_header_durations_that_cannot_be_true_are_measured(server, tmp_path):
    payload = flac_claiming(1_558_264, tmp_path)
    with server.client() as client:
        response = client.post("/transcribe-file", files={"file": ("claims.flac", payload)})
        assert response.status_code == 202, response.text
        assert response.json()["duration"] == pytest.approx(11.0, abs=0.1)
        body = server.wait_done(response.json()["session_id"])
    assert body["duration"] == pytest.approx(11.0, abs=0.1) and body["status"]["status"] == "done"


def test_a_delete_cut_off_by_a_crash_is_finished_at_start(tmp_path_factory):
    """SIGKILL after the rename that commits a delete (or in the middle of removing the files):
    the restarted server lists no ghost and leaves nothing in data/deleting/."""
    server = make_server(tmp_path_factory, "delete-crash").start()
    try:
        with server.client() as client:
            doomed = [upload_jfk(client) for _ in range(2)]
            kept = upload_jfk(client)
        server.kill()
        deleting = server.data_dir / "deleting"
        for session_id in doomed:  # what a kill leaves: the commit rename done, the files partly removed
            os.replace(server.data_dir / "sessions" / session_id, deleting / session_id)
        (deleting / doomed[1] / "transcription.json").unlink()
        server.start()
        with server.client() as client:
            listed = {row["id"] for row in client.get("/sessions").json()["sessions"]}
            assert listed == {kept}
            for session_id in doomed:
                assert_error(client.get(f"/session/{session_id}"), 404, "not_found")
            assert client.get(f"/session/{kept}").json()["status"]["status"] == "done"
        assert os.listdir(deleting) == []
    finally:
        server.stop()
