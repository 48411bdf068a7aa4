"""Transcript exports: txt, srt, vtt, json, tsv. Long segments are split into readable subtitle cues."""

from __future__ import annotations

import json
from typing import Any

from tapescribe.errors import BadRequest

EXPORT_MEDIA_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
    "tsv": "text/tab-separated-values; charset=utf-8",
}
MAX_CUE_SECONDS = 7.0
MAX_CUE_CHARS = 84


def _clock(seconds: float, separator: str) -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def cues(segments: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    """Subtitle cues: a segment as it is when short, else split at word times (or evenly by words)."""
    result: list[tuple[float, float, str]] = []
    for segment in segments:
        text = segment["text"].strip()
        start, end = float(segment["start"]), float(segment["end"])
        if not text:
            continue
        if end - start <= MAX_CUE_SECONDS and len(text) <= MAX_CUE_CHARS:
            result.append((start, end, text))
            continue
        words = segment.get("words") or _even_words(text, start, end)
        line: list[dict] = []
        for word in words:
            line.append(word)
            too_long = (
                word["end"] - line[0]["start"] > MAX_CUE_SECONDS
                or len("".join(w["word"] for w in line)) > MAX_CUE_CHARS
            )
            if too_long and len(line) > 1:
                last = line.pop()
                result.append((line[0]["start"], line[-1]["end"], "".join(w["word"] for w in line).strip()))
                line = [last]
        if line:
            result.append(
                (line[0]["start"], max(line[-1]["end"], line[0]["start"]), "".join(w["word"] for w in line).strip())
            )
    # keep times monotonic even if the model's segments overlap slightly
    cleaned, previous_end = [], 0.0
    for start, end, text in result:
        start = max(start, previous_end)
        end = max(end, start + 0.01)
        cleaned.append((start, end, text))
        previous_end = end
    return cleaned


def _even_words(text: str, start: float, end: float) -> list[dict]:
    words = text.split()
    step = (end - start) / max(1, len(words))
    return [
        {"word": (" " if i else "") + w, "start": start + i * step, "end": start + (i + 1) * step}
        for i, w in enumerate(words)
    ]


def render(transcription: dict[str, Any] | None, fmt: str, session: dict[str, Any] | None = None) -> str:
    if fmt not in EXPORT_MEDIA_TYPES:
        raise BadRequest(f"Unknown export format {fmt!r}; use one of {', '.join(EXPORT_MEDIA_TYPES)}.")
    transcription = transcription or {"text": "", "segments": []}
    segments = transcription.get("segments") or []
    if fmt == "txt":
        return transcription.get("text", "").strip() + "\n"
    if fmt == "json":
        return json.dumps({"session": session, **transcription}, ensure_ascii=False, indent=1)
    if fmt == "tsv":
        lines = ["start\tend\ttext"]
        for segment in segments:
            text = segment["text"].strip().replace("\t", " ").replace("\n", " ")
            lines.append(f"{int(segment['start'] * 1000)}\t{int(segment['end'] * 1000)}\t{text}")
        return "\n".join(lines) + "\n"
    parts = ["WEBVTT\n"] if fmt == "vtt" else []
    for number, (start, end, text) in enumerate(cues(segments), 1):
        if fmt == "srt":
            parts.append(f"{number}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n")
        else:
            parts.append(f"{_clock(start, '.')} --> {_clock(end, '.')}\n{text}\n")
    return "\n".join(parts)
