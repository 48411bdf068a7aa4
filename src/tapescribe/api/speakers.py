"""Speakers of a session: find them (again) without transcribing again, and name them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import StrictInt, StringConstraints

from tapescribe.api.deps import checked_speakers, runtime_of
from tapescribe.api.errors import error_responses
from tapescribe.api.schemas import SessionRecord, StatusRecord
from tapescribe.errors import BadRequest
from tapescribe.sessions.ids import checked_session_id
from tapescribe.sessions.speaker_names import forget_match as forget_match_of
from tapescribe.sessions.speaker_names import remember_voice, rename_speaker

router = APIRouter(tags=["speakers"], responses=error_responses(422))


@router.post(
    "/session/{session_id}/speakers",
    status_code=202,
    responses=error_responses(400, 404, 409, 507),
    response_model=StatusRecord,
    response_model_exclude_unset=True,
)
def label_speakers(
    request: Request,
    session_id: str,
    speakers: Annotated[
        StrictInt | Annotated[str, StringConstraints(max_length=10)],
        Body(embed=True, description='"auto", "off", or the number of speakers (a JSON number or a numeric string)'),
    ] = "auto",
) -> dict:
    """Label who speaks when in a transcribed session (queued; the transcript is not made again).
    `off` takes the labels off. 400 naming the extra to install when it is missing."""
    runtime = runtime_of(request)
    session_id = checked_session_id(session_id)
    runtime.sessions.session(session_id)
    return runtime.jobs.label_speakers(session_id, checked_speakers(speakers))


@router.patch(
    "/session/{session_id}/speakers/{speaker}",
    responses=error_responses(400, 404, 409, 507),
    response_model=SessionRecord,
    response_model_exclude_unset=True,
)
def name_speaker(
    request: Request,
    session_id: str,
    speaker: str,
    name: str | None = Body(None, max_length=1000, description="The speaker's name; empty for Speaker N"),
    remember: bool = Body(False, description="Remember this voice: later recordings' speakers with it get the name"),
    forget_match: bool = Body(False, description="This speaker is not the remembered voice that named it"),
) -> dict:
    """Name a speaker ("S1") for the whole session; kept through retranscription. The transcript as it
    was is kept as a version; an empty name goes back to "Speaker N". With `remember`, the voice is kept
    (GET /voices) and names matching speakers of sessions labelled later. `forget_match` undoes a
    remembered voice's naming of this speaker (the name goes, and it is never matched to it again here)."""
    runtime = runtime_of(request)
    session_id = checked_session_id(session_id)
    if forget_match:
        return forget_match_of(runtime.sessions, session_id, speaker)
    if name is None:
        raise BadRequest("Give a name (empty for Speaker N), or forget_match.")
    if remember:
        return remember_voice(runtime.sessions, runtime.speakers.voices, session_id, speaker, name)
    return rename_speaker(runtime.sessions, session_id, speaker, name)
