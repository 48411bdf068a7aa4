"""Speaker names: "Speaker 1" until the owner names them, once for the whole session.

Names live in session.json (`speaker_names`, by speaker id), not in the transcript, so they survive
retranscription: the new transcript is labelled from the same turns of the same audio, so S1 is
the same voice. Each rename keeps the transcript as it was, with the names it had, as a version.
A named speaker's voice can be remembered (sessions/voices.py); a speaker a remembered voice named
can be told it is not that voice (`forget_match`).
"""

from __future__ import annotations

import re
from typing import Any

from tapescribe.engine.speaker_labels import default_name
from tapescribe.errors import BadRequest, Conflict, NotFound
from tapescribe.sessions.files import utc_now
from tapescribe.sessions.service import UNFINISHED, SessionService
from tapescribe.sessions.store import SPEAKERS_FILE
from tapescribe.sessions.voices import VoiceStore

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


def remember_voice(
    sessions: SessionService, voices: VoiceStore, session_id: str, speaker: str, name: str
) -> dict[str, Any]:
    """Name a speaker and keep their voice (from this session's speakers.json), so that later recordings'
    speakers with that voice are named by it; the session records the voice's id (`remembered_voices`)."""
    name = " ".join((name or "").split())
    if not name:
        raise BadRequest("Give the speaker a name to remember their voice by.")
    if not _SPEAKER_ID.fullmatch(speaker or ""):
        raise NotFound("No such speaker.")
    embedding = ((sessions.store.read(session_id, SPEAKERS_FILE) or {}).get("voices") or {}).get(speaker)
    if not embedding:
        raise Conflict("This speaker's voice was not kept when the speakers were found; find them again first.")
    with sessions.writing(session_id):
        _rename_speaker(sessions, session_id, speaker, name[:MAX_NAME_LENGTH])
        session = sessions.session(session_id)
        source = {"session": session_id, "speaker": speaker}
        voice = voices.remember(name[:MAX_NAME_LENGTH], embedding, source, session.get("owner"))
        remembered = {**(session.get("remembered_voices") or {}), speaker: voice["id"]}
        return sessions.update_session(session_id, remembered_voices=remembered)


def forget_match(sessions: SessionService, session_id: str, speaker: str) -> dict[str, Any]:
    """Undo a remembered voice naming this speaker: the match leaves the transcript, the name it gave goes
    back to "Speaker N" (unless the owner has renamed the speaker since), and labelling this session again
    never takes this speaker for that voice. The transcript as it was is kept as a version."""
    if not _SPEAKER_ID.fullmatch(speaker or ""):
        raise NotFound("No such speaker.")
    with sessions.writing(session_id):
        transcription = sessions.transcription(session_id) or {}
        matches = dict(transcription.get("speaker_matches") or {})
        match = matches.pop(speaker, None)
        if match is None:
            raise NotFound(f"Speaker {speaker} was not named by a remembered voice.")
        session = sessions.session(session_id)
        sessions.store.save_version(session_id, "before-forget-match", transcription)
        rest = {k: v for k, v in transcription.items() if k != "speaker_matches"}
        sessions.save_transcription(session_id, {**rest, **({"speaker_matches": matches} if matches else {})})
        names = dict(session.get("speaker_names") or {})
        if names.get(speaker) == match["name"]:
            names.pop(speaker)
        refused = {**(session.get("refused_voice_matches") or {}), speaker: match["voice"]}
        return sessions.update_session(session_id, speaker_names=names, refused_voice_matches=refused)
