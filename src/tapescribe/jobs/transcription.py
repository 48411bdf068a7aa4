"""TranscriptionJob: transcribe one stored session, saving each segment as it comes, resumable after a crash.

The same code runs inside a queue worker (uploads) and inline in a request (`/transcribe`). A lock
per session (sessions/locks.py: flock on one host, a Redis lease across hosts) makes sure only one of
them works on a session at a time; a holder that lost its lease stops before its next write. Either
way the model work holds a slot of the process's DecodeScheduler, and lends it to a shorter job that
waits: between segments in windows, between the batched model calls of lanes (TAPESCRIBE_FILE_LANES).
Short clips that decode at the same time share one slot and batch their model calls
(TAPESCRIBE_CLIP_BATCH, engine/clip_batches.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any

from tapescribe.engine.audio import measure_duration
from tapescribe.engine.base import Engine
from tapescribe.engine.models import ModelPool
from tapescribe.engine.transcriber import DecodeOptions, for_transcript
from tapescribe.errors import NotFound, ServerStopping, TapescribeError, UnsupportedMedia, is_disk_full
from tapescribe.jobs.job_run import SAVE_EVERY_SECONDS, JobRun
from tapescribe.jobs.journal import build_transcription
from tapescribe.jobs.pipeline import NO_AUDIO, AudioInput, JobSettings, TranscriptionPipeline
from tapescribe.jobs.scheduler import DecodeScheduler, Slot
from tapescribe.jobs.speakers import SPEAKERS_STEP, SpeakerLabelling, wanted
from tapescribe.jobs.stopping import JobStop
from tapescribe.sessions.locks import Lease, LeaseLost
from tapescribe.sessions.service import (
    CANCELLED,
    DONE,
    ERROR,
    PROCESSING,
    UNFINISHED,
    SessionService,
)

log = logging.getLogger(__name__)

CANCEL_MARKER = "cancel.requested"


class Cancelled(Exception):
    pass


class TranscriptionJob:
    def __init__(
        self,
        sessions: SessionService,
        models: ModelPool,
        settings: JobSettings,
        scheduler: DecodeScheduler,
        speakers: SpeakerLabelling | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.sessions = sessions
        self.models = models
        self.settings = settings
        self.scheduler = scheduler
        self.speakers = speakers
        # model choice, decoding options and decode plan: the same for the CLI (jobs/pipeline.py)
        self.pipeline = TranscriptionPipeline(models, settings, engine)
        # The process stopping: every job ends at its next model call or segment, as at a cancel, but
        # its status stays queued or processing and its journal is kept, so the next start resumes it.
        self.stopping = JobStop()

    def options_for(self, session: dict[str, Any]) -> DecodeOptions:
        return self.pipeline.options_for(session)

    def run(
        self,
        session_id: str,
        on_segment: Callable[[dict[str, Any]], None] | None = None,
        *,
        refuse_when_busy: bool = False,
    ) -> str:
        """Transcribe the session if it still needs it. Returns the status it was left in.

        `on_segment` sees each segment once it is saved (for callers that stream them on). A full
        disk does not end the job (its status could not even be saved): it waits until space is
        freed and goes on, in place while segments are being saved, else from its journal. With
        `refuse_when_busy`, ServerBusy is raised instead of joining a full wait for a decode slot, and
        ServerStopping when the process stops (else the job just ends; either way it resumes at the next
        start).
        """
        try:
            with self.stopping.running():
                return self._patiently(session_id, self._run_once, session_id, on_segment, refuse_when_busy)
        except ServerStopping:
            self.stopping.note_stopped(session_id)
            if refuse_when_busy:
                raise
            log.info("session %s: stopped with the process; it goes back on the queue", session_id)
            return PROCESSING

    def _run_once(
        self, session_id: str, on_segment: Callable[[dict[str, Any]], None] | None, refuse_when_busy: bool
    ) -> str:
        self.stopping.check()
        try:
            with self.sessions.locks.hold(session_id) as lease:
                if lease is None:
                    holder = self.sessions.locks.holder(session_id) or "a holder not known"
                    log.info("session %s is being transcribed elsewhere: held by %s", session_id, holder)
                    return PROCESSING
                status = self.sessions.status(session_id)
                if status["status"] not in UNFINISHED:
                    return status["status"]
                if status.get("step") == SPEAKERS_STEP:  # transcribed already: only the speakers are left
                    return self._label_speakers(session_id, list(status.get("runs") or []), lease)
                duration = self.sessions.session(session_id).get("duration")
                batchable = self.models.plan.shares_calls  # clip batches: on a CPU only
                with self.scheduler.slot(duration, refuse_when_busy=refuse_when_busy, batchable=batchable) as slot:
                    return self._transcribe(session_id, on_segment, slot, lease)
        except NotFound:
            log.info("session %s was deleted before or during its job", session_id)
            return "deleted"
        except LeaseLost:  # paused past the lease time: the worker that took the job over finishes it
            log.warning("session %s: stopped without writing; its lease was taken over", session_id)
            return PROCESSING
        except Exception:
            if self.sessions.store.exists(session_id):
                raise
            log.info("session %s was deleted during its job", session_id)  # a file went with it
            return "deleted"

    def _patiently(self, session_id: str, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Do `write`; on a full disk wait for space and do it again."""
        return self._fenced(None, session_id, write, *args, **kwargs)

    def _fenced(
        self, lease: Lease | None, session_id: str, write: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        """Do one of the job's writes, each try only while `lease` is still this job's (a worker paused
        past its lease, or waiting for disk space, finds the job taken over and writes nothing); on a
        full disk wait for space and do it again. Inside the segment loop the model keeps its place, so
        the transcript is the one an uninterrupted run makes."""
        waited = False
        while True:
            if lease is not None:
                lease.check()
            try:
                result = write(*args, **kwargs)
            except Exception as error:
                if not is_disk_full(error):
                    raise
            else:
                if waited:
                    log.info("session %s goes on: disk space is back", session_id)
                return result
            if not waited:
                log.info("session %s waits for disk space", session_id)
                waited = True
            self.sessions.space.wait_for_space(f"transcribing session {session_id}")

    def _interrupt_if_asked(self, session_id: str) -> None:
        """Where a job may stop: ServerStopping when the process stops, Cancelled when the user cancelled."""
        self.stopping.check()
        if (self.sessions.store.dir(session_id) / CANCEL_MARKER).exists():
            raise Cancelled

    def _transcribe(
        self, session_id: str, on_segment: Callable[[dict[str, Any]], None] | None, slot: Slot, lease: Lease
    ) -> str:
        """Every write goes through `write`, made only while `lease` is this job's (lease.check before
        each); the commit of the whole transcript after the lease was proved and renewed (lease.confirm)."""
        write = partial(self._fenced, lease, session_id)
        lease.check()  # it may have waited long for a decode slot
        run = JobRun(self.sessions, session_id, slot, lease, write, partial(self._interrupt_if_asked, session_id))
        run.start()
        clip_batch = ExitStack()  # the clip batch this job joins, left as soon as its decoding ends
        try:
            audio, segments = self._decode(run, on_segment, clip_batch)
        except Cancelled:
            store = self.sessions.store
            saved_now = build_transcription(run.session, store.journal(session_id), False)
            write(self.sessions.save_transcription, session_id, saved_now, fence=lease.check)
            run.status(CANCELLED, None, "Cancelled by the user.")
            return CANCELLED
        except (NotFound, LeaseLost, ServerStopping):  # stopping: left processing, its journal kept
            raise
        except TapescribeError as error:
            run.status(ERROR, None, error.message)
            return ERROR
        except Exception as error:  # a failed job must say why, and keep everything stored
            if is_disk_full(error):
                raise  # not a failure of the job: run() waits for space and goes on
            if not self.sessions.store.exists(session_id):  # deleted meanwhile: its files went (not a failure)
                raise NotFound("No such session.") from error
            log.exception("transcription of %s failed", session_id)
            run.status(ERROR, None, f"Transcription failed: {type(error).__name__}: {error}")
            return ERROR
        finally:
            clip_batch.close()
        return self._commit(run, audio, segments)

    def _decode(
        self, run: JobRun, on_segment: Callable[[dict[str, Any]], None] | None, clip_batch: ExitStack
    ) -> tuple[AudioInput, list[dict[str, Any]]]:
        """Choose the model (once per session), decode by the plan, journal each segment as it comes and
        save the partial transcript every second."""
        session_id, sessions, pipeline = run.session_id, self.sessions, self.pipeline
        self._interrupt_if_asked(session_id)
        audio = self._audio(session_id)
        if not run.session.get("model_reason"):  # decided once: a resumed job keeps the choice
            choice = pipeline.choose(run.session, audio, run.duration, partial(self._interrupt_if_asked, session_id))
            run.update_session(**choice)
            run.slot.give_way()  # detection took a while: a shorter job that came meanwhile goes first
        plan = pipeline.plan(run.slot.batched)
        run.runs[-1]["engine"] = plan.value
        model = pipeline.model(run.session.get("model"), plan, clip_batch)
        # what transcription.json keeps of each segment: not its tokens (about a quarter of a held segment's memory,
        # which grows with the recording), only the journal needs them
        segments = [for_transcript(record) for record in run.saved]
        last_save = time.monotonic()
        hooks = run.hooks()
        for segment in pipeline.decode(model, run.session, audio, plan, run.resume, hooks):
            record = segment.to_dict()  # as the journal keeps it
            run.write(sessions.store.append_journal, session_id, record)
            segments.append(for_transcript(record))
            if on_segment is not None:
                on_segment(record)
            if time.monotonic() - last_save >= SAVE_EVERY_SECONDS:
                last_save = time.monotonic()
                self._interrupt_if_asked(session_id)
                partial_transcript = build_transcription(run.session, segments, False)
                run.write(
                    sessions.save_transcription, session_id, partial_transcript, index=False, fence=run.lease.check
                )
            run.show_progress(segment.end)
        if not hooks.samples_read and not run.saved:  # however decoding failed, it is not "done" with nothing
            raise UnsupportedMedia(NO_AUDIO)
        return audio, segments

    def _commit(self, run: JobRun, audio: AudioInput, segments: list[dict[str, Any]]) -> str:
        """The whole transcript written, the journal cleared; then the speakers step, or done."""
        session_id, sessions, lease, write = run.session_id, self.sessions, run.lease, run.write
        duration = run.duration
        measured = round(segments[-1]["end"], 3) if segments else None
        if not duration and audio.path is not None:
            measured = round(measure_duration(audio.path), 3)
        lease.confirm()  # the commit: only by the holder of the lease, with the whole lease time ahead
        if measured and not duration:
            run.update_session(duration=measured)
        write(
            sessions.save_transcription, session_id, build_transcription(run.session, segments, True), fence=lease.check
        )
        write(sessions.store.clear_journal, session_id)
        run.runs[-1]["seconds"] = round(time.monotonic() - run.clock, 3)
        log.info("session %s: transcript committed (%d segments)", session_id, len(segments))
        if wanted(run.session):
            return self._label_speakers(session_id, run.runs, lease)
        run.status(DONE, 1.0)
        return DONE

    def _label_speakers(self, session_id: str, runs: list[dict[str, Any]], lease: Lease) -> str:
        """The step after transcription (jobs/speakers.py), its writes fenced as the transcription's."""
        write = partial(self._fenced, lease, session_id)
        if self.speakers is None:
            write(self.sessions.set_status, session_id, DONE, progress=1.0, runs=runs, fence=lease.check)
            return DONE
        return self.speakers.run_step(session_id, runs, lease, write)

    def _audio(self, session_id: str) -> AudioInput:
        """The session's audio: its file, or the chunks of a live recording not yet made one file."""
        store = self.sessions.store
        path = store.audio_path(session_id)
        return AudioInput(path) if path is not None else AudioInput(None, tuple(store.chunk_paths(session_id)))
