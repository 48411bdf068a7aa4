"""The session routes on the real server: listing, search, rename, audio with Range, exports, cancel, retry,
live chunks."""

from __future__ import annotations

import json
import time

import httpx

from conftest import audio_file, make_server


def upload(client: httpx.Client, name: str, **data) -> str:
    with open(audio_file(name), "rb") as handle:
        response = client.post("/transcribe-file", data=data, files={"file": (name, handle)})
    assert response.status_code == 202, response.text
    return response.json()["session_id"]


def test_session_shape_and_files_on_disk(server):
    with server.client() as client:
        session_id = upload(client, "jfk.flac")
        body = server.wait_done(session_id)
    assert body["id"] == session_id
    assert body["title"] == "jfk" and body["source"] == "upload" and body["original_filename"] == "jfk.flac"
    assert body["duration"] == 11.0 and body["model"] == "tiny.en" and body["language"] == "en"
    assert body["status"]["status"] == "done" and body["status"]["progress"] == 1.0
    segments = body["transcription"]["segments"]
    assert segments and {"start", "end", "text"} <= set(segments[0])
    assert "ask not what your country can do for you" in body["transcription"]["text"].lower().replace(",", "")
    directory = server.data_dir / "sessions" / session_id
    assert (directory / "original_audio.flac").read_bytes() == audio_file("jfk.flac").read_bytes()
    for name in ("session.json", "status.json", "transcription.json"):
        json.loads((directory / name).read_text())
    assert body["size_bytes"] >= audio_file("jfk.flac").stat().st_size


def test_listing_is_newest_first_paginated_with_sizes(server):
    with server.client() as client:
        ids = [upload(client, "goforward.wav") for _ in range(3)]
        for session_id in ids:
            server.wait_done(session_id)
        first = client.get("/sessions", params={"limit": 2}).json()
        second = client.get("/sessions", params={"limit": 2, "offset": 2}).json()
        storage = client.get("/storage").json()
    assert [row["id"] for row in first["sessions"]] == ids[::-1][:2]
    assert second["sessions"][0]["id"] == ids[0]
    assert first["total"] == second["total"] == storage["session_count"] >= 3
    assert all(row["size_bytes"] > 0 for row in first["sessions"])
    assert storage["total_bytes"] >= sum(row["size_bytes"] for row in first["sessions"])


def test_search_finds_segments_with_times(server):
    with server.client() as client:
        session_id = upload(client, "61-70968-0000.flac")
        server.wait_done(session_id)
        listed = client.get("/sessions", params={"q": "wizard"}).json()
        assert session_id in [row["id"] for row in listed["sessions"]]
        results = client.get("/search", params={"q": "wizard"}).json()["results"]
        hit = next(result for result in results if result["id"] == session_id)
        assert "wizard" in hit["segments"][0]["text"].lower()
        assert 0 <= hit["segments"][0]["start"] < 5
        assert client.get("/search", params={"q": "confus*"}).json()["results"]
        assert client.get("/search", params={"q": '"behind the curtain"'}).json()["results"]
        # Operators and stray quotes are plain text, never a server error.
        assert client.get("/search", params={"q": 'AND OR "NEAR( ) *'}).status_code == 200
        assert client.get("/search", params={"q": "zebracrossingword"}).json()["results"] == []


def test_rename(server):
    with server.client() as client:
        session_id = upload(client, "goforward.wav")
        server.wait_done(session_id)
        assert client.patch(f"/session/{session_id}", json={"title": "Directions"}).json()["title"] == "Directions"
        assert client.get(f"/session/{session_id}").json()["title"] == "Directions"
        rows = client.get("/sessions", params={"q": "Directions"}).json()["sessions"]
        assert session_id in [row["id"] for row in rows]
        assert client.patch(f"/session/{session_id}", json={"title": "  "}).status_code == 400


