"""One limit for all model work, and short jobs first: the decode scheduler seen through the real server.

Order-based, never timed: a short clip sent while a long file transcribes is answered while the long job
is still processing, never with more decodes at once than the slots; with one slot, concurrent
requests never overlap their decodes; beyond the wait bound a request gets 503 with Retry-After;
a long job pauses while live captions decode and goes on where it was.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
from websockets.sync.client import connect

from conftest import ENGLISH_FILES, audio_file, make_server, read_pcm, write_wav

# long enough to be running when the short clip comes and to decode in two lanes (one a minute), short
# enough for the suite: each of its jobs decodes it whole
LONG_SECONDS = 125
SHORT = "leopard_test.wav"
LIVE_SPEECH = "acoustic_corpus.wav"  # 27 s, streamed at 4x real time: about 7 s of live steps


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """About two minutes of the shared English recordings, joined with half-second pauses."""
    pause = np.zeros(8000, dtype=np.float32)
    pieces, total = [], 0
    for name in itertools.cycle(ENGLISH_FILES):  # until LONG_SECONDS (whole passes made 185 s of it)
        samples = read_pcm(audio_file(name))
        pieces += [samples, pause]
        total += len(samples) + len(pause)
        if total >= LONG_SECONDS * 16000:
            break
    return write_wav(tmp_path_factory.mktemp("long") / "long.wav", np.concatenate(pieces))


@pytest.fixture(scope="module")
def server_with(tmp_path_factory):
    """A server with this many decode slots, started once for the module."""
    started = {}

    def server(slots: int, **settings: int):
        """`settings`: more TAPESCRIBE_* variables by lower-case name (clip_batch=1)."""
        key = (slots, *sorted(settings.items()))
        if key not in started:
            more = {f"TAPESCRIBE_{name.upper()}": value for name, value in settings.items()}
            started[key] = make_server(
                tmp_path_factory,
                "-".join(map(str, ("slots", slots, *(f"{name}-{value}" for name, value in sorted(settings.items()))))),
                TAPESCRIBE_MAX_CONCURRENT_DECODES=slots,
                TAPESCRIBE_WORKERS=2,
                **more,
            ).start()
        return started[key]

    yield server
    for running in started.values():
        running.stop()


def post_file(client, route: str, field: str, path):
    with open(path, "rb") as handle:
        return client.post(route, files={field: (path.name, handle)})


def wait_for_processing(server, session_id: str) -> None:
    with server.client() as client:
        for _ in range(600):
            if client.get(f"/session/{session_id}").json()["status"]["status"] == "processing":
                return
            time.sleep(0.1)
    raise AssertionError(f"session {session_id} never started:\n{server.log()}")


def wait_for_segments(server, session_id: str) -> None:
    """Until the job has saved a segment: past its language detection and into its segment loop."""
    with server.client() as client:
        for _ in range(1200):
            status = client.get(f"/session/{session_id}").json()["status"]
            if status["status"] == "processing" and status["progress"]:
                return
            time.sleep(0.1)
    raise AssertionError(f"session {session_id} saved no segment:\n{server.log()}")


def decode_interval(status: dict) -> tuple[float, float]:
    """When the session's last run held its decode slot, by the server's own clock."""
    run = status["runs"][-1]
    started = dt.datetime.fromisoformat(run["started"]).timestamp()
    return started, started + run["seconds"]


def test_concurrent_requests_never_decode_more_than_the_limit_at_once(server_with):
    one_slot = server_with(1, clip_batch=1)
    # one length for all: none is shorter than another, so none lends its slot and the decodes must not overlap
    clips = [audio_file(SHORT)] * 4
    with one_slot.client() as client, ThreadPoolExecutor(len(clips)) as pool:
        answers = list(pool.map(lambda clip: post_file(client, "/transcribe", "audio", clip), clips))
        assert [answer.status_code for answer in answers] == [200] * len(clips), answers[0].text
        statuses = [client.get(f"/session/{answer.json()['session_id']}").json()["status"] for answer in answers]
        health = client.get("/health").json()
    intervals = sorted(decode_interval(status) for status in statuses)
    for (_, end), (next_start, _) in itertools.pairwise(intervals):
        assert next_start >= end - 0.005, f"two decodes overlapped: {intervals}"  # ms-rounded timestamps
    decodes = health["decodes"]
    assert decodes["slots"] == 1 and decodes["peak_running"] == 1, decodes
    memory = health["memory"]  # what an operator sizes a server by (docs/deploy.md, Memory)
    assert 100 * 2**20 < memory["rss_bytes"] <= memory["peak_rss_bytes"], memory  # a model is loaded
    assert "tiny.en" in memory["loaded_models"], memory


def test_clips_sent_together_decode_as_one_batch_each_with_its_own_text(server_with):
    """With one slot, four different clips sent at once all decode together (their model calls batched),
    and each comes back with the text it has when sent alone."""
    clips = [audio_file(name) for name in ENGLISH_FILES[:4]]
    server = server_with(1, clip_batch=len(clips))  # a server of its own: the peak of running decodes is this test's
    with server.client() as client:
        alone = [post_file(client, "/transcribe", "audio", clip).json()["text"] for clip in clips]
        with ThreadPoolExecutor(len(clips)) as pool:
            answers = list(pool.map(lambda clip: post_file(client, "/transcribe", "audio", clip), clips))
        assert [answer.status_code for answer in answers] == [200] * len(clips), answers[0].text
        statuses = [client.get(f"/session/{answer.json()['session_id']}").json()["status"] for answer in answers]
        decodes = client.get("/health").json()["decodes"]
    assert [answer.json()["text"] for answer in answers] == alone
    assert {status["runs"][-1]["engine"] for status in statuses} == {"clip batch"}
    assert decodes["slots"] == 1 and decodes["peak_running"] > 1, decodes  # more clips than slots at once
    intervals = sorted(decode_interval(status) for status in statuses)
    assert any(next_start < end for (_, end), (next_start, _) in itertools.pairwise(intervals)), intervals


def short_clip_beside(server, client, long_id: str, slots: int) -> None:
    """A short clip sent while the long job `long_id` runs is answered while it still runs, never with
    more decodes at once than the slots."""
    short = post_file(client, "/transcribe", "audio", audio_file(SHORT))
    assert short.status_code == 200, short.text
    assert "apostle" in short.json()["text"].lower()
    # answered while the long job still runs
    assert client.get(f"/session/{long_id}").json()["status"]["status"] == "processing"
    decodes = client.get("/health").json()["decodes"]
    assert decodes["peak_running"] == slots, decodes
    if slots == 1:
        assert decodes["preemptions"] >= 1, decodes  # the long job gave its slot away between segments


def check_went_on(server, long_id: str) -> None:
    """The long job went on where it was: every segment once, in order, in one run."""
    done = server.wait_done(long_id, timeout=900)
    assert done["status"]["status"] == "done"
    starts = [segment["start"] for segment in done["transcription"]["segments"]]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert len(done["status"]["runs"]) == 1


@dataclass
class BesideLongJob:
    """What happened beside one long job on a server with two slots: a short clip, then a live stream."""

    long_id: str
    clip_problem: AssertionError | None  # what short_clip_beside found wrong, if anything
    live_messages: list[dict]
    long_status_after_live: str
    seen: list[dict]  # /health's decodes while the stream ran


@pytest.fixture(scope="module")
def beside_long_job_on_two_slots(server_with, long_recording) -> BesideLongJob:
    """One long job on two slots, shared by the two tests that watch what runs beside it (each ran a long
    job of its own before): a short clip takes the slot kept for short audio, then live captions
    decode while the job steps aside."""
    server = server_with(2)
    seen: list[dict] = []
    with server.client(timeout=600) as client:
        long_id = post_file(client, "/transcribe-file", "file", long_recording).json()["session_id"]
        wait_for_processing(server, long_id)
        try:
            short_clip_beside(server, client, long_id, 2)
            clip_problem = None
        except AssertionError as problem:  # the clip's test fails on it; the live stream's goes on
            clip_problem = problem
        wait_for_segments(server, long_id)  # a job steps aside between segments, not while detecting
        messages: list[dict] = []
        live = threading.Thread(
            target=lambda: messages.extend(stream_live(server, read_pcm(audio_file(LIVE_SPEECH)), speed=4.0))
        )
        live.start()
        while live.is_alive():
            seen.append(client.get("/health").json()["decodes"])
            time.sleep(0.05)
        live.join()
        long_status = client.get(f"/session/{long_id}").json()["status"]["status"]
    return BesideLongJob(long_id, clip_problem, messages, long_status, seen)


@pytest.mark.parametrize("slots", [1, 2])
def test_a_short_clip_is_done_before_a_long_job_that_was_running(server_with, long_recording, slots, request):
    """One slot: the long job lends it between segments. Two: the clip takes the one kept for short audio."""
    if slots == 2:  # the long job a live stream also ran beside, later (test_a_long_job_pauses_...)
        beside = request.getfixturevalue("beside_long_job_on_two_slots")
        if beside.clip_problem is not None:
            raise beside.clip_problem
        check_went_on(server_with(2), beside.long_id)
        return
    # one slot: the server of test_concurrent_requests_... (its clips batch alone; this one clip has no
    # other to batch with), whose peak of running decodes is one too
    server = server_with(slots, clip_batch=1)
    with server.client(timeout=600) as client:
        long_id = post_file(client, "/transcribe-file", "file", long_recording).json()["session_id"]
        wait_for_processing(server, long_id)
        short_clip_beside(server, client, long_id, slots)
    check_went_on(server, long_id)


def stream_live(server, samples: np.ndarray, speed: float) -> list[dict]:
    """Stream 16 kHz PCM over /ws/live in 100 ms frames at `speed` x real time; the messages back."""
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    messages: list[dict] = []
    with connect(server.url.replace("http://", "ws://") + "/ws/live", open_timeout=30) as websocket:
        websocket.send(json.dumps({"type": "start", "format": "pcm"}))
        messages.append(json.loads(websocket.recv(timeout=30)))

        def send() -> None:
            for start in range(0, len(data), 3200):
                websocket.send(data[start : start + 3200])
                time.sleep(0.1 / speed)
            websocket.send(json.dumps({"type": "stop"}))

        sender = threading.Thread(target=send)
        sender.start()
        while messages[-1]["type"] not in ("done", "error"):
            messages.append(json.loads(websocket.recv(timeout=300)))
        sender.join()
    return messages


def test_a_long_job_pauses_while_live_captions_decode(server_with, beside_long_job_on_two_slots):
    """Live steps run outside the slots; the long job that holds one steps aside at its next segment
    while they run (seen in /health) and then goes on where it was: every segment once, one run."""
    beside = beside_long_job_on_two_slots
    messages, seen = beside.live_messages, beside.seen
    assert messages[-1]["type"] == "done", messages[-1]
    assert "corpus" in "".join(m["text"] for m in messages if m["type"] == "final").lower()
    assert any(decodes["live_steps"] >= 1 and decodes["paused"] == 1 for decodes in seen), (
        beside.long_status_after_live,
        seen,
    )
    check_went_on(server_with(2), beside.long_id)


def test_over_the_wait_bound_a_request_gets_503_with_retry_after(tmp_path_factory, long_recording):
    server = make_server(
        tmp_path_factory, "no-waiting", TAPESCRIBE_MAX_CONCURRENT_DECODES=1, TAPESCRIBE_MAX_WAITING_DECODES=0
    ).start()
    try:
        with server.client() as client:
            long_id = post_file(client, "/transcribe-file", "file", long_recording).json()["session_id"]
            wait_for_processing(server, long_id)
            for route, field in (("/transcribe", "audio"), ("/v1/audio/transcriptions", "file")):
                refused = post_file(client, route, field, audio_file(SHORT))
                assert refused.status_code == 503, refused.text
                assert int(refused.headers["Retry-After"]) >= 1
                error = refused.json()["error"]
                assert error["status"] == 503 and error["code"] == "server_busy" and error["message"]
            # nothing was kept of the refused requests: the client sends them again
            assert [row["id"] for row in client.get("/sessions").json()["sessions"]] == [long_id]
            client.post(f"/session/{long_id}/cancel")
    finally:
        server.stop()
