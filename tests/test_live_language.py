"""Live captions in the language spoken: with no model or language, a /ws/live stream hears its first
seconds of speech, says which language and model it chose (a `language` message), and captions with
a model that speaks it: tiny.en for English, the multilingual base otherwise. Real server, real models,
real recorded speech."""

from __future__ import annotations

import json

import pytest
from test_languages import error_rate
from test_live_ws import frames, pcm_bytes, slices, stream, versions, ws_url
from websockets.sync.client import connect

from conftest import audio_file, encode_webm_opus, read_pcm, reference_text

# The Spanish clip is one sentence of 12 words, so one word is 8.3 points. Base run directly with
# faster-whisper's defaults gets it within a word or two ("tienen", "resistencia"); live captions
# decode it in pieces as it comes (here at twice real time), and the pieces follow the machine's
# load: alone they differed by one word, beside another test file on 2 cores by three once (25%:
# "blancasinas de gran medio ... asistencia"). tiny.en writing English over it got 90% and more,
# so four words apart still tells Spanish captions from English ones.
LIVE_WORDS_MARGIN = 4


@pytest.fixture(scope="module")
def base_library_rate(server):
    """Base's word error rate on the Spanish clip, run directly with faster-whisper's defaults."""

    def rate() -> float:
        from faster_whisper import WhisperModel

        model = WhisperModel(str(server.data_dir / "models" / "base"))  # joined by the server for detection
        segments, _ = model.transcribe(str(audio_file("leopard_test_es.wav")))
        text = "".join(segment.text for segment in segments)
        return error_rate("es", reference_text("leopard_test_es.wav"), text)

    return rate


def test_spanish_with_auto_is_captioned_in_spanish_by_base(server, base_library_rate):
    samples = read_pcm(audio_file("leopard_test_es.wav"))
    run = stream(server, "pcm", frames(pcm_bytes(samples)), interval=0.05)  # 2x real time

    assert run.messages[0]["model"] == "auto", run.messages[0]  # ready: not chosen yet
    chosen = run.of("language")
    assert len(chosen) == 1, run.messages
    assert chosen[0]["language"] == "es" and chosen[0]["model"] == "base", chosen[0]
    assert chosen[0]["reason"].startswith("detected Spanish") and chosen[0]["probability"] > 0.5
    kinds = [message["type"] for message in run.messages]
    # Nothing is captioned before the language is known: no English guesses to take back.
    assert all(kind not in ("partial", "final") for kind in kinds[: kinds.index("language")]), kinds

    reference = reference_text("leopard_test_es.wav")
    live_rate, library_rate = error_rate("es", reference, run.final_text), base_library_rate()
    one_word = 100.0 / len(reference.split())
    print(f"\nSpanish live with auto: {live_rate:.1f}% WER, base offline {library_rate:.1f}%: {run.final_text!r}")
    assert live_rate <= library_rate + LIVE_WORDS_MARGIN * one_word + 0.01, run.final_text

    session = server.wait_done(run.session_id, timeout=300)
    assert session["status"]["status"] == "done" and session["transcription"]["language"] == "es"
    draft = [version for version in versions(server, run.session_id) if version["label"] == "live-draft"]
    with server.client() as client:
        kept = client.get(f"/session/{run.session_id}/versions/{draft[0]['number']}").json()["transcription"]
    assert (kept["model"], kept["language"]) == ("base", "es"), kept  # the draft says who wrote it


def test_english_with_auto_is_still_captioned_by_tiny_en(server, tmp_path):
    webm = encode_webm_opus(audio_file("jfk.flac"), tmp_path / "jfk.webm")
    run = stream(server, "webm", slices(webm.read_bytes(), 22), interval=0.25)  # 2x real time
    chosen = run.of("language")
    assert len(chosen) == 1 and (chosen[0]["language"], chosen[0]["model"]) == ("en", "tiny.en"), run.messages
    assert "what your country can do for you" in run.final_text.lower(), run.final_text
    session = server.wait_done(run.session_id)
    assert session["status"]["status"] == "done"


def test_a_requested_model_is_used_at_once_without_a_language_message(server):
    with connect(ws_url(server), open_timeout=30) as websocket:
        websocket.send(json.dumps({"type": "start", "format": "pcm", "model": "tiny.en"}))
        ready = json.loads(websocket.recv(timeout=30))
        for frame in frames(pcm_bytes(read_pcm(audio_file("jfk.flac"))[: 16000 * 3])):
            websocket.send(frame)
        websocket.send(json.dumps({"type": "stop"}))
        messages = [json.loads(websocket.recv(timeout=120))]
        while messages[-1]["type"] not in ("done", "error"):
            messages.append(json.loads(websocket.recv(timeout=120)))
    assert ready["model"] == "tiny.en" and messages[-1]["type"] == "done", (ready, messages)
    assert not [message for message in messages if message["type"] == "language"], messages