def test_audio_supports_range_requests(server):
    original = audio_file("jfk.flac").read_bytes()
    with server.client() as client:
        session_id = upload(client, "jfk.flac")
        whole = client.get(f"/session/{session_id}/audio")
        assert whole.status_code == 200 and whole.content == original
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-type"] == "audio/flac"
        part = client.get(f"/session/{session_id}/audio", headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206
        assert part.content == original[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(original)}"
        server.wait_done(session_id)


def test_exports(server):
    with server.client() as client:
        session_id = upload(client, "jfk.flac")
        server.wait_done(session_id)
        srt = client.get(f"/session/{session_id}/export/srt")
        assert srt.status_code == 200 and "-->" in srt.text and srt.text.startswith("1\n00:00:00,")
        assert client.get(f"/session/{session_id}/export/vtt").text.startswith("WEBVTT")
        assert "country" in client.get(f"/session/{session_id}/export/txt").text
        assert client.get(f"/session/{session_id}/export/tsv").text.startswith("start\tend\ttext")
        assert json.loads(client.get(f"/session/{session_id}/export/json").text)["segments"]
        assert client.get(f"/session/{session_id}/export/docx").status_code == 400


def test_live_chunk_repeat_is_idempotent_and_conflict_keeps_audio(server):
    data = audio_file("goforward.wav").read_bytes()
    with server.client() as client:
        first = client.post("/transcribe-live", data={"chunk_index": "0"}, files={"audio": ("c.wav", data)})
        assert first.status_code == 200
        session_id = first.json()["session_id"]
        assert "forward" in first.json()["text"].lower()
        again = client.post(
            "/transcribe-live", data={"chunk_index": "0", "session_id": session_id}, files={"audio": ("c.wav", data)}
        )
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert again.json()["text"] == first.json()["text"]
        clash = client.post(
            "/transcribe-live",
            data={"chunk_index": "0", "session_id": session_id},
            files={"audio": ("c.wav", data[:-1000])},
        )
        assert clash.status_code == 409 and clash.json()["error"]["code"] == "conflict"
        assert (server.data_dir / "sessions" / session_id / "chunk_0.webm").read_bytes() == data
        listed = client.get(f"/session/{session_id}").json()
        assert listed["source"] == "live" and listed["chunks"] == 1
        bad_index = client.post(
            "/transcribe-live", data={"chunk_index": "-3", "session_id": session_id}, files={"audio": ("c.wav", data)}
        )
        assert bad_index.status_code == 400


def test_events_stream_status_and_segments(server):
    with server.client() as client:
        session_id = upload(client, "jfk.flac")
        events, segments = [], []
        with client.stream("GET", f"/session/{session_id}/events") as stream:
            name = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    payload = json.loads(line[6:])
                    events.append((name, payload))
                    if name == "segments":
                        segments[payload["from"] :] = payload["segments"]
    statuses = [payload["status"] for name, payload in events if name == "status"]
    assert statuses[-1] == "done"
    assert "".join(s["text"] for s in segments).strip() == server.wait_done(session_id)["transcription"]["text"]


def test_cancel_and_retry_resume(tmp_path_factory, long_recording):
    path, _ = long_recording
    running = make_server(tmp_path_factory, "cancel", TAPESCRIBE_WINDOW_SECONDS=60).start()
    try:
        with running.client() as client:
            with open(path, "rb") as handle:
                session_id = client.post("/transcribe-file", files={"file": ("long.wav", handle)}).json()["session_id"]
            deadline = time.monotonic() + 60
            while client.get(f"/session/{session_id}").json()["status"]["status"] != "processing":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(1.5)
            assert client.post(f"/session/{session_id}/cancel").json()["status"] == "cancelled"
            time.sleep(1.5)
            cancelled = client.get(f"/session/{session_id}").json()
            assert cancelled["status"]["status"] == "cancelled"
            assert client.post(f"/session/{session_id}/cancel").status_code == 409
            kept = len(cancelled["transcription"]["segments"]) if cancelled["transcription"] else 0
            assert client.post(f"/session/{session_id}/retry").status_code == 202
            done = running.wait_done(session_id)
            assert done["status"]["status"] == "done"
            assert done["status"]["runs"][-1]["saved_segments"] >= kept
            assert client.post(f"/session/{session_id}/retry").status_code == 409
    finally:
        running.stop()
