"""Which model a job uses and what is recorded about its language (jobs/routing.py), in-process.

No model is loaded: `detect` is the job's own callback, given here as a function that counts its calls."""

from __future__ import annotations

from tapescribe.engine.language_detection import DetectedLanguage
from tapescribe.engine.models import ModelPool, ModelSettings
from tapescribe.jobs.routing import PINNED_REASON, REQUESTED_REASON, choose_model
from tapescribe.jobs.scheduler import DecodeScheduler
from tapescribe.jobs.transcription import JobSettings, TranscriptionJob

GERMAN = DetectedLanguage("de", 0.97, 1)


def choose(pool: ModelPool, session: dict) -> tuple[dict, int]:
    calls = []

    def detect() -> DetectedLanguage:
        calls.append(1)
        return GERMAN

    return choose_model(session, pool, detect), len(calls)


def test_an_english_only_model_chosen_in_the_request_still_records_the_detected_language(tmp_path):
    """So the page can warn that German went through tiny.en; the model chosen is kept."""
    choice, detections = choose(ModelPool(tmp_path, "auto", ModelSettings()), {"model": "tiny.en"})
    assert detections == 1
    assert choice == {
        "model": "tiny.en",
        "model_reason": REQUESTED_REASON,
        "detected_language": "de",
        "detected_language_probability": 0.97,
    }
    # recorded to warn about, never passed to the English-only model as its decoding language
    job = TranscriptionJob(None, None, JobSettings(), DecodeScheduler(1, 0))
    assert job.options_for({**choice, "requested_language": None}).language is None
    assert job.options_for({**choice, "model": "base"}).language == "de"


def test_no_detection_where_nothing_can_be_wrong_or_the_server_pinned_the_model(tmp_path):
    auto = ModelPool(tmp_path, "auto", ModelSettings())
    for session in ({"model": "tiny.en", "requested_language": "en"}, {"model": "base"}):
        choice, detections = choose(auto, session)
        assert detections == 0 and "detected_language" not in choice, session
    pinned = ModelPool(tmp_path, "tiny.en", ModelSettings())
    for session in ({"model": "tiny.en"}, {}):
        assert choose(pinned, session) == ({"model": "tiny.en", "model_reason": PINNED_REASON}, 0)
    choice, detections = choose(auto, {})
    assert detections == 1 and choice["model"] == "base" and choice["detected_language"] == "de"
