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

import copy
import itertools
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import pytest
from test_resume import crash_after, holes, text

from conftest import AUDIO_DIR, library_default_text, make_server, queue_file, wer, write_wav
from long_audio import make
from tapescribe.config import Settings
from tapescribe.engine import lane_groups
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks
from tapescribe.engine.lane_groups import transcribe_lane_groups
from tapescribe.engine.transcriber import transcribe_windows
from tapescribe.runtime import Runtime, decode_defaults
from tapescribe.sessions.service import DONE

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
    # the lanes' context cut to 128 tokens, as a multilingual model's is (tiny.en's keeps all of it), so
    # that a resume of lanes whose prompts are cut is checked too
    return Runtime(Settings(data_dir=data, window_seconds=60, file_lanes=LANES, lane_context_tokens=128))


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
    # over one lane's minute (lane_groups.LANE_SECONDS), under the two minutes two lanes need
    audio = np.concatenate(list(pcm_blocks(path)))[: 70 * SAMPLE_RATE]
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


def test_the_first_lane_is_saved_as_it_decodes_and_closing_early_ends_the_lanes(runtime, group_run):
    """A job saves a group's first lane segment by segment (so progress shows and a crash costs less
    than the group), and a job that stops there (a cancel, a lost lease) closes the generator: every
    lane and the batching thread end at their next model call."""
    audio, model, options = group_run.audio, runtime.models.get(), decode_defaults(runtime.settings)
    first, rest, calls_before_first = group_run.records[0], group_run.records[1:], group_run.calls_before_first
    assert first["start"] < 75 and all(first["start"] <= record["start"] for record in rest)
    assert calls_before_first < group_run.calls // 2, (calls_before_first, group_run.calls)  # long before the end

    calls: list[str] = []
    records = transcribe_lane_groups(model, [audio], options, lanes=LANES, between_calls=lambda: calls.append("call"))
    next(records)
    records.close()
    closed_after = len(calls)
    assert not [thread for thread in threading.enumerate() if thread.name.startswith(("lane", "lane-batcher"))]
    assert closed_after <= calls_before_first + 2  # the lanes stopped; they did not decode the group to its end


def test_a_group_in_lanes_shows_progress_while_its_lanes_decode(group_run):
    """The other lanes' records come when the group ends, so a job's progress follows where the lanes
    have about got to (the first lane's share of its length): else a 4-lane group of a file under 16
    minutes would move the bar only through its first quarter, then jump."""
    heard, records = group_run.heard, group_run.records
    assert {record["window_start"] for record in records} == {0.0}  # one group, of two lanes
    first_lane_end = max(record["end"] for record in records if record["start"] < 75)
    assert heard == sorted(heard) and heard[-1] <= 150.0
    assert [seconds for seconds in heard if seconds > first_lane_end + 10], (heard, first_lane_end)


class Overlaps:
    """Counts how many of the spied calls run at once. A call waits up to a second for another one to
    come in, so calls that may overlap do."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.threads: set[str] = set()
        self.changed = threading.Condition()

    def spy(self, call):
        def counted(*args, **kwargs):
            with self.changed:
                self.running += 1
                self.most = max(self.most, self.running)
                self.threads.add(threading.current_thread().name)
                self.changed.notify_all()
                self.changed.wait_for(lambda: self.running > 1, timeout=1.0)
            try:
                return call(*args, **kwargs)
            finally:
                with self.changed:
                    self.running -= 1

        return counted


class SpiedExtractor:
    """The model's real feature extractor, its calls counted."""

    def __init__(self, extractor, overlaps: Overlaps) -> None:
        self.extractor = extractor
        self.counted = overlaps.spy(extractor)

    def __call__(self, *args, **kwargs):
        return self.counted(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.extractor, name)


def test_the_lanes_of_a_group_pass_over_their_whole_audio_on_one_thread(group_run):
    """Each lane's whole audio is featurized and searched for speech (VAD) at once, at about 0.8 and
    0.6 MiB a second at the peak, and a thread keeps what it freed: four lane threads doing that
    raised a 30-minute file's peak from 678 to 1266 MiB (engine/lanes.py OnOneThread)."""
    overlaps, records = group_run.overlaps, group_run.records
    assert records and {record["window_start"] for record in records} == {0.0}  # one group, of two lanes
    assert overlaps.most == 1 and len(overlaps.threads) == 1, overlaps.threads


@dataclass
class GroupRun:
    """One group of two lanes (the first 150 s) decoded start to end with everything the tests watch."""

    audio: np.ndarray
    records: list[dict]
    calls: int  # calls between the lanes' batched model calls
    calls_before_first: int  # ... before the first record came out
    heard: list[float]  # the positions reported for progress
    overlaps: Overlaps  # the VAD and feature extractor calls, and on which threads
    lane_starts: list[float]  # seconds
    audio_held: list[bool]  # for each record as it came out: whether the group's audio was still in memory


@pytest.fixture(scope="module")
def group_run(runtime, long_speech) -> GroupRun:
    """Decoded once for the three tests that watch a whole group decode (each watched it alone before)."""
    path, _ = long_speech
    audio = np.concatenate(list(pcm_blocks(path)))[: 150 * SAMPLE_RATE]
    overlaps, heard, calls = Overlaps(), list[float](), list[str]()
    model = copy.copy(runtime.models.get())
    model.feature_extractor = SpiedExtractor(model.feature_extractor, overlaps)
    group_audio: list[weakref.ref] = []
    lane_starts: list[float] = []
    real_pieces = lane_groups.lane_pieces

    def watched_pieces(audio, count):
        group_audio.append(weakref.ref(audio if audio.base is None else audio.base))
        starts, pieces = real_pieces(audio, count)
        lane_starts.extend(start / SAMPLE_RATE for start in starts)
        return starts, pieces

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lane_groups, "speech_clips", overlaps.spy(lane_groups.speech_clips))
        patch.setattr(lane_groups, "lane_pieces", watched_pieces)
        records = transcribe_lane_groups(
            model,
            [audio],
            decode_defaults(runtime.settings),
            lanes=LANES,
            between_calls=lambda: calls.append("call"),
            on_position=heard.append,
        )
        first = next(records)
        calls_before_first = len(calls)
        decoded, audio_held = [first], [group_audio[0]() is not None]
        for record in records:
            decoded.append(record)
            audio_held.append(group_audio[0]() is not None)
    return GroupRun(audio, decoded, len(calls), calls_before_first, heard, overlaps, lane_starts, audio_held)


def test_a_groups_audio_is_let_go_once_its_lanes_are_featurized(group_run):
    """A lane decodes from its features alone: once every lane has them, nothing holds the group's audio
    (61 MiB for a 960 s group), where before it was held until the group's last segment (issue 28).
    The second lane's records come out once every lane is done, long after each was featurized."""
    second_lane = [
        held
        for record, held in zip(group_run.records, group_run.audio_held, strict=True)
        if record["start"] >= group_run.lane_starts[1]
    ]
    assert len(group_run.lane_starts) == 2 and second_lane
    assert not any(second_lane)
