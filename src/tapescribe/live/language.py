"""Which model captions a live stream that names no model or language: the one its speech needs.

A file job hears its whole recording before it chooses (jobs/routing.py); a stream has only what
came so far. So its opening audio is held, uncaptioned, until it holds `DETECT_SPEECH_SECONDS` of
speech (or a shorter utterance has ended, or the stream has), and then the file jobs' own code
decides: `detect_over_parts` judges that speech with the multilingual model, `choose_model` routes
English to the fast English-only model and every other language to the multilingual one. The
policy then starts on all the held audio, so the first captions are written by a model that speaks
the language, never English-only guesses at Spanish to be taken back later. Silence before the
first speech is not held: it is counted and skipped, so memory stays bounded however long a
stream waits for its first words.

A stream whose request names a model or a language, or a server with a live or pinned model,
starts at once with that model, as before.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.language_detection import detect_over_parts
from tapescribe.engine.models import MULTILINGUAL_MODEL, ModelPool, english_only
from tapescribe.engine.streaming import StreamingOptions, StreamingTranscriber
from tapescribe.engine.whisper_adapter import speech_timestamps
from tapescribe.errors import ModelUnavailable
from tapescribe.jobs.routing import choose_model

log = logging.getLogger(__name__)

# Speech heard before the language is judged. On the shared recordings (bench/live_language.py) the
# choice came 2.8-4.2 s into each (after 1 s of silence) and was right on 22 of 22, now that speech
# under 10 s is padded to 30 s as the library pads it (whisper_adapter.language_probabilities);
# encoded unpadded, spoken digits (vosk_digits) were judged Chinese.
DETECT_SPEECH_SECONDS = 2.0
MIN_SPEECH_SECONDS = 0.5  # an utterance shorter than this ("mm") decides nothing unless the stream ends
MAX_HOLD_SECONDS = 8.0  # audio held at most (from the first speech) before judging on what speech there is
KEEP_SILENCE_SECONDS = 1.0  # silence kept before the first speech, so its first syllable is not cut


@dataclass(frozen=True)
class LiveChoice:
    """The live model chosen for a stream's language, and why (as a file job records it)."""

    model: str
    language: str | None
    reason: str
    probability: float | None = None

    def message(self) -> dict[str, Any]:
        """The `language` message sent to the client once the choice is made."""
        return {
            "type": "language",
            "language": self.language,
            "model": self.model,
            "probability": self.probability,
            "reason": self.reason,
        }


class LiveLanguage:
    """Holds a stream's opening audio until its language is known, then starts its policy.

    Driven by the stream's worker thread only. `live_model` is the model the request fixed, or None
    when the language heard decides.
    """

    def __init__(self, models: ModelPool, live_model: str | None, options: StreamingOptions) -> None:
        self.models = models
        self.live_model = live_model
        self.options = options
        self.choice: LiveChoice | None = None  # set once chosen by the language heard
        self._held: list[np.ndarray] = []
        self._held_samples = 0
        self._skipped = 0  # samples of silence before the held audio, not kept
        if live_model is None:  # loaded (joined, the first time) while the first words are spoken, not after
            threading.Thread(target=self._warm, name="live-language-warm", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.models.get(MULTILINGUAL_MODEL)
        except Exception:  # said when detection asks for it again (or its absence is handled there)
            log.debug("warming the multilingual model failed", exc_info=True)

    @property
    def held_seconds(self) -> float:
        """Audio held, waiting for the language to be known."""
        return self._held_samples / SAMPLE_RATE

    def policy(self, samples: np.ndarray, ended: bool) -> StreamingTranscriber | None:
        """The stream's policy, fed every sample heard so far, once its model is known; None while
        the opening is still being listened to (nothing to caption yet)."""
        if len(samples):
            self._held.append(samples)
            self._held_samples += len(samples)
        if not self._held_samples:
            return None
        if self.live_model is not None:
            return self._start(self.live_model, self.options)
        self._held = [np.concatenate(self._held)]
        heard = self._listen()
        if not ended and not heard:
            return None
        self.choice = self._choose(self._held[0] if heard is not None else None)
        return self._start(self.choice.model, replace(self.options, language=self.choice.language))

    def _listen(self) -> bool | None:
        """Whether the held audio holds enough speech to judge; None when it holds none at all (its
        silence is then skipped, but for a moment)."""
        audio = self._held[0]
        vad = {
            "threshold": self.options.vad_threshold,
            "min_silence_duration_ms": int(self.options.utterance_end_silence * 1000),
            "speech_pad_ms": int(self.options.speech_pad * 1000),
            "min_speech_duration_ms": 100,
        }
        spans = speech_timestamps(audio, **vad) if len(audio) >= 512 else []
        if not spans:
            self._skip(len(audio) - round(KEEP_SILENCE_SECONDS * SAMPLE_RATE))
            return None
        speech = sum(span["end"] - span["start"] for span in spans) / SAMPLE_RATE
        after = (len(audio) - spans[-1]["end"]) / SAMPLE_RATE  # silence after the last speech
        utterance_over = after >= self.options.utterance_end_silence and speech >= MIN_SPEECH_SECONDS
        held = (len(audio) - spans[0]["start"]) / SAMPLE_RATE
        return speech >= DETECT_SPEECH_SECONDS or utterance_over or held >= MAX_HOLD_SECONDS

    def _skip(self, samples: int) -> None:
        if samples > 0:
            self._held = [self._held[0][samples:]]
            self._held_samples -= samples
            self._skipped += samples

    def _choose(self, audio: np.ndarray | None) -> LiveChoice:
        """As a file job chooses (jobs/routing.py), on the speech heard so far (None: no speech at all)."""

        def detect():
            if audio is None:
                return None
            multilingual = self.models.get(MULTILINGUAL_MODEL)
            return detect_over_parts(multilingual, [audio], len(audio) / SAMPLE_RATE, parts=1)

        chosen: dict[str, Any] = {}
        with contextlib.suppress(ModelUnavailable):  # no multilingual model: English is all there is
            chosen = choose_model({"model": None, "requested_language": None}, self.models, detect)
        if not chosen:
            return LiveChoice(self.models.for_language(None), None, "no multilingual model to detect a language with")
        model = chosen["model"]
        language = chosen.get("detected_language") or ("en" if english_only(model) else None)
        return LiveChoice(model, language, chosen["model_reason"], chosen.get("detected_language_probability"))

    def _start(self, model: str, options: StreamingOptions) -> StreamingTranscriber:
        policy = StreamingTranscriber(self.models.get(model), options)
        policy.skip(self._skipped)
        for held in self._held:
            policy.feed(held)
        self._held, self._held_samples = [], 0
        return policy
