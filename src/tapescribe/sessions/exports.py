"""Transcript exports: txt, srt, vtt, json, tsv. Subtitle cues come from sessions/cues.py."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from tapescribe.errors import BadRequest
from tapescribe.sessions.cues import MAX_CUE_LINES, MAX_CUE_SECONDS, MAX_LINE_WIDTH, speaker_cues
from tapescribe.sessions.speaker_names import speaker_names

EXPORT_MEDIA_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
    "tsv": "text/tab-separated-values; charset=utf-8",
}
__all__ = [
    "EXPORT_MEDIA_TYPES",
    "MAX_CUE_LINES",
    "MAX_CUE_SECONDS",
    "MAX_LINE_WIDTH",
    "cues",
    "render",
    "render_parts",
    "speaker_cues",
]
PART_CHARS = 64 * 1024  # an export streams in parts of about this many characters


def _clock(seconds: float, separator: str) -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def cues(segments: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    """Subtitle cues of at most 7 s and two lines of 42 columns, lines joined by "\n", timed by their
    words where the segments have word times (sessions/cues.py)."""
    return [(start, end, text) for start, end, text, _ in speaker_cues(segments)]


def render(transcription: dict[str, Any] | None, fmt: str, session: dict[str, Any] | None = None) -> str:
    """The transcript as `fmt`, whole (render_parts says what each format holds)."""
    return "".join(render_parts(transcription, fmt, session))


def render_parts(
    transcription: dict[str, Any] | None, fmt: str, session: dict[str, Any] | None = None
) -> Iterator[str]:
    """The transcript as `fmt`, in pieces of about PART_CHARS (a download streams them: a long
    transcript's export is never held whole beside the transcript). BadRequest at once for an unknown
    format. With speakers labelled, each format names them: txt starts each change of speaker with
    "Name: ", WebVTT puts cues in <v Name> spans, SRT prefixes "Name: ", TSV has a speaker column and
    JSON carries `speaker` on segments and words plus `speaker_names`."""
    if fmt not in EXPORT_MEDIA_TYPES:
        raise BadRequest(f"Unknown export format {fmt!r}; use one of {', '.join(EXPORT_MEDIA_TYPES)}.")
    transcription = transcription or {"text": "", "segments": []}
    names = speaker_names(session or {}, transcription)
    if fmt == "txt":
        return iter([_text(transcription, names)])
    if fmt == "json":
        extra = {"speaker_names": names} if names else {}
        whole = {"session": session, **transcription, **extra}
        return _joined_parts(json.JSONEncoder(ensure_ascii=False, indent=1).iterencode(whole))
    return _joined_parts(_lines_of(transcription.get("segments") or [], fmt, names))


def _lines_of(segments: list[dict[str, Any]], fmt: str, names: dict[str, str]) -> Iterator[str]:
    if fmt == "tsv":
        yield "start\tend\tspeaker\ttext\n" if names else "start\tend\ttext\n"
        for segment in segments:
            text = segment["text"].strip().replace("\t", " ").replace("\n", " ")
            who = f"{_name(names, segment.get('speaker'))}\t" if names else ""
            yield f"{int(segment['start'] * 1000)}\t{int(segment['end'] * 1000)}\t{who}{text}\n"
        return
    if fmt == "vtt":
        yield "WEBVTT\n"
    for number, (start, end, text, speaker) in enumerate(speaker_cues(segments), 1):
        name = _name(names, speaker) if names else ""
        gap = "\n" if number > 1 or fmt == "vtt" else ""  # cues apart by one empty line
        if fmt == "srt":
            yield f"{gap}{number}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{name + ': ' if name else ''}{text}\n"
        else:
            voice = f"<v {_vtt_escape(name)}>" if name else ""
            yield f"{gap}{_clock(start, '.')} --> {_clock(end, '.')}\n{voice}{text}\n"


def _joined_parts(pieces: Iterable[str]) -> Iterator[str]:
    """The pieces joined into parts of about PART_CHARS (the JSON encoder yields a piece per token)."""
    held: list[str] = []
    size = 0
    for piece in pieces:
        held.append(piece)
        size += len(piece)
        if size >= PART_CHARS:
            yield "".join(held)
            held, size = [], 0
    if held:
        yield "".join(held)


def _name(names: dict[str, str], speaker: str | None) -> str:
    return names.get(speaker or "", "") or ""


def _vtt_escape(name: str) -> str:
    """A name inside <v ...>: no markup or line breaks (WebVTT escapes &, < and >)."""
    return " ".join(name.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text(transcription: dict[str, Any], names: dict[str, str]) -> str:
    """Plain text; with speakers, a paragraph per change of speaker, starting with the name."""
    if not names:
        return transcription.get("text", "").strip() + "\n"
    paragraphs: list[tuple[str, list[str]]] = []
    for segment in transcription.get("segments") or []:
        text = segment["text"].strip()
        if not text:
            continue
        name = _name(names, segment.get("speaker"))
        if paragraphs and paragraphs[-1][0] == name:
            paragraphs[-1][1].append(text)
        else:
            paragraphs.append((name, [text]))
    return "\n\n".join(f"{name}: {' '.join(texts)}" if name else " ".join(texts) for name, texts in paragraphs) + "\n"
