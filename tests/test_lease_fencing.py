"""Fencing inside a job: a worker whose Redis lease another worker took over while it was paused
writes nothing more to the session, not a journal line, not a status, not a partial transcript.

The real job runs in-process with Redis leases (queue_backend=redis) against a real redis-server. The
pause is made where tests/test_scale_out.py's SIGSTOP lands most often: right after a segment was
saved to the journal. There the lease is handed to another holder, and the paused job waits longer
than the job's periodic transcript save (SAVE_EVERY_SECONDS), so that save is due when it goes on.
"""

from __future__ import annotations

import time

import pytest
import redis

from conftest import audio_file, queue_file
from tapescribe.config import Settings
from tapescribe.jobs.transcription import SAVE_EVERY_SECONDS
from tapescribe.runtime import Runtime
from tapescribe.sessions.service import PROCESSING

LEASE_SECONDS = 2.0
REDIS_DATABASE = 4


@pytest.fixture
def runtime(tmp_path, redis_url):
    url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DATABASE}"
    redis.Redis.from_url(url).flushdb()
    settings = Settings(
        data_dir=tmp_path / "data",
        model="tiny.en",
        queue_backend="redis",
        redis_url=url,
        lease_seconds=LEASE_SECONDS,
        speakers="off",
    )
    yield Runtime(settings)
    redis.Redis.from_url(url).flushdb()


def files_of(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def test_a_job_whose_lease_was_taken_over_while_paused_writes_nothing_more(runtime):
    session_id = queue_file(runtime, audio_file("acoustic_corpus.wav"))
    folder = runtime.sessions.store.dir(session_id)
    leases = runtime.sessions.locks
    client = leases.client
    left: dict[str, bytes] = {}

    def paused_after_a_saved_segment(segment: dict) -> None:
        if left:
            return
        # another worker takes the lease over (the paused holder's had expired) and writes its own status
        client.set(leases.key_prefix + session_id, "host-b:2:taken-over", px=60_000)
        runtime.sessions.set_status(session_id, PROCESSING, progress=0.5, message="taken over")
        left.update(files_of(folder))
        time.sleep(max(SAVE_EVERY_SECONDS, LEASE_SECONDS) + 0.5)  # the pause: the periodic save is due now

    assert runtime.transcription.run(session_id, on_segment=paused_after_a_saved_segment) == PROCESSING
    assert left, "the job saved no segment"
    assert files_of(folder) == left  # nothing written after the takeover, not even a partial transcript
    assert client.get(leases.key_prefix + session_id) == b"host-b:2:taken-over"  # the new holder's lease kept
