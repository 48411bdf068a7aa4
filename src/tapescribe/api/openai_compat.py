"""OpenAI-compatible speech-to-text: /v1/audio/transcriptions, /v1/audio/translations, /v1/models.

Any OpenAI client works against tapescribe by changing its base URL. Every request is kept as a
session (source "api"), like all other input. With settings.api_key set, these routes need
`Authorization: Bearer <key>` (checked in front of every route by api/security.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tapescribe.api.deps import checked_request, checked_speakers, runtime_of
from tapescribe.api.errors import error_fields, error_responses
from tapescribe.api.identity import owner_fields
from tapescribe.api.uploads import ReceivedForm, multipart_body, receive_upload
from tapescribe.engine.languages import language_name
from tapescribe.errors import BadRequest, TapescribeError
from tapescribe.runtime import Runtime
from tapescribe.sessions.exports import EXPORT_MEDIA_TYPES, render

router = APIRouter(prefix="/v1", tags=["openai"])

OPENAI_MODEL_ALIAS = "whisper-1"
RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")


@dataclass
class OpenAIRequest:
    response_format: str
    granularities: set[str]
    stream: bool
    fields: dict


def parse_request(runtime: Runtime, form: ReceivedForm, task: str) -> OpenAIRequest:
    values = form.fields
    response_format = (values.get("response_format") or "json").strip()
    if response_format not in RESPONSE_FORMATS:
        raise BadRequest(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}.")
    granularities = set(form.repeated.get("timestamp_granularities[]", [])) | set(
        form.repeated.get("timestamp_granularities", [])
    )
    if granularities - {"word", "segment"}:
        raise BadRequest("timestamp_granularities[] takes 'word' and/or 'segment'.")
    asked = (values.get("model") or "").strip()
    # the pipeline's one check (jobs/pipeline.py), as for an upload: language, offered model, English-only refusal
    request = checked_request(
        runtime.models,
        None if asked in ("", OPENAI_MODEL_ALIAS) else asked,
        values.get("language") if task == "transcribe" else None,
    )
    options: dict = {"task": task}
    if "word" in granularities:
        options["word_timestamps"] = True
    if values.get("prompt"):
        options["prompt"] = values["prompt"][:2000]
    if values.get("temperature"):
        try:
            temperature = float(values["temperature"])
        except ValueError:
            raise BadRequest("temperature must be a number between 0 and 1.") from None
        if not 0 <= temperature <= 1:
            raise BadRequest("temperature must be a number between 0 and 1.")
        options["temperature"] = temperature
    if response_format == "diarized_json":
        # the only /v1 answer with speakers: the others keep OpenAI's whisper-1 shapes whatever
        # TAPESCRIBE_SPEAKERS says
        if task != "transcribe":
            raise BadRequest("response_format diarized_json is for transcriptions, not translations.")
        if (values.get("stream") or "").lower() in ("true", "1"):
            raise BadRequest("response_format diarized_json is not streamed; send it without stream=true.")
        options["speakers"] = checked_speakers("auto")
    return OpenAIRequest(
        response_format=response_format,
        granularities=granularities,
        stream=(values.get("stream") or "").lower() in ("true", "1"),
        fields={**request.fields(), "options": options},
    )


def verbose_json(task: str, session: dict, transcription: dict, granularities: set[str]) -> dict:
    body = {
        "task": task,
        "language": language_name(transcription.get("language")),
        "duration": session.get("duration"),
        "text": transcription["text"],
    }
    segments = transcription["segments"]
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {
                "id": segment["id"],
                "seek": segment.get("seek", 0),
                "start": segment["start"],
                "end": segment["end"],
                "text": segment["text"],
                "tokens": [],
                "temperature": segment.get("temperature", 0.0),
                "avg_logprob": segment.get("avg_logprob", 0.0),
                "compression_ratio": segment.get("compression_ratio", 0.0),
                "no_speech_prob": segment.get("no_speech_prob", 0.0),
            }
            for segment in segments
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": word["word"].strip(), "start": word["start"], "end": word["end"]}
            for segment in segments
            for word in segment.get("words", [])
        ]
    return body


def diarized_json(session: dict, transcription: dict) -> dict:
    """OpenAI's diarized transcript: segments with a speaker each, speakers lettered A, B, ... (S1 is A)."""

    def letter(speaker: str | None) -> str | None:
        number = speaker[1:] if speaker else ""
        return chr(ord("A") + int(number) - 1) if number.isdigit() and int(number) <= 26 else speaker

    return {
        "task": "transcribe",
        "duration": session.get("duration"),
        "text": transcription["text"],
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{segment['id']}",
                "start": segment["start"],
                "end": segment["end"],
                "text": segment["text"].strip(),
                "speaker": letter(segment.get("speaker")),
            }
            for segment in transcription["segments"]
        ],
    }


