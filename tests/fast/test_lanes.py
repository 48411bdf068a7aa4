"""Lockstep lanes (engine/lanes.py): batched model calls give each lane what an unbatched call gives it.

Three short real recordings are decoded as three lanes through one BatchingWhisper (a long gather
time, so the batches always form whatever the machine's load), and each must come back with the very
tokens of faster-whisper's own sequential transcribe of that recording.
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from conftest import audio_file, read_pcm
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.lanes import BatchingWhisper, lane_edges

RECORDINGS = ("jfk.flac", "61-70968-0000.flac", "goforward.wav")


def test_each_lane_gets_the_tokens_of_an_unbatched_decode(library_model):
    recordings = [read_pcm(audio_file(name)) for name in RECORDINGS]
    alone = [[segment.tokens for segment in library_model.transcribe(audio)[0]] for audio in recordings]

    start_token = library_model.hf_tokenizer.token_to_id("<|startoftranscript|>")
    batcher = BatchingWhisper(library_model.model, start_token, gather_seconds=30.0)
    lane_model = copy.copy(library_model)
    lane_model.model = batcher

    def lane(audio: np.ndarray) -> list[list[int]]:
        try:
            return [segment.tokens for segment in lane_model.transcribe(audio)[0]]
        finally:
            batcher.lane_done()

    with batcher.lanes(len(recordings)), ThreadPoolExecutor(len(recordings)) as pool:
        in_lanes = list(pool.map(lane, recordings))

    assert in_lanes == alone
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
