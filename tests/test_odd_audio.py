"""Real speech in forms that once ended a session "done" with an empty transcript: more channels than
FFmpeg's mix-down takes, and a header claiming an absurd sample rate. Every way in (page upload,
/transcribe, /v1, /ws/live and its second pass) either transcribes the speech or ends in error
saying why; a decode error is never "done, empty"."""

from __future__ import annotations

import json
import os
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from test_bad_input import assert_error
from test_hostile_input import UPLOAD_ROUTES
from websockets.sync.client import connect

from conftest import audio_file, read_pcm, reference_text, wer

JFK = reference_text("jfk.flac")


def jfk_s16() -> np.ndarray:
    return (np.clip(read_pcm(audio_file("jfk.flac")), -1, 1) * 32767).astype("<i2")


def wav_bytes(path: Path, frames: np.ndarray, rate: int) -> bytes:
    """A 16-bit WAV of `frames` (samples, channels), its header saying `rate`."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.ascontiguousarray(frames).tobytes())
    return path.read_bytes()


def many_channels(tmp_path: Path, channels: int) -> bytes:
    """JFK on every channel, each at its own level (as a microphone array hears one speaker)."""
    speech = jfk_s16()
    gains = np.linspace(1.0, 0.5, channels)
    frames = (speech[:, None] * gains[None, :]).astype("<i2")
    return wav_bytes(tmp_path / f"{channels}ch.wav", frames, 16000)


def transcript_via(client, server, route: str, field: str, payload: bytes) -> tuple[str, dict]:
    """(text, session) of `payload` sent to `route` and transcribed to the end."""
    response = client.post(route, files={field: ("many.wav", payload)})
    assert response.status_code in (200, 202), response.text
    if route == "/v1/audio/transcriptions":
        session_id = response.headers["X-Tapescribe-Session"]
    else:
        session_id = response.json()["session_id"]
    session = server.wait_done(session_id)
    if route == "/v1/audio/transcriptions":
        assert response.json()["text"] == session["transcription"]["text"]
    return session["transcription"]["text"], session


@pytest.mark.parametrize(
    "channels, route, field",
    [(9, *UPLOAD_ROUTES[0]), (17, *UPLOAD_ROUTES[1]), (32, *UPLOAD_ROUTES[2]), (9, *UPLOAD_ROUTES[1])],
)
def test_wavs_with_many_channels_are_mixed_down(server, tmp_path, channels, route, field):
    payload = many_channels(tmp_path, channels)
    with server.client() as client:
        text, session = transcript_via(client, server, route, field, payload)
    assert session["status"]["status"] == "done", session["status"]
    assert session["duration"] == pytest.approx(11.0, abs=0.05)
    assert wer([JFK], [text]) <= 10.0, text


def test_a_live_stream_of_many_channels_is_mixed_down(server, tmp_path):
    """Chrome records `audio/webm;codecs=pcm` from a many-channel interface as Matroska with float PCM.
    The live decoder and the second pass both mix it down."""
    speech = read_pcm(audio_file("jfk.flac")).astype(np.float32)
    target = tmp_path / "9ch.webm"
    with av.open(str(target), "w", format="matroska") as container:
        stream = container.add_stream("pcm_f32le", rate=16000)
        stream.layout = "9 channels"
        for start in range(0, len(speech), 1600):
            piece = speech[start : start + 1600]
            frame = av.AudioFrame.from_ndarray(
                np.repeat(piece[:, None], 9, axis=1).reshape(1, -1), format="flt", layout="9 channels"
            )
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = target.read_bytes()
    messages = []
    url = server.url.replace("http://", "ws://") + "/ws/live"
    with connect(url, max_size=None, open_timeout=30, close_timeout=5) as websocket:
        websocket.send(json.dumps({"type": "start", "format": "webm"}))
        assert json.loads(websocket.recv(timeout=30))["type"] == "ready"
        for start in range(0, len(data), 64_000):
            websocket.send(data[start : start + 64_000])
        websocket.send(json.dumps({"type": "stop"}))
        while (message := json.loads(websocket.recv(timeout=180)))["type"] not in ("done", "error"):
            messages.append(message)
    assert message["type"] == "done", (message, messages)
    assert wer([JFK], [message["text"]]) <= 25.0, message  # the live draft
    session = server.wait_done(message["session_id"])  # the second pass over the whole recording
    assert session["status"]["status"] == "done", session["status"]
    assert wer([JFK], [session["transcription"]["text"]]) <= 10.0, session["transcription"]


@pytest.mark.parametrize("rate", [1, 800_000])
@pytest.mark.parametrize("route, field", UPLOAD_ROUTES)
def test_an_absurd_sample_rate_is_refused_at_once_and_kept(server, tmp_path, route, field, rate):
    """415 as for any upload that is not audio this server decodes (422 is for a transcription that ran
    and failed); the session is kept in error with the bytes, as every undecodable upload is."""
    payload = wav_bytes(tmp_path / "forged.wav", jfk_s16()[:71_424, None], rate)  # 142,892 bytes, as reported
    started = time.monotonic()
    with server.client() as client:
        error = assert_error(client.post(route, files={field: ("forged.wav", payload)}), 415, "unsupported_media")
        assert time.monotonic() - started < 30  # it was 202 after decoding 71,424 s, then 227 s of CPU
        assert f"{rate} Hz" in error["message"] and error["details"]["sample_rate"] == rate
        stored = client.get(f"/session/{error['details']['session_id']}").json()
        assert stored["status"]["status"] == "error" and stored["status"]["message"] == error["message"]
        assert client.get(f"/session/{stored['id']}/audio").content == payload
    assert os.listdir(server.data_dir / "incoming") == []


def flac_with_hours_of_silence(path: Path, hours: float) -> bytes:
    """JFK, then `hours` of digital silence in FLAC's largest frames: about 26 bytes a second, below
    what any real recording is stored at (the duration in its header is the true one)."""
    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=16000)
        stream.layout = "mono"
        stream.codec_context.options = {"frame_size": "65535"}

        def put(samples: np.ndarray) -> None:
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)

        put(jfk_s16())
        for _ in range(int(hours * 6)):
            put(np.zeros(16000 * 600, dtype="<i2"))
        for packet in stream.encode(None):
            container.mux(packet)
    return path.read_bytes()


def test_audio_longer_than_its_bytes_can_hold_is_refused_and_kept(server, tmp_path):
    """Decoding to measure stops where the bytes (at 32 B/s) run out; it used to measure all of it and
    queue hours of silence."""
    payload = flac_with_hours_of_silence(tmp_path / "long.flac", 3)
    assert len(payload) / (3 * 3600 + 11) < 32
    started = time.monotonic()
    with server.client() as client:
        error = assert_error(
            client.post("/transcribe-file", files={"file": ("long.flac", payload)}), 415, "unsupported_media"
        )
        assert time.monotonic() - started < 30
        assert "more than its" in error["message"] and error["details"]["size"] == len(payload)
        stored = client.get(f"/session/{error['details']['session_id']}").json()
        assert stored["status"]["status"] == "error" and stored["status"]["message"] == error["message"]
        assert client.get(f"/session/{stored['id']}/audio").content == payload


def test_a_live_recording_that_holds_no_audio_ends_in_error(server, tmp_path):
    """A stream of a container header and no samples: its second pass decoded nothing and said "done"
    with an empty transcript. Decoding nothing is an error on every way in, whatever the cause."""
    header = wav_bytes(tmp_path / "empty.wav", np.zeros((0, 1), dtype="<i2"), 16000)
    url = server.url.replace("http://", "ws://") + "/ws/live"
    with connect(url, max_size=None, open_timeout=30, close_timeout=5) as websocket:
        websocket.send(json.dumps({"type": "start", "format": "webm"}))
        assert json.loads(websocket.recv(timeout=30))["type"] == "ready"
        websocket.send(header)
        websocket.send(json.dumps({"type": "stop"}))
        while (message := json.loads(websocket.recv(timeout=180)))["type"] not in ("done", "error"):
            pass
    session_id = message.get("session_id") or message["details"]["session_id"]
    session = server.wait_done(session_id)
    assert session["status"]["status"] == "error", session["status"]
    assert "no sound that could be decoded" in session["status"]["message"]
    assert (server.data_dir / "sessions" / session_id / "original_audio.webm").read_bytes() == header
