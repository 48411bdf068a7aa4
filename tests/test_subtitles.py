"""Subtitles of a page upload with the defaults are timed by words: a real reading after a long silence,
through `/transcribe-file`, exported as SRT and WebVTT and read back as a player reads them."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pytest
import srt
import webvtt

from conftest import audio_file, read_pcm, write_wav

LEADING_SILENCE = 6.0
TOLERANCE = 0.3  # seconds between the first cue's start and the first word's
MILLISECOND = 0.0015  # the exports round times to milliseconds


@pytest.fixture(scope="module")
def after_silence(server, tmp_path_factory) -> dict:
    """6 s of silence, a 27 s reading, 2 s of silence, an 11 s speech: uploaded with no options."""
    silence = np.zeros(int(LEADING_SILENCE * 16000), dtype=np.float32)
    pause = np.zeros(2 * 16000, dtype=np.float32)
    samples = np.concatenate(
        [silence, read_pcm(audio_file("acoustic_corpus.wav")), pause, read_pcm(audio_file("jfk.flac"))]
    )
    path = write_wav(tmp_path_factory.mktemp("subtitles") / "after_silence.wav", samples)
    with server.client() as client, open(path, "rb") as handle:
        session_id = client.post("/transcribe-file", files={"file": (path.name, handle)}).json()["session_id"]
    body = server.wait_done(session_id)
    assert body["status"]["status"] == "done", body["status"]
    with server.client() as client:
        exports = {fmt: client.get(f"/session/{session_id}/export/{fmt}").text for fmt in ("srt", "vtt")}
    return {"segments": body["transcription"]["segments"], **exports}


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
    spoken = " ".join(text.replace("\n", " ") for _, _, text in found)
    assert spoken.split() == " ".join(s["text"].strip() for s in segments).split()  # no word lost or doubled


def test_srt_times_are_what_the_cues_say(after_silence):
    parsed = list(srt.parse(after_silence["srt"]))
    assert parsed[0].start > timedelta(seconds=LEADING_SILENCE - 1.0)
    assert all(a.end <= b.start for a, b in itertools.pairwise(parsed))
