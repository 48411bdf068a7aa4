"""Lanes (engine/lanes.py): batched model calls, or calls run apart on several decoders, give each lane
what faster-whisper's own transcribe of its audio gives it.

Three short real recordings are decoded as three lanes through one BatchingWhisper (a long gather
time, so the batches always form whatever the machine's load), and each must come back with the very
tokens of faster-whisper's own sequential transcribe of that recording.
"""

from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from conftest import AUDIO_DIR, audio_file, read_pcm
from tapescribe.config import Settings
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.lanes import BatchingWhisper, lane_edges, replicas
from tapescribe.runtime import model_pool

RECORDINGS = ("jfk.flac", "61-70968-0000.flac", "goforward.wav")


def tokens_in_lanes(model, batcher: BatchingWhisper, recordings: list[np.ndarray]) -> list[list[list[int]]]:
    """Each recording's segment tokens, decoded as one lane of `model` whose calls go through `batcher`."""
    lane_model = copy.copy(model)
    lane_model.model = batcher

    def lane(audio: np.ndarray) -> list[list[int]]:
        try:
            return [segment.tokens for segment in lane_model.transcribe(audio)[0]]
        finally:
            batcher.lane_done()

    with batcher.lanes(len(recordings)), ThreadPoolExecutor(len(recordings)) as pool:
        return list(pool.map(lane, recordings))


def test_each_lane_gets_the_tokens_of_an_unbatched_decode(library_model):
    recordings = [read_pcm(audio_file(name)) for name in RECORDINGS]
    alone = [[segment.tokens for segment in library_model.transcribe(audio)[0]] for audio in recordings]

    start_token = library_model.hf_tokenizer.token_to_id("<|startoftranscript|>")
    batcher = BatchingWhisper(library_model.model, start_token, gather_seconds=30.0)
    assert tokens_in_lanes(library_model, batcher, recordings) == alone
    assert ("generate", len(recordings)) in [(kind, rows) for kind, rows, _ in batcher.calls]


def test_lanes_are_cut_in_pauses():
    speech = read_pcm(audio_file("jfk.flac"))
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = np.concatenate([speech, pause, speech, pause, speech])
    edges = lane_edges(audio, 3)
    pauses = [(len(speech) * k + len(pause) * (k - 1)) / SAMPLE_RATE for k in (1, 2)]
    assert edges[0] == 0.0 and len(edges) == 3
    for edge, pause_start in zip(edges[1:], pauses, strict=True):
        assert pause_start <= edge <= pause_start + 1.0


def test_without_a_gather_time_a_slow_lane_still_shares_the_batch(library_model):
    """File jobs batch without a gather time (lane_groups), so which calls share a batch, and so how
    contexts are trimmed and what a resumed job decodes, never depends on the machine's load."""
    start_token = library_model.hf_tokenizer.token_to_id("<|startoftranscript|>")
    features = library_model.feature_extractor(read_pcm(audio_file("jfk.flac")))[:, :3000]
    features = np.pad(features, ((0, 0), (0, 3000 - features.shape[1])))[None].astype(np.float32)
    prompt = [start_token, *library_model.hf_tokenizer.encode("").ids]

    def rows_per_call(gather_seconds: float | None) -> list[int]:
        batcher = BatchingWhisper(library_model.model, start_token, gather_seconds=gather_seconds)

        def lane(delay: float) -> None:
            try:
                time.sleep(delay)  # a lane busy in Python (features, VAD, word times) before its call
                batcher.generate(features, [prompt], beam_size=1, max_length=8)
            finally:
                batcher.lane_done()

        with batcher.lanes(3), ThreadPoolExecutor(3) as pool:
            list(pool.map(lane, (0.0, 0.0, 1.0)))
        return [rows for kind, rows, _ in batcher.calls if kind == "generate"]

    assert rows_per_call(0.1) == [2, 1]  # what a busy machine did to the lanes of a job before
    assert rows_per_call(None) == [3]


