"""Audio in: probing a stored file and decoding it to 16 kHz mono float32 in blocks, never the whole file.

Samples are made exactly as faster-whisper's own `decode_audio` makes them (s16 resample, then
divided by 32768), so the server transcribes the same numbers the library would.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from tapescribe.errors import UnsupportedMedia

SAMPLE_RATE = 16000
AudioSource = Path | BinaryIO | io.RawIOBase  # a stored file, or bytes read as they come

_EXTENSIONS = {
    "wav": "wav",
    "mp3": "mp3",
    "flac": "flac",
    "ogg": "ogg",
    "aac": "aac",
    "aiff": "aiff",
    "asf": "wma",
    "amr": "amr",
    "au": "au",
    "caf": "caf",
    "w64": "w64",
    "avi": "avi",
    "mpeg": "mpg",
    "mpegts": "ts",
    "flv": "flv",
    "opus": "opus",
}
_WEBM_CODECS = {"opus", "vorbis", "vp8", "vp9", "av1"}


@dataclass(frozen=True)
class MediaInfo:
    """What a stored upload turned out to be."""

    format_name: str
    extension: str
    codec: str
    duration: float | None


def _extension(container: av.container.InputContainer) -> str:
    name = container.format.name
    if name.startswith("matroska"):
        codecs = {stream.codec_context.name for stream in container.streams if stream.codec_context}
        return "webm" if codecs <= _WEBM_CODECS else "mkv"
    if name.startswith("mov"):
        return "m4a" if not container.streams.video else "mp4"
    first = name.split(",")[0]
    if first in _EXTENSIONS:
        return _EXTENSIONS[first]
    cleaned = re.sub(r"[^a-z0-9]", "", first.lower())[:8]
    return cleaned or "bin"


def probe(source: AudioSource) -> MediaInfo:
    """Open the file and decode its first audio frame; UnsupportedMedia with a plain reason otherwise."""
    try:
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise UnsupportedMedia("The file has no audio track.")
            stream = container.streams.audio[0]
            if stream.codec_context is None:
                raise UnsupportedMedia("The file's audio is in a format no decoder here can read.")
            codec = stream.codec_context.name
            duration = None
            if container.duration:
                duration = container.duration / av.time_base
            elif stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            extension = _extension(container)
            for _ in container.decode(stream):
                break
            else:
                raise UnsupportedMedia("The audio track holds no sound that could be decoded.")
            return MediaInfo(container.format.name, extension, codec, duration)
    except UnsupportedMedia:
        raise
    except Exception as error:  # hostile or damaged input may fail anywhere inside the demuxer
        raise UnsupportedMedia(
            "This file is not audio or video that can be decoded (it may be another kind of file, or truncated).",
            reason=_reason(error),
        ) from error


def _reason(error: Exception) -> str:
    """The decoder's complaint without the server-side path it mentions."""
    return getattr(error, "strerror", None) or type(error).__name__


def pcm_blocks(source: AudioSource, start: float = 0.0) -> Iterator[np.ndarray]:
    """Yield 16 kHz mono float32 blocks from `start` seconds on. Memory stays at one block.

    A stream that breaks off (a truncated file, a live recording still being written) ends the
    iteration at the last good frame instead of failing.
    """
    skip = int(round(start * SAMPLE_RATE))
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError) as error:
        raise UnsupportedMedia("This file is not audio that can be decoded.", reason=_reason(error)) from error
    with container:
        frames = container.decode(audio=0)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except (av.FFmpegError, ValueError, IndexError):
                break  # truncated or damaged tail: keep what decoded
            frame.pts = None
            try:
                resampled = resampler.resample(frame)
            except (av.FFmpegError, ValueError):
                break
            for out in resampled:
                block, skip = _trim(out, skip)
                if block is not None:
                    yield block
        try:
            flushed = resampler.resample(None)
        except (av.FFmpegError, ValueError):
            flushed = []
        for out in flushed:
            block, skip = _trim(out, skip)
            if block is not None:
                yield block


def _trim(frame: av.AudioFrame, skip: int) -> tuple[np.ndarray | None, int]:
    samples = frame.to_ndarray().reshape(-1)
    if skip >= len(samples):
        return None, skip - len(samples)
    if skip:
        samples = samples[skip:]
    return samples.astype(np.float32) / 32768.0, 0


def measure_duration(source: AudioSource) -> float:
    """Seconds of decodable audio, by decoding (for containers that do not say, like MediaRecorder webm)."""
    return sum(len(block) for block in pcm_blocks(source)) / SAMPLE_RATE


def read_ahead(
    source: Iterator[np.ndarray], held: list[np.ndarray], held_samples: int, wanted: int
) -> tuple[int, bool]:
    """Append blocks of `source` to `held` (which has `held_samples`) until it holds at least `wanted`
    samples: (samples held, whether `source` ended first). Empty blocks are dropped.

    Windows and lane groups are read so: what one needs, and at most one block more, is held.
    """
    while held_samples < wanted:
        block = next(source, None)
        if block is None:
            return held_samples, True
        if len(block):
            held.append(block)
            held_samples += len(block)
    return held_samples, False


class ChainedFiles(io.RawIOBase):
    """Several files read as one stream: live chunks that together make one recording."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self._paths = list(paths)
        self._handle: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self._handle is None:
                if not self._paths:
                    return 0
                self._handle = open(self._paths.pop(0), "rb")
            count = self._handle.readinto(buffer)
            if count:
                return count
            self._handle.close()
            self._handle = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        super().close()


EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def starts_recording(path: Path) -> bool:
    """Whether a live chunk begins with its own webm (EBML) header."""
    with open(path, "rb") as handle:
        return handle.read(4) == EBML_MAGIC


def chunk_recordings(paths: list[Path]) -> list[list[Path]]:
    """Group live chunks into recordings: a chunk with its own webm header starts a new one.

    MediaRecorder with a timeslice sends one header then bare clusters (one recording); a client
    that restarts its recorder per chunk sends a header every time (one recording per chunk).
    """
    groups: list[list[Path]] = []
    for path in paths:
        if starts_recording(path) or not groups:
            groups.append([path])
        else:
            groups[-1].append(path)
    return groups


def chunks_pcm(paths: list[Path]) -> Iterator[np.ndarray]:
    """All audio of a list of live chunks, in order."""
    for group in chunk_recordings(paths):
        with ChainedFiles(group) as stream:
            try:
                yield from pcm_blocks(stream)
            except UnsupportedMedia:
                continue
