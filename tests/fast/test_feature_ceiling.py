"""A window's Whisper features are the slice of one pass's over the whole file (engine/feature_ceiling.py).

faster-whisper floors its log-mel features below the loudest frame of the audio it is handed, so a
quiet window alone kept detail that one pass over the file wipes out. The real FeatureExtractor
runs on real speech (no model is loaded): a loud minute, then the same speech 40 dB softer.
"""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper import WhisperModel
from faster_whisper.feature_extractor import FeatureExtractor

from conftest import audio_file, read_pcm
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.feature_ceiling import feature_ceiling
from tapescribe.engine.transcriber import DecodeOptions, Resume, for_transcript, transcribe_windows
from tapescribe.jobs.transcription import resume_point

WINDOW = 30.0
EDGE_FRAMES = 2  # a window's first frames see its edge (reflected), not the audio before it


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


def test_every_window_gets_the_features_one_pass_has_there(loud_then_soft):
    extractor = FeatureExtractor()
    one_pass = extractor(loud_then_soft)
    model = FeatureRecorder()
    read_again = []

    def whole_file():
        read_again.append(True)
        return blocks(loud_then_soft)

    list(
        transcribe_windows(
            model, blocks(loud_then_soft), DecodeOptions(vad_filter=False), window_seconds=WINDOW, whole_file=whole_file
        )
    )
    assert len(model.seen) == 4 and read_again == [True]
    assert model.feature_extractor.__class__ is FeatureExtractor, "the shared model is left as it was"
    frames = int(WINDOW * SAMPLE_RATE) // 160
    for number, features in enumerate(model.seen):
        expected = one_pass[:, number * frames : (number + 1) * frames]
        assert np.allclose(features[:, EDGE_FRAMES:frames], expected[:, EDGE_FRAMES:], atol=1e-5), f"window {number}"
    # Floored below its own loudest frame, a soft window differs from one pass almost everywhere.
    alone = extractor(loud_then_soft[3 * frames * 160 :])[:, EDGE_FRAMES:frames]
    assert np.mean(~np.isclose(alone, one_pass[:, 3 * frames + EDGE_FRAMES : 4 * frames], atol=1e-5)) > 0.5


def test_the_ceiling_is_journaled_and_a_resume_floors_with_it_without_reading_again(loud_then_soft):
    ceiling = float(FeatureExtractor()(loud_then_soft).max())
    record = {"window_start": 60.0, "start": 60.0, "end": 61.0, "text": " a", "tokens": [1], "feature_ceiling": ceiling}
    assert "feature_ceiling" not in for_transcript(record)
    resume = resume_point({}, [record])
    assert resume.feature_ceiling == ceiling
    model = FeatureRecorder()
    soft = loud_then_soft[60 * SAMPLE_RATE :]
    list(transcribe_windows(model, blocks(soft), DecodeOptions(vad_filter=False), resume, WINDOW, whole_file=None))
    one_pass = FeatureExtractor()(loud_then_soft)
    frames = int(WINDOW * SAMPLE_RATE) // 160
    assert np.allclose(
        model.seen[-1][:, EDGE_FRAMES:frames], one_pass[:, 3 * frames + EDGE_FRAMES : 4 * frames], atol=1e-5
    )


def test_a_file_that_fits_in_one_window_is_featurized_as_before(loud_then_soft):
    soft = loud_then_soft[60 * SAMPLE_RATE : 80 * SAMPLE_RATE]
    model = FeatureRecorder()

    def whole_file():
        raise AssertionError("one window is the whole file: nothing to read again")

    list(
        transcribe_windows(
            model, blocks(soft), DecodeOptions(vad_filter=False), Resume(), WINDOW, whole_file=whole_file
        )
    )
    assert np.array_equal(model.seen[0], FeatureExtractor()(soft))
