"""What a start does with what a crash left behind, in-process on a tmp data directory: the real
SessionService and SessionStore, the real Huey queue on its SQLite file, real recorded speech.

`finish_interrupted_streams` turns a /ws/live stream that was cut off into a recording, keeps its
live draft as a version and queues it; `JobControl.recover` puts every unfinished session that has
audio back on the queue.
"""

from __future__ import annotations

import shutil
import wave

import numpy as np
import pytest

from conftest import audio_file, encode_webm_opus, read_pcm
from tapescribe.config import Settings
from tapescribe.engine.audio import measure_duration
from tapescribe.jobs.control import JobControl
from tapescribe.jobs.queue import JobQueue
from tapescribe.jobs.scheduler import DecodeScheduler
from tapescribe.jobs.transcription import JobSettings, TranscriptionJob
from tapescribe.live.recording import (
    PCM_CHUNK_BYTES,
    ChunkWriter,
    finish_interrupted_streams,
)
from tapescribe.runtime import model_pool
from tapescribe.sessions.index_sqlite import SqliteSessionIndex
from tapescribe.sessions.ingest import RECEIVED_NAME, accept_audio
from tapescribe.sessions.service import (
    CANCELLED,
    DONE,
    ERROR,
    PROCESSING,
    QUEUED,
    SessionService,
    status_record,
)
from tapescribe.sessions.space import DiskSpace
from tapescribe.sessions.store import SessionStore


class Data:
    """A data directory as `serve` sees it at start."""

    def __init__(self, path) -> None:
        self.settings = Settings(data_dir=path, queue_backend="sqlite")
        self.sessions = SessionService(
            SessionStore(self.settings.sessions_dir, self.settings.incoming_dir),
            SqliteSessionIndex(self.settings.index_path),
            DiskSpace(self.settings.data_dir, self.settings.low_space_bytes),
        )
        self.queue = JobQueue(
            self.settings,
            handler=lambda session_id: None,  # nothing consumes it here
            space=self.sessions.space,
        )
        job = TranscriptionJob(
            self.sessions, model_pool(self.settings), JobSettings(), DecodeScheduler(1, 0)
        )  # loads no model unless run
        self.jobs = JobControl(self.sessions, self.queue, job)

    def queued_ids(self) -> list[str]:
        return sorted(task.args[0] for task in self.queue.huey.pending())

    def upload(self, name: str, status: str) -> str:
        """A session as an upload makes it (the real ingest), left in `status`."""
        session_id, incoming = self.sessions.store.new_incoming()
        shutil.copyfile(audio_file(name), incoming / RECEIVED_NAME)
        accept_audio(
            self.sessions,
            session_id,
            incoming / RECEIVED_NAME,
            source="upload",
            filename=name,
            initial_status=QUEUED,
            fields={"requested_language": None, "model": "tiny.en", "options": {}},
        )
        if status != QUEUED:
            self.sessions.set_status(session_id, status, progress=0.5)
        return session_id

    def live(self, fmt: str, chunks: list[bytes], draft: dict | None) -> str:
        """A /ws/live session as a crash leaves it: processing, its chunk files, maybe a saved draft."""
        session_id = self.sessions.create(
            source="live",
            title="Live",
            status=status_record(PROCESSING),
            requested_language=None,
            model=None,
            live_format=fmt,
        )
        writer = ChunkWriter(self.sessions.store.dir(session_id), fmt)
        for data in chunks:
            writer.write(data)
        writer.close()
        if draft is not None:
            self.sessions.save_transcription(session_id, draft, index=False)
        return session_id


@pytest.fixture
def data(tmp_path):
    return Data(tmp_path / "data")


DRAFT = {
    "text": "And so my fellow Americans",
    "language": "en",
    "language_probability": None,
    "model": "tiny.en",
    "complete": False,
    "live": True,
    "segments": [{"id": 0, "start": 0.3, "end": 2.1, "text": " And so my fellow Americans", "words": []}],
}


def pcm_bytes(name: str) -> bytes:
    return (np.clip(read_pcm(audio_file(name)), -1, 1) * 32767).astype("<i2").tobytes()


