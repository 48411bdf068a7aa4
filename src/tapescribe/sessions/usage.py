"""What the data directory holds, by kind: the library (what a backup keeps), the model copies, caches.

The library is the sessions (their bytes are the index's total: no walk over every session) plus every
other file and directory of the data directory: the index, the queue, uploads being received and any
library directory a later version adds. Model copies (models/) and caches (cache/, scratch/) can be
made again, so they are counted apart and a backup leaves them out.
"""

from __future__ import annotations

import os
from pathlib import Path

from tapescribe.sessions.files import tree_size

MODEL_DIRS = ("models",)
CACHE_DIRS = ("cache", "scratch")
SESSIONS_DIR = "sessions"


def data_dir_usage(data_dir: Path, sessions_bytes: int) -> dict[str, int]:
    """Bytes under `data_dir`: `library_bytes` (sessions and everything else but models and caches),
    `model_bytes`, `cache_bytes` and their sum `data_dir_bytes`."""
    library = sessions_bytes
    models = caches = 0
    try:
        entries = list(os.scandir(data_dir))
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if entry.name == SESSIONS_DIR:
            continue
        try:
            size = (
                entry.stat(follow_symlinks=False).st_size
                if entry.is_file(follow_symlinks=False)
                else tree_size(Path(entry.path))
                if entry.is_dir(follow_symlinks=False)
                else 0
            )
        except FileNotFoundError:
            continue
        if entry.name in MODEL_DIRS:
            models += size
        elif entry.name in CACHE_DIRS:
            caches += size
        else:
            library += size
    return {
        "library_bytes": library,
        "model_bytes": models,
        "cache_bytes": caches,
        "data_dir_bytes": library + models + caches,
    }
