"""Clip batches (engine/clip_batches.py): concurrent clips share their model calls and each gets what it
would get alone; calls that fail as a batch are made one by one, so one caller's input fails no other."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import audio_file, read_pcm
from tapescribe.engine.clip_batches import ClipBatches
from tapescribe.engine.lanes import BatchingWhisper, replicas
from tapescribe.engine.whisper_adapter import generator

RECORDINGS = ("jfk.flac", "61-70968-0000.flac", "goforward.wav", "vosk_digits.wav")


@pytest.fixture(scope="module")
def one_decoder_model():
    """tiny.en on one decoder of CTranslate2's 4 threads: there a clip batch stacks its calls."""
    from faster_whisper import WhisperModel

    from tapescribe.config import Settings
    from tapescribe.engine.models import resolve_model

    path = resolve_model("tiny.en", Settings().models_dir)
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=0, num_workers=1)


def clips_in_one_batch(model) -> tuple[list[list[list[int]]], list[list[list[int]]], BatchingWhisper, ClipBatches]:
    """Each recording's tokens alone and through one clip batch that the later clips join."""
    recordings = [read_pcm(audio_file(name)) for name in RECORDINGS]
    alone = [[segment.tokens for segment in model.transcribe(audio)[0]] for audio in recordings]
    batches = ClipBatches(gather_seconds=0.5)
    batchers = []
    first_joined = threading.Event()

    def clip(number: int) -> list[list[int]]:
        if number:
            first_joined.wait(10)  # the others join the batch the first one opened
        with batches.join(model) as member_model:
            batchers.append(generator(member_model))
            first_joined.set()
            return [segment.tokens for segment in member_model.transcribe(recordings[number])[0]]

    with ThreadPoolExecutor(len(recordings)) as pool:
        batched = list(pool.map(clip, range(len(recordings))))
    assert batchers[0] is not model.model and all(batcher is batchers[0] for batcher in batchers)
    return alone, batched, batchers[0], batches


def test_clips_joining_at_different_times_get_the_tokens_of_an_unbatched_decode(one_decoder_model):
    alone, batched, batcher, batches = clips_in_one_batch(one_decoder_model)
    assert batched == alone
    assert max(rows for kind, rows, _ in batcher.calls if kind == "generate") >= 2  # calls were shared
    assert batches.members() == 0  # the batch ended with its last clip
    assert not batcher._server.is_alive()


def test_on_several_decoders_a_clip_batch_runs_its_calls_apart(library_model):
    """The server's default model (one single-thread decoder per core): a batch of calls would be no
    cheaper than its calls, so each runs alone on a free decoder, with the tokens it gets alone."""
    assert replicas(library_model) >= 2 or pytest.skip("one core: one decoder")
    alone, batched, batcher, batches = clips_in_one_batch(library_model)
    assert batched == alone
    assert {rows for _, rows, _ in batcher.calls} == {1}
    assert batches.members() == 0 and not batcher._server.is_alive()


def test_calls_that_fail_as_one_batch_are_made_one_by_one(library_model):
    """Two calls gathered into one batch whose features cannot be stacked (2,000 frames against
    3,000): the batch fails, and each call is then made alone and gets its own result, where before
    both callers got the batch's error (another client's clip must not fail a request)."""
    import ctranslate2

    start_token = library_model.hf_tokenizer.token_to_id("<|startoftranscript|>")
    features = library_model.feature_extractor(read_pcm(audio_file("jfk.flac")))[:, :3000]
    features = np.pad(features, ((0, 0), (0, 3000 - features.shape[1])))[None].astype(np.float32)
    prompt = [start_token]
    expected = library_model.model.generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=1)
    batcher = BatchingWhisper(library_model.model, start_token, gather_seconds=None)

    def call(call_features: np.ndarray):
        try:
            return batcher.generate(call_features, [prompt], beam_size=1)
        finally:
            batcher.lane_done()

    with batcher.lanes(2), ThreadPoolExecutor(2) as pool:
        answers = [pool.submit(call, given) for given in (features, features[:, :, :2000])]
        assert answers[0].result()[0].sequences_ids == expected[0].sequences_ids
        assert answers[1].result()[0].sequences_ids  # decoded alone from its shorter features
    assert [kind for kind, _, _ in batcher.calls] == ["generate", "generate"]  # each alone