def test_recover_queues_unfinished_sessions_with_audio_only(data):
    queued = data.upload("goforward.wav", QUEUED)
    interrupted = data.upload("jfk.flac", PROCESSING)
    finished = [data.upload("goforward.wav", status) for status in (DONE, ERROR, CANCELLED)]
    no_audio = data.sessions.create(source="live", title="Nothing yet", status=status_record(QUEUED))
    assert data.queue.pending() == 0

    assert sorted(data.jobs.recover()) == sorted([queued, interrupted])
    assert data.queued_ids() == sorted([queued, interrupted])
    assert data.queue.pending() == 2
    for session_id in (*finished, no_audio):
        assert data.sessions.store.exists(session_id)  # left as they are, never removed


def test_a_start_mends_an_index_row_the_crash_left_behind_and_requeues_it(data):
    """status.json (the record) says processing; the index was not written before the crash. The start's
    one pass mends the row and lists the session as unfinished; recover() queues what it listed."""
    session_id = data.upload("goforward.wav", DONE)
    data.sessions.store.write(session_id, "status.json", status_record(PROCESSING, progress=0.3))

    def indexed_status() -> str:
        (row,) = data.sessions.index.page(10, 0)[0]
        return row["status"]

    assert indexed_status() == DONE
    check = data.sessions.index_sync.reconcile()
    assert check.mended == [session_id] and check.unfinished == [session_id]
    assert indexed_status() == PROCESSING
    assert data.jobs.recover(check.unfinished) == [session_id] and data.queued_ids() == [session_id]


def test_rows_a_crash_left_stale_are_rebuilt_and_ghost_rows_removed_at_start(data):
    """A job wrote status.json `done` (and its transcript) and was killed before the index was written;
    another session's directory is gone but its row is not. A start brings the index back to the files."""
    finished = data.upload("goforward.wav", PROCESSING)
    data.sessions.store.write(finished, "status.json", status_record(DONE, progress=1.0))
    data.sessions.store.write(
        finished,
        "transcription.json",
        {"text": "go forward", "segments": [{"id": 0, "start": 0.0, "end": 1.0, "text": " go forward"}]},
    )
    ghost = data.upload("jfk.flac", DONE)
    shutil.rmtree(data.sessions.store.dir(ghost))
    rows = {row["id"]: row for row in data.sessions.index.page(10, 0)[0]}
    assert rows[finished]["status"] == PROCESSING and ghost in rows and data.sessions.search("forward") == []

    assert sorted(data.sessions.index_sync.reconcile().mended) == sorted([finished, ghost])
    rows = {row["id"]: row for row in data.sessions.index.page(10, 0)[0]}
    assert set(rows) == {finished} and rows[finished]["status"] == DONE
    assert [hit["id"] for hit in data.sessions.search("forward")] == [finished]
    assert data.sessions.index_sync.reconcile().mended == []  # in step now: nothing to do


