"""A resumed job gives the text of an uninterrupted run, wherever in its journal it was stopped.

The job runs in-process (the real TranscriptionJob, tiny.en and joined real speech) with 30-second
windows (the smallest allowed), so the minute and a half of speech spans four of them. One uninterrupted run gives the
reference and its journal; each case then leaves a new session as a crash after N saved segments
leaves it (the first N journal lines, status `processing`, the language found) and runs the job again.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from conftest import ENGLISH_FILES, audio_file, queue_file, read_pcm, reference_text, wer, write_wav
from tapescribe.config import Settings
from tapescribe.runtime import Runtime
from tapescribe.sessions.service import DONE, PROCESSING

WINDOW_SECONDS = 30
LONGEST_HOLE = 2.0


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    settings = Settings(  # windows, with their journaled feature ceiling (lanes: tests/test_file_lanes.py)
        data_dir=tmp_path_factory.mktemp("resume") / "data", window_seconds=WINDOW_SECONDS, file_lanes=1
    )
    return Runtime(settings)


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory) -> tuple[Path, list[str]]:
    """The English recordings joined once with short pauses: about 92 s, windows at 0, 30, 60 and 90 s
    (conftest's long_recording, twice as long, only made each resume cost more)."""
    silence = np.zeros(8000, dtype=np.float32)
    pieces = [piece for name in ENGLISH_FILES for piece in (read_pcm(audio_file(name)), silence)]
    path = write_wav(tmp_path_factory.mktemp("resume-audio") / "speech.wav", np.concatenate(pieces))
    return path, [reference_text(name) for name in ENGLISH_FILES]


@pytest.fixture(scope="module")
def uninterrupted(runtime, long_recording):
    """One run start to end: its transcript, the journal it wrote, and the session it left."""
    path, _ = long_recording
    session_id = queue_file(runtime, path)
    journal: list[dict] = []
    assert runtime.transcription.run(session_id, on_segment=journal.append) == DONE
    return runtime.sessions.transcription(session_id), journal, runtime.sessions.session(session_id)


def text(segments: list[dict]) -> str:
    return "".join(segment["text"] for segment in segments).strip()


def holes(reference: list[dict], segments: list[dict]) -> list[tuple[float, float]]:
    """Stretches of the reference's segments longer than LONGEST_HOLE that no segment covers."""
    covered = sorted((segment["start"], segment["end"]) for segment in segments)
    found = []
    for segment in reference:
        position, end = segment["start"], segment["end"]
        for start, stop in covered:
            if stop <= position or start >= end:
                continue
            if start - position > LONGEST_HOLE:
                found.append((position, start))
            position = max(position, stop)
        if end - position > LONGEST_HOLE:
            found.append((position, end))
    return found


def crash_after(runtime: Runtime, path, uninterrupted, saved: list[dict]) -> str:
    """A session as a job killed after saving `saved` leaves it."""
    _, _, finished = uninterrupted
    session_id = queue_file(runtime, path)
    runtime.sessions.update_session(
        session_id, language=finished["language"], language_probability=finished["language_probability"]
    )
    for record in saved:
        runtime.sessions.store.append_journal(session_id, record)
    runtime.sessions.set_status(
        session_id,
        PROCESSING,
        progress=0.1,
        runs=[{"started": "2025-01-01T00:00:00.000+00:00", "from_seconds": 0.0, "saved_segments": 0}],
    )
    return session_id


def stop_points(journal: list[dict]) -> dict[str, int]:
    """Journal lengths to stop at: early, mid-window, and both edges of a window."""
    windows: dict[float, list[int]] = {}
    for number, record in enumerate(journal, 1):
        windows.setdefault(record["window_start"], []).append(number)
    later = [numbers for start, numbers in windows.items() if start > 0]
    assert len(windows) >= 3, f"the recording should span several windows: {sorted(windows)}"
    roomy = max(later[1:] or later, key=len)  # another window than the edge cases' if there is one
    return {
        "early": 2,
        "mid-window": roomy[len(roomy) // 2],
        "first of a window": later[0][0],
        "last kept of a window": later[0][-1],
    }


def check_resumed(runtime, session_id, uninterrupted, saved, label) -> dict:
    reference, _, _ = uninterrupted
    assert runtime.transcription.run(session_id) == DONE
    resumed = runtime.sessions.transcription(session_id)
    difference = wer([reference["text"]], [resumed["text"]])
    identical = text(resumed["segments"]) == text(reference["segments"])
    print(
        f"resumed after {len(saved)} segments ({label}): WER {difference:.2f}% against the uninterrupted run,"
        f" identical text: {identical}"
    )
    assert difference <= 1.0
    assert holes(reference["segments"], resumed["segments"]) == []
    segments = resumed["segments"]
    for before, after in zip(saved, segments, strict=False):
        assert (after["start"], after["end"], after["text"]) == (before["start"], before["end"], before["text"])
    assert all(b["start"] >= a["start"] for a, b in itertools.pairwise(segments)), "no segment comes twice"
    assert not runtime.sessions.store.journal(session_id)
    return runtime.sessions.status(session_id)


def test_resumed_at_any_saved_segment_gives_the_uninterrupted_text(runtime, long_recording, uninterrupted):
    path, _ = long_recording
    reference, journal, _ = uninterrupted
    # each record journals the feature ceiling its window was floored below, so a resumed window is
    # featurized as it was; it is no part of the transcript
    assert len({record["feature_ceiling"] for record in journal}) == 1
    assert not any("feature_ceiling" in segment for segment in reference["segments"])
    for label, count in stop_points(journal).items():
        saved = journal[:count]
        session_id = crash_after(runtime, path, uninterrupted, saved)
        status = check_resumed(runtime, session_id, uninterrupted, saved, label)
        run = status["runs"][-1]
        assert run["saved_segments"] == count
        assert run["from_seconds"] == saved[-1]["window_start"] <= saved[-1]["start"]
        # the decoder's end of the last saved segment (aligned words may move its `end`)
        assert run["saved_until_seconds"] == saved[-1].get("decoded_end", saved[-1]["end"])


def test_journal_without_window_starts_resumes_from_the_first_window(runtime, long_recording, uninterrupted):
    """A journal written before records carried `window_start` still resumes to the same text."""
    path, _ = long_recording
    _, journal, _ = uninterrupted
    count = stop_points(journal)["mid-window"]
    saved = [{key: value for key, value in record.items() if key != "window_start"} for record in journal[:count]]
    session_id = crash_after(runtime, path, uninterrupted, saved)
    status = check_resumed(runtime, session_id, uninterrupted, saved, "journal without window starts")
    assert status["runs"][-1]["from_seconds"] == 0


def test_progress_moves_through_silence(runtime, tmp_path, monkeypatch):
    """Three minutes of silence (six windows) give no segment at all; the progress bar must move anyway."""
    path = write_wav(tmp_path / "silence.wav", np.zeros(180 * 16000, dtype=np.float32))
    session_id = queue_file(runtime, path)
    shown: list[tuple[str, float | None]] = []
    set_status = runtime.sessions.set_status

    def recording_set_status(sid, status, progress=None, message=None, **extra):
        if sid == session_id:
            shown.append((status, progress))
        return set_status(sid, status, progress, message, **extra)

    monkeypatch.setattr(runtime.sessions, "set_status", recording_set_status)
    assert runtime.transcription.run(session_id) == DONE
    assert runtime.sessions.transcription(session_id)["segments"] == []
    moving = [progress for status, progress in shown if status == PROCESSING and 0 < progress < 1]
    print(f"progress written while three minutes of silence were transcribed: {moving}")
    assert len(moving) >= 3
    assert moving == sorted(moving)
    assert shown[-1] == (DONE, 1.0)
