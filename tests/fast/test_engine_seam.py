"""A second engine behind engine/base.Engine: a scripted one that returns given segments, run through the
real job (TranscriptionJob over a real SessionService on a tmp data directory, real ingest of a real
recording) and the real in-process pipeline the CLI runs. Nothing of faster-whisper is loaded: what the
job writes comes from the engine it was given, by the plan the pipeline chose, with the hooks called."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Generator, Iterable
from contextlib import ExitStack
from typing import Any

import numpy as np

from conftest import audio_file
from tapescribe.config import Settings
from tapescribe.engine.base import DecodeHooks, Engine, LanguageFound, SpeechModel
from tapescribe.engine.language_detection import DetectedLanguage
from tapescribe.engine.plans import Plan, PlanSettings
from tapescribe.engine.records import Segment
from tapescribe.engine.transcriber import DecodeOptions, Resume
from tapescribe.jobs.pipeline import AudioInput, JobSettings, TranscriptionPipeline, TranscriptionRequest
from tapescribe.jobs.scheduler import DecodeScheduler
from tapescribe.jobs.transcription import TranscriptionJob
from tapescribe.runtime import model_pool
from tapescribe.sessions.index_sqlite import SqliteSessionIndex
from tapescribe.sessions.ingest import RECEIVED_NAME, accept_audio
from tapescribe.sessions.service import DONE, QUEUED, SessionService
from tapescribe.sessions.space import DiskSpace
from tapescribe.sessions.store import SessionStore

# (start, end, text, temperature, no_speech_prob): the first two are speech (the second decoded after a
# fallback, judged speech); the last two are what base wrote over hiss now and then, which no way in keeps
# (jobs/pipeline.heard): punctuation only, and text sampled after a fallback where the model heard no speech
SCRIPT = [
    (0.5, 2.0, " Ask not", 0.0, 0.7),
    (2.0, 4.25, " what your country can do for you.", 0.2, 0.1),
    (4.25, 6.0, " . . . .", 0.0, 0.1),
    (6.0, 8.0, " 5-2-1 5-2-1", 0.8, 0.987),
]


class ScriptedModel:
    """A loaded model that must never be called: the scripted engine decodes without it."""

    def __init__(self, name: str | None) -> None:
        self.name = name

    def transcribe(self, *args: Any, **kwargs: Any) -> tuple[Iterable[Any], Any]:
        raise AssertionError("the pipeline reached past the engine")

    def detect_language(self, *args: Any, **kwargs: Any) -> tuple[str, float, Any]:
        raise AssertionError("the pipeline reached past the engine")


class ScriptedEngine:
    """Says every recording is English and decodes it into SCRIPT, reading all of its audio."""

    def __init__(self) -> None:
        self.loaded: list[tuple[str | None, Plan]] = []
        self.detections = 0
        self.samples = 0

    def load(self, name: str | None, plan: Plan, stack: ExitStack) -> SpeechModel:
        self.loaded.append((name, plan))
        return ScriptedModel(name)

    def detect_language(
        self, blocks: Iterable[np.ndarray], duration: float, parts: int, between: Callable[[], None] | None
    ) -> DetectedLanguage | None:
        self.detections += 1
        return DetectedLanguage("en", 0.99, 1)

    def decode(
        self,
        model: SpeechModel,
        plan: Plan,
        blocks: Iterable[np.ndarray],
        options: DecodeOptions,
        resume: Resume,
        hooks: DecodeHooks,
        settings: PlanSettings,
        whole_file: Callable[[], Iterable[np.ndarray]] | None,
    ) -> Generator[Segment, None, None]:
        self.samples = sum(len(block) for block in blocks)
        if hooks.on_language is not None:
            hooks.on_language(LanguageFound("en", 0.99))
        for start, end, text, temperature, no_speech in SCRIPT:
            record = {"window_start": 0.0, "start": start, "end": end, "text": text, "tokens": [1, 2]}
            record.update(temperature=temperature, no_speech_prob=no_speech)
            if options.word_timestamps:  # each word given an equal share of its segment's time
                words, share = text.split(), (end - start) / len(text.split())
                record["words"] = [
                    {"start": start + i * share, "end": start + (i + 1) * share, "word": " " + word}
                    for i, word in enumerate(words)
                ]
            yield Segment.from_dict(record)
            if hooks.between_calls is not None:
                hooks.between_calls()
        if hooks.window_done is not None:
            hooks.window_done(self.samples / 16000)


def sessions_at(settings: Settings) -> SessionService:
    return SessionService(
        SessionStore(settings.sessions_dir, settings.incoming_dir),
        SqliteSessionIndex(settings.index_path),
        DiskSpace(settings.data_dir, settings.low_space_bytes),
    )


def test_a_scripted_engine_runs_through_the_real_job(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", queue_backend="sqlite")
    sessions = sessions_at(settings)
    engine = ScriptedEngine()
    seam: Engine = engine  # the protocol is what the job is typed by
    job = TranscriptionJob(sessions, model_pool(settings), JobSettings(), DecodeScheduler(1, 0), engine=seam)
    session_id, incoming = sessions.store.new_incoming()
    shutil.copyfile(audio_file("jfk.flac"), incoming / RECEIVED_NAME)
    accept_audio(
        sessions,
        session_id,
        incoming / RECEIVED_NAME,
        source="upload",
        filename="jfk.flac",
        initial_status=QUEUED,
        fields={"requested_language": None, "model": "tiny.en", "options": {}},
    )

    assert job.run(session_id) == DONE

    folder = sessions.store.dir(session_id)
    transcript = json.loads((folder / "transcription.json").read_text())
    assert transcript["text"] == "Ask not what your country can do for you."
    assert transcript["complete"] is True and transcript["language"] == "en" and transcript["model"] == "tiny.en"
    assert [(s["id"], s["start"], s["end"]) for s in transcript["segments"]] == [(0, 0.5, 2.0), (1, 2.0, 4.25)]
    assert all("tokens" not in segment for segment in transcript["segments"])  # journal-only fields stay out
    assert not (folder / "segments.jsonl").exists()
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == DONE and status["runs"][-1]["engine"] == "lanes"  # the plan the pipeline chose
    # the requested model was loaded by the engine, for that plan; its language was detected to warn about
    assert engine.loaded == [("tiny.en", Plan.LANES)] and engine.detections == 1
    assert engine.samples > 10 * 16000  # the engine was handed the recording's audio


def test_the_cli_pipeline_runs_a_scripted_engine(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    engine = ScriptedEngine()
    decoding = DecodeOptions(word_timestamps=True)  # words are timed by the engine after decoding
    pipeline = TranscriptionPipeline(model_pool(settings), JobSettings(file_lanes=1, decoding=decoding), engine)
    transcript = pipeline.transcribe(
        AudioInput(audio_file("jfk.flac")), TranscriptionRequest("tiny.en", "en"), DecodeScheduler(1, 0)
    )
    assert transcript.text == "Ask not what your country can do for you."
    assert len(transcript.segments) == 2
    assert transcript.engine == "windows" and transcript.language == "en"
    assert [word["word"] for word in transcript.segments[0]["words"]] == [" Ask", " not"]
    assert engine.loaded == [("tiny.en", Plan.WINDOWS)] and engine.detections == 0  # English was asked for
