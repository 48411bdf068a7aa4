"""Typed records (engine/records.py, sessions/statuses.Status) write the files clients and old sessions
read exactly as the dicts they replace did: the same keys, in the same order, the same values."""

from __future__ import annotations

import json

from tapescribe.engine.agreement import Word as LiveWord
from tapescribe.engine.records import Segment, Transcript, Word
from tapescribe.jobs.journal import build_transcription
from tapescribe.live.messages import draft_transcription
from tapescribe.sessions.statuses import DONE, Status, status_record

JOURNALED = {
    "window_start": 0.0,
    "start": 0.32,
    "end": 2.5,
    "text": " And so my fellow Americans,",
    "tokens": [50364, 400, 370],
    "seek": 0,
    "temperature": 0.0,
    "compression_ratio": 1.2,
    "avg_logprob": -0.21,
    "no_speech_prob": 0.01,
    "feature_ceiling": 1.5,
    "words": [{"start": 0.32, "end": 0.6, "word": " And", "probability": 0.9}],
}


def test_a_job_transcript_is_the_dict_it_always_was():
    session = {"language": "en", "language_probability": 0.98, "model": "tiny.en"}
    second = {**JOURNALED, "start": 2.5, "end": 4.0, "text": " ask not.", "words": []}
    transcript = build_transcription(session, [JOURNALED, second], True)
    assert isinstance(transcript, Transcript)
    before = {  # what jobs/journal.py built as a dict
        "text": "And so my fellow Americans, ask not.",
        "language": "en",
        "language_probability": 0.98,
        "model": "tiny.en",
        "complete": True,
        "segments": [
            {"id": number, **{k: v for k, v in record.items() if k not in ("tokens", "feature_ceiling")}}
            for number, record in enumerate([JOURNALED, second])
        ],
    }
    assert json.dumps(transcript.to_dict()) == json.dumps(before)  # key order included
    first = transcript.segments[0]
    assert (first.start, first.end, first.text) == (0.32, 2.5, " And so my fellow Americans,")
    assert first.words == [Word(0.32, 0.6, " And", 0.9)]
    assert Segment.from_dict(first.to_dict()) == first


def test_a_live_draft_is_the_dict_it_always_was():
    words = [LiveWord(0.3, 0.6, " Hello", 0.9, starts_segment=True), LiveWord(0.6, 1.0, " there.", 0.8)]
    draft = draft_transcription(words, "en", "tiny.en", complete=False).to_dict()
    assert list(draft) == ["text", "language", "language_probability", "model", "complete", "live", "segments"]
    assert draft["text"] == "Hello there." and draft["live"] is True and draft["complete"] is False
    assert list(draft["segments"][0]) == ["id", "start", "end", "text", "words"]


def test_a_status_is_an_enum_written_as_its_plain_string():
    assert DONE is Status.DONE and Status("processing").unfinished and not Status.DONE.unfinished
    record = status_record(Status.DONE, progress=1.0)
    assert type(record["status"]) is str and json.dumps(record["status"]) == '"done"'
