"""The decoder thread of a webm live stream: PyAV reads the MediaRecorder slices as one stream through
a pipe whose read blocks until more bytes come (live/pipes.py), so each byte is decoded once, and hands
the samples to the worker's inbox. It always closes the inbox, so the worker always ends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tapescribe.engine.audio import pcm_blocks
from tapescribe.errors import TapescribeError, UnsupportedMedia
from tapescribe.live.pipes import AudioInbox, BytePipe

log = logging.getLogger(__name__)


def decode_webm(
    pipe: BytePipe,
    inbox: AudioInbox,
    input_ended: threading.Event,
    had_audio: Callable[[], bool],
    fail: Callable[[TapescribeError], None],
) -> None:
    """Decode `pipe` into `inbox` until the stream ends; `fail` tells the client why it broke off (a
    stream that ends before any audio, `had_audio` false, is not an error)."""
    try:
        for block in pcm_blocks(pipe):
            inbox.put(block)
        if not input_ended.is_set():  # the decoder gave up before the stream ended
            fail(
                UnsupportedMedia(
                    "The webm stream broke off: later audio cannot be decoded. "
                    "Send one MediaRecorder recording per connection, its header first."
                )
            )
    except UnsupportedMedia as error:
        if had_audio():
            fail(UnsupportedMedia("The audio could not be decoded as webm/opus: " + error.message))
    except Exception as error:  # the decoder must always close the inbox
        log.exception("live decoder failed")
        fail(UnsupportedMedia(f"The audio could not be decoded: {type(error).__name__}."))
    finally:
        if not input_ended.is_set():
            pipe.abandon()
        inbox.close()
