"""Transcript exports: txt, srt, vtt, json, tsv. Long segments are split into readable subtitle cues."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from tapescribe.errors import BadRequest
from tapescribe.sessions.scripts import is_unspaced
from tapescribe.sessions.speaker_names import speaker_names

EXPORT_MEDIA_TYPES = {
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
    "tsv": "text/tab-separated-values; charset=utf-8",
}
MAX_CUE_SECONDS = 7.0
# Two lines of 42 columns, the usual subtitle budget; a CJK character is two columns wide, so a
# Japanese or Chinese line holds 21 characters (Netflix asks 13 to 16 of them).
MAX_LINE_WIDTH = 42
MAX_CUE_LINES = 2

# Whitespace a line may break at: any but the no-break spaces (French puts them inside « »).
_PIECE = re.compile(r"[^\S\u00a0\u202f]*(?:\S|[\u00a0\u202f])+")
_OPENING = {"Ps", "Pi"}
_CLOSING = {"Pe", "Pf", "Po"}
_OPENING_MARKS = "¿¡"


def _clock(seconds: float, separator: str) -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def cues(segments: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    """Subtitle cues of at most 7 s and two lines of 42 columns, lines joined by "\n".

    A segment is one cue when it fits, else it is split at word times (or evenly by words).
    """
    return [(start, end, text) for start, end, text, _ in speaker_cues(segments)]


def speaker_cues(segments: list[dict[str, Any]]) -> list[tuple[float, float, str, str | None]]:
    """The cues of `cues`, each with the speaker of its segment (None when speakers were not labelled)."""
    result: list[tuple[float, float, str, str | None]] = []
    for segment in segments:
        text = segment["text"].strip()
        start, end = float(segment["start"]), float(segment["end"])
        speaker = segment.get("speaker")
        if not text:
            continue
        lines = _lines(text)
        if end - start <= MAX_CUE_SECONDS and lines:
            result.append((start, end, "\n".join(lines), speaker))
            continue
        words = _glued(segment.get("words") or _even_words(text, start, end))
        group: list[dict] = []
        for word in words:
            group.append(word)
            too_long = word["end"] - group[0]["start"] > MAX_CUE_SECONDS or not _lines(_joined(group))
            if too_long and len(group) > 1:
                last = group.pop()
                result.append((group[0]["start"], group[-1]["end"], _cue_text(group), speaker))
                group = [last]
        if group:
            result.append((group[0]["start"], max(group[-1]["end"], group[0]["start"]), _cue_text(group), speaker))
    # keep times monotonic even if the model's segments overlap slightly
    cleaned, previous_end = [], 0.0
    for start, end, text, speaker in result:
        start = max(start, previous_end)
        end = max(end, start + 0.01)
        cleaned.append((start, end, text, speaker))
        previous_end = end
    return cleaned


def _joined(words: list[dict]) -> str:
    return "".join(w["word"] for w in words).strip()


def _cue_text(words: list[dict]) -> str:
    """The words in lines; one word too wide for any line stays whole, on a line of its own."""
    text = _joined(words)
    return "\n".join(_lines(text) or [text])


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _lines(text: str) -> list[str]:
    """At most two lines that fit, broken between pieces, as evenly as may be; [] if none fit."""
    if _width(text) <= MAX_LINE_WIDTH:
        return [text]
    pieces = _pieces(text)
    splits = [("".join(pieces[:at]).strip(), "".join(pieces[at:]).strip()) for at in range(1, len(pieces))]
    fitting = [split for split in splits if max(map(_width, split)) <= MAX_LINE_WIDTH]
    return list(min(fitting, key=lambda split: max(map(_width, split)))) if fitting else []


def _is_opening(piece: str) -> bool:
    stripped = piece.strip()
    return bool(stripped) and all(c in _OPENING_MARKS or unicodedata.category(c) in _OPENING for c in stripped)


def _is_closing(piece: str) -> bool:
    stripped = piece.strip()
    return bool(stripped) and all(c not in _OPENING_MARKS and unicodedata.category(c) in _CLOSING for c in stripped)


def _pieces(text: str) -> list[str]:
    """What a line may not break inside, each with the space before it: a word of a spaced script,
    a CJK character; punctuation stays with its word (« Où », ¿Dónde, 「本」。)."""
    raw: list[str] = []
    for word in _PIECE.findall(text):
        at = 0
        for position in range(1, len(word)):
            if is_unspaced(word[position]) or is_unspaced(word[position - 1]):
                raw.append(word[at:position])
                at = position
        raw.append(word[at:])
    pieces: list[str] = []
    for piece in raw:
        if pieces and (_is_closing(piece) or _is_opening(pieces[-1])):
            pieces[-1] += piece
        else:
            pieces.append(piece)
    return pieces


def _glued(words: list[dict]) -> list[dict]:
    """Timed words with lone punctuation joined to its word, so a cue never starts with » or ends with ¿."""
    glued: list[dict] = []
    for word in words:
        if glued and (_is_closing(word["word"]) or _is_opening(glued[-1]["word"])):
            glued[-1] = {**glued[-1], "word": glued[-1]["word"] + word["word"], "end": word["end"]}
        else:
            glued.append(word)
    return glued


def _even_words(text: str, start: float, end: float) -> list[dict]:
    pieces = _pieces(text)
    step = (end - start) / max(1, len(pieces))
    return [{"word": piece, "start": start + i * step, "end": start + (i + 1) * step} for i, piece in enumerate(pieces)]


def render(transcription: dict[str, Any] | None, fmt: str, session: dict[str, Any] | None = None) -> str:
    """The transcript as `fmt`. With speakers labelled, each format names them: txt starts each change
    of speaker with "Name: ", WebVTT puts cues in <v Name> spans, SRT prefixes "Name: ", TSV has a
    speaker column and JSON carries `speaker` on segments and words plus `speaker_names`."""
    if fmt not in EXPORT_MEDIA_TYPES:
        raise BadRequest(f"Unknown export format {fmt!r}; use one of {', '.join(EXPORT_MEDIA_TYPES)}.")
    transcription = transcription or {"text": "", "segments": []}
    segments = transcription.get("segments") or []
    names = speaker_names(session or {}, transcription)
    if fmt == "txt":
        return _text(transcription, names)
    if fmt == "json":
        extra = {"speaker_names": names} if names else {}
        return json.dumps({"session": session, **transcription, **extra}, ensure_ascii=False, indent=1)
    if fmt == "tsv":
        lines = ["start\tend\tspeaker\ttext" if names else "start\tend\ttext"]
        for segment in segments:
            text = segment["text"].strip().replace("\t", " ").replace("\n", " ")
            who = f"{_name(names, segment.get('speaker'))}\t" if names else ""
            lines.append(f"{int(segment['start'] * 1000)}\t{int(segment['end'] * 1000)}\t{who}{text}")
        return "\n".join(lines) + "\n"
    parts = ["WEBVTT\n"] if fmt == "vtt" else []
    for number, (start, end, text, speaker) in enumerate(speaker_cues(segments), 1):
        name = _name(names, speaker) if names else ""
        if fmt == "srt":
            parts.append(
                f"{number}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{name + ': ' if name else ''}{text}\n"
            )
        else:
            voice = f"<v {_vtt_escape(name)}>" if name else ""
            parts.append(f"{_clock(start, '.')} --> {_clock(end, '.')}\n{voice}{text}\n")
    return "\n".join(parts)


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
