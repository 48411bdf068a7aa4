"""What TAPESCRIBE_DEVICE, _COMPUTE_TYPE and _BATCH_SIZE resolve to, and the batched path for file jobs.

No GPU here: the CUDA plan is checked as a decision (float16 and batched unless set otherwise); the
batched path itself runs on the CPU with the real tiny.en model when a batch size is set explicitly.
"""

from __future__ import annotations

import itertools
import os
from contextlib import ExitStack
from typing import Any

import numpy as np
import pytest

from conftest import audio_file, reference_text, wer
from tapescribe.config import Settings
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks
from tapescribe.engine.base import DecodeHooks
from tapescribe.engine.batched import BatchedWhisper, batch_pieces
from tapescribe.engine.models import GPU_BATCH_SIZE, ComputePlan, ModelPool, ModelSettings, compute_plan
from tapescribe.engine.plans import Plan, PlanSettings, choose_plan
from tapescribe.engine.transcriber import DecodeOptions, Resume, transcribe_windows
from tapescribe.engine.whisper_engine import WhisperEngine
from tapescribe.runtime import model_pool


def plan_for(tmp_path, **settings) -> ComputePlan:
    """The plan a server started with these settings uses (settings passed down as in a real start)."""
    return model_pool(Settings(data_dir=tmp_path, **settings)).plan


def test_cuda_means_float16_and_batched_file_jobs(tmp_path):
    assert plan_for(tmp_path, device="cuda") == ComputePlan("cuda", "float16", GPU_BATCH_SIZE)
    assert plan_for(tmp_path, device="cuda").batched


def test_cpu_is_int8_and_sequential_with_one_single_thread_decoder_per_core(tmp_path):
    plan = plan_for(tmp_path)
    cores = len(os.sched_getaffinity(0))
    assert plan == ComputePlan("cpu", "int8", 1, decoders=cores) and not plan.batched
    assert plan_for(tmp_path, cpu_threads=2).decoders == max(1, cores // 2)
    assert plan_for(tmp_path, cpu_decoders=3).decoders == 3
    assert plan_for(tmp_path, device="cuda", cpu_decoders=3).decoders == 1  # replicas of the CPU only


def test_decode_slots_follow_the_decoders_a_job_in_lanes_keeps_busy(tmp_path):
    """One slot per file_lanes decoders, plus the one kept for short audio; a GPU has 2."""
    assert Settings(data_dir=tmp_path, cpu_decoders=2, file_lanes=4).decode_slots == 2
    assert Settings(data_dir=tmp_path, cpu_decoders=8, file_lanes=4).decode_slots == 3
    assert Settings(data_dir=tmp_path, cpu_decoders=8, file_lanes=1).decode_slots == 9
    assert Settings(data_dir=tmp_path, device="cuda", cpu_decoders=8).decode_slots == 2
    assert Settings(data_dir=tmp_path, max_concurrent_decodes=5).decode_slots == 5


def test_a_loaded_model_runs_as_many_calls_at_once_as_it_has_decoders(tmp_path):
    model = model_pool(Settings(data_dir=tmp_path, cpu_decoders=2)).get("tiny.en")
    assert model.model.num_workers == 2


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"device": "cuda", "compute_type": "int8_float16"}, ComputePlan("cuda", "int8_float16", GPU_BATCH_SIZE)),
        ({"device": "cuda", "batch_size": 1}, ComputePlan("cuda", "float16", 1)),
        ({"device": "cuda", "batch_size": 16}, ComputePlan("cuda", "float16", 16)),
        ({"device": "cpu", "compute_type": "float32", "cpu_decoders": 1}, ComputePlan("cpu", "float32", 1)),
        ({"device": "cpu", "batch_size": 4, "cpu_decoders": 1}, ComputePlan("cpu", "int8", 4)),
    ],
)
def test_what_is_set_explicitly_wins(tmp_path, settings, expected):
    assert plan_for(tmp_path, **settings) == expected


def test_lanes_and_clip_batches_share_model_calls_on_a_cpu_only(tmp_path):
    """Their batcher stacks encoder outputs as numpy arrays; a GPU's stay on the GPU, so on CUDA even
    sequential decoding (batch size 1) must not go through it."""
    assert plan_for(tmp_path).shares_calls
    assert not plan_for(tmp_path, device="cuda", batch_size=1).shares_calls
    assert not plan_for(tmp_path, device="cuda").shares_calls
    assert not plan_for(tmp_path, device="cpu", batch_size=4).shares_calls  # the batched pipeline instead