class _CallsInFlight:
    """A CTranslate2 model that counts the calls running on it at once."""

    def __init__(self, model) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0

    def _counted(self, method, *args, **kwargs):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return method(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def encode(self, *args, **kwargs):
        return self._counted(self._model.encode, *args, **kwargs)

    def generate(self, *args, **kwargs):
        return self._counted(self._model.generate, *args, **kwargs)


def test_apart_each_call_runs_alone_on_a_free_decoder_and_each_lane_gets_its_own_tokens(tmp_path):
    """With several single-thread decoders (the default on a CPU: one beam search ran 2-3.5x faster
    on one thread than on CTranslate2's 4 on 2 cores), the lanes' calls are not stacked into one:
    each runs alone on a free decoder as soon as it comes, so each lane gets the very tokens of
    faster-whisper's own transcribe of its audio, and two calls run at once."""
    model = model_pool(Settings(data_dir=tmp_path, cpu_threads=1, cpu_decoders=2)).get("tiny.en")
    assert replicas(model) == 2
    recordings = [read_pcm(audio_file(name)) for name in RECORDINGS]
    alone = [[segment.tokens for segment in model.transcribe(audio)[0]] for audio in recordings]

    counting = _CallsInFlight(model.model)
    start_token = model.hf_tokenizer.token_to_id("<|startoftranscript|>")
    batcher = BatchingWhisper(counting, start_token, gather_seconds=None, apart=replicas(model))
    assert tokens_in_lanes(model, batcher, recordings) == alone
    assert {rows for _, rows, _ in batcher.calls} == {1}  # nothing stacked
    assert counting.most == 2  # both decoders busy at once, never more calls than decoders


class _PromptsSeen:
    """A CTranslate2 model that keeps the prompts of its generate calls."""

    def __init__(self, model) -> None:
        self._model = model
        self.prompts: list[list[int]] = []

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def generate(self, features, prompts, **kwargs):
        self.prompts += [list(prompt) for prompt in prompts]
        return self._model.generate(features, prompts, **kwargs)


def test_a_lane_keeps_only_its_latest_context_tokens_and_decodes_as_with_that_prompt(library_model):
    """With context_tokens (a multilingual model's lanes keep 128, engine/lane_groups.py) the model
    sees at most that many tokens of the text before a window, the latest ones, and the lane's text is
    faster-whisper's own transcribe given just those as its prompt."""
    tokenizer = library_model.hf_tokenizer
    start_token = tokenizer.token_to_id("<|startoftranscript|>")
    earlier = (AUDIO_DIR / "acoustic_corpus.txt").read_text().strip()
    context = tokenizer.encode(" " + earlier, add_special_tokens=False).ids
    kept = 16
    assert len(context) > 3 * kept
    audio = read_pcm(audio_file("jfk.flac"))
    expected = [segment.tokens for segment in library_model.transcribe(audio, initial_prompt=context[-kept:])[0]]

    seen = _PromptsSeen(library_model.model)
    lane_model = copy.copy(library_model)
    lane_model.model = BatchingWhisper(seen, start_token, gather_seconds=None, context_tokens=kept)
    with lane_model.model.lanes(1):
        try:
            got = [segment.tokens for segment in lane_model.transcribe(audio, initial_prompt=context)[0]]
        finally:
            lane_model.model.lane_done()
    assert got == expected
    first = seen.prompts[0]
    assert first[0] == tokenizer.token_to_id("<|startofprev|>")
    assert first[1 : first.index(start_token)] == context[-kept:]


def test_file_lanes_give_free_memory_back_between_calls(library_model, monkeypatch):
    """A file's lanes trim malloc's free memory during a group, not only after it (issue 28): what one
    decoding cycle freed and the next did not reuse made the groups' peaks climb: 761 MiB in the ninth
    group of a three-hour upload against 678 in the first (docs/performance.md, Memory)."""
    from tapescribe.engine import lanes

    trims = []
    monkeypatch.setattr(lanes, "release_free_memory", lambda: trims.append(time.monotonic()) or True)
    start_token = library_model.hf_tokenizer.token_to_id("<|startoftranscript|>")
    features = library_model.feature_extractor(read_pcm(audio_file("jfk.flac")))[:, :3000]
    features = np.pad(features, ((0, 0), (0, 3000 - features.shape[1])))[None].astype(np.float32)
    prompt = [start_token, *library_model.hf_tokenizer.encode("").ids]

    def calls(release_every: float | None) -> None:
        batcher = BatchingWhisper(library_model.model, start_token, gather_seconds=None, release_every=release_every)
        with batcher.lanes(1):
            try:
                for _ in range(2):
                    batcher.generate(features, [prompt], beam_size=1, max_length=8)
            finally:
                batcher.lane_done()

    calls(None)  # clip batches: no trims of their own
    assert trims == []
    calls(0.0)
    assert len(trims) == 2


class _EncodesAtOnce:
    """A CTranslate2 Whisper that counts how many of its encodes run at once (each made to last 0.2 s more)."""

    def __init__(self, model) -> None:
        self.model, self.running, self.most = model, 0, 0
        self.lock = threading.Lock()

    def encode(self, features, to_cpu: bool = False):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.2)
            return self.model.encode(features, to_cpu=to_cpu)
        finally:
            with self.lock:
                self.running -= 1

    def __getattr__(self, name: str):
        return getattr(self.model, name)


def test_lanes_apart_encode_one_at_a_time(library_model):
    """Lanes on two decoders run each call as it comes, but never two encoder passes at once (issue 28):
    each holds its attention matrices while it runs, and two at once set a long job's peak memory."""
    start_token = library_model.hf_tokenizer.token_to_id("<|startoftranscript|>")
    features = library_model.feature_extractor(read_pcm(audio_file("jfk.flac")))[:, :3000]
    features = np.pad(features, ((0, 0), (0, 3000 - features.shape[1])))[None].astype(np.float32)
    counted = _EncodesAtOnce(library_model.model)
    batcher = BatchingWhisper(counted, start_token, gather_seconds=None, apart=2)
    with batcher.lanes(2), ThreadPoolExecutor(2) as lanes:

        def lane() -> None:
            try:
                for _ in range(3):
                    batcher.encode(features)
            finally:
                batcher.lane_done()

        for done in [lanes.submit(lane) for _ in range(2)]:
            done.result()
    assert counted.most == 1
