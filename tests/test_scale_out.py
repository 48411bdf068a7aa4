"""Workers on other hosts: an API process and two `tapescribe worker` processes that share only the data
directory, Redis (the queue and the leases) and PostgreSQL (the index); one worker is SIGKILLed mid-job.

Each worker runs in its own network namespace, whose only way out is a veth pair to the host, where
Redis and PostgreSQL listen on the host-side address: the worker cannot reach the API process (or
anything else on the host's loopback), as a worker on another machine could not. What must hold:

- every session is done, with the text a single-host run of the same job code gives;
- every session's transcript was committed exactly once: each job logs one "transcript committed"
  line when it writes the final transcript, so the lines over all workers' logs are one per session
  (a worker that resumed a job the dead one had committed already, or a second commit by two
  holders at once, would show twice), and no session has an earlier transcript kept as a version;
- the job of the killed worker was taken over without a restart (its lease expired, a reaper claimed
  it and queued it again) and resumed after the segments the dead worker had saved.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from conftest import ENGLISH_FILES, audio_file, free_port, make_server, queue_file, read_pcm, write_wav
from postgres_cluster import PostgresCluster, create_database, drop_database, find_initdb

LEASE_SECONDS = 4  # short, so the takeover comes soon; the heartbeat renews it every 1.3 s
COMMITTED = "transcript committed"
SETTINGS = {"TAPESCRIBE_MODEL": "tiny.en", "TAPESCRIBE_CPU_THREADS": "1", "TAPESCRIBE_SPEAKERS": "off"}


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


class Namespaces:
    """Network namespaces, each reaching the host over its own veth pair (10.213.X.4n+1 <-> 4n+2)."""

    def __init__(self, count: int) -> None:
        tag = os.getpid() % 100000
        self.subnet = 10 + os.getpid() % 240
        self.names = [f"tss{tag}{n}" for n in range(count)]
        self.made: list[str] = []

    def host_address(self, number: int) -> str:
        return f"10.213.{self.subnet}.{4 * number + 1}"

    def create(self) -> None:
        for number, name in enumerate(self.names):
            host_side, inner_side = f"{name}h", f"{name}n"
            run("ip", "netns", "add", name)
            self.made.append(name)
            run("ip", "link", "add", host_side, "type", "veth", "peer", "name", inner_side)
            run("ip", "link", "set", inner_side, "netns", name)
            run("ip", "addr", "add", f"{self.host_address(number)}/30", "dev", host_side)
            run("ip", "link", "set", host_side, "up")
            inner = f"10.213.{self.subnet}.{4 * number + 2}/30"
            run("ip", "netns", "exec", name, "ip", "addr", "add", inner, "dev", inner_side)
            run("ip", "netns", "exec", name, "ip", "link", "set", inner_side, "up")
            run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")

    def remove(self) -> None:
        for name in self.made:  # deleting a namespace deletes its end of the pair, and with it the other
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            subprocess.run(["ip", "link", "del", f"{name}h"], capture_output=True)


@pytest.fixture(scope="module")
def namespaces():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    if shutil.which("ip") is None or shutil.which("redis-server") is None:
        pytest.skip("needs `ip` (iproute2) and redis-server")
    made = Namespaces(2)
    try:
        made.create()
    except subprocess.CalledProcessError as error:
        made.remove()
        pytest.skip(f"cannot make network namespaces here: {error.stderr.decode(errors='replace').strip()}")
    yield made
    made.remove()


@pytest.fixture(scope="module")
def redis_port(namespaces, tmp_path_factory):
    """Redis on the host's loopback and the host side of each veth pair; no other way in."""
    port = free_port()
    addresses = ["127.0.0.1"] + [namespaces.host_address(n) for n in range(len(namespaces.names))]
    workdir = tmp_path_factory.mktemp("redis")
    command = ["redis-server", "--port", str(port), "--bind", *addresses, "--protected-mode", "no", "--save", ""]
    process = subprocess.Popen([*command, "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def postgres_port(namespaces):
    """PostgreSQL on the host's loopback and the host side of each veth pair, letting the namespaces in."""
    initdb = find_initdb()
    if initdb is None:
        pytest.skip("PostgreSQL is not installed (CI installs it)")
    addresses = ("127.0.0.1", *(namespaces.host_address(n) for n in range(len(namespaces.names))))
    cluster = PostgresCluster(
        Path(tempfile.mkdtemp(prefix="tapescribe-test-scale-out-")),  # reachable by the postgres user
        free_port(),
        listen=addresses,
        trusted=(f"10.213.{namespaces.subnet}.0/24",),
    ).start(initdb)
    yield cluster.port
    cluster.stop()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> list[Path]:
    """20 recordings: the 14 English ones, 4 of them twice, and all of them joined with short pauses, in
    order and backwards (90 s each: jobs long enough to be caught half-way)."""
    folder = tmp_path_factory.mktemp("joined")
    short = [audio_file(name) for name in ENGLISH_FILES]
    pause = np.zeros(8000, dtype=np.float32)
    joined = [
        write_wav(folder / f"{label}.wav", np.concatenate([part for path in order for part in (read_pcm(path), pause)]))
        for label, order in (("joined", short), ("joined-backwards", short[::-1]))
    ]
    return short + short[:4] + joined


@pytest.fixture(scope="module")
def expected_texts(tmp_path_factory, recordings) -> dict[Path, str]:
    """Each recording's text from the same job code on one host (in-process, the embedded SQLite queue
    and flock), with the same settings."""
    from tapescribe.config import Settings
    from tapescribe.runtime import Runtime
    from tapescribe.sessions.service import DONE

    settings = Settings(data_dir=tmp_path_factory.mktemp("single") / "data", model="tiny.en", cpu_threads=1)
    runtime = Runtime(settings)
    texts = {}
    for path in dict.fromkeys(recordings):
        session_id = queue_file(runtime, path)
        assert runtime.transcription.run(session_id) == DONE
        transcription = runtime.sessions.transcription(session_id)
        assert transcription is not None
        texts[path] = transcription["text"]
    return texts


class Cluster:
    """`serve --workers 0` on the host and one `tapescribe worker` per namespace, on one data directory."""

    def __init__(self, tmp_path_factory, namespaces: Namespaces, redis_port: int, postgres_port: int, number: int):
        """`number`: this cluster's Redis database and PostgreSQL database, apart from another test's."""
        self.env = {**SETTINGS, "TAPESCRIBE_QUEUE_BACKEND": "redis", "TAPESCRIBE_LEASE_SECONDS": str(LEASE_SECONDS)}
        self.namespaces = namespaces
        self.redis_port, self.database = redis_port, number
        self.redis = redis.Redis(port=redis_port, db=number)
        self.postgres_port, self.index = postgres_port, f"scale_out_{number}"
        server_url = f"postgresql://postgres@127.0.0.1:{postgres_port}/postgres"
        drop_database(server_url, self.index)
        create_database(server_url, self.index)
        self.server = make_server(
            tmp_path_factory, "scale", TAPESCRIBE_WORKERS=0, **self.env, **self.addresses("127.0.0.1")
        )
        self.data_dir = self.server.data_dir
        self.logs = [self.data_dir.parent / f"worker-{number}.log" for number in range(len(namespaces.names))]
        self.workers: list[subprocess.Popen] = []

    def addresses(self, host: str) -> dict[str, str]:
        """The settings that point a process at Redis and PostgreSQL through `host`."""
        return {
            "TAPESCRIBE_REDIS_URL": f"redis://{host}:{self.redis_port}/{self.database}",
            "TAPESCRIBE_INDEX_URL": f"postgresql://postgres@{host}:{self.postgres_port}/{self.index}",
        }

    def start(self) -> Cluster:
        self.server.start()
        for number, (name, log) in enumerate(zip(self.namespaces.names, self.logs, strict=True)):
            reach = self.addresses(self.namespaces.host_address(number))
            command = [sys.executable, "-m", "tapescribe", "worker", "--workers", "1", "--data-dir", str(self.data_dir)]
            with open(log, "ab") as handle:
                self.workers.append(
                    subprocess.Popen(
                        ["ip", "netns", "exec", name, *command],
                        env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env, **reach},
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                    )
                )
        return self

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGCONT)  # one the test stopped, too
                worker.send_signal(signal.SIGINT)
                worker.wait(timeout=60)
        self.server.stop()

    def submit(self, recordings: list[Path]) -> dict[str, Path]:
        submitted = {}
        with self.server.client() as api:
            for path in recordings:
                with open(path, "rb") as handle:
                    response = api.post("/transcribe-file", files={"file": (path.name, handle)})
                assert response.status_code == 202, response.text
                submitted[response.json()["session_id"]] = path
        return submitted

    def reaches(self, number: int, host: str, port: int) -> bool:
        """Whether a process in namespace `number` can open a TCP connection to host:port."""
        probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=5)"
        command = ["ip", "netns", "exec", self.namespaces.names[number], sys.executable, "-c", probe]
        return subprocess.run(command, capture_output=True).returncode == 0

    def journal_lines(self, session_id: str) -> int:
        try:
            return (self.data_dir / "sessions" / session_id / "segments.jsonl").read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def all_finished(self, session_ids) -> bool:
        for session_id in session_ids:
            status = json.loads((self.data_dir / "sessions" / session_id / "status.json").read_bytes())
            if status["status"] in ("queued", "processing"):
                return False
        return True

    def signal_one_mid_job(self, signal_number: int, session_ids: list[str]) -> tuple[int, str]:
        """Send `signal_number` to the first worker seen holding a job's lease with two segments or more
        saved in its journal (a lease's token starts with its holder's host:pid). Returns (the worker's
        number, the session)."""
        host = socket.gethostname()
        by_prefix = {f"{host}:{worker.pid}:": number for number, worker in enumerate(self.workers)}
        for look in itertools.count():
            for member in self.redis.zrange("tapescribe:leases", 0, -1):
                session_id = member.decode()  # type: ignore[union-attr]  # bytes: the client does not decode
                token = (self.redis.get(f"tapescribe:lease:{session_id}") or b"").decode()  # type: ignore[union-attr]
                holder = next((number for prefix, number in by_prefix.items() if token.startswith(prefix)), None)
                if holder is not None and self.journal_lines(session_id) >= 2:
                    self.workers[holder].send_signal(signal_number)
                    return holder, session_id
            assert all(worker.poll() is None for worker in self.workers), "a worker exited by itself"
            if look % 50 == 0:
                assert not self.all_finished(session_ids), "no worker was seen half-way through a job"
            time.sleep(0.02)
        raise AssertionError("unreachable")

    def commits(self, session_id: str) -> int:
        """How many times a worker committed the session's final transcript (one log line each)."""
        return sum(log.read_text(errors="replace").count(f"session {session_id}: {COMMITTED}") for log in self.logs)


