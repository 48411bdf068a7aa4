"""The one pipeline (jobs/pipeline.py) in-process: a request is checked as the API checks it, the decode
plan is the job's, and the English-only warning says what the page says. No model is loaded."""

from __future__ import annotations

import pytest

from tapescribe.config import Settings
from tapescribe.engine.models import ModelPool, ModelSettings
from tapescribe.errors import BadRequest
from tapescribe.jobs.pipeline import CLIP_BATCH, LANES, JobSettings, Transcript, TranscriptionPipeline
from tapescribe.runtime import job_settings


def pipeline(tmp_path, **settings) -> TranscriptionPipeline:
    return TranscriptionPipeline(ModelPool(tmp_path, "auto", ModelSettings()), JobSettings(**settings))


def test_a_request_is_checked_once_for_every_way_in(tmp_path):
    checked = pipeline(tmp_path)
    assert checked.request(None, None).fields() == {"requested_language": None, "model": None, "options": {}}
    assert checked.request(" auto ", "Spanish").fields()["requested_language"] == "es"
    assert checked.request("tiny.en", "en").model == "tiny.en"
    with pytest.raises(BadRequest) as refused:
        checked.request("tiny.en", "es")
    assert "'tiny.en' is English-only and cannot transcribe language 'es'" in refused.value.message
    assert refused.value.details == {"model": "tiny.en", "language": "es"}
    with pytest.raises(BadRequest):
        checked.request(None, "klingon")


def test_the_plan_is_the_jobs_lanes_on_a_cpu_and_a_clip_batch_for_clips(tmp_path):
    checked = pipeline(tmp_path)
    assert checked.plan(batched=False) == LANES and checked.plan(batched=True) == CLIP_BATCH
    assert pipeline(tmp_path, file_lanes=1).plan(batched=False) == "windows"
    settings = Settings(data_dir=tmp_path / "data")
    assert job_settings(settings).decoding.vad_parameters == settings.vad_parameters()


def transcript(model: str, detected: str | None, probability: float | None) -> Transcript:
    return Transcript("x", "en", 0.9, model, "chosen in the request", detected, probability, LANES, 9.0, [])


def test_the_english_only_warning_is_the_pages():
    warning = transcript("tiny.en", "es", 0.99).warning()
    assert warning is not None
    assert warning.startswith("This sounds like Spanish (99% sure), but tiny.en writes English only")
    assert transcript("tiny.en", "es", 0.3).warning() is None  # not sure enough to warn
    assert transcript("tiny.en", "en", 0.99).warning() is None
    assert transcript("base", "es", 0.99).warning() is None
