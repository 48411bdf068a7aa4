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
# Sample rates of real recordings: telephone audio is 8 kHz, studio audio up to 768 kHz. Outside these a
# header is forged or damaged (a 142 kB WAV claiming 1 Hz "lasted" 71,424 s and cost 227 s of CPU).
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
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
            check_sample_rate(stream.codec_context.sample_rate)
            for frame in container.decode(stream):
                check_sample_rate(frame.sample_rate)
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

    A stream that breaks off after some audio (a truncated file, a live recording still being
    written) ends the iteration at the last good frame instead of failing. Audio that cannot be
    decoded or converted at all raises UnsupportedMedia: it must never pass for silence.
    """
    skip = int(round(start * SAMPLE_RATE))
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError) as error:
        raise UnsupportedMedia("This file is not audio that can be decoded.", reason=_reason(error)) from error
    with container:
        mono = MonoConverter()
        for frame in _frames(container):
            for out in mono.convert(frame):
                block, skip = _trim(out, skip)
                if block is not None:
                    yield block
        for out in mono.flush():
            block, skip = _trim(out, skip)
            if block is not None:
                yield block


def _frames(container: av.container.InputContainer) -> Iterator[av.AudioFrame]:
    """The first audio track's frames. A damaged tail ends them; a first frame that fails is an error."""
    frames = container.decode(audio=0)
    decoded = False
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except (av.FFmpegError, ValueError, IndexError) as error:
            if decoded:
                return  # truncated or damaged tail: keep what decoded
            raise UnsupportedMedia(
                "The audio could not be decoded: its first frame is damaged or in a form no decoder here reads.",
                reason=_reason(error),
            ) from error
        decoded = True
        yield frame


def check_sample_rate(rate: int | None) -> None:
    """UnsupportedMedia for a sample rate no real recording has (a forged header claiming 1 Hz makes
    a few kilobytes "last" a day, and resampling it costs minutes of CPU for nothing)."""
    if rate is None or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise UnsupportedMedia(
            f"The audio claims a sample rate of {rate} Hz, which no real recording has: tapescribe reads "
            f"audio from {MIN_SAMPLE_RATE:,} Hz to {MAX_SAMPLE_RATE:,} Hz. The file's header may be damaged.",
            sample_rate=rate,
        )


class MonoConverter:
    """Frames of any sample format, channel count and rate to 16 kHz mono s16, as FFmpeg mixes them
    for faster-whisper. FFmpeg cannot mix down a layout of more than 8 channels in no named order
    (a 9-, 17- or 32-channel WAV): such frames are averaged over their channels here first. A stream
    whose format, layout or rate changes part-way (a mono FLAC and a stereo one joined) gets a new
    resampler at the change; the frames after it used to be dropped."""

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None
        self._shape: tuple[str, str, int] | None = None
        self._average = False

    def convert(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        check_sample_rate(frame.sample_rate)
        frame.pts = None
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if shape == self._shape and self._resampler is not None:
            return self._resample(frame)
        done = self.flush()
        self._shape, self._average = shape, False
        self._resampler = _to_mono()
        try:
            return done + self._resampler.resample(frame)
        except (av.FFmpegError, ValueError):
            pass  # FFmpeg has no mix-down for this layout: average the channels
        self._average, self._resampler = True, _to_mono()
        return done + self._resample(frame)

    def flush(self) -> list[av.AudioFrame]:
        if self._resampler is None:
            return []
        resampler, self._resampler = self._resampler, None
        try:
            return resampler.resample(None)
        except (av.FFmpegError, ValueError) as error:
            raise _unconvertible(self._shape, error) from error

    def _resample(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        assert self._resampler is not None
        try:
            return self._resampler.resample(_averaged(frame) if self._average else frame)
        except (av.FFmpegError, ValueError) as error:
            raise _unconvertible(self._shape, error) from error


def _to_mono() -> av.AudioResampler:
    return av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)


def _unconvertible(shape: tuple[str, str, int] | None, error: Exception) -> UnsupportedMedia:
    sample_format, layout, rate = shape or ("?", "?", 0)
    return UnsupportedMedia(
        f"The audio ({layout}, {sample_format}, {rate} Hz) could not be converted to mono 16 kHz for transcription.",
        reason=_reason(error),
    )


_FULL_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _averaged(frame: av.AudioFrame) -> av.AudioFrame:
    """One mono float frame: the mean of the frame's channels (no channel is dropped, nothing clips)."""
    channels = frame.layout.nb_channels
    samples = frame.to_ndarray()
    if not frame.format.is_planar:
        samples = samples.reshape(-1, channels).T
    base = frame.format.name.rstrip("p")
    values = samples.astype(np.float64)
    if base == "u8":
        values -= 128.0
    mean = values.mean(axis=0) / _FULL_SCALE.get(base, 1.0)
    out = av.AudioFrame.from_ndarray(mean.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
    out.sample_rate = frame.sample_rate
    return out


def _trim(frame: av.AudioFrame, skip: int) -> tuple[np.ndarray | None, int]:
    samples = frame.to_ndarray().reshape(-1)
    if skip >= len(samples):
        return None, skip - len(samples)
    if skip:
        samples = samples[skip:]
    return samples.astype(np.float32) / 32768.0, 0


def measure_duration(source: AudioSource, limit: float | None = None) -> float:
    """Seconds of decodable audio, by decoding (for containers that do not say, like MediaRecorder webm).

    With `limit`, decoding stops once more than `limit` seconds were found (and that much is returned):
    the caller only needs to know the audio is longer than it can believe.
    """
    wanted = None if limit is None else int(limit * SAMPLE_RATE)
    samples = 0
    for block in pcm_blocks(source):
        samples += len(block)
        if wanted is not None and samples > wanted:
            break
    return samples / SAMPLE_RATE


class CountedBlocks:
    """Blocks passed through as they are, their samples counted: a job tells "decoded nothing" (an
    error, whatever the cause) from "decoded silence" (done, no text)."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self._blocks = blocks
        self.samples = 0

    def __iter__(self) -> CountedBlocks:
        return self

    def __next__(self) -> np.ndarray:
        block = next(self._blocks)
        self.samples += len(block)
        return block


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
    """All audio of a list of live chunks, in order. A recording among them that cannot be decoded is
    passed over; when none of them can be, UnsupportedMedia (the last one's), never silence."""
    failed: UnsupportedMedia | None = None
    decoded = False
    for group in chunk_recordings(paths):
        with ChainedFiles(group) as stream:
            try:
                yield from pcm_blocks(stream)
            except UnsupportedMedia as error:
                failed = error
                continue
            decoded = True
    if failed is not None and not decoded:
        raise failed
