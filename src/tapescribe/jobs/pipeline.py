"""TranscriptionPipeline: what a transcription is, decided once for every way in.

A request (model, language, options) is checked here (an English-only model asked for another
language is refused, with the message the API answers 400 with); the model is chosen here (routing:
the language requested or detected on the audio decides, jobs/routing.py); the decoding options are
made here from the server's defaults and the request; and the decode plan (lanes, windows, or a clip
batch) is picked here. The queued job (jobs/transcription.py) runs it with its journal, lease,
progress and cancel around it; `tapescribe transcribe` runs it on a file in-process with `transcribe`,
nothing stored. A later way in (live second pass, /v1) is meant to come through here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE, chunks_pcm, pcm_blocks, probe
from tapescribe.engine.clip_batches import ClipBatches
from tapescribe.engine.lane_groups import transcribe_lane_groups
from tapescribe.engine.language_detection import DetectedLanguage, detect_over_parts
from tapescribe.engine.languages import language_code, language_name
from tapescribe.engine.models import MULTILINGUAL_MODEL, ModelPool, english_only
from tapescribe.engine.transcriber import DecodeOptions, LanguageFound, Resume, for_transcript, transcribe_windows
from tapescribe.engine.word_alignment import WordAligner, with_words
from tapescribe.errors import BadRequest, UnsupportedMedia
from tapescribe.jobs.routing import choose_model
from tapescribe.jobs.scheduler import DecodeScheduler
from tapescribe.sessions.ingest import judge_duration

LANES, WINDOWS, CLIP_BATCH = "lanes", "windows", "clip batch"
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
    """The audio of one transcription: a file, or (a live session) its chunks in order."""

    path: Path | None = None
    chunks: tuple[Path, ...] = ()

    def blocks(self, start: float = 0.0) -> Iterator[np.ndarray]:
        """16 kHz mono float blocks from `start` seconds on."""
        if self.path is not None:
            return pcm_blocks(self.path, start=start)
        whole = chunks_pcm(list(self.chunks))
        return _skip(whole, start) if start else whole

    def duration(self) -> float:
        """Seconds, as an upload's session records them: the container's word when plausible, else measured."""
        if self.path is None:
            return round(sum(len(block) for block in self.blocks()) / SAMPLE_RATE, 3)
        return round(judge_duration(self.path, probe(self.path).duration, self.path.stat().st_size), 3)


@dataclass
class DecodeHooks:
    """Where a caller looks in while segments are decoded (each optional)."""

    on_language: Callable[[LanguageFound], None] | None = None
    window_done: Callable[[float], None] | None = None  # after each window, at its end in seconds
    between_calls: Callable[[], None] | None = None  # between model calls: a cancel, or giving way
    on_position: Callable[[float], None] | None = None  # lanes: how far the audio is decoded
    samples_read: int = 0  # set by decode as it reads: 0 afterwards means no audio could be decoded


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
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": self.language_probability,
            "model": self.model,
            "model_reason": self.model_reason,
            "detected_language": self.detected_language,
            "detected_language_probability": self.detected_language_probability,
            "segments": [{"id": number, **for_transcript(segment)} for number, segment in enumerate(self.segments)],
        }


class TranscriptionPipeline:
    """Model choice, decoding options and decode plan over `models`, with the server's `settings`."""

    def __init__(self, models: ModelPool, settings: JobSettings) -> None:
        self.models = models
        self.settings = settings
        self.clip_batches = ClipBatches()

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
        model = self.models.get(MULTILINGUAL_MODEL)
        return detect_over_parts(model, blocks(), duration, self.settings.detection_parts, between)

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

    def engine(self, batched: bool) -> str:
        """The decode plan: lanes for every sequential model on a CPU (clips in a clip batch excepted).
        base was kept to windows while lanes were batched (a lane once looped at temperature 1.0 on
        tests/test_lanes_features.py's Spanish file), but windows loop there too under the same sampling
        fallback (142% WER once), and on single-thread decoders base in lanes is 2-3x faster than in windows."""
        if batched:
            return CLIP_BATCH  # a clip: files under 2 minutes decode in lanes as in windows
        return LANES if self.settings.file_lanes > 1 and self.models.plan.shares_calls else WINDOWS

    def model(self, name: str | None, batched: bool, stack: ExitStack) -> Any:
        """The model to decode with (batched on a GPU); a clip batch member's while `stack` is open."""
        model = self.models.for_files(name)
        if batched:
            model = stack.enter_context(self.clip_batches.join(model))
        return model

    def decode(
        self,
        model: Any,
        session: dict[str, Any],
        audio: AudioInput,
        engine: str,
        resume: Resume | None = None,
        hooks: DecodeHooks | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The segments of `audio` from `resume` on, by the plan `engine`, for the model chosen in `session`."""
        resume, hooks = resume or Resume(), hooks or DecodeHooks()
        options = self.options_for(session)
        if not options.word_timestamps:
            return self._decoded(model, audio, options, engine, resume, hooks, hooks.on_language)
        # Words are timed after decoding, so the text is what the decoding without words writes.
        languages = [options.language or resume.language]
        heard = hooks.on_language

        def on_language(found: LanguageFound) -> None:
            languages.append(found.language)
            if heard is not None:
                heard(found)

        segments = self._decoded(model, audio, options, engine, resume, hooks, on_language)
        aligner = WordAligner(
            self.models.get(session.get("model")), audio.blocks(resume.start), resume.start, options.task
        )
        return with_words(segments, aligner, lambda: languages[-1])

    def _decoded(
        self,
        model: Any,
        audio: AudioInput,
        options: DecodeOptions,
        engine: str,
        resume: Resume,
        hooks: DecodeHooks,
        on_language: Callable[[LanguageFound], None] | None,
    ) -> Iterator[dict[str, Any]]:
        """The decoded segments, without words (`hooks` counts the samples read; `on_language` hears the language)."""
        settings = self.settings
        blocks = _counted(audio.blocks(resume.start), hooks)
        if engine == LANES:
            return transcribe_lane_groups(
                model,
                blocks,
                options,
                resume,
                settings.window_seconds,
                settings.file_lanes,
                settings.lane_beam_size,
                on_language,
                hooks.window_done,
                hooks.between_calls,
                hooks.on_position,
                settings.lane_context_tokens,
            )
        return transcribe_windows(
            model,
            blocks,
            options,
            resume,
            settings.window_seconds,
            on_language,
            hooks.window_done,
            audio.blocks,
            hooks.between_calls,
        )

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
            engine = self.engine(slot.batched)
            model = self.model(session.get("model"), slot.batched, stack)
            found: list[LanguageFound] = []
            hooks = DecodeHooks(
                on_language=found.append, window_done=on_position, between_calls=slot.give_way, on_position=on_position
            )
            segments = []
            for segment in self.decode(model, session, audio, engine, hooks=hooks):
                segments.append(segment)
                if on_position is not None:
                    on_position(segment["end"])
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
            engine=engine,
            duration=duration,
            segments=segments,
        )


def _counted(blocks: Iterator[np.ndarray], hooks: DecodeHooks) -> Iterator[np.ndarray]:
    """The blocks as they are, their samples counted into `hooks.samples_read`: a caller tells "decoded
    nothing" (an error, whatever the cause) from "decoded silence" (done, no text)."""
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
