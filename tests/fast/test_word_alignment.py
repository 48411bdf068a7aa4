"""Words are timed after decoding (engine/word_alignment.py), by default: the text is byte for byte the
decoding's without words, every segment gets its words, and the first word after a long silence starts
where the speech does. In-process, through the pipeline every way in uses (jobs/pipeline.py), with the
real tiny.en and real recorded speech."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import audio_file, read_pcm, write_wav
from tapescribe.config import Settings
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.word_alignment import _AudioWindow
from tapescribe.jobs.pipeline import AudioInput, TranscriptionPipeline
from tapescribe.runtime import decode_scheduler, job_settings, model_pool
from tapescribe.sessions.cues import speaker_cues

SILENCE = 6.5  # the reading of issue 24 had its first word at 6.5 s
TOLERANCE = 0.3
CLIPS = ["vosk_digits.wav", "sense_and_sensibility_01_austen_64kb-0870.wav"]


def onset(samples: np.ndarray) -> float:
    """Where the speech in `samples` starts: the first 10 ms louder than a tenth of the loudest."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    loudness = np.sqrt((frames**2).mean(axis=1))
    return float(np.argmax(loudness > 0.1 * loudness.max())) / 100


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    """The pipeline with the server's default settings, and one with word_timestamps off; one model pool."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("word-alignment"))
    models, defaults = model_pool(settings), job_settings(settings)
    words_off = replace(defaults, decoding=replace(defaults.decoding, word_timestamps=False))
    scheduler = decode_scheduler(settings)

    def run(pipeline: TranscriptionPipeline, path: Path):
        return pipeline.transcribe(AudioInput(path), pipeline.request("tiny.en", None), scheduler)

    on, off = TranscriptionPipeline(models, defaults), TranscriptionPipeline(models, words_off)
    return lambda path: (run(on, path), run(off, path))


@pytest.fixture(scope="module")
def reading(tmp_path_factory) -> tuple[Path, float]:
    """6.5 s of silence, then an 11 s speech, 1 s of silence and a 27 s reading of several sentences; and
    where its first word starts."""
    first, second = read_pcm(audio_file("jfk.flac")), read_pcm(audio_file("acoustic_corpus.wav"))
    silence = np.zeros(int(SILENCE * SAMPLE_RATE), dtype=np.float32)
    samples = np.concatenate([silence, first, silence[:SAMPLE_RATE], second])
    return write_wav(tmp_path_factory.mktemp("reading") / "reading.wav", samples), SILENCE + onset(first)


def test_a_reading_after_silence_is_timed_by_words_and_its_text_is_the_decodings(pipelines, reading):
    path, first_word = reading
    timed, untimed = pipelines(path)
    assert [s["text"] for s in timed.segments] == [s["text"] for s in untimed.segments]  # byte for byte
    assert timed.text == untimed.text and timed.text
    assert all(segment["words"] for segment in timed.segments), "every segment's words are timed by default"
    words = [word for segment in timed.segments for word in segment["words"]]
    assert "".join(word["word"] for word in words) == "".join(s["text"] for s in timed.segments)
    assert abs(words[0]["start"] - first_word) <= TOLERANCE, (words[0], first_word)
    assert all(a["start"] <= a["end"] <= b["start"] + 0.01 for a, b in itertools.pairwise(words))
    cues = speaker_cues(timed.segments)
    assert abs(cues[0][0] - first_word) <= TOLERANCE, (cues[0], first_word)
    assert sum(1 for cue in cues if len(cue[2].split()) == 1) <= 1, cues


@pytest.mark.parametrize("name", CLIPS)
def test_the_text_of_a_clip_is_the_same_with_words_aligned(pipelines, name):
    timed, untimed = pipelines(audio_file(name))
    assert [s["text"] for s in timed.segments] == [s["text"] for s in untimed.segments]
    assert all(segment["words"] for segment in timed.segments)
    assert not any(segment.get("words") for segment in untimed.segments)


def test_the_alignment_holds_one_chunk_of_audio_however_long_the_file():
    """Ten minutes read in one-second blocks, aligned 20 s at a time: never more than 31 s held, and each
    slice is exactly its part of the stream."""
    ramp = np.arange(600 * SAMPLE_RATE, dtype=np.float64)
    blocks = (ramp[at : at + SAMPLE_RATE] for at in range(0, len(ramp), SAMPLE_RATE))
    window = _AudioWindow(blocks, 0.0)
    held = 0
    for start in range(0, 600, 20):
        part = window.slice(start + 0.5, start + 30.5)
        held = max(held, window._samples)
        expected = ramp[int((start + 0.5) * SAMPLE_RATE) : int((start + 30.5) * SAMPLE_RATE)]
        assert np.array_equal(part, expected), start
        window.forget_before(start + 18)
    assert held <= 31 * SAMPLE_RATE