def check_done_once(cluster: Cluster, submitted: dict[str, Path], expected: dict[Path, str]) -> dict[str, dict]:
    """Every session done, with the single-host text, committed once, without an earlier transcript kept."""
    finished = {session_id: cluster.server.wait_done(session_id, timeout=300) for session_id in submitted}
    with cluster.server.client() as api:
        for session_id, body in finished.items():
            assert body["status"]["status"] == "done", (session_id, body["status"])
            assert body["transcription"]["text"] == expected[submitted[session_id]], submitted[session_id].name
            assert cluster.commits(session_id) == 1, session_id
            assert api.get(f"/session/{session_id}/versions").json() == {"versions": []}
    return finished


def test_a_worker_killed_mid_job_is_taken_over_and_every_session_completes_once(
    tmp_path_factory, namespaces, redis_port, postgres_port, recordings, expected_texts
):
    cluster = Cluster(tmp_path_factory, namespaces, redis_port, postgres_port, 0).start()
    try:
        # a worker reaches Redis and PostgreSQL over its veth pair, and nothing on the host's loopback
        host = namespaces.host_address(0)
        assert cluster.reaches(0, host, redis_port) and cluster.reaches(0, host, postgres_port)
        assert not cluster.reaches(0, "127.0.0.1", cluster.server.port)
        assert not cluster.reaches(0, host, cluster.server.port)
        submitted = cluster.submit(recordings)
        killed, taken_over = cluster.signal_one_mid_job(signal.SIGKILL, list(submitted))
        cluster.workers[killed].wait()
        saved_by_the_dead = cluster.journal_lines(taken_over)
        finished = check_done_once(cluster, submitted, expected_texts)
    finally:
        cluster.stop()
    assert not (cluster.data_dir / "index.sqlite3").exists()  # every process used the PostgreSQL index
    runs = finished[taken_over]["status"]["runs"]
    print(f"worker {killed} killed holding {taken_over} after {saved_by_the_dead} saved segments; runs: {runs}")
    # taken over by the other worker, without a restart, after the segments the dead one had saved
    assert len(runs) == 2 and runs[1]["saved_segments"] == saved_by_the_dead >= 2
    assert f"session {taken_over}: {COMMITTED}" in cluster.logs[1 - killed].read_text(errors="replace")


