"""File jobs in lockstep lanes (TAPESCRIBE_FILE_LANES, engine/lane_groups.py): as accurate as
faster-whisper's default transcribe, resumable to the same text, and unchanged for short files.

About 4.5 minutes of the shared English recordings in shuffled order with varied pauses, speed and
level (bench/make_long_audio.py, fixed seed), so the text never simply repeats itself. Through the
server with 4 lanes and the default 240 s windows the file is one group of 4 lanes. In-process, 60 s
windows make groups of 240 s, so the file is a group of 3 lanes and a last group of one plain
transcribe, and a job stopped in either is resumed (the
checks of tests/test_resume.py).
"""

from __future__ import annotations

import itertools
import sys
import threading

import numpy as np
import pytest
from test_resume import crash_after, holes, text

from conftest import AUDIO_DIR, REPO, library_default_text, make_server, queue_file, wer, write_wav
from tapescribe.config import Settings
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks
from tapescribe.engine.lane_groups import transcribe_lane_groups
from tapescribe.engine.transcriber import transcribe_windows
from tapescribe.runtime import Runtime, decode_defaults
from tapescribe.sessions.service import DONE

sys.path.insert(0, str(REPO / "bench"))

from make_long_audio import make

SECONDS = 270
SEED = 3
LANES = 4
ALLOWED_POINTS = 0.5


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory):
    return make(SECONDS, tmp_path_factory.mktemp("lanes") / "varied_speech.wav", AUDIO_DIR, SEED)


def test_server_in_lanes_is_as_accurate_as_the_library_default(tmp_path_factory, long_speech, library_model):
    path, reference = long_speech
    server = make_server(tmp_path_factory, "lanes", TAPESCRIBE_FILE_LANES=LANES).start()
    try:
        with server.client() as client, path.open("rb") as handle:
            response = client.post("/transcribe-file", files={"file": (path.name, handle)})
        assert response.status_code < 300, response.text
        body = server.wait_done(response.json()["session_id"], timeout=300)
    finally:
        server.stop()
    assert body["status"]["status"] == "done"
    segments = body["transcription"]["segments"]
    assert {segment["window_start"] for segment in segments} == {0.0}  # one group (windows would make two)
    lanes_wer = wer([reference], [body["transcription"]["text"]])
    default_wer = wer([reference], [library_default_text(library_model, path)])
    print(f"lanes_wer={lanes_wer:.2f} library_default_wer={default_wer:.2f}")
    assert lanes_wer <= default_wer + ALLOWED_POINTS


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    data = tmp_path_factory.mktemp("lanes-resume") / "data"
    return Runtime(Settings(data_dir=data, window_seconds=60, file_lanes=LANES))


def test_a_job_resumed_in_either_group_gives_the_uninterrupted_text(runtime, long_speech):
    path, _ = long_speech
    session_id = queue_file(runtime, path)
    journal: list[dict] = []
    assert runtime.transcription.run(session_id, on_segment=journal.append) == DONE
    reference = runtime.sessions.transcription(session_id)
    finished = runtime.sessions.session(session_id)
    groups: dict[float, list[int]] = {}
    for number, record in enumerate(journal, 1):
        groups.setdefault(record["window_start"], []).append(number)
    assert len(groups) == 2, sorted(groups)
    first, last = groups.values()
    for count in (first[len(first) * 2 // 3], last[len(last) // 2]):  # in the first group's later lanes, then the last
        saved = journal[:count]
        resumed_id = crash_after(runtime, path, (reference, journal, finished), saved)
        assert runtime.transcription.run(resumed_id) == DONE
        resumed = runtime.sessions.transcription(resumed_id)
        assert runtime.sessions.status(resumed_id)["runs"][-1]["from_seconds"] == saved[-1]["window_start"]
        difference = wer([reference["text"]], [resumed["text"]])
        identical = text(resumed["segments"]) == text(reference["segments"])
        print(f"resumed after {count} segments: WER {difference:.2f}% against uninterrupted, identical {identical}")
        # Batches wait for every lane (no gather time), so the same lanes decode the same on any load.
        assert identical
        assert holes(reference["segments"], resumed["segments"]) == []
        assert [(s["start"], s["text"]) for s in resumed["segments"][:count]] == [
            (s["start"], s["text"]) for s in saved
        ]
        assert all(b["start"] >= a["start"] for a, b in itertools.pairwise(resumed["segments"])), "none comes twice"


def test_a_file_too_short_for_two_lanes_decodes_as_in_windows(runtime, long_speech, tmp_path):
    path, _ = long_speech
    audio = np.concatenate(list(pcm_blocks(path)))[: 100 * SAMPLE_RATE]
    short = write_wav(tmp_path / "short.wav", audio)
    model = runtime.models.get()
    options = decode_defaults(runtime.settings)
    windows = list(transcribe_windows(model, pcm_blocks(short), options))
    lanes = list(transcribe_lane_groups(model, pcm_blocks(short), options, lanes=LANES))
    assert [(r["start"], r["end"], r["text"]) for r in lanes] == [(r["start"], r["end"], r["text"]) for r in windows]


class Stop(Exception):
    pass


def test_what_between_calls_raises_stops_the_lanes(runtime, long_speech):
    """A job gives way and notices a cancel between the lanes' batched calls: what it raises there
    ends every lane and comes out of the generator, and the batching thread ends."""
    path, _ = long_speech
    audio = np.concatenate(list(pcm_blocks(path)))[: 150 * SAMPLE_RATE]
    calls = []

    def between_calls() -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise Stop

    model = runtime.models.get()
    options = decode_defaults(runtime.settings)
    with pytest.raises(Stop):
        list(transcribe_lane_groups(model, [audio], options, lanes=LANES, between_calls=between_calls))
    assert len(calls) >= 3 and set(calls) == {"lane-batcher"}
    assert not [thread for thread in threading.enumerate() if thread.name.startswith(("lane", "lane-batcher"))]


def test_the_first_lane_is_saved_as_it_decodes_and_closing_early_ends_the_lanes(runtime, long_speech):
    """A job saves a group's first lane segment by segment (so progress shows and a crash costs less
    than the group), and a job that stops there (a cancel, a lost lease) closes the generator: every
    lane and the batching thread end at their next model call."""
    path, _ = long_speech
    audio = np.concatenate(list(pcm_blocks(path)))[: 150 * SAMPLE_RATE]
    model = runtime.models.get()
    options = decode_defaults(runtime.settings)
    calls: list[str] = []
    records = transcribe_lane_groups(model, [audio], options, lanes=LANES, between_calls=lambda: calls.append("call"))
    first = next(records)
    calls_before_first = len(calls)
    rest = list(records)
    assert first["start"] < 75 and all(first["start"] <= record["start"] for record in rest)
    assert calls_before_first < len(calls) // 2, (calls_before_first, len(calls))  # long before the group ended

    calls.clear()
    records = transcribe_lane_groups(model, [audio], options, lanes=LANES, between_calls=lambda: calls.append("call"))
    next(records)
    records.close()
    closed_after = len(calls)
    assert not [thread for thread in threading.enumerate() if thread.name.startswith(("lane", "lane-batcher"))]
    assert closed_after <= calls_before_first + 2  # the lanes stopped; they did not decode the group to its end
