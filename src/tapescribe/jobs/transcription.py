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
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from tapescribe.engine.audio import SAMPLE_RATE, chunks_pcm, measure_duration, pcm_blocks
from tapescribe.engine.clip_batches import ClipBatches
from tapescribe.engine.lane_groups import transcribe_lane_groups
from tapescribe.engine.language_detection import DetectedLanguage, detect_over_parts
from tapescribe.engine.models import MULTILINGUAL_MODEL, ModelPool, english_only
from tapescribe.engine.transcriber import DecodeOptions, LanguageFound, transcribe_windows
from tapescribe.errors import NotFound, TapescribeError, is_disk_full
from tapescribe.jobs.journal import build_transcription, resume_point
from tapescribe.jobs.routing import choose_model
from tapescribe.jobs.scheduler import DecodeScheduler, Slot
from tapescribe.jobs.speakers import SPEAKERS_STEP, SpeakerLabelling, wanted
from tapescribe.sessions.locks import Lease, LeaseLost
from tapescribe.sessions.service import (
    CANCELLED,
    DONE,
    ERROR,
    PROCESSING,
    UNFINISHED,
    SessionService,
    utc_now,
)

log = logging.getLogger(__name__)

CANCEL_MARKER = "cancel.requested"
SAVE_EVERY_SECONDS = 1.0
# Progress is written when it moved this much, or when a second passed: a handful of writes for a
# short file, at most one a second for a long one, and windows of silence still move the bar.
PROGRESS_STEP = 0.05


