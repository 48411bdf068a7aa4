"""Remembered voices (sessions/voices.py): kept one file each under an id made here, matched by cosine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tapescribe.errors import BadRequest, NotFound
from tapescribe.sessions.voices import VoiceStore


def voice(seed: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).normal(size=192)]


def near(vector: list[float], similarity: float, seed: int) -> list[float]:
    """A vector `similarity` alike (cosine) to `vector`."""
    a = np.asarray(vector) / np.linalg.norm(vector)
    b = np.random.default_rng(seed).normal(size=192)
    b -= (b @ a) * a
    b /= np.linalg.norm(b)
    return [float(x) for x in similarity * a + np.sqrt(1 - similarity**2) * b]


def test_a_voice_is_kept_in_its_own_file_under_an_id_made_here_and_forgotten_on_request(tmp_path):
    store = VoiceStore(tmp_path / "voices")
    assert store.all() == []
    ada = store.remember("Ada", voice(1), {"session": "a" * 32, "speaker": "S2"})
    assert len(ada["id"]) == 32 and ada["name"] == "Ada" and ada["source"]["speaker"] == "S2"
    stored = json.loads((tmp_path / "voices" / f"{ada['id']}.json").read_text())
    assert stored == ada and abs(np.linalg.norm(stored["embedding"]) - 1) < 1e-3
    assert [v["id"] for v in store.all()] == [ada["id"]]
    assert list((tmp_path / "voices").iterdir()) == [tmp_path / "voices" / f"{ada['id']}.json"]
    for bad in ("../x", "A" * 32, ada["id"] + "0", ""):
        with pytest.raises(NotFound):
            store.forget(bad)
    store.forget(ada["id"])
    assert store.all() == []
    with pytest.raises(NotFound):
        store.forget(ada["id"])
    with pytest.raises(BadRequest):
        store.remember("Nobody", [0.0] * 192, {})
    with pytest.raises(BadRequest):
        store.remember("Nobody", [1.0] * 3, {})


def test_a_speaker_is_named_by_the_closest_voice_above_the_threshold_and_a_stranger_by_none(tmp_path):
    store = VoiceStore(tmp_path / "voices")
    ada, bob = store.remember("Ada", voice(1), {}), store.remember("Bob", voice(2), {})
    heard = {"S1": near(voice(1), 0.8, 10), "S2": near(voice(2), 0.5, 11), "S3": voice(3)}
    matches = store.match(heard, 0.6)
    assert list(matches) == ["S1"] and matches["S1"]["voice"] == ada["id"] and matches["S1"]["name"] == "Ada"
    assert matches["S1"]["similarity"] == pytest.approx(0.8, abs=0.01)
    assert store.match(heard, 0.45)["S2"]["voice"] == bob["id"]
    # one voice names one speaker: the closest of two alike speakers
    twins = {"S1": near(voice(1), 0.7, 12), "S2": near(voice(1), 0.9, 13)}
    assert list(store.match(twins, 0.6)) == ["S2"]
    # the owner said S1 is not Ada: never matched to her again
    assert store.match(heard, 0.6, refused={"S1": ada["id"]}) == {}


def test_one_persons_voice_never_names_another_persons_speaker(tmp_path):
    store = VoiceStore(tmp_path / "voices")
    voice = list(np.random.default_rng(3).normal(size=192))
    store.remember("Ada", voice, {"session": "a" * 32, "speaker": "S1"}, "alice")
    assert store.match({"S1": voice}, 0.7, owner="bob") == {}
    assert store.match({"S1": voice}, 0.7) == {}  # the single-user library's speakers: no owner
    assert store.match({"S1": voice}, 0.7, owner="alice")["S1"]["name"] == "Ada"
