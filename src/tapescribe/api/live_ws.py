"""`/ws/live`: live captions over a WebSocket. Messages in and out; the stream itself is a LiveStream.

The socket is read by one task and written by another, so audio keeps arriving while captions go
out. Messages from the stream's threads reach the writer through an asyncio queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from tapescribe.api.deps import checked_language, checked_speakers
from tapescribe.api.errors import error_fields
from tapescribe.api.identity import caller_of
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.models import AUTO
from tapescribe.errors import BadRequest, TapescribeError, TranscriptionFailed
from tapescribe.live.messages import LiveRequest, live_request
from tapescribe.live.stream import LiveStream
from tapescribe.runtime import Runtime

log = logging.getLogger(__name__)

router = APIRouter(tags=["transcribe"])

CLOSE_NORMAL, CLOSE_UNSUPPORTED, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_ERROR = 1000, 1003, 1008, 1009, 1011
CLOSE_CODE_FOR = {
    "unsupported_media": CLOSE_UNSUPPORTED,
    "upload_too_large": CLOSE_TOO_BIG,
    "transcription_failed": CLOSE_ERROR,
    "insufficient_storage": CLOSE_ERROR,  # the server's disk is full
}


def _error_message(error: TapescribeError) -> dict[str, Any]:
    return {"type": "error", **error_fields(error)}


def _close_code(message: dict[str, Any]) -> int:
    return CLOSE_CODE_FOR.get(message.get("code", ""), CLOSE_POLICY)


def _json(text: str | None) -> Any:
    """A client's JSON text message, or None if it is not JSON (or nested too deep to read)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


async def _first_request(websocket: WebSocket, runtime: Runtime) -> LiveRequest | None:
    """The start message, checked; None if the client left first."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    return live_request(
        _json(message.get("text")),
        runtime.models,
        checked_language,
        lambda value: checked_speakers(value, runtime.settings.speakers),
    )


async def _receive_audio(websocket: WebSocket, stream: LiveStream, report: Callable[[dict], None]) -> None:
    """Audio messages into the stream until a stop message or the end of the connection."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await asyncio.to_thread(stream.receive, message["bytes"])
                continue
            control = _json(message.get("text"))
            if isinstance(control, dict) and control.get("type") == "stop":
                return
            raise BadRequest('Send audio as binary messages and {"type": "stop"} to end the stream.')
    except TapescribeError as error:
        report(_error_message(error))
    except (WebSocketDisconnect, RuntimeError):
        return  # the connection went away mid-read
    except Exception as error:  # storing the audio failed otherwise: say so, keep what was stored
        log.error("receiving live session %s failed", stream.session_id, exc_info=error)
        report(_error_message(TranscriptionFailed(f"Storing the live audio failed: {type(error).__name__}.")))
    finally:
        stream.end_input()


async def _send(websocket: WebSocket, message: dict[str, Any]) -> bool:
    """Send if the client is still there; False once it is gone (the stream finishes regardless)."""
    if websocket.client_state != WebSocketState.CONNECTED:
        return False
    try:
        await websocket.send_json(message)
        return True
    except Exception:  # closed underneath us: nothing to tell anyone
        return False


@router.websocket("/ws/live")
async def live_socket(websocket: WebSocket) -> None:
    """Live captions: a start message, audio, then `partial`, `final` and `done` (docs/live-protocol.md)."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    try:
        request = await _first_request(websocket, runtime)
    except TapescribeError as error:
        message = _error_message(error)
        await _send(websocket, message)
        with contextlib.suppress(Exception):
            await websocket.close(code=_close_code(message))
        return
    except (WebSocketDisconnect, RuntimeError):
        return
    if request is None:
        return
    request = dataclasses.replace(request, owner=caller_of(websocket).name)

    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def emit(message: dict[str, Any]) -> None:  # called from the stream's threads
        with contextlib.suppress(RuntimeError):  # the loop is gone (server stopping): the session still finishes
            loop.call_soon_threadsafe(outbox.put_nowait, message)

    stream = LiveStream(
        runtime.sessions,
        runtime.models,
        runtime.decodes,
        runtime.jobs.submit,
        request,
        emit,
        max_bytes=runtime.settings.max_upload_bytes,
    )
    stream.start()
    await _send(
        websocket,
        {
            "type": "ready",
            "format": request.format,
            "sample_rate": SAMPLE_RATE,
            "model": request.live_model or AUTO,  # auto: a `language` message says which, once heard
            "second_pass_model": request.model or AUTO,  # auto: chosen by language after the stream
            "language": request.language,
            "speakers": request.speakers,  # labelled in the second pass
        },
    )
    receiving = asyncio.create_task(_receive_audio(websocket, stream, outbox.put_nowait))
    close_code = CLOSE_NORMAL
    try:
        while True:
            message = await outbox.get()
            if message["type"] == "error" and isinstance(message.get("error"), TapescribeError):
                message = _error_message(message["error"])  # raised in the stream's threads
            if message["type"] == "error" and close_code == CLOSE_NORMAL:
                close_code = _close_code(message)
                receiving.cancel()  # an error ends the stream: the session keeps what came so far
                stream.end_input()
            await _send(websocket, message)
            if message["type"] == "done":
                break
    finally:
        receiving.cancel()
        stream.end_input()  # also when this handler is cancelled: the session is still finished
    with contextlib.suppress(Exception):
        await websocket.close(code=close_code)
