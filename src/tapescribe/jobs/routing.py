"""Which model a job uses, and why, decided once per session before its first segment.

With a model pinned (by the request or the server's TAPESCRIBE_MODEL) that model is used. Otherwise
the language decides: the one requested, else the one detected on the audio itself by the
multilingual model over several parts of the file. English goes to the fast English-only model,
every other language to the multilingual one, so no language is ever forced through a model that
cannot write it. The choice is saved in the session (`model`, `model_reason`, `detected_language`,
`detected_language_probability`), so a resumed job uses it and never detects again.

A request that pins an English-only model without a language still has the language detected (and
recorded, the model kept): that is the one case where the audio may be in a language the model
cannot write, and the page warns about it. A model pinned by the server (TAPESCRIBE_MODEL) detects
nothing; its operator chose one model for everything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from tapescribe.engine.language_detection import DetectedLanguage
from tapescribe.engine.languages import language_name
from tapescribe.engine.models import ModelPool, english_only
from tapescribe.errors import ModelUnavailable

PINNED_REASON = "pinned by the server (TAPESCRIBE_MODEL)"
REQUESTED_REASON = "chosen in the request"


def _kind(model: str) -> str:
    return "English model" if english_only(model) else "multilingual model"


def _name(code: str) -> str:
    return (language_name(code) or code).capitalize()


def choose_model(
    session: dict[str, Any], models: ModelPool, detect: Callable[[], DetectedLanguage | None]
) -> dict[str, Any]:
    """The session fields that record the model choice; `detect` runs only when the language decides, or to
    record what an English-only model the request chose is about to hear."""
    chosen = session.get("model")
    if chosen == models.pinned and chosen:
        return {"model": chosen, "model_reason": PINNED_REASON}
    if chosen:
        choice = {"model": chosen, "model_reason": REQUESTED_REASON}
        if english_only(chosen) and not session.get("requested_language"):
            with contextlib.suppress(ModelUnavailable):  # no multilingual model here: nothing to warn with
                choice.update(_detection(detect()))
        return choice
    if models.pinned is not None:
        return {"model": models.pinned, "model_reason": PINNED_REASON}
    requested = session.get("requested_language")
    if requested:
        model = models.for_language(requested)
        return {"model": model, "model_reason": f"{_name(requested)} requested: {_kind(model)}"}
    found = detect()
    if found is None:
        model = models.for_language(None)
        return {"model": model, "model_reason": f"no audio to detect a language on: {_kind(model)}"}
    model = models.for_language(found.language)
    where = f"on {found.parts} part{'s' if found.parts != 1 else ''}" if found.parts else "on the opening (no speech)"
    return {
        "model": model,
        "model_reason": f"detected {_name(found.language)} ({found.probability:.2f}) {where}: {_kind(model)}",
        **_detection(found),
    }


def _detection(found: DetectedLanguage | None) -> dict[str, Any]:
    if found is None:
        return {}
    return {"detected_language": found.language, "detected_language_probability": round(found.probability, 4)}
