"""glibc's malloc, held to what a long job needs: the arenas capped at start, free memory given back.

The server calls `cap_malloc_arenas` once at start when lanes are on (runtime.prepare_process); file
lanes call `release_free_memory` after each group and, during a group, after a model call at most every
RELEASE_EVERY_SECONDS (engine/lane_groups.py, lanes.BatchingWhisper). Where the C library is not glibc
both do nothing. Measured in docs/performance.md, Memory.
"""

from __future__ import annotations

import ctypes

M_ARENA_MAX = -8  # glibc's mallopt parameter number
MALLOC_ARENAS = 2
# A file's lanes give malloc's free memory back this often (after a model call), not only after each group:
# what a cycle freed in the arenas and the next did not reuse stayed resident until the group's end, more in
# each group, and the groups' peaks climbed (678 to 762 MiB over a three-hour upload: docs/performance.md,
# Memory). One trim took about 30 ms of its call's thread.
RELEASE_EVERY_SECONDS = 2.0


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let glibc's malloc keep at most `arenas` arenas in this process (M_ARENA_MAX); False where it is
    not glibc. By default each thread that allocates may get an arena of its own, and the lanes'
    threads, each allocating and freeing features and segments, grew a job's resident memory while it
    decoded (docs/performance.md, Memory). Call it before lanes start."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def release_free_memory() -> bool:
    """Give the memory malloc holds free back to the system (glibc's malloc_trim); False where it is
    not glibc. Called after each lane group: what a group's passes freed stayed resident in the
    arenas, in pieces the next group's allocations did not all fit, and a long job's resident memory
    climbed group by group (docs/performance.md, Memory)."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