def test_auto_is_cuda_only_when_a_gpu_is_found():
    assert compute_plan(ModelSettings(device="auto"), cuda_devices=1) == ComputePlan("cuda", "float16", GPU_BATCH_SIZE)
    assert compute_plan(ModelSettings(device="auto"), cuda_devices=0) == ComputePlan("cpu", "int8", 1)


def test_speech_stretches_become_pieces_of_at_most_30_seconds_cut_where_it_is_quiet():
    audio = np.full(240 * SAMPLE_RATE, 0.1, dtype=np.float32)
    audio[int(27.0 * SAMPLE_RATE) : int(27.1 * SAMPLE_RATE)] = 0.0  # a pause between two words
    assert batch_pieces("0", audio[: 20 * SAMPLE_RATE]) == [{"start": 0.0, "end": 20.0}]
    pieces = batch_pieces([0.0, 70.0, 100.0, 110.0], audio)
    assert [(piece["start"], piece["end"]) for piece in pieces] == [
        (0.0, 27.05),
        (27.05, 57.0),
        (57.0, 70.0),
        (100.0, 110.0),
    ]
    # an edge rounded to milliseconds past the end of the audio is cut back to it
    short = audio[: int(61.3996 * SAMPLE_RATE)]
    assert batch_pieces([0.0, 61.4], short)[-1]["end"] == len(short) / SAMPLE_RATE


def file_model(pool: ModelPool, name: str) -> Any:
    """The model a file job decodes with, by the plan the pool's machine chooses (engine/plans/)."""
    plan = choose_plan(pool.plan, file_lanes=1, clip_batched=False)
    return WhisperEngine(pool).load(name, plan, ExitStack())


def test_a_file_job_model_is_batched_only_when_the_plan_says(tmp_path):
    sequential = model_pool(Settings(data_dir=tmp_path))
    assert file_model(sequential, "tiny.en") is sequential.get("tiny.en")
    batched = file_model(model_pool(Settings(data_dir=tmp_path, batch_size=4)), "tiny.en")
    assert isinstance(batched, BatchedWhisper) and batched.batch_size == 4
    assert batched.model.is_multilingual is False  # the model's own attributes show through


def test_the_batched_path_transcribes_through_the_same_windows(tmp_path):
    """On the CPU when asked for: jfk.flac decoded by the batched pipeline, inside transcribe_windows."""
    model = file_model(model_pool(Settings(data_dir=tmp_path, batch_size=4)), "tiny.en")
    path = audio_file("jfk.flac")
    records = list(transcribe_windows(model, pcm_blocks(path), DecodeOptions(language="en"), window_seconds=30.0))
    assert records and all(record["window_start"] == 0.0 for record in records)
    text = "".join(record["text"] for record in records)
    assert wer([reference_text("jfk.flac")], [text]) <= 10.0, text


def test_the_batched_plan_times_its_words_after_decoding(tmp_path):
    """faster-whisper's batched pipeline hands out no encoder outputs, so its segments are aligned after
    decoding (engine/word_alignment.WordAligner): every word timed, joined they are the text, in order."""
    engine = WhisperEngine(model_pool(Settings(data_dir=tmp_path, batch_size=4)))
    model = engine.load("tiny.en", Plan.BATCHED, ExitStack())
    path = audio_file("jfk.flac")
    options = DecodeOptions(language="en", word_timestamps=True)
    blocks, whole_file = pcm_blocks(path), lambda: pcm_blocks(path)
    segments = list(
        engine.decode(model, Plan.BATCHED, blocks, options, Resume(), DecodeHooks(), PlanSettings(), whole_file)
    )
    words = [word for segment in segments for word in segment.words]
    assert words and "".join(word.word for word in words) == "".join(segment.text for segment in segments)
    assert all(a.start <= a.end <= b.start + 0.01 for a, b in itertools.pairwise(words))
    assert all(segment.start <= word.start <= word.end <= segment.end for segment in segments for word in segment.words)
