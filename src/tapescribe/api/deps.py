"""Request -> the process's Runtime, and the checks every route shares."""

from __future__ import annotations

from fastapi import Request

from tapescribe.engine.languages import language_code
from tapescribe.errors import BadRequest
from tapescribe.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


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


def job_fields(runtime: Runtime, form: dict[str, str]) -> dict:
    """The per-job choices a client may send with an upload, checked before anything is stored."""
    language = checked_language(form.get("language"))
    # None: no model pinned, the job chooses by language (jobs/routing.py); 400 for an English-only
    # model asked for another language
    model = runtime.models.check((form.get("model") or "").strip() or None, language)
    options: dict = {}
    if form.get("word_timestamps", "").lower() in ("1", "true", "yes", "on"):
        options["word_timestamps"] = True
    if form.get("prompt"):
        options["prompt"] = form["prompt"][:2000]
    return {"requested_language": language, "model": model, "options": options}
