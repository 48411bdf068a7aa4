"""Remembered voices: list them, forget one. (A voice is remembered by naming a speaker with
`remember`: PATCH /session/<id>/speakers/<speaker>.)"""

from __future__ import annotations

from fastapi import APIRouter, Request

from tapescribe.api.deps import runtime_of
from tapescribe.api.errors import error_responses
from tapescribe.api.identity import caller_of
from tapescribe.api.schemas import Deleted, VoiceList
from tapescribe.errors import NotFound
from tapescribe.sessions.voices import checked_voice_id

router = APIRouter(tags=["voices"])


@router.get("/voices", response_model=VoiceList)
def list_voices(request: Request) -> dict:
    """Every remembered voice, oldest first: a later recording's speaker with a voice at least
    `match_threshold` alike is named by it (the transcript's `speaker_matches` says so)."""
    runtime = runtime_of(request)
    voices = [
        {k: v for k, v in voice.items() if k != "embedding"}
        for voice in runtime.speakers.voices.all()
        if _visible(request, voice)
    ]
    return {"voices": voices, "match_threshold": runtime.speakers.match_threshold}


@router.delete("/voices/{voice_id}", responses=error_responses(404), response_model=Deleted)
def forget_voice(request: Request, voice_id: str) -> dict:
    """Forget a remembered voice: later recordings are no longer named by it (names it already gave stay,
    as edits the owner can change)."""
    voice_id = checked_voice_id(voice_id)
    voices = runtime_of(request).speakers.voices
    if not _visible(request, voices.get(voice_id)):
        raise NotFound("No such voice.")  # another person's voice, exactly as a missing one
    voices.forget(voice_id)
    return {"deleted": voice_id}


def _visible(request: Request, voice: dict) -> bool:
    """Whether the caller may see `voice`: every voice without users, else only their own."""
    name = caller_of(request).name
    return name is None or voice.get("owner") == name
