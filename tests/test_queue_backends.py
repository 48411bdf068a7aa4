"""The same jobs through both queue backends, and through a separate `tapescribe worker` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from conftest import audio_file, make_server, reference_text, wer


def upload_and_wait(server, name: str) -> dict:
    with server.client() as client, open(audio_file(name), "rb") as handle:
        response = client.post("/transcribe-file", files={"file": (name, handle)})
    assert response.status_code == 202
    return server.wait_done(response.json()["session_id"])


def test_redis_backend_runs_jobs(tmp_path_factory, redis_url):
    server = make_server(
        tmp_path_factory, "redis", TAPESCRIBE_QUEUE_BACKEND="redis", TAPESCRIBE_REDIS_URL=redis_url
    ).start()
    try:
        body = upload_and_wait(server, "jfk.flac")
        assert body["status"]["status"] == "done"
        assert wer([reference_text("jfk.flac")], [body["transcription"]["text"]]) < 10
        assert not (server.data_dir / "queue.sqlite3").exists()
    finally:
        server.stop()


def test_separate_worker_process_takes_the_jobs(tmp_path_factory):
    """`serve --workers 0` only accepts uploads; a `tapescribe worker` on the same data dir transcribes."""
    server = make_server(tmp_path_factory, "split", TAPESCRIBE_WORKERS=0).start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "tapescribe", "worker", "--data-dir", str(server.data_dir)],
        env={**os.environ, "TMPDIR": str(server.tmp_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = upload_and_wait(server, "goforward.wav")
        assert body["status"]["status"] == "done"
        assert "forward" in body["transcription"]["text"].lower()
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=30)
        server.stop()
    assert list(server.tmp_dir.iterdir()) == []
