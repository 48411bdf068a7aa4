"""Request -> the process's Runtime, and the checks every route shares."""

from __future__ import annotations

from fastapi import Request

from tapescribe.engine.speakers import require_speakers
from tapescribe.errors import BadRequest
from tapescribe.jobs.pipeline import checked_language as checked_language  # the API's language check
from tapescribe.jobs.pipeline import checked_request
from tapescribe.jobs.speakers import speaker_request
from tapescribe.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def job_fields(runtime: Runtime, form: dict[str, str]) -> dict:
    """The per-job choices a client may send with an upload, checked before anything is stored."""
    # model None: no model pinned, the job chooses by language (jobs/routing.py); 400 for an English-only
    # model asked for another language (the CLI is refused by the same check)
    request = checked_request(runtime.models, form.get("model"), form.get("language"))
    options: dict = {}
    word_timestamps = checked_switch(form.get("word_timestamps"), "word_timestamps")
    if word_timestamps is not None:  # absent: the server's setting (word_timestamps, on by default)
        options["word_timestamps"] = word_timestamps
    if form.get("prompt"):
        options["prompt"] = form["prompt"][:2000]
    speakers = checked_speakers(form.get("speakers"), runtime.settings.speakers)
    if speakers is not None:
        options["speakers"] = speakers
    return {**request.fields(), "options": options}


def checked_switch(value: str | None, name: str) -> bool | None:
    """A yes/no form field: None when absent or empty, else True or False; BadRequest for anything else."""
    value = (value or "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise BadRequest(f"{name} must be true or false.")


def checked_speakers(value: object, default: str = "off") -> str | int | None:
    """A request's `speakers` (the server's setting when absent): None, "auto" or a count. 400 when
    labels are asked for and the optional extra that makes them is not installed."""
    request = speaker_request(default if value is None or value == "" else value)
    if request is not None:
        require_speakers()
    return request
