"""SessionWatch: what changed in one session since the last look, for clients that follow a job live.

It works the same whether the job runs in this process or in a worker elsewhere: it looks at the
session's status.json and transcription.json (a stat per look, a read only when one changed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tapescribe.errors import NotFound
from tapescribe.sessions.service import UNFINISHED, SessionService
from tapescribe.sessions.store import STATUS_FILE, TRANSCRIPTION_FILE


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


class SessionWatch:
    """`poll()` returns the events since the last poll: ("segments", {"from", "segments"}) for segments not
    sent yet (all of them again when the transcript was replaced), ("status", status) when it changed,
    ("deleted", {"session_id"}) when the session went away. `finished` is set once nothing more will come."""

    def __init__(self, sessions: SessionService, session_id: str) -> None:
        self.sessions = sessions
        self.session_id = session_id
        self.directory = sessions.store.dir(session_id)  # NotFound now, before a client starts listening
        self.finished = False
        self._seen_status = 0
        self._seen_transcript = 0
        self._sent_segments = 0

    def poll(self) -> list[tuple[str, Any]]:
        events: list[tuple[str, Any]] = []
        try:
            transcript_mtime = _mtime(self.directory / TRANSCRIPTION_FILE)
            status_mtime = _mtime(self.directory / STATUS_FILE)
            if transcript_mtime != self._seen_transcript:
                self._seen_transcript = transcript_mtime
                segments = (self.sessions.transcription(self.session_id) or {}).get("segments", [])
                if len(segments) < self._sent_segments:
                    self._sent_segments = 0  # replaced (a new run or an edit): send it whole again
                if len(segments) > self._sent_segments:
                    events.append(
                        ("segments", {"from": self._sent_segments, "segments": segments[self._sent_segments :]})
                    )
                    self._sent_segments = len(segments)
            if status_mtime != self._seen_status:
                self._seen_status = status_mtime
                status = self.sessions.status(self.session_id)
                events.append(("status", status))
                ended = status["status"] not in UNFINISHED
                if ended and _mtime(self.directory / TRANSCRIPTION_FILE) == self._seen_transcript:
                    self.finished = True
        except NotFound:
            events.append(("deleted", {"session_id": self.session_id}))
            self.finished = True
        return events
