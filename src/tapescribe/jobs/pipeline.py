"""TranscriptionPipeline: what a transcription is, decided once for every way in.

A request (model, language, options) is checked here (an English-only model asked for another
language is refused, with the message the API answers 400 with); the model is chosen here (routing:
the language requested or detected on the audio decides, jobs/routing.py); the decoding options are
made here from the server's defaults and the request; and the decode plan (lanes, windows, or a clip
batch) is picked here. The queued job (jobs/transcription.py) runs it with its journal, lease,
progress and cancel around it; `tapescribe transcribe` runs it on a file in-process with `transcribe`,
nothing stored; `/transcribe-live` (live/chunk_service.py) decodes each recording's unsettled tail
with it; `/v1`, `/transcribe`, retranscribe and a live stream's second pass are queued jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE, chunks_pcm, pcm_blocks, probe
from tapescribe.engine.base import DecodeHooks, Engine, LanguageFound, SpeechModel
from tapescribe.engine.language_detection import DetectedLanguage
from tapescribe.engine.languages import language_code, language_name
from tapescribe.engine.models import MULTILINGUAL_MODEL, ModelPool, english_only
from tapescribe.engine.plans import Plan, PlanSettings, choose_plan
from tapescribe.engine.records import Segment
from tapescribe.engine.records import Transcript as TranscriptRecord
from tapescribe.engine.transcriber import DecodeOptions, Resume, for_transcript
from tapescribe.engine.whisper_engine import WhisperEngine
from tapescribe.errors import BadRequest, UnsupportedMedia
from tapescribe.jobs.routing import choose_model
from tapescribe.jobs.scheduler import DecodeScheduler
from tapescribe.sessions.ingest import judge_duration

LANES, WINDOWS, CLIP_BATCH = Plan.LANES, Plan.WINDOWS, Plan.CLIP_BATCH
NO_SPEECH_THRESHOLD = 0.6  # faster-whisper's no_speech_threshold, which the decoding keeps (see `heard`)
CLEARLY = 0.5  # a detection at least this sure is worth the English-only warning (as web/session_model.js)


NO_AUDIO = "The audio holds no sound that could be decoded, so there is nothing to transcribe; the file is kept."


@dataclass(frozen=True)
class JobSettings:
    window_seconds: float = 240.0
    decoding: DecodeOptions = field(default_factory=DecodeOptions)
    detection_parts: int = 3  # parts of a file its language is detected on, when the language decides the model
    file_lanes: int = 4  # as Settings: above 1, sequential models decode files in lanes (engine/lane_groups.py)
    lane_beam_size: int = 5
    lane_context_tokens: int = -1  # as Settings: -1 by the model (engine/lane_groups.py)

    def plan_settings(self) -> PlanSettings:
        return PlanSettings(self.window_seconds, self.file_lanes, self.lane_beam_size, self.lane_context_tokens)


def checked_language(value: str | None) -> str | None:
    """None for auto-detection, else a Whisper language code; BadRequest for anything unknown."""
    if value is not None and not isinstance(value, str):
        raise BadRequest("language must be a text such as 'en' or 'de', or 'auto'.")
    value = (value or "").strip().lower()
    if len(value) > 40:
        raise BadRequest("language must be a Whisper language code such as 'en' or 'de'.")
    if value in ("", "auto", "detect"):
        return None
    code = language_code(value)
    if code is None:
        raise BadRequest(f"Unknown language {value!r}; use a Whisper code such as 'en' or 'de'.")
    return code


@dataclass(frozen=True)
class TranscriptionRequest:
    """What a client asked for, checked: `model` an offered name or None (chosen by language), `language`
    a Whisper code or None (detected), `options` task, word_timestamps, prompt, temperature, speakers."""

    model: str | None = None
    language: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """As a session records the request (session.json)."""
        return {"requested_language": self.language, "model": self.model, "options": dict(self.options)}


def checked_request(
    models: ModelPool, model: str | None, language: str | None, options: dict[str, Any] | None = None
) -> TranscriptionRequest:
    """The request, or BadRequest / ModelUnavailable before anything is stored or decoded: an unknown
    language, a model not offered, or an English-only model asked for another language."""
    code = checked_language(language)
    return TranscriptionRequest(models.check((model or "").strip() or None, code), code, dict(options or {}))


@dataclass(frozen=True)
class AudioInput:
    """The audio of one transcription: a file, or (a live session) its chunks in order, or samples already
    read that start `samples_start` seconds into a recording (/transcribe-live's unsettled tail)."""

    path: Path | None = None
    chunks: tuple[Path, ...] = ()
    samples: np.ndarray | None = None
    samples_start: float = 0.0

    def blocks(self, start: float = 0.0) -> Iterator[np.ndarray]:
        """16 kHz mono float blocks from `start` seconds on (counted from the recording's start)."""
        if self.path is not None:
            return pcm_blocks(self.path, start=start)
        if self.samples is not None:
            skip = max(0, round((start - self.samples_start) * SAMPLE_RATE))
            return iter([self.samples[skip:]] if skip < len(self.samples) else [])
        whole = chunks_pcm(list(self.chunks))
        return _skip(whole, start) if start else whole

    def duration(self) -> float:
        """Seconds, as an upload's session records them: the container's word when plausible, else measured."""
        if self.samples is not None:
            return round(len(self.samples) / SAMPLE_RATE, 3)
        if self.path is None:
            return round(sum(len(block) for block in self.blocks()) / SAMPLE_RATE, 3)
        return round(judge_duration(self.path, probe(self.path).duration, self.path.stat().st_size), 3)


@dataclass(frozen=True)
class Transcript:
    """One finished transcription, as `transcribe` returns it (nothing stored)."""

    text: str
    language: str | None
    language_probability: float | None
    model: str
    model_reason: str
    detected_language: str | None
    detected_language_probability: float | None
    engine: str
    duration: float
    segments: list[dict[str, Any]]

    def warning(self) -> str | None:
        """What the page warns about too (web/session_model.js): an English-only model that clearly heard
        another language wrote this, so it is probably wrong."""
        heard, sure = self.detected_language, self.detected_language_probability or 0.0
        if not english_only(self.model) or not heard or heard == "en" or sure < CLEARLY:
            return None
        name = (language_name(heard) or heard).capitalize()
        return (
            f"This sounds like {name} ({round(sure * 100)}% sure), but {self.model} writes English only, so this "
            f"transcript is probably wrong; leave the model out or choose a multilingual one ({MULTILINGUAL_MODEL})."
        )

    def record(self) -> dict[str, Any]:
        """As transcription.json has it, with the model choice beside it."""
        choice = {
            "model_reason": self.model_reason,
            "detected_language": self.detected_language,
            "detected_language_probability": self.detected_language_probability,
        }
        segments = (for_transcript(segment) for segment in self.segments)
        record = TranscriptRecord.of(
            segments, self.language, self.language_probability, self.model, None, choice=choice
        )
        return record.to_dict()


class TranscriptionPipeline:
    """Model choice, decoding options and decode plan over `models`, with the server's `settings`, decoded
    by `engine` (faster-whisper's unless another is given: engine/base.py)."""

    def __init__(self, models: ModelPool, settings: JobSettings, engine: Engine | None = None) -> None:
        self.models = models
        self.settings = settings
        self.engine: Engine = engine or WhisperEngine(models)

    def request(
        self, model: str | None, language: str | None, options: dict[str, Any] | None = None
    ) -> TranscriptionRequest:
        return checked_request(self.models, model, language, options)

    def choose(
        self,
        session: dict[str, Any],
        audio: AudioInput,
        duration: float | None,
        between: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """The session fields that record the model choice (jobs/routing.py), detecting on `audio` if needed;
        `between` runs between blocks and detections (a cancel or a stop raises there)."""
        return choose_model(session, self.models, lambda: self.detect(audio, duration, between))

    def detect(
        self, audio: AudioInput, duration: float | None, between: Callable[[], None] | None = None
    ) -> DetectedLanguage | None:
        """The language of `audio`, detected by the multilingual model over several parts of it."""

        def blocks() -> Iterator[np.ndarray]:  # reading a long file takes a while: `between` is heard meanwhile
            for block in audio.blocks():
                if between is not None:
                    between()
                yield block

        if not duration:
            duration = sum(len(block) for block in blocks()) / SAMPLE_RATE
        return self.engine.detect_language(blocks(), duration, self.settings.detection_parts, between)

    def options_for(self, session: dict[str, Any]) -> DecodeOptions:
        requested = session.get("options") or {}
        detected = session.get("detected_language")
        if english_only(session.get("model") or ""):
            detected = None  # recorded to warn about, but an English-only model writes English only
        return replace(
            self.settings.decoding,
            # a language detected over several parts is more reliable than transcribe's look at the first 30 s
            language=session.get("requested_language") or detected,
            task=requested.get("task", "transcribe"),
            # words are timed unless the request or the settings say not (subtitles start and end on
            # words); speaker labels need them anyway: a segment is split at the word where the speaker changes
            word_timestamps=bool(
                requested.get("word_timestamps", self.settings.decoding.word_timestamps) or requested.get("speakers")
            ),
            initial_prompt=requested.get("prompt"),
            temperature=requested.get("temperature"),
        )

    def plan(self, batched: bool) -> Plan:
        """The decode plan (engine/plans/): a clip batch when the decode slot joined one."""
        return choose_plan(self.models.plan, self.settings.file_lanes, batched)

    def model(self, name: str | None, plan: Plan, stack: ExitStack) -> SpeechModel:
        """The model to decode with by `plan` (a clip batch member's while `stack` is open)."""
        return self.engine.load(name, plan, stack)

    def decode(
        self,
        model: SpeechModel,
        session: dict[str, Any],
        audio: AudioInput,
        plan: Plan,
        resume: Resume | None = None,
        hooks: DecodeHooks | None = None,
    ) -> Iterator[Segment]:
        """The segments of `audio` from `resume` on, by `plan`, for the model chosen in `session`, those
        `heard`; with their words timed when the options ask for words (the text the same either way)."""
        resume, hooks = resume or Resume(), hooks or DecodeHooks()
        blocks = _counted(audio.blocks(resume.start), hooks)
        options, settings = self.options_for(session), self.settings.plan_settings()
        segments = self.engine.decode(model, plan, blocks, options, resume, hooks, settings, audio.blocks)
        with closing(segments):  # closed early (a cancel, a lost lease): the engine's lanes end now
            yield from (segment for segment in segments if heard(segment, options.temperature or 0.0))

    def transcribe(
        self,
        audio: AudioInput,
        request: TranscriptionRequest,
        scheduler: DecodeScheduler,
        on_position: Callable[[float], None] | None = None,
    ) -> Transcript:
        """The whole pipeline on `audio`, in this process, nothing stored: what a job writes for the same
        audio and request (the same choice, options and plan), as a typed result."""
        duration = audio.duration()
        session: dict[str, Any] = {**request.fields(), "duration": duration}
        batchable = self.models.plan.shares_calls
        with scheduler.slot(duration, batchable=batchable) as slot, ExitStack() as stack:
            session.update(self.choose(session, audio, duration))
            plan = self.plan(slot.batched)
            model = self.model(session.get("model"), plan, stack)
            found: list[LanguageFound] = []
            hooks = DecodeHooks(
                on_language=found.append, window_done=on_position, between_calls=slot.give_way, on_position=on_position
            )
            segments = []
            for segment in self.decode(model, session, audio, plan, hooks=hooks):
                segments.append(segment.to_dict())
                if on_position is not None:
                    on_position(segment.end)
            if not hooks.samples_read:
                raise UnsupportedMedia(NO_AUDIO)
        return Transcript(
            text="".join(segment["text"] for segment in segments).strip(),
            language=found[-1].language if found else None,
            language_probability=round(found[-1].probability, 4) if found else None,
            model=session["model"],
            model_reason=session["model_reason"],
            detected_language=session.get("detected_language"),
            detected_language_probability=session.get("detected_language_probability"),
            engine=plan.value,
            duration=duration,
            segments=segments,
        )


def heard(segment: Segment, first_temperature: float) -> bool:
    """Whether a decoded segment is kept as speech heard; two kinds of text made up over noise are not.

    - No letter or digit in any script: ". . . ." or an emoji, written over quiet hiss.
    - Text that passed Whisper's checks only after falling back to sampling (its temperature above the
      first one asked for) where the model judged the window to hold no speech (`no_speech_prob` over
      faster-whisper's threshold). Whisper keeps a window it judged silent when its text's
      log-probability is high, but a sampled text's log-probability is that of a random draw: over a
      minute of hiss base wrote "2-1-2-1 4-1-3-2 5-2-1 ..." at temperature 0.8 with no_speech_prob
      0.987 and avg_logprob -0.53, in one run of several (CTranslate2's sampling is not seeded). In
      the shared recordings and the tests' conditions (soft, whispered, noisy, digits, nine languages)
      no segment of speech is of that kind.
    The decoder's own context still holds every segment (the engine's plans keep what they decode).
    """
    if not any(character.isalnum() for character in segment.text):
        return False
    temperature = float(segment.fields.get("temperature") or 0.0)
    no_speech = float(segment.fields.get("no_speech_prob") or 0.0)
    return not (temperature > first_temperature and no_speech > NO_SPEECH_THRESHOLD)


def _counted(blocks: Iterator[np.ndarray], hooks: DecodeHooks) -> Iterator[np.ndarray]:
    """The blocks as they are, their samples counted into `hooks.samples_read` (whatever the engine): a
    caller tells "decoded nothing" (an error, whatever the cause) from "decoded silence" (done, no text)."""
    for block in blocks:
        hooks.samples_read += len(block)
        yield block


def _skip(blocks: Iterable[np.ndarray], seconds: float) -> Iterator[np.ndarray]:
    """Drop the first `seconds` of a block stream (resuming live chunks, which cannot seek)."""
    skip = int(round(seconds * SAMPLE_RATE))
    for block in blocks:
        if skip >= len(block):
            skip -= len(block)
            continue
        yield block[skip:]
        skip = 0
