"""The engine seam: what the rest of tapescribe needs of a speech engine, and nothing of how it works.

- `SpeechModel`: a loaded model as decode plans and the live policy call it (`transcribe` over one
  piece of audio, `detect_language`). faster-whisper's WhisperModel is one; its adapter
  (engine/whisper_adapter.py) is the only module that reaches past these two calls into the
  library (tokenizer, CTranslate2 model, feature extractor, a segment's cycle).
- `Engine`: what the pipeline (jobs/pipeline.py) asks of an engine: load a model by name, detect the
  language of a recording, and decode a stream of audio blocks by a decode plan (engine/plans/)
  into typed segments and words (engine/records.py), calling the one `DecodeHooks` object as it goes.
  engine/whisper_engine.py is faster-whisper's; tests/fast/test_engine_seam.py runs a scripted one
  through the real job.
- `DecodeHooks`, `LanguageFound`: what a caller hears while a recording decodes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from tapescribe.engine.language_detection import DetectedLanguage
    from tapescribe.engine.plans import Plan, PlanSettings
    from tapescribe.engine.records import Segment
    from tapescribe.engine.transcriber import DecodeOptions, Resume


@dataclass
class LanguageFound:
    language: str
    probability: float


@dataclass
class DecodeHooks:
    """Where a caller looks in while segments are decoded (each optional), passed as one object."""

    on_language: Callable[[LanguageFound], None] | None = None
    window_done: Callable[[float], None] | None = None  # after each window, at its end in seconds
    between_calls: Callable[[], None] | None = None  # between model calls: a cancel, or giving way
    on_position: Callable[[float], None] | None = None  # lanes: how far the audio is decoded
    samples_read: int = 0  # set by decode as it reads: 0 afterwards means no audio could be decoded


class SpeechModel(Protocol):
    """A loaded model as the decode plans call it: `transcribe(audio, language=..., initial_prompt=...,
    clip_timestamps=..., task=..., beam_size=..., word_timestamps=..., ...)` returns (segments, info) as
    faster-whisper's does; `detect_language(audio=...)` returns (language, probability, all)."""

    @property
    def transcribe(self) -> Callable[..., tuple[Iterable[Any], Any]]: ...

    @property
    def detect_language(self) -> Callable[..., tuple[str, float, Any]]: ...


class Engine(Protocol):
    """A speech engine as the pipeline uses it (engine/whisper_engine.py: faster-whisper's)."""

    def load(self, name: str | None, plan: Plan, stack: ExitStack) -> SpeechModel:
        """The model `name` to decode by `plan` with, held while `stack` is open (a clip batch's member)."""
        ...

    def detect_language(
        self, blocks: Iterable[np.ndarray], duration: float, parts: int, between: Callable[[], None] | None
    ) -> DetectedLanguage | None:
        """The language of a recording (its blocks, `duration` seconds), judged on `parts` parts of it."""
        ...

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
        """The segments of `blocks` from resume.start on, in time order, each with its words when
        `options.word_timestamps` asks for them (the text the same either way), a generator that its
        caller closes to stop early (a cancel, a lost lease);
        its fields as engine/transcriber.segment_record makes them (`window_start` a resume point, `tokens`
        the next window's context), which the journal keeps."""
        ...
