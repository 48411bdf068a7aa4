"""The same jobs through both queue backends, and through a separate `tapescribe worker` process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import audio_file, free_port, make_server, reference_text, wer


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """CI starts redis-server and sets TAPESCRIBE_TEST_REDIS_URL; elsewhere one is started here if installed."""
    url = os.environ.get("TAPESCRIBE_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (CI installs it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait()


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
