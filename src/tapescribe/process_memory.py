"""This process's resident memory, now and at its peak (for /health, the benchmarks and the memory tests).

The peak is the kernel's VmHWM: the high-water mark of this process's own pages. Not getrusage's
ru_maxrss, which a process started by exec begins at the resident size its parent had when it forked:
a child of a 1 GB process reads 1 GB before it does anything. That made the speakers benchmark's
hour read 1,042 MiB while the step itself peaked under 800 (its parent held the generated hour of
audio), and a memory test's child read its pytest worker's size, whatever the child did.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def resident_memory() -> tuple[int, int]:
    """(resident bytes now, peak resident bytes) of this process."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return _kib(fields["VmRSS"]), _kib(fields["VmHWM"])
    except (OSError, KeyError, ValueError):  # no /proc (macOS): getrusage is the best there is
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        return peak, peak


def peak_mib() -> float:
    """This process's peak resident memory in MiB."""
    return resident_memory()[1] / 2**20


def _kib(field: str) -> int:
    value, unit = field.split()
    if unit != "kB":
        raise ValueError(f"unexpected unit {unit!r} in /proc/self/status")
    return int(value) * 1024