def test_a_worker_paused_past_its_lease_stops_without_writing_over_the_new_holder(
    tmp_path_factory, namespaces, redis_port, postgres_port, recordings, expected_texts
):
    """Fencing: a worker SIGSTOPped mid-job past its lease time finds, once it goes on, that the other
    worker took the job over and finished it; it stops without a journal line, status or commit."""
    cluster = Cluster(tmp_path_factory, namespaces, redis_port, postgres_port, 1).start()
    try:
        submitted = cluster.submit(recordings[-2:])  # the two joined recordings: long jobs
        paused, taken_over = cluster.signal_one_mid_job(signal.SIGSTOP, list(submitted))
        cluster.server.wait_done(taken_over, timeout=300)  # by the other worker
        finished_status = (cluster.data_dir / "sessions" / taken_over / "status.json").read_bytes()
        cluster.workers[paused].send_signal(signal.SIGCONT)
        stopped, committed = (f"session {taken_over}: {line}" for line in ("stopped without writing", COMMITTED))
        while not any(line in cluster.logs[paused].read_text(errors="replace") for line in (stopped, committed)):
            assert cluster.workers[paused].poll() is None
            time.sleep(0.1)
        assert stopped in cluster.logs[paused].read_text(errors="replace")
        check_done_once(cluster, submitted, expected_texts)
        assert cluster.journal_lines(taken_over) == 0
        assert (cluster.data_dir / "sessions" / taken_over / "status.json").read_bytes() == finished_status
    finally:
        cluster.stop()
