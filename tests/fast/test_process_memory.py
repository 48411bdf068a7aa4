"""A process's peak memory is its own (process_memory.py): a child started by a large process does not
read its parent's size as its peak, as getrusage's ru_maxrss does on Linux."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tapescribe.process_memory import peak_mib, resident_memory

CHILD = """
import resource
from tapescribe.process_memory import peak_mib
print(peak_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def test_a_childs_peak_is_its_own_not_its_parents() -> None:
    held = np.ones(300 * 2**20 // 8)  # 300 MiB of this process's own pages, written
    own, inherited = map(
        float, subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    )
    assert peak_mib() >= 300 and held.sum() > 0
    assert inherited >= 300  # what the benchmarks and memory tests read before
    assert own < 150, own  # a Python that imported one small module


def test_now_is_at_most_the_peak() -> None:
    rss, peak = resident_memory()
    assert 0 < rss <= peak