def test_a_cut_off_pcm_stream_becomes_a_queued_recording_with_its_draft_kept(data):
    audio = pcm_bytes("jfk.flac")  # 11 s: two ten-second chunk files
    halves = [audio[: len(audio) // 2 + 1], audio[len(audio) // 2 + 1 :]]  # an odd cut: messages are not samples
    session_id = data.live("pcm", halves, DRAFT)
    store = data.sessions.store
    assert [path.name for path in store.chunk_paths(session_id, "pcm")] == ["chunk_0.pcm", "chunk_1.pcm"]
    assert store.chunk_paths(session_id, "pcm")[0].stat().st_size == PCM_CHUNK_BYTES

    assert finish_interrupted_streams(data.sessions) == [session_id]
    recording = store.audio_path(session_id)
    assert recording.name == "original_audio.wav"
    with wave.open(str(recording)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert wav.readframes(wav.getnframes()) == audio
    session = data.sessions.session(session_id)
    assert session["duration"] == round(len(audio) / 32000, 3) and session["live_chunks"] == 2
    assert session["size"] == len(audio) and session["language"] == "en"
    assert data.sessions.status(session_id)["status"] == QUEUED
    versions = data.sessions.versions(session_id)
    assert [version["label"] for version in versions] == ["live-draft"]
    kept = store.version(session_id, 1)["transcription"]
    assert kept == {**DRAFT, "complete": True} == data.sessions.transcription(session_id)
    assert data.sessions.listing(query="americans")["total"] == 1  # the draft is searchable until the second pass

    assert data.jobs.recover() == [session_id] and data.queued_ids() == [session_id]
    # Found again at the next start (still queued): nothing is made twice.
    modified = recording.stat().st_mtime_ns
    finish_interrupted_streams(data.sessions)
    assert store.audio_path(session_id).stat().st_mtime_ns == modified
    assert [version["label"] for version in data.sessions.versions(session_id)] == ["live-draft"]


def test_a_cut_off_webm_stream_is_joined_from_its_slices(data, tmp_path):
    webm = encode_webm_opus(audio_file("goforward.wav"), tmp_path / "goforward.webm").read_bytes()
    slices = [webm[:700], webm[700:3000], webm[3000:]]  # MediaRecorder slices: one stream, cut anywhere
    session_id = data.live("webm", slices, draft=None)
    assert finish_interrupted_streams(data.sessions) == [session_id]
    recording = data.sessions.store.audio_path(session_id)
    assert recording.name == "original_audio.webm" and recording.read_bytes() == webm
    assert data.sessions.session(session_id)["duration"] == round(measure_duration(recording), 3) > 2.5
    assert data.sessions.versions(session_id) == [] and data.sessions.transcription(session_id) is None
    assert data.sessions.status(session_id)["status"] == QUEUED


def test_a_stream_still_running_is_left_alone_and_one_without_audio_is_not_left_hanging(data):
    running = data.live("pcm", [pcm_bytes("goforward.wav")], DRAFT)
    empty = data.live("pcm", [], None)
    with data.sessions.store.job_lock(running) as held:  # as the process that is still streaming holds it
        assert held
        assert finish_interrupted_streams(data.sessions) == []
    for session_id in (running, empty):
        assert data.sessions.store.audio_path(session_id) is None
    assert data.sessions.status(running)["status"] == PROCESSING
    # cut off before its first bytes reached the disk: an error saying so, not `processing` for ever
    assert data.sessions.status(empty)["status"] == ERROR
    assert "before any audio" in data.sessions.status(empty)["message"]
    assert data.jobs.recover() == []  # neither has a recording to transcribe yet
    assert finish_interrupted_streams(data.sessions) == [running]  # once the lock is free


def test_writes_keep_index_rows_in_step_and_a_start_mends_any_field_a_crash_left_behind(data):
    """Every kind of write leaves the row's fingerprint in step with the files (a start redoes nothing);
    a file written without its index write (the process died in between) is found by its fingerprint,
    whatever it changed, and its row rebuilt."""
    from tapescribe.sessions.speaker_names import rename_speaker

    session_id = data.upload("jfk.flac", PROCESSING)
    data.sessions.save_transcription(session_id, DRAFT, index=False)  # a job's partial transcript
    data.sessions.set_status(session_id, PROCESSING, progress=0.7)
    segments = [
        {"id": 0, "start": 0.0, "end": 2.0, "text": " And so my fellow Americans", "speaker": "S1"},
        {"id": 1, "start": 2.0, "end": 4.0, "text": " ask not what your country", "speaker": "S2"},
    ]
    transcript = {"text": "", "language": "en", "speakers": ["S1", "S2"], "segments": segments}
    data.sessions.save_transcription(session_id, transcript)
    data.sessions.set_status(session_id, DONE, progress=1.0)
    data.sessions.edit_segment(session_id, 1, "ask not what your quokka")
    data.sessions.rename(session_id, "Inaugural")
    rename_speaker(data.sessions, session_id, "S2", "Jack")
    assert data.sessions.index_sync.reconcile().mended == []
    assert [hit["id"] for hit in data.sessions.search("quokka", speaker="jack")] == [session_id]

    # killed after the file write, before the index write: a title, then a segment's text
    session = data.sessions.session(session_id)
    data.sessions.store.write(session_id, "session.json", {**session, "title": "Crashed rename"})
    transcript = data.sessions.transcription(session_id)
    transcript["segments"][0] = {**transcript["segments"][0], "text": " And so my fellow pangolins"}
    data.sessions.store.write(session_id, "transcription.json", transcript)
    assert data.sessions.search("pangolins") == [] and data.sessions.listing()["sessions"][0]["title"] == "Inaugural"
    assert data.sessions.index_sync.reconcile().mended == [session_id]
    assert data.sessions.listing()["sessions"][0]["title"] == "Crashed rename"
    assert [hit["id"] for hit in data.sessions.search("pangolins")] == [session_id]
    assert data.sessions.search("americans") == []
    assert data.sessions.index_sync.reconcile().mended == []