def respond(request_: OpenAIRequest, task: str, session: dict, transcription: dict) -> Response:
    fmt = request_.response_format
    if fmt == "diarized_json":
        return JSONResponse(diarized_json(session, transcription))
    if fmt == "json":
        return JSONResponse({"text": transcription["text"]})
    if fmt == "text":
        return PlainTextResponse(transcription["text"] + "\n")
    if fmt == "verbose_json":
        return JSONResponse(verbose_json(task, session, transcription, request_.granularities))
    return Response(render(transcription, fmt), media_type=EXPORT_MEDIA_TYPES[fmt])


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def stream_events(runtime: Runtime, session_id: str):
    """OpenAI's transcription stream: transcript.text.delta per segment, then transcript.text.done."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue = asyncio.Queue()

    def on_segment(segment: dict) -> None:
        loop.call_soon_threadsafe(arrived.put_nowait, segment)

    job = asyncio.ensure_future(run_in_threadpool(runtime.jobs.transcribe_now, session_id, on_segment))
    started = False
    while not (job.done() and arrived.empty()):
        waiting = asyncio.ensure_future(arrived.get())
        await asyncio.wait({waiting, job}, return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()
            continue
        segment = waiting.result()
        text = segment["text"] if started else segment["text"].lstrip()
        started = True
        yield _sse({"type": "transcript.text.delta", "delta": text})
    try:
        transcription = job.result()
    except TapescribeError as error:
        yield _sse({"error": error_fields(error)})
        return
    yield _sse({"type": "transcript.text.done", "text": transcription["text"]})


async def handle(request: Request, task: str) -> Response:
    runtime = runtime_of(request)
    runtime.jobs.check_room()  # 503 before the upload is received when too many requests wait already
    session_id, form, received, parsed = await receive_upload(
        request,
        runtime.sessions,
        "file",
        runtime.settings.max_upload_bytes,
        lambda form: parse_request(runtime, form, task),
    )
    await run_in_threadpool(
        runtime.jobs.accept_upload,
        session_id,
        received,
        source="api",
        filename=form.filename,
        fields={**parsed.fields, **owner_fields(request)},
        queue=False,
    )
    headers = {"X-Tapescribe-Session": session_id}
    if parsed.stream:
        return StreamingResponse(
            stream_events(runtime, session_id),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache"},
        )
    transcription = await run_in_threadpool(runtime.jobs.transcribe_now, session_id)
    response = respond(parsed, task, runtime.sessions.session(session_id), transcription)
    response.headers.update(headers)
    return response


OPENAI_FIELDS: dict[str, Any] = {
    "model": {
        "type": "string",
        "maxLength": 100,
        "description": "whisper-1 (the default model) or a name from /v1/models.",
    },
    "prompt": {"type": "string"},
    "response_format": {"type": "string", "enum": [f for f in RESPONSE_FORMATS if f != "diarized_json"]},
    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    "timestamp_granularities[]": {"type": "array", "items": {"type": "string", "enum": ["word", "segment"]}},
    "stream": {"type": "boolean"},
}
TRANSCRIPTION_FIELDS: dict[str, Any] = {
    **OPENAI_FIELDS,
    "language": {"type": "string", "description": "ISO-639-1 code, e.g. en."},
    "response_format": {
        "type": "string",
        "enum": list(RESPONSE_FORMATS),
        "description": "diarized_json labels speakers (needs pip install 'tapescribe[speakers]').",
    },
}
OPENAI_ERRORS = error_responses(400, 401, 413, 415, 422, 503, 507)


@router.post(
    "/audio/transcriptions",
    responses=OPENAI_ERRORS,
    openapi_extra=multipart_body("file", TRANSCRIPTION_FIELDS),
)
async def create_transcription(request: Request) -> Response:
    """OpenAI `audio.transcriptions.create`: file, model, language, prompt, response_format (also
    diarized_json: segments with speakers), temperature, timestamp_granularities[], stream."""
    return await handle(request, "transcribe")


@router.post("/audio/translations", responses=OPENAI_ERRORS, openapi_extra=multipart_body("file", OPENAI_FIELDS))
async def create_translation(request: Request) -> Response:
    """OpenAI `audio.translations.create`: speech in any language to English text."""
    return await handle(request, "translate")


@router.get("/models")
def list_models(request: Request) -> dict:
    names = [OPENAI_MODEL_ALIAS] + [entry["id"] for entry in runtime_of(request).models.offered()]
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": "tapescribe"} for name in names],
    }
