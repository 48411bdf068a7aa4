"""JobRun: one run of a TranscriptionJob over a session, what it writes while segments are decoded.

Its `runs` record (status.json), the progress it shows (throttled, never backwards), the language it
remembers, and the hooks the decode plan calls (engine/base.py DecodeHooks): after each window, and
between model calls, where a cancel or a stop ends the decoding and a shorter job gets the slot.
Every write goes through `write`, which the job makes only while its lease is its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tapescribe.engine.transcriber import LanguageFound
from tapescribe.jobs.journal import resume_point
from tapescribe.jobs.pipeline import DecodeHooks
from tapescribe.jobs.scheduler import Slot
from tapescribe.sessions.locks import Lease
from tapescribe.sessions.service import PROCESSING, SessionService, utc_now

SAVE_EVERY_SECONDS = 1.0
# Progress is written when it moved this much, or when a second passed: a handful of writes for a
# short file, at most one a second for a long one, and windows of silence still move the bar.
PROGRESS_STEP = 0.05


class JobRun:
    """Where one run of a job is: its session (as last written), journal, resume point and progress."""

    def __init__(
        self,
        sessions: SessionService,
        session_id: str,
        slot: Slot,
        lease: Lease,
        write: Callable[..., Any],
        interrupt_if_asked: Callable[[], None],
    ) -> None:
        self.sessions, self.session_id, self.slot, self.lease = sessions, session_id, slot, lease
        self.write, self.interrupt_if_asked = write, interrupt_if_asked
        self.session = sessions.session(session_id)
        self.saved = sessions.store.journal(session_id)
        self.resume = resume_point(self.session, self.saved)
        self.runs = list(sessions.status(session_id).get("runs") or [])
        self.runs.append(
            {
                "started": utc_now(),
                "from_seconds": self.resume.start,
                "saved_segments": len(self.saved),
                "saved_until_seconds": self.resume.saved_until,
            }
        )
        self.clock = time.monotonic()
        self.duration = self.session.get("duration")
        saved_until = self.resume.saved_until or 0.0
        self.shown_progress = min(0.999, saved_until / self.duration) if self.duration else 0.0
        self.shown_at = time.monotonic()

    def start(self) -> None:
        self.write(
            self.sessions.set_status,
            self.session_id,
            PROCESSING,
            progress=self.shown_progress,
            runs=self.runs,
            fence=self.lease.check,
        )

    def status(self, state: str, progress: float | None, message: str | None = None) -> None:
        self.write(
            self.sessions.set_status,
            self.session_id,
            state,
            progress=progress,
            message=message,
            runs=self.runs,
            fence=self.lease.check,
        )

    def update_session(self, **fields: Any) -> None:
        self.session = self.write(self.sessions.update_session, self.session_id, fence=self.lease.check, **fields)

    def remember_language(self, found: LanguageFound) -> None:
        self.update_session(language=found.language, language_probability=round(found.probability, 4))

    def show_progress(self, seconds: float) -> None:
        """Move the progress bar to `seconds` of the audio, throttled; it never goes back."""
        if not self.duration:
            return
        progress = min(0.999, seconds / self.duration)
        if progress <= self.shown_progress:
            return
        if progress - self.shown_progress >= PROGRESS_STEP or time.monotonic() - self.shown_at >= SAVE_EVERY_SECONDS:
            self.shown_progress, self.shown_at = progress, time.monotonic()
            self.status(PROCESSING, progress)

    def window_done(self, seconds: float) -> None:
        self.lease.check()
        self.interrupt_if_asked()
        self.show_progress(seconds)
        self.slot.give_way()

    def between_model_calls(self) -> None:
        """Between the lanes' batched model calls (on the batching thread), and after each segment of
        windows or of a group without lanes: a cancel or the process stopping ends the decoding, and a
        shorter job or a live step that waits runs now; this one goes on from here after it."""
        self.interrupt_if_asked()
        self.slot.give_way()

    def hooks(self) -> DecodeHooks:
        return DecodeHooks(self.remember_language, self.window_done, self.between_model_calls, self.show_progress)
