"""Speakers of a session: find them (again) without transcribing again, and name them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import StrictInt, StringConstraints

from tapescribe.api.deps import checked_speakers, runtime_of
from tapescribe.api.errors import error_responses
from tapescribe.api.schemas import SessionRecord, StatusRecord
from tapescribe.sessions.ids import checked_session_id
from tapescribe.sessions.speaker_names import rename_speaker

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
    request: Request, session_id: str, speaker: str, name: str = Body(..., embed=True, max_length=1000)
) -> dict:
    """Name a speaker ("S1") for the whole session; kept through retranscription. The transcript as it
    was is kept as a version; an empty name goes back to "Speaker N"."""
    return rename_speaker(runtime_of(request).sessions, checked_session_id(session_id), speaker, name)
