"""Speaker names: "Speaker 1" until the owner names them, once for the whole session.

Names live in session.json (`speaker_names`, by speaker id), not in the transcript, so they survive
retranscription: the new transcript is labelled from the same turns of the same audio, so S1 is
the same voice. Each rename keeps the transcript as it was, with the names it had, as a version.
"""

from __future__ import annotations

import re
from typing import Any

from tapescribe.engine.speaker_labels import default_name
from tapescribe.errors import BadRequest, Conflict, NotFound
from tapescribe.sessions.files import utc_now
from tapescribe.sessions.service import UNFINISHED, SessionService

MAX_NAME_LENGTH = 100
_SPEAKER_ID = re.compile(r"S[1-9][0-9]?")


def speaker_names(session: dict[str, Any], transcription: dict[str, Any] | None) -> dict[str, str]:
    """Every speaker of the transcript with the name to show: the owner's, else "Speaker N"."""
    given = session.get("speaker_names") or {}
    speakers = (transcription or {}).get("speakers") or []
    return {speaker: given.get(speaker) or default_name(speaker) for speaker in speakers}


def rename_speaker(sessions: SessionService, session_id: str, speaker: str, name: str) -> dict[str, Any]:
    """Name one speaker for the whole session; an empty name goes back to "Speaker N"."""
    if not _SPEAKER_ID.fullmatch(speaker or ""):
        raise NotFound("No such speaker.")
    name = " ".join((name or "").split())
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"A speaker's name is limited to {MAX_NAME_LENGTH} characters.")
    with sessions.writing(session_id):  # a read-modify-write of session.json: one at a time
        return _rename_speaker(sessions, session_id, speaker, name)


def _rename_speaker(sessions: SessionService, session_id: str, speaker: str, name: str) -> dict[str, Any]:
    if sessions.status(session_id)["status"] in UNFINISHED:
        raise Conflict("The transcript is still being made; name the speakers once it is done.")
    session = sessions.session(session_id)
    transcription = sessions.transcription(session_id) or {}
    if speaker not in (transcription.get("speakers") or []):
        raise NotFound(f"This transcript has no speaker {speaker}.")
    names = dict(session.get("speaker_names") or {})
    sessions.store.save_version(session_id, "before-speaker-rename", {**transcription, "speaker_names": dict(names)})
    history = list(session.get("speaker_names_history") or [])
    history.append({"speaker": speaker, "name": names.get(speaker), "until": utc_now()})
    if name:
        names[speaker] = name
    else:
        names.pop(speaker, None)
    # the segments in the index get the new name too: search by speaker finds it
    return sessions.update_session(session_id, speaker_names=names, speaker_names_history=history)


def remove_speaker_labels(sessions: SessionService, session_id: str) -> None:
    """Take the speakers off the transcript (speakers=off); segments split at a change stay split."""
    with sessions.writing(session_id):
        _remove_speaker_labels(sessions, session_id)


def _remove_speaker_labels(sessions: SessionService, session_id: str) -> None:
    transcription = sessions.transcription(session_id)
    if not transcription or "speakers" not in transcription:
        return
    segments = []
    for segment in transcription.get("segments") or []:
        words = [{k: v for k, v in word.items() if k != "speaker"} for word in segment.get("words") or []]
        plain = {k: v for k, v in segment.items() if k != "speaker"}
        segments.append({**plain, "words": words} if "words" in segment else plain)
    transcription = {k: v for k, v in transcription.items() if k != "speakers"}
    sessions.save_transcription(session_id, {**transcription, "segments": segments})
