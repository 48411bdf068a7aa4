"""Decode plans: how a recording's audio becomes segment records, chosen in one place (`choose_plan`)
and run behind one call (`decode`).

- windows (plans/windows.py): faster-whisper's sequential `transcribe` window by window
  (engine/transcriber.py), each with the context and features one pass would have there;
- lanes (plans/lanes.py): groups of windows, each cut into lanes whose model calls run at once on
  the model's decoders (engine/lane_groups.py, engine/lanes.py): files on a CPU;
- clip batch (plans/clip_batch.py): a short clip decoded as windows on a model whose calls are
  batched with the other clips decoding now (engine/clip_batches.py);
- batched (plans/batched.py): windows through faster-whisper's BatchedInferencePipeline
  (engine/batched.py): a GPU, or a CPU with batch_size above 1.

Every plan yields the same records (engine/transcriber.segment_record), with `window_start` a resume
point, and calls the same DecodeHooks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from tapescribe.engine.base import DecodeHooks, SpeechModel
from tapescribe.engine.models import ComputePlan
from tapescribe.engine.transcriber import DecodeOptions, Resume


class Plan(StrEnum):
    """A decode plan, by the name a job's run records (status.json `runs[].engine`)."""

    WINDOWS = "windows"
    LANES = "lanes"
    CLIP_BATCH = "clip batch"
    BATCHED = "batched"


@dataclass(frozen=True)
class PlanSettings:
    window_seconds: float = 240.0
    file_lanes: int = 4  # above 1, sequential models on a CPU decode files in lanes
    lane_beam_size: int = 5
    lane_context_tokens: int = -1  # -1: by the model (engine/lane_groups.py)


def choose_plan(compute: ComputePlan, file_lanes: int, clip_batched: bool) -> Plan:
    """The plan for one decode: a clip that joined a clip batch (a decode slot says so); the batched
    pipeline when the machine batches (a GPU); else lanes for every sequential model on a CPU, windows
    with `file_lanes` 1. base was kept to windows while lanes were batched (a lane once looped at
    temperature 1.0 on tests/test_lanes_features.py's Spanish file), but windows loop there too under
    the same sampling fallback (142% WER once), and on single-thread decoders base in lanes is 2-3x
    faster than in windows. A file under 2 minutes decodes in lanes exactly as in windows."""
    if clip_batched:
        return Plan.CLIP_BATCH
    if compute.batched:
        return Plan.BATCHED
    return Plan.LANES if file_lanes > 1 and compute.shares_calls else Plan.WINDOWS


def decode(
    plan: Plan,
    model: SpeechModel,
    blocks: Iterable[np.ndarray],
    options: DecodeOptions,
    resume: Resume,
    hooks: DecodeHooks,
    settings: PlanSettings,
    whole_file: Callable[[], Iterable[np.ndarray]] | None = None,
) -> Generator[dict[str, Any], None, None]:
    """The segment records of `blocks` (from resume.start on) by `plan`."""
    from tapescribe.engine.plans import batched, clip_batch, lanes, windows

    module = {Plan.WINDOWS: windows, Plan.LANES: lanes, Plan.CLIP_BATCH: clip_batch, Plan.BATCHED: batched}[plan]
    return module.decode(model, blocks, options, resume, hooks, settings, whole_file)
