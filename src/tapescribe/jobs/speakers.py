"""SpeakerLabelling: the job's step after transcription that says who speaks when.

Its result is checkpointed in speakers.json (the turns, and what was asked for) before the transcript
is labelled, so a crash costs at most the diarization in progress, and labelling a new transcript of
the same audio (after a retranscription, or asking again) reuses the turns instead of diarizing again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from tapescribe.engine.audio import chunks_pcm, pcm_blocks
from tapescribe.engine.speaker_labels import SpeakerTurn, label_segments
from tapescribe.engine.speakers import Diarization, SpeakerDiarizer
from tapescribe.errors import BadRequest, Conflict, NotFound, TapescribeError
from tapescribe.sessions.locks import Lease, LeaseLost
from tapescribe.sessions.service import DONE, PROCESSING, SessionService, utc_now
from tapescribe.sessions.store import SPEAKERS_FILE
from tapescribe.sessions.voices import VoiceStore

log = logging.getLogger(__name__)

SPEAKERS_STEP = "speakers"
MAX_SPEAKER_COUNT = 20


def speaker_request(value: object) -> str | int | None:
    """A client's or the operator's `speakers`: None for off, "auto", or a number of speakers."""
    text = str(value if value is not None else "").strip().lower()
    if text in ("", "off", "false", "no", "0", "none"):
        return None
    if text in ("auto", "on", "true", "yes"):
        return "auto"
    if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_SPEAKER_COUNT:
        return int(text)
    raise BadRequest(f"speakers must be 'auto', 'off' or a number of speakers from 1 to {MAX_SPEAKER_COUNT}.")


def fewer_found(request: str | int, found: int) -> str | None:
    """The status message when fewer voices were told apart than the number asked for."""
    if not isinstance(request, int) or found >= request:
        return None
    return f"Asked for {request} speakers; only {found} {'voice was' if found == 1 else 'voices were'} told apart."


def wanted(session: dict[str, Any]) -> str | int | None:
    """What the session asked for (set at upload, or by POST /session/<id>/speakers)."""
    return (session.get("options") or {}).get("speakers")


class SpeakerLabelling:
    def __init__(
        self, sessions: SessionService, diarizer: SpeakerDiarizer, voices: VoiceStore, match_threshold: float
    ) -> None:
        self.sessions = sessions
        self.diarizer = diarizer
        self.voices = voices
        self.match_threshold = match_threshold

    def diarization(self, session_id: str, request: str | int) -> Diarization:
        """The session's speaker turns and voices for this request: from the checkpoint when it answers
        the same request, else diarized now from the stored audio (streamed) and checkpointed."""
        store = self.sessions.store
        checkpoint = store.read(session_id, SPEAKERS_FILE) or {}
        if checkpoint.get("request") == request and isinstance(checkpoint.get("turns"), list):
            turns = [SpeakerTurn(turn["speaker"], turn["start"], turn["end"]) for turn in checkpoint["turns"]]
            return Diarization(turns, checkpoint.get("voices") or {})
        audio = store.audio_path(session_id)
        if audio is None and not store.chunk_paths(session_id):
            raise Conflict("This session has no audio to find speakers in.")
        blocks = pcm_blocks(audio) if audio is not None else chunks_pcm(store.chunk_paths(session_id))
        clock = time.monotonic()
        found = self.diarizer.diarize(blocks, request if isinstance(request, int) else None)
        store.write(
            session_id,
            SPEAKERS_FILE,
            {
                "request": request,
                "made": utc_now(),
                "seconds": round(time.monotonic() - clock, 3),
                "merge_threshold": self.diarizer.settings.merge_threshold,
                "speakers": sorted({turn.speaker for turn in found.turns}, key=lambda speaker: int(speaker[1:])),
                "turns": [turn.as_dict() for turn in found.turns],
                "voices": found.voices,
            },
        )
        return found

    def turns(self, session_id: str, request: str | int) -> list[SpeakerTurn]:
        return self.diarization(session_id, request).turns

    def label(self, session_id: str, request: str | int) -> dict[str, Any]:
        """Put speakers on the session's transcript (each word, each segment; split where they change), and
        name the speakers whose voice is remembered (`speaker_matches`, with the similarity)."""
        found = self.diarization(session_id, request)
        transcription = self.sessions.transcription(session_id) or {"text": "", "segments": []}
        segments = label_segments(transcription.get("segments") or [], found.turns)
        speakers = sorted({s["speaker"] for s in segments if s.get("speaker")}, key=lambda speaker: int(speaker[1:]))
        session = self.sessions.session(session_id)
        voices = {speaker: voice for speaker, voice in found.voices.items() if speaker in speakers}
        refused = session.get("refused_voice_matches") or {}
        matches = self.voices.match(voices, self.match_threshold, refused, session.get("owner"))
        labelled = {
            **{k: v for k, v in transcription.items() if k != "speaker_matches"},
            "segments": [{**segment, "id": number} for number, segment in enumerate(segments)],
            "speakers": speakers,
            **({"speaker_matches": matches} if matches else {}),
        }
        self.sessions.save_transcription(session_id, labelled)
        given = session.get("speaker_names") or {}
        named = {speaker: match["name"] for speaker, match in matches.items() if not given.get(speaker)}
        if named:  # the owner's own names stay; a remembered voice names the speakers nobody named
            self.sessions.update_session(session_id, speaker_names={**given, **named})
        return labelled

    def run_step(self, session_id: str, runs: list[dict[str, Any]], lease: Lease, write: Callable[..., Any]) -> str:
        """The job's step after transcription: who speaks when. Its status says `step: speakers` first, so
        a restart goes on with this step (from speakers.json when the turns were saved) and never
        transcribes again. A failure here leaves the transcript done, with the reason in the message.
        Every write goes through the job's `write` (lease checked, disk-full waited out)."""
        sessions = self.sessions
        request = wanted(sessions.session(session_id))
        if request is None:
            write(sessions.set_status, session_id, DONE, progress=1.0, runs=runs, fence=lease.check)
            return DONE
        write(
            sessions.set_status,
            session_id,
            PROCESSING,
            progress=0.999,
            message="Finding who speaks when.",
            step=SPEAKERS_STEP,
            runs=runs,
            fence=lease.check,
        )
        message = None
        counts: dict[str, Any] = {}
        clock = time.monotonic()
        try:
            found = len(write(self.label, session_id, request).get("speakers") or [])
            counts = {"speakers_requested": request, "speakers_found": found}
            message = fewer_found(request, found)
        except (NotFound, LeaseLost):
            raise
        except Exception as error:
            log.exception("speaker labels for %s failed", session_id)
            detail = error.message if isinstance(error, TapescribeError) else f"{type(error).__name__}: {error}"
            message = f"Transcribed, but speaker labels failed: {detail}"
        if runs:
            runs[-1]["speakers_seconds"] = round(time.monotonic() - clock, 3)
        lease.confirm()
        write(
            sessions.set_status, session_id, DONE, progress=1.0, message=message, runs=runs, fence=lease.check, **counts
        )
        return DONE
