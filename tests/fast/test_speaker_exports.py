"""Exports of a transcript with speakers: every format names them, and parses as players read it."""

from __future__ import annotations

import json

import srt
import webvtt

from tapescribe.sessions.exports import render

TRANSCRIPTION = {
    "text": "Good morning. Morning to you. How are you?",
    "speakers": ["S1", "S2"],
    "segments": [
        {"id": 0, "start": 0.0, "end": 1.5, "text": " Good morning.", "speaker": "S1"},
        {"id": 1, "start": 1.8, "end": 3.0, "text": " Morning to you.", "speaker": "S2"},
        {"id": 2, "start": 3.1, "end": 4.0, "text": " How are you?", "speaker": "S2"},
    ],
}
SESSION = {"id": "x", "title": "Talk", "speaker_names": {"S1": "Ada <Lovelace> & co"}}


def test_vtt_puts_each_cue_in_a_voice_span_that_webvtt_reads():
    captions = webvtt.from_string(render(TRANSCRIPTION, "vtt", SESSION)).captions
    assert [caption.voice for caption in captions] == ["Ada &lt;Lovelace&gt; &amp; co", "Speaker 2", "Speaker 2"]
    assert [caption.text for caption in captions] == ["Good morning.", "Morning to you.", "How are you?"]


def test_srt_prefixes_the_name_and_parses():
    subtitles = list(srt.parse(render(TRANSCRIPTION, "srt", SESSION)))
    assert [s.content for s in subtitles] == [
        "Ada <Lovelace> & co: Good morning.",
        "Speaker 2: Morning to you.",
        "Speaker 2: How are you?",
    ]


def test_txt_has_a_paragraph_per_change_of_speaker():
    assert render(TRANSCRIPTION, "txt", SESSION) == (
        "Ada <Lovelace> & co: Good morning.\n\nSpeaker 2: Morning to you. How are you?\n"
    )


def test_json_and_tsv_carry_the_speakers():
    body = json.loads(render(TRANSCRIPTION, "json", SESSION))
    assert [segment["speaker"] for segment in body["segments"]] == ["S1", "S2", "S2"]
    assert body["speaker_names"] == {"S1": "Ada <Lovelace> & co", "S2": "Speaker 2"}
    rows = render(TRANSCRIPTION, "tsv", SESSION).splitlines()
    assert rows[0] == "start\tend\tspeaker\ttext" and rows[2] == "1800\t3000\tSpeaker 2\tMorning to you."


def test_without_speakers_the_exports_are_as_before():
    plain = {**TRANSCRIPTION, "speakers": None, "segments": [{**s, "speaker": None} for s in TRANSCRIPTION["segments"]]}
    plain.pop("speakers")
    assert render(plain, "txt", SESSION) == "Good morning. Morning to you. How are you?\n"
    assert all(caption.voice is None for caption in webvtt.from_string(render(plain, "vtt", SESSION)).captions)
    assert render(plain, "tsv", SESSION).splitlines()[0] == "start\tend\ttext"
