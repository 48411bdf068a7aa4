"""The messages of a live stream: its first message checked (`live_request`), the `final` messages it
sends, and the draft transcript's segments built from settled words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tapescribe.engine.agreement import Word, words_text
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.models import ModelPool
from tapescribe.engine.records import Transcript
from tapescribe.errors import BadRequest
from tapescribe.live.recording import STREAM_FORMATS


@dataclass(frozen=True)
class LiveRequest:
    """What the first message of a stream asks for, checked."""

    format: str
    language: str | None = None
    model: str | None = None  # for the second pass
    title: str | None = None
    live_model: str | None = None  # for the live captions; None: chosen by the language heard
    speakers: str | int | None = None  # labelled in the second pass: "auto" or a number
    owner: str | None = None  # who the session belongs to (set by the server, never by the message)


def live_request(
    message: Any,
    models: ModelPool,
    checked_language: Callable[[Any], str | None],
    checked_speakers: Callable[[Any], str | int | None] = lambda _: None,
) -> LiveRequest:
    """Check a stream's first message; BadRequest saying what is wrong otherwise."""
    if not isinstance(message, dict) or message.get("type") != "start":
        raise BadRequest('The first message must be JSON text: {"type": "start", "format": "pcm" or "webm"}.')
    fmt = str(message.get("format") or "").strip().lower()
    if fmt not in STREAM_FORMATS:
        raise BadRequest(
            f"Unknown audio format {message.get('format')!r}: send 'pcm' (16 kHz mono 16-bit "
            "little-endian) or 'webm' (MediaRecorder webm/opus).",
            format=message.get("format"),
        )
    rate = message.get("sample_rate", SAMPLE_RATE)
    if fmt == "pcm" and rate != SAMPLE_RATE:
        raise BadRequest(f"PCM audio must be 16000 Hz mono; this stream says {rate!r}. Resample it before sending.")
    language = checked_language(message.get("language"))
    model = models.check(text_field(message, "model"), language)  # None: the second pass chooses by language
    title = (text_field(message, "title") or "")[:200] or None
    # None: chosen by the language heard (live/language.py)
    live_model = models.live_name or model or (models.for_language(language) if language else None)
    return LiveRequest(fmt, language, model, title, live_model, checked_speakers(message.get("speakers")))


def text_field(message: dict[str, Any], name: str) -> str | None:
    """A start-message field that must be text when present; BadRequest for numbers, lists or objects."""
    value = message.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name!r} in the start message must be text.")
    return value.strip() or None


def transcript_segments(words: list[Word]) -> list[dict[str, Any]]:
    """Settled words grouped into transcript segments (a new one where Whisper or a pause began one)."""
    segments: list[dict[str, Any]] = []
    for word in words:
        if word.starts_segment or not segments:
            segments.append({"id": len(segments), "start": round(word.start, 3), "words": []})
        segments[-1]["words"].append(word.as_record())
    for segment in segments:
        segment["end"] = segment["words"][-1]["end"]
        segment["text"] = "".join(item["word"] for item in segment["words"])
    return [{key: segment[key] for key in ("id", "start", "end", "text", "words")} for segment in segments]


def draft_transcription(words: list[Word], language: str | None, model: str | None, complete: bool) -> Transcript:
    """A live stream's transcript from its settled words: the draft the second pass replaces."""
    return Transcript.of(transcript_segments(words), language, None, model, complete, live=True)


def final_message(segment: int, words: list[Word]) -> dict[str, Any]:
    """The `final` message for settled words of one transcript segment."""
    return {
        "type": "final",
        "segment": segment,
        "text": words_text(words),
        "start": round(words[0].start, 3),
        "end": round(words[-1].end, 3),
        "words": [word.as_record() for word in words],
    }


def final_messages(segment: int, words: list[Word]) -> tuple[list[dict[str, Any]], int]:
    """One `final` message per transcript segment the new `words` belong to, and the number of the
    segment the last of them is in (`segment`: the last settled word's before them, -1 for none)."""
    messages: list[dict[str, Any]] = []
    group: list[Word] = []
    for word in words:
        if word.starts_segment:
            if group:
                messages.append(final_message(segment, group))
                group = []
            segment += 1
        group.append(word)
    if group:
        messages.append(final_message(max(segment, 0), group))
    return messages, segment
