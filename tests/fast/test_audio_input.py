"""engine/audio.py on real speech in forms FFmpeg's own mix-down refuses, or with headers that lie: the
speech comes out, or UnsupportedMedia says why; never an empty stream that passes for silence."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import audio_file, read_pcm
from tapescribe.engine.audio import chunks_pcm, pcm_blocks, probe
from tapescribe.errors import UnsupportedMedia


def jfk_s16() -> np.ndarray:
    return (np.clip(read_pcm(audio_file("jfk.flac")), -1, 1) * 32767).astype("<i2")


def write_wav(path: Path, frames: np.ndarray, rate: int, width: int = 2) -> Path:
    """`frames` is (samples, channels) of the sample type for `width` bytes."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(np.ascontiguousarray(frames).tobytes())
    return path


@pytest.mark.parametrize("channels", [9, 17, 32])
def test_any_channel_count_mixes_down_to_the_speech(tmp_path, channels):
    speech = jfk_s16()
    path = write_wav(tmp_path / "many.wav", np.repeat(speech[:, None], channels, axis=1), 16000)
    mixed = np.concatenate(list(pcm_blocks(path)))
    assert len(mixed) == len(speech)
    assert np.array_equal(mixed, speech.astype(np.float32) / 32768.0)  # speech on every channel: itself


def test_eight_bit_channels_mix_down_around_their_midpoint(tmp_path):
    speech = jfk_s16()
    unsigned = ((speech.astype(np.int32) >> 8) + 128).astype(np.uint8)  # WAV's 8-bit samples are unsigned
    path = write_wav(tmp_path / "u8.wav", np.repeat(unsigned[:, None], 9, axis=1), 16000, width=1)
    mixed = np.concatenate(list(pcm_blocks(path)))
    assert np.abs(mixed - speech / 32768.0).max() < 1 / 128  # 8-bit precision, not offset


@pytest.mark.parametrize("refused, accepted", [(1, 8_000), (999, 1_000), (768_001, 768_000)])
def test_absurd_sample_rates_are_refused_and_real_ones_decode(tmp_path, refused, accepted):
    """The bounds: 1,000 Hz to 768,000 Hz. A 142,892-byte WAV claiming 1 Hz, as reported, "lasted" 71,424 s."""
    path = write_wav(tmp_path / "refused.wav", jfk_s16()[:71_424, None], refused)
    started = time.monotonic()
    for read in (probe, lambda source: list(pcm_blocks(source))):
        with pytest.raises(UnsupportedMedia) as refusal:
            read(path)
        assert "sample rate" in refusal.value.message and refusal.value.details["sample_rate"] == refused
    assert time.monotonic() - started < 15  # decoding 1 Hz up to 16 kHz took minutes

    path = write_wav(tmp_path / "accepted.wav", jfk_s16()[:16_000, None], accepted)
    assert probe(path).duration == pytest.approx(16_000 / accepted, abs=0.01)
    assert len(np.concatenate(list(pcm_blocks(path)))) == pytest.approx(16_000 * 16_000 / accepted, abs=64)


def flac(samples: np.ndarray, layout: str, path: Path) -> bytes:
    channels = 1 if layout == "mono" else 2
    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=16000)
        stream.layout = layout
        pcm = np.repeat(samples[:, None], channels, axis=1).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout=layout)
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path.read_bytes()


def test_a_stream_that_changes_its_layout_part_way_decodes_to_its_end(tmp_path):
    """A mono FLAC and a stereo one joined: the resampler refused the first stereo frame, and everything
    after it was dropped without a word (a transcript "done" without its second half)."""
    first, second = jfk_s16(), (np.clip(read_pcm(audio_file("goforward.wav")), -1, 1) * 32767).astype("<i2")
    joined = tmp_path / "joined.flac"
    joined.write_bytes(flac(first, "mono", tmp_path / "a.flac") + flac(second, "stereo", tmp_path / "b.flac"))
    decoded = np.concatenate(list(pcm_blocks(joined)))
    assert len(decoded) == len(first) + len(second)
    assert np.array_equal(decoded[len(first) :], second.astype(np.float32) / 32768.0)


def test_chunks_that_hold_no_decodable_recording_raise(tmp_path):
    """Live chunks whose every recording fails to open used to yield nothing: a second pass "done", empty."""
    chunks = []
    for index in range(2):
        chunk = tmp_path / f"chunk_{index}.webm"
        chunk.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 20)  # a webm magic, then no webm
        chunks.append(chunk)
    with pytest.raises(UnsupportedMedia):
        list(chunks_pcm(chunks))
