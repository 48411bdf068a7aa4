"""What a job's journal (its saved segments) means: the transcript they make, and where a resumed job starts."""

from __future__ import annotations

from typing import Any

from tapescribe.engine.records import Transcript
from tapescribe.engine.transcriber import Resume, for_transcript


def build_transcription(session: dict[str, Any], segments: list[dict[str, Any]], complete: bool) -> Transcript:
    """The job's transcript of its journaled `segments` (whole when `complete`), without what only decoding needs."""
    return Transcript.of(
        (for_transcript(segment) for segment in segments),
        session.get("language"),
        session.get("language_probability"),
        session.get("model"),
        complete,
    )


def resume_point(session: dict[str, Any], saved: list[dict[str, Any]]) -> Resume:
    """Where a job starts again: the start of the window of the last saved segment.

    The windows then fall where an uninterrupted run puts them, and the segments already saved are
    skipped when that window is decoded again (the journal stays append-only: nothing saved is ever
    rewritten or lost). A journal written before segments carried `window_start` starts again at 0,
    where its windows were counted from too: the saved part is decoded again, not lost or repeated.
    The segments of the windows before carry the text context that window starts from, and the
    records the whole file's feature ceiling the windows were floored below.
    """
    if not saved:
        return Resume()
    # the decoder's ends: the re-decoded segments are compared with them (words may move an end a little)
    saved_until = max(segment.get("decoded_end", segment["end"]) for segment in saved)
    window_start = saved[-1].get("window_start")
    if not isinstance(window_start, (int, float)) or not 0 <= window_start <= saved_until:
        window_start = 0.0
    ceiling = saved[-1].get("feature_ceiling")
    return Resume(
        start=float(window_start),
        saved_until=saved_until,
        language=session.get("language"),
        language_probability=session.get("language_probability"),
        feature_ceiling=ceiling if isinstance(ceiling, float) else None,
        earlier=[segment for segment in saved if _number(segment.get("window_start"), window_start) < window_start],
    )


def _number(value: Any, default: float) -> float:
    return value if isinstance(value, (int, float)) else default
