"""Subtitles of a page upload are timed by words by default (no word_timestamps field): real speech after
a long silence, through `/transcribe-file` (a clip decoded in a clip batch, files in one lane and in four),
exported as SRT and WebVTT and read back as a player reads them. The words are aligned after decoding
(engine/word_alignment.py), so the text is the one the same upload gets with word_timestamps=false."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pytest
import srt
import webvtt

from conftest import ENGLISH_FILES, audio_file, read_pcm, write_wav

LEADING_SILENCE = 6.0
TOLERANCE = 0.3  # seconds between the first cue's start and the first word's
MILLISECOND = 0.0015  # the exports round times to milliseconds


def reading_after_silence(length: str) -> np.ndarray:
    """6 s of silence, then for a clip (30 s or less, decoded in a clip batch) an 11 s speech, 2 s of
    silence and 3 s; for a short file (one lane) a 27 s reading, 2 s of silence and the 11 s speech; for
    a long one (2 minutes or more: four lanes) every English recording with pauses of 0.5 to 2.5 s, twice."""
    silence = np.zeros(int(LEADING_SILENCE * 16000), dtype=np.float32)
    if length == "clip":
        names, pauses = ["jfk.flac", "goforward.wav"], [2.0, 0.0]
    elif length == "short":
        names, pauses = ["acoustic_corpus.wav", "jfk.flac"], [2.0, 0.0]
    else:
        names = ENGLISH_FILES * 2
        pauses = [0.5 + 2.0 * (at % 5) / 4 for at in range(len(names))]
    pieces = [silence]
    for name, pause in zip(names, pauses, strict=True):
        pieces += [read_pcm(audio_file(name)), np.zeros(int(pause * 16000), dtype=np.float32)]
    return np.concatenate(pieces)


def uploaded(server, path, **fields) -> tuple[str, dict]:
    """The id and finished session of `path` uploaded to `/transcribe-file` with the form `fields`."""
    with server.client() as client, open(path, "rb") as handle:
        session_id = client.post("/transcribe-file", files={"file": (path.name, handle)}, data=fields).json()[
            "session_id"
        ]
    body = server.wait_done(session_id, timeout=600)
    assert body["status"]["status"] == "done", body["status"]
    return session_id, body


@pytest.fixture(scope="module", params=["clip", "short", "long"])
def after_silence(request, server, tmp_path_factory) -> dict:
    """The recording uploaded as the page uploads it (no word_timestamps field); its segments, its SRT and
    VTT exports, and (clip and short) the text of the same upload with word_timestamps=false."""
    samples = reading_after_silence(request.param)
    name = f"after_silence_{request.param}.wav"
    path = write_wav(tmp_path_factory.mktemp("subtitles") / name, samples)
    session_id, body = uploaded(server, path)
    assert body["status"]["runs"][-1]["engine"] == ("clip batch" if request.param == "clip" else "lanes")
    with server.client() as client:
        exports = {fmt: client.get(f"/session/{session_id}/export/{fmt}").text for fmt in ("srt", "vtt")}
    untimed = None
    if request.param != "long":  # the long one's text is checked in-process (tests/fast/test_word_alignment.py)
        untimed = uploaded(server, path, word_timestamps="false")[1]["transcription"]
    return {"segments": body["transcription"]["segments"], "untimed": untimed, **exports}


def srt_cues(body: str) -> list[tuple[float, float, str]]:
    return [(cue.start.total_seconds(), cue.end.total_seconds(), cue.content) for cue in srt.parse(body)]


def vtt_cues(body: str) -> list[tuple[float, float, str]]:
    return [
        (c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.text)
        for c in webvtt.from_string(body).captions
    ]


def near_any(value: float, times: list[float]) -> bool:
    return any(abs(value - time) <= MILLISECOND for time in times)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_cues_start_and_end_on_words_after_a_long_silence(after_silence, fmt):
    segments = after_silence["segments"]
    words = [word for segment in segments for word in segment.get("words") or []]
    assert words and all(segment.get("words") for segment in segments), "the defaults time every word"
    first_word = words[0]["start"]
    assert first_word >= LEADING_SILENCE - 1.0, first_word  # the reading starts after the silence
    found = srt_cues(after_silence[fmt]) if fmt == "srt" else vtt_cues(after_silence[fmt])
    assert found
    assert abs(found[0][0] - first_word) <= TOLERANCE, (found[0], first_word)
    starts, ends = [w["start"] for w in words], [w["end"] for w in words]
    for start, end, text in found:
        assert near_any(start, starts) and near_any(end, ends), (start, end, text)
    # A cue of one word only where the speaker said one word: its segment holds only that word.
    for start, _, text in found:
        if len(text.split()) == 1:
            segment = next(s for s in segments if s["start"] - MILLISECOND <= start <= s["end"] + MILLISECOND)
            assert len(segment["text"].split()) == 1, (text, segment["text"])
    assert sum(1 for _, _, text in found if len(text.split()) == 1) <= 2, found  # "themselves", "destroyed."
    spoken = " ".join(text.replace("\n", " ") for _, _, text in found)
    assert spoken.split() == " ".join(s["text"].strip() for s in segments).split()  # no word lost or doubled


def test_the_text_with_words_timed_is_the_text_without(after_silence):
    """Word timing does not change what is written: the same upload without words has the same segments' text."""
    untimed = after_silence["untimed"]
    if untimed is None:
        pytest.skip("checked in-process for the long reading")
    assert not any(segment.get("words") for segment in untimed["segments"])
    assert [s["text"] for s in after_silence["segments"]] == [s["text"] for s in untimed["segments"]]


def test_srt_times_are_what_the_cues_say(after_silence):
    parsed = list(srt.parse(after_silence["srt"]))
    assert parsed[0].start > timedelta(seconds=LEADING_SILENCE - 1.0)
    assert all(a.end <= b.start for a, b in itertools.pairwise(parsed))
