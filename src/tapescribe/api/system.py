"""The web page, health and the installed models."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from tapescribe import __version__
from tapescribe.api.deps import runtime_of
from tapescribe.api.schemas import Health, ModelList
from tapescribe.engine.speakers import speakers_installed
from tapescribe.errors import BadRequest
from tapescribe.jobs.speakers import MAX_SPEAKER_COUNT, speaker_request
from tapescribe.process_memory import resident_memory

router = APIRouter(tags=["system"])

INDEX_HTML = Path(__file__).resolve().parent.parent / "web" / "index.html"


@router.get("/", include_in_schema=False)
def web_ui() -> FileResponse:
    return FileResponse(INDEX_HTML, media_type="text/html")


@router.get("/health", response_model=Health)
def health(request: Request) -> dict:
    runtime = runtime_of(request)
    return {
        "status": "ok",
        "version": __version__,
        "default_model": runtime.models.default_name,
        "queue_pending": runtime.queue.pending(),
        "decodes": asdict(runtime.decodes.state()),
        "memory": {**process_memory(), "loaded_models": runtime.models.loaded()},
        "max_upload_bytes": runtime.settings.max_upload_bytes,
        "login_required": runtime.settings.api_key_value() is not None or runtime.users.enabled(),
    }


def process_memory() -> dict[str, int]:
    """This process's resident memory now and at its peak, in bytes."""
    rss, peak = resident_memory()
    return {"rss_bytes": rss, "peak_rss_bytes": max(peak, rss)}


@router.get("/models", response_model=ModelList)
def models(request: Request) -> dict:
    runtime = runtime_of(request)
    return {
        "default": runtime.models.default_name,
        "models": runtime.models.offered(),
        "speakers": {
            "available": speakers_installed(),
            "default": server_speakers(runtime.settings.speakers),
            "max": MAX_SPEAKER_COUNT,
        },
    }


def server_speakers(setting: str) -> str | int:
    """The server's `speakers` setting as a request would carry it: "off", "auto" or a number."""
    try:
        request = speaker_request(setting)
    except BadRequest:
        return "off"
    return "off" if request is None else request
