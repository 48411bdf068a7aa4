"""JobControl: accepting uploads as jobs, running them on the queue or at once, cancelling, retrying, and
recovering after a restart. The API calls these; it never runs a job or touches the queue itself."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tapescribe.errors import (
    DISK_FULL_MESSAGE,
    Conflict,
    InsufficientStorage,
    NotFound,
    ServerBusy,
    ServerStopping,
    TranscriptionFailed,
    is_disk_full,
)
from tapescribe.jobs.queue import JobQueue
from tapescribe.jobs.scheduler import RETRY_AFTER_SECONDS
from tapescribe.jobs.speakers import SPEAKERS_STEP
from tapescribe.jobs.transcription import CANCEL_MARKER, TranscriptionJob
from tapescribe.sessions.ingest import accept_audio
from tapescribe.sessions.service import (
    CANCELLED,
    DONE,
    ERROR,
    QUEUED,
    UNFINISHED,
    SessionService,
)
from tapescribe.sessions.speaker_names import remove_speaker_labels

log = logging.getLogger(__name__)


class JobControl:
    def __init__(self, sessions: SessionService, queue: JobQueue, job: TranscriptionJob) -> None:
        self.sessions = sessions
        self.queue = queue
        self.job = job

    def accept_upload(
        self, session_id: str, received: Path, *, source: str, filename: str | None, fields: dict[str, Any], queue: bool
    ) -> dict[str, Any]:
        """Make a received upload a session (and queue it when `queue`). Undecodable bytes are kept as an
        error session (UnsupportedMedia is raised). All or nothing on a full disk: the client is answered
        507 and sends it again, so a session half-made (files without index row or queue entry, stuck in
        `queued`) is withdrawn rather than kept as a duplicate nobody was told about."""
        try:
            session = accept_audio(
                self.sessions,
                session_id,
                received,
                source=source,
                filename=filename,
                initial_status=QUEUED,
                fields=fields,
            )
            if queue:
                self.submit(session_id)
        except Exception as error:
            if not is_disk_full(error):
                raise
            self.sessions.withdraw(session_id)
            raise InsufficientStorage(DISK_FULL_MESSAGE) from error
        return session

    def transcribe_now(
        self, session_id: str, on_segment: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Run a session's job in the caller's thread (`/transcribe`, `/v1`); its transcript, or
        TranscriptionFailed saying why (the session keeps its audio and its status says the same).
        It waits its turn for a decode slot; when too many requests wait already, ServerBusy (503) and
        the session is withdrawn, as the client sends the audio again. When the server stops meanwhile,
        ServerStopping (503 too) names the session, which is kept and transcribed at the next start."""
        try:
            state = self.job.run(session_id, on_segment, refuse_when_busy=True)
        except ServerStopping as error:  # kept, unlike a refusal: its status says queued or processing
            raise ServerStopping(
                "The server is stopping: the recording is kept as this session and is transcribed when the "
                "server starts again.",
                session_id=session_id,
                retry_after_seconds=error.details.get("retry_after_seconds", RETRY_AFTER_SECONDS),
            ) from error
        except ServerBusy:
            self.sessions.withdraw(session_id)
            raise
        if state != DONE:
            message = self.sessions.status(session_id).get("message") or f"Transcription ended as {state}."
            raise TranscriptionFailed(message, session_id=session_id)
        return self.sessions.transcription(session_id) or {}

    def check_room(self) -> None:
        """ServerBusy now, before an inline request's upload is received, if it would be refused."""
        self.job.scheduler.check_room()

    def submit(self, session_id: str) -> None:
        """Enqueue only after the session's files are saved (a crash before this is caught by recover)."""
        self.queue.enqueue(session_id, self.sessions.session(session_id).get("duration"))

    def cancel(self, session_id: str) -> dict:
        """All or nothing: the job stops at the marker, which is made only once the new status.json is
        written beside the old one (the write a full disk refuses) and right before it replaces it. An
        error answered (507) leaves no marker, so the session goes on as if nothing was asked."""
        with self.sessions.writing(session_id):  # a read-modify-write of the status: one at a time
            status = self.sessions.status(session_id)
            if status["status"] not in UNFINISHED:
                raise Conflict(f"Only queued or processing sessions can be cancelled; this one is {status['status']}.")
            marker = self.sessions.store.dir(session_id) / CANCEL_MARKER
            try:
                return self.sessions.set_status(
                    session_id,
                    CANCELLED,
                    message="Cancelled by the user.",
                    runs=status.get("runs", []),
                    fence=marker.touch,
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    if self.sessions.status(session_id)["status"] != CANCELLED:  # not replaced: take the marker back
                        marker.unlink(missing_ok=True)
                raise

    def retry(self, session_id: str) -> dict:
        """Queue an errored or cancelled session again; it continues after the segments already saved."""
        with self.sessions.writing(session_id):  # a read-modify-write of the status: one at a time
            status = self.sessions.status(session_id)
            if status["status"] not in (ERROR, CANCELLED):
                raise Conflict(f"Only sessions in error or cancelled can be retried; this one is {status['status']}.")
            if self.sessions.store.audio_path(session_id) is None and not self.sessions.store.chunk_paths(session_id):
                raise Conflict("This session has no audio to transcribe.")
            with contextlib.suppress(FileNotFoundError):
                (self.sessions.store.dir(session_id) / CANCEL_MARKER).unlink()
            record = self.sessions.set_status(session_id, QUEUED, progress=0.0, runs=status.get("runs", []))
            self.submit(session_id)
            return record

    def retranscribe(self, session_id: str, model: str | None, language: str | None) -> dict:
        """Transcribe again (another model or language; None: chosen by language as for an upload). The
        current transcript, edits included, is kept as a version; the new one replaces it when done."""
        with self.sessions.writing(session_id):  # a read-modify-write of the status: one at a time
            status = self.sessions.status(session_id)
            if status["status"] in UNFINISHED:
                raise Conflict("This session is already being transcribed.")
            if self.sessions.store.audio_path(session_id) is None:
                raise Conflict("This session has no stored audio file to transcribe again.")
            current = self.sessions.transcription(session_id)
            if current:
                self.sessions.store.save_version(session_id, "before-retranscribe", current)
            self.sessions.store.clear_journal(session_id)
            with contextlib.suppress(FileNotFoundError):
                (self.sessions.store.dir(session_id) / CANCEL_MARKER).unlink()
            self.sessions.update_session(
                session_id,
                model=model,
                requested_language=language,
                language=None,
                language_probability=None,
                model_reason=None,  # None: the job chooses again (jobs/routing.py)
                detected_language=None,
                detected_language_probability=None,
            )
            record = self.sessions.set_status(session_id, QUEUED, progress=0.0, runs=status.get("runs", []))
            self.submit(session_id)
            return record

    def label_speakers(self, session_id: str, request: str | int | None) -> dict:
        """Find the speakers of a transcribed session again (or for the first time), without transcribing
        again: queued as the job's speakers step. None (off) takes the labels off the transcript now."""
        with self.sessions.writing(session_id):  # a read-modify-write of the status: one at a time
            status = self.sessions.status(session_id)
            if status["status"] != DONE:
                raise Conflict(f"Speakers are found in a transcribed session; this one is {status['status']}.")
            session = self.sessions.session(session_id)
            options = {**(session.get("options") or {}), "speakers": request}
            if request is None:
                options.pop("speakers")
            self.sessions.update_session(session_id, options=options)
            if request is None:
                remove_speaker_labels(self.sessions, session_id)
                return status
            record = self.sessions.set_status(
                session_id, QUEUED, progress=0.999, step=SPEAKERS_STEP, runs=status.get("runs", [])
            )
            self.submit(session_id)
            return record

    def recover(self, session_ids: Iterable[str] | None = None) -> list[str]:
        """After a start (or when disk space is back): every session whose files say it is unfinished goes
        back on the queue. `session_ids` limits the look to those sessions (a start has listed the
        unfinished ones already); the index is not touched here (IndexSync.reconcile, or the
        full-disk catch-up, keeps it in step)."""
        recovered = []
        for session_id in self.sessions.store.ids() if session_ids is None else session_ids:
            try:
                if self.sessions.status(session_id)["status"] not in UNFINISHED:
                    continue
                if self.sessions.store.audio_path(session_id) is not None:
                    self.submit(session_id)
                    recovered.append(session_id)
            except NotFound:
                continue
        if recovered:
            log.info("re-queued %d unfinished session(s)", len(recovered))
        return recovered
