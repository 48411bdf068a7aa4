"""Lane groups (engine/lane_groups.py) fall where the audio says, whatever the blocks, and again on a resume.

A resumed job reads the file again from the start of the group of its last saved segment; it must
find the very groups an uninterrupted run found from there, or its segments would not line up.
"""

from __future__ import annotations

import itertools
import weakref

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.lane_groups import GROUP_CUT_SECONDS, lane_count, read_groups

GROUP_SECONDS = 40


def speech_like(seconds: int) -> np.ndarray:
    """Noise with a soft 100 ms dip every 1.3 s, so every group's cut has a quietest moment to find."""
    generator = np.random.default_rng(7)
    audio = generator.normal(0, 0.1, seconds * SAMPLE_RATE).astype(np.float32)
    for start in np.arange(0.5, seconds, 1.3):
        first = int(start * SAMPLE_RATE)
        audio[first : first + SAMPLE_RATE // 10] *= generator.uniform(0.01, 0.5)
    return audio


def groups(audio: np.ndarray, block: int, first: int = 0) -> list[tuple[int, int, bool]]:
    blocks = (audio[i : i + block] for i in range(first, len(audio), block))
    return [(start, len(group), last) for start, group, last in read_groups(blocks, GROUP_SECONDS * SAMPLE_RATE, first)]


def test_groups_fall_where_the_audio_says_whatever_the_blocks():
    audio = speech_like(150)
    found = groups(audio, SAMPLE_RATE)
    assert found == groups(audio, 7777) == groups(audio, len(audio))
    starts = [start for start, _, _ in found]
    assert starts[0] == 0 and len(found) >= 4
    for (start, length, last), (following, _, _) in itertools.pairwise(found):
        assert not last and start + length == following  # contiguous: nothing lost, nothing twice
        assert (GROUP_SECONDS - GROUP_CUT_SECONDS) * SAMPLE_RATE <= length <= GROUP_SECONDS * SAMPLE_RATE
    assert found[-1][2] and found[-1][0] + found[-1][1] == len(audio)


def test_a_resume_at_a_group_start_finds_the_same_groups():
    audio = speech_like(150)
    found = groups(audio, SAMPLE_RATE)
    for number, (start, _, _) in enumerate(found):
        assert groups(audio, 3001, start) == found[number:]


def test_a_file_that_fits_one_group_is_one_last_group():
    audio = speech_like(GROUP_SECONDS)
    assert groups(audio, SAMPLE_RATE) == [(0, len(audio), True)]


def test_lanes_are_a_minute_or_more():
    assert [lane_count(seconds * SAMPLE_RATE, 4) for seconds in (30, 119, 120, 200, 960)] == [1, 1, 2, 3, 4]


def test_a_group_let_go_is_gone_before_the_next_is_read():
    """The reader itself holds no group while its caller decodes one and asks for the next: otherwise two
    groups lived at once while the next was read (119 MiB for 960 s groups, 61 MiB now; issue 28)."""
    audio = speech_like(150)
    reader = read_groups((audio[i : i + 7777] for i in range(0, len(audio), 7777)), GROUP_SECONDS * SAMPLE_RATE)
    for _, group, last in reader:
        held = weakref.ref(group.base if group.base is not None else group)
        del group
        assert held() is None, "the reader still holds the group it handed out"
        if last:
            break
