"""A window's Whisper features are the slice of one pass's over the whole file (engine/window_features.py).

faster-whisper floors its log-mel features below the loudest frame of the audio it is handed and
reflects that audio at its edges, so a window alone had other features than one pass over the file
there: everywhere in a quiet window, in the first and last frames of every window. The real
FeatureExtractor runs on real speech (no model is loaded): a loud minute, then the same 40 dB softer.
"""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import WhisperModel
from faster_whisper.feature_extractor import FeatureExtractor

from conftest import audio_file, read_pcm
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.speech_regions import FLOOR_RMS, FRAME, TARGET_RMS, evened_level
from tapescribe.engine.transcriber import DecodeOptions, Resume, for_transcript, transcribe_windows
from tapescribe.engine.window_features import feature_ceiling, features_in_blocks
from tapescribe.jobs.journal import resume_point

WINDOW = 30.0


@pytest.fixture(scope="module")
def loud_then_soft() -> np.ndarray:
    speech = read_pcm(audio_file("acoustic_corpus.wav"))[: 25 * SAMPLE_RATE]
    pause = np.zeros(SAMPLE_RATE * 5, dtype=np.float32)
    loud = np.concatenate([speech, pause]) * (0.9 / np.abs(speech).max())
    return np.concatenate([loud, loud, loud * 0.01, loud * 0.01])  # 120 s: two loud windows, two soft


def blocks(audio: np.ndarray, size: int = 7001):
    return (audio[position : position + size] for position in range(0, len(audio), size))


class FeatureRecorder(WhisperModel):
    """A WhisperModel that decodes nothing: it keeps the features each window was given."""

    def __init__(self) -> None:  # no model files: only the feature extractor is real
        self.feature_extractor = FeatureExtractor()
        self.seen: list[np.ndarray] = []

    def transcribe(self, audio, **options):
        self.seen.append(self.feature_extractor(audio))
        return iter(()), None


def test_the_ceiling_read_block_by_block_is_one_pass_maximum(loud_then_soft):
    extractor = FeatureExtractor()
    for length in (len(loud_then_soft), 30 * SAMPLE_RATE + 320, 30 * SAMPLE_RATE + 321, 60 * SAMPLE_RATE + 640, 900):
        audio = loud_then_soft[:length]
        assert feature_ceiling(extractor, blocks(audio)) == float(extractor(audio).max())
    assert feature_ceiling(extractor, iter(())) is None


def run(model, audio, start=0.0, resume=None, whole_file=None):
    options = DecodeOptions(vad_filter=False)
    source = blocks(audio[round(start * SAMPLE_RATE) :])
    return list(transcribe_windows(model, source, options, resume or Resume(), WINDOW, whole_file=whole_file))


def one_pass_slice(one_pass: np.ndarray, window_start: float) -> np.ndarray:
    """One pass's features of the window starting there: WINDOW seconds of frames and one more."""
    first = round(window_start * SAMPLE_RATE) // 160
    return one_pass[:, first : first + round(WINDOW * SAMPLE_RATE) // 160 + 1]


def test_every_window_gets_the_features_one_pass_has_there(loud_then_soft):
    extractor = FeatureExtractor()
    one_pass = extractor(loud_then_soft)
    model = FeatureRecorder()
    reads = []

    def whole_file():
        reads.append("whole file")
        return blocks(loud_then_soft)

    run(model, loud_then_soft, whole_file=whole_file)
    assert len(model.seen) == 4 and reads == ["whole file"]  # once, for the ceiling
    assert type(model.feature_extractor) is FeatureExtractor, "the shared model is left as it was"
    for number, features in enumerate(model.seen):
        assert np.array_equal(features, one_pass_slice(one_pass, number * WINDOW)), f"window {number}"
    # Alone, a soft window is floored below its own loudest frame: it differs from one pass almost everywhere,
    # and so do the first frames of every window, which reflect its edge.
    alone = [
        extractor(loud_then_soft[round(start * SAMPLE_RATE) :][: round(WINDOW * SAMPLE_RATE)]) for start in (30, 90)
    ]
    assert np.mean(~np.isclose(alone[1], one_pass_slice(one_pass, 90), atol=1e-6)) > 0.5
    assert not np.allclose(alone[0][:, :1], one_pass_slice(one_pass, 30)[:, :1], atol=1e-3)


def test_the_ceiling_is_journaled_and_a_resumed_window_gets_the_same_features(loud_then_soft):
    one_pass = FeatureExtractor()(loud_then_soft)
    ceiling = float(one_pass.max())
    record = {"window_start": 60.0, "start": 60.0, "end": 61.0, "text": " a", "tokens": [1], "feature_ceiling": ceiling}
    assert "feature_ceiling" not in for_transcript(record)
    resume = resume_point({}, [record])
    assert resume.start == 60.0 and resume.feature_ceiling == ceiling
    model = FeatureRecorder()
    reads = []

    def whole_file():
        reads.append("whole file")
        return blocks(loud_then_soft)

    run(model, loud_then_soft, 60.0, resume, whole_file)
    assert reads == ["whole file"]  # once, for the audio just before the window; the ceiling was journaled
    for number, features in enumerate(model.seen):
        assert np.array_equal(features, one_pass_slice(one_pass, 60 + number * WINDOW)), f"window {number}"


def test_a_file_that_fits_in_one_window_is_featurized_as_before(loud_then_soft):
    soft = loud_then_soft[60 * SAMPLE_RATE : 80 * SAMPLE_RATE]
    model = FeatureRecorder()

    def whole_file():
        raise AssertionError("one window is the whole file: nothing to read again")

    run(model, soft, whole_file=whole_file)
    assert np.array_equal(model.seen[0], FeatureExtractor()(soft))


@pytest.mark.parametrize("padding", [160, 0])
def test_a_lane_featurized_in_blocks_has_the_features_of_one_call(loud_then_soft, padding):
    """Lanes featurize their audio 30 s at a time (window_features.features_in_blocks) to hold one
    block's transients, not a whole lane's: the features must be the extractor's own, bit for bit,
    whatever the length (the last block's length, where the loudest frame is)."""
    extractor = FeatureExtractor()
    for length in (len(loud_then_soft), 61 * SAMPLE_RATE + 5, 97 * SAMPLE_RATE + 159, 119 * SAMPLE_RATE + 1):
        audio = np.ascontiguousarray(loud_then_soft[::-1][:length])  # the soft part first, the loudest frame last
        whole = extractor(audio, padding=padding)
        assert np.array_equal(features_in_blocks(extractor, audio, padding=padding), whole), length


def test_speech_is_evened_in_pieces_as_all_at_once(loud_then_soft):
    """The VAD's copy of a lane brought to one level (speech_regions.evened_level) is made 30 s at a
    time; each sample must be what the whole computation gives it."""
    audio = loud_then_soft[: 95 * SAMPLE_RATE + 77]
    frames = int(np.ceil(len(audio) / FRAME))
    padded = np.zeros(frames * FRAME, dtype=np.float32)
    padded[: len(audio)] = audio
    rms = np.sqrt(np.mean(padded.reshape(frames, FRAME) ** 2, axis=1))
    spread = np.maximum.reduce([np.roll(rms, shift) for shift in (-2, -1, 0, 1, 2)])
    gain = TARGET_RMS / np.maximum(spread, FLOOR_RMS)
    per_sample = np.interp(np.arange(len(audio)), np.arange(frames) * FRAME + FRAME / 2, gain)
    expected = np.clip(audio * per_sample, -1.0, 1.0).astype(np.float32)  # all at once, as it was
    assert np.array_equal(evened_level(audio), expected)