@dataclass(frozen=True)
class JobSettings:
    window_seconds: float = 240.0
    decoding: DecodeOptions = field(default_factory=DecodeOptions)
    detection_parts: int = 3  # parts of a file its language is detected on, when the language decides the model
    file_lanes: int = 4  # as Settings: above 1, sequential models decode files in lanes (engine/lane_groups.py)
    lane_beam_size: int = 5
    lane_context_tokens: int = -1  # as Settings: -1 by the model (engine/lane_groups.py)


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
    ) -> None:
        self.sessions = sessions
        self.models = models
        self.settings = settings
        self.scheduler = scheduler
        self.speakers = speakers
        self.clip_batches = ClipBatches()

    def options_for(self, session: dict[str, Any]) -> DecodeOptions:
        requested = session.get("options") or {}
        detected = session.get("detected_language")
        if english_only(session.get("model") or ""):
            detected = None  # recorded to warn about, but an English-only model writes English only
        return replace(
            self.settings.decoding,
            # a language detected over several parts is more reliable than transcribe's look at the first 30 s
            language=session.get("requested_language") or detected,
            task=requested.get("task", "transcribe"),
            # words are timed unless the request or the settings say not (subtitles start and end on
            # words); speaker labels need them anyway: a segment is split at the word where the speaker changes
            word_timestamps=bool(
                requested.get("word_timestamps", self.settings.decoding.word_timestamps) or requested.get("speakers")
            ),
            initial_prompt=requested.get("prompt"),
            temperature=requested.get("temperature"),
        )

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
        `refuse_when_busy`, ServerBusy is raised instead of joining a full wait for a decode slot.
        """
        return self._patiently(session_id, self._run_once, session_id, on_segment, refuse_when_busy)

    def _run_once(
        self, session_id: str, on_segment: Callable[[dict[str, Any]], None] | None, refuse_when_busy: bool
    ) -> str:
        try:
            with self.sessions.locks.hold(session_id) as lease:
                if lease is None:
                    log.info("session %s is being transcribed elsewhere", session_id)
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

    def _cancel_requested(self, session_id: str) -> bool:
        return (self.sessions.store.dir(session_id) / CANCEL_MARKER).exists()

    def _transcribe(
        self, session_id: str, on_segment: Callable[[dict[str, Any]], None] | None, slot: Slot, lease: Lease
    ) -> str:
        """Every write goes through `write`, made only while `lease` is this job's (lease.check before
        each); the commit of the whole transcript after the lease was proved and renewed (lease.confirm)."""
        sessions, store = self.sessions, self.sessions.store
        write = partial(self._fenced, lease, session_id)
        lease.check()  # it may have waited long for a decode slot
        session = sessions.session(session_id)
        saved = store.journal(session_id)
        resume = resume_point(session, saved)
        runs = list(sessions.status(session_id).get("runs") or [])
        runs.append(
            {
                "started": utc_now(),
                "from_seconds": resume.start,
                "saved_segments": len(saved),
                "saved_until_seconds": resume.saved_until,
            }
        )
        clock = time.monotonic()
        duration = session.get("duration")
        shown_progress = min(0.999, (resume.saved_until or 0.0) / duration) if duration else 0.0
        shown_at = time.monotonic()
        write(sessions.set_status, session_id, PROCESSING, progress=shown_progress, runs=runs, fence=lease.check)

        def status(state: str, progress: float | None, message: str | None = None) -> None:
            write(
                sessions.set_status,
                session_id,
                state,
                progress=progress,
                message=message,
                runs=runs,
                fence=lease.check,
            )

        def remember_language(found: LanguageFound) -> None:
            nonlocal session
            session = write(
                sessions.update_session,
                session_id,
                language=found.language,
                language_probability=round(found.probability, 4),
                fence=lease.check,
            )

        def show_progress(seconds: float) -> None:
            """Move the progress bar to `seconds` of the audio, throttled; it never goes back."""
            nonlocal shown_progress, shown_at
            if not duration:
                return
            progress = min(0.999, seconds / duration)
            if progress <= shown_progress:
                return
            if progress - shown_progress >= PROGRESS_STEP or time.monotonic() - shown_at >= SAVE_EVERY_SECONDS:
                shown_progress, shown_at = progress, time.monotonic()
                status(PROCESSING, progress)

        def window_done(seconds: float) -> None:
            lease.check()
            if self._cancel_requested(session_id):
                raise Cancelled
            show_progress(seconds)
            slot.give_way()

        def between_model_calls() -> None:
            """Between the lanes' batched model calls (on the batching thread), and after each segment of
            windows or of a group without lanes: a cancel stops the decoding, and a shorter job or a live
            step that waits runs now; this one goes on from here after it."""
            if self._cancel_requested(session_id):
                raise Cancelled
            slot.give_way()

        clip_batch = ExitStack()  # the clip batch this job joins, left as soon as its decoding ends
        try:
            if self._cancel_requested(session_id):
                raise Cancelled
            audio = store.audio_path(session_id)
            if not session.get("model_reason"):  # decided once: a resumed job keeps the choice
                choice = choose_model(session, self.models, lambda: self._detect(session_id, duration))
                session = write(sessions.update_session, session_id, fence=lease.check, **choice)
                slot.give_way()  # detection took a while: a shorter job that came meanwhile goes first
            model = self.models.for_files(session.get("model"))  # batched on a GPU
            if slot.batched:
                model = clip_batch.enter_context(self.clip_batches.join(model))

            def whole_file():
                return pcm_blocks(audio) if audio is not None else chunks_pcm(store.chunk_paths(session_id))

            blocks = pcm_blocks(audio, start=resume.start) if audio is not None else _skip(whole_file(), resume.start)
            segments = list(saved)
            last_save = time.monotonic()
            settings = self.settings
            # Lanes for every sequential model on a CPU. base was kept to windows while lanes were batched
            # (a lane once looped at temperature 1.0 on tests/test_lanes_features.py's Spanish file), but
            # windows loop there too under the same sampling fallback (142% WER once), and on single-thread
            # decoders base in lanes is 2-3x faster than in windows.
            laned = (
                settings.file_lanes > 1
                and self.models.plan.shares_calls
                and not slot.batched  # a clip: files under 2 minutes decode in lanes as in windows
            )
            runs[-1]["engine"] = "lanes" if laned else "clip batch" if slot.batched else "windows"
            if laned:
                records = transcribe_lane_groups(
                    model,
                    blocks,
                    self.options_for(session),
                    resume,
                    settings.window_seconds,
                    settings.file_lanes,
                    settings.lane_beam_size,
                    remember_language,
                    window_done,
                    between_model_calls,
                    show_progress,
                    settings.lane_context_tokens,
                )
            else:
                records = transcribe_windows(
                    model,
                    blocks,
                    self.options_for(session),
                    resume,
                    settings.window_seconds,
                    remember_language,
                    window_done,
                    whole_file,
                    between_model_calls,
                )
            for segment in records:
                write(store.append_journal, session_id, segment)
                segments.append(segment)
                if on_segment is not None:
                    on_segment(segment)
                if time.monotonic() - last_save >= SAVE_EVERY_SECONDS:
                    last_save = time.monotonic()
                    if self._cancel_requested(session_id):
                        raise Cancelled
                    write(
                        sessions.save_transcription,
                        session_id,
                        build_transcription(session, segments, False),
                        index=False,
                        fence=lease.check,
                    )
                show_progress(segment["end"])
        except Cancelled:
            saved_now = build_transcription(session, store.journal(session_id), False)
            write(sessions.save_transcription, session_id, saved_now, fence=lease.check)
            status(CANCELLED, None, "Cancelled by the user.")
            return CANCELLED
        except (NotFound, LeaseLost):
            raise
        except TapescribeError as error:
            status(ERROR, None, error.message)
            return ERROR
        except Exception as error:  # a failed job must say why, and keep everything stored
            if is_disk_full(error):
                raise  # not a failure of the job: run() waits for space and goes on
            log.exception("transcription of %s failed", session_id)
            status(ERROR, None, f"Transcription failed: {type(error).__name__}: {error}")
            return ERROR
        finally:
            clip_batch.close()

        measured = round(segments[-1]["end"], 3) if segments else None
        if not duration and audio is not None:
            measured = round(measure_duration(audio), 3)
        lease.confirm()  # the commit: only by the holder of the lease, with the whole lease time ahead
        if measured and not duration:
            session = write(sessions.update_session, session_id, duration=measured, fence=lease.check)
        write(sessions.save_transcription, session_id, build_transcription(session, segments, True), fence=lease.check)
        write(store.clear_journal, session_id)
        runs[-1]["seconds"] = round(time.monotonic() - clock, 3)
        log.info("session %s: transcript committed (%d segments)", session_id, len(segments))
        if wanted(session):
            return self._label_speakers(session_id, runs, lease)
        status(DONE, 1.0)
        return DONE

    def _label_speakers(self, session_id: str, runs: list[dict[str, Any]], lease: Lease) -> str:
        """The step after transcription (jobs/speakers.py), its writes fenced as the transcription's."""
        write = partial(self._fenced, lease, session_id)
        if self.speakers is None:
            write(self.sessions.set_status, session_id, DONE, progress=1.0, runs=runs, fence=lease.check)
            return DONE
        return self.speakers.run_step(session_id, runs, lease, write)

    def _detect(self, session_id: str, duration: float | None) -> DetectedLanguage | None:
        """The session's language, detected by the multilingual model over several parts of its audio."""
        store = self.sessions.store
        audio = store.audio_path(session_id)

        def blocks():
            return pcm_blocks(audio) if audio is not None else chunks_pcm(store.chunk_paths(session_id))

        if not duration:
            duration = sum(len(block) for block in blocks()) / SAMPLE_RATE
        model = self.models.get(MULTILINGUAL_MODEL)
        return detect_over_parts(model, blocks(), duration, self.settings.detection_parts)


def _skip(blocks, seconds: float):
    """Drop the first `seconds` of a block stream (resuming live chunks, which cannot seek)."""
    skip = int(round(seconds * SAMPLE_RATE))
    for block in blocks:
        if skip >= len(block):
            skip -= len(block)
            continue
        yield block[skip:]
        skip = 0
