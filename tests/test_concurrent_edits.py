"""Two people editing one session (or two tabs) is normal: changes sent at once, each acknowledged, are
all kept, in the transcript file, in the versions and in the index (search), against the real server."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from conftest import ENGLISH_FILES, audio_file, make_server, read_pcm, write_wav

WRITERS = 12
ROUNDS = 3


@pytest.fixture(scope="module")
def editing(tmp_path_factory):
    running = make_server(tmp_path_factory, "concurrent-edits").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def long_session(editing, tmp_path_factory):
    """A transcript of many segments: the English recordings joined, with a pause after each."""
    silence = np.zeros(8000, dtype=np.float32)
    joined = np.concatenate([piece for name in ENGLISH_FILES for piece in (read_pcm(audio_file(name)), silence)])
    path = write_wav(tmp_path_factory.mktemp("joined") / "joined.wav", joined)
    with editing.client() as client, open(path, "rb") as handle:
        session_id = client.post("/transcribe-file", files={"file": (path.name, handle)}).json()["session_id"]
    body = editing.wait_done(session_id, timeout=600)
    assert body["status"]["status"] == "done", body["status"]
    assert len(body["transcription"]["segments"]) >= WRITERS, body["transcription"]
    return session_id


def at_once(server, requests: list[tuple[str, str, dict]]) -> list[int]:
    """Send every request from its own thread, all released together; the status codes, in order."""
    start = threading.Barrier(len(requests))
    codes: list[int] = [0] * len(requests)

    def send(number: int, method: str, path: str, body: dict) -> None:
        with server.client() as client:
            start.wait()
            codes[number] = client.request(method, path, json=body).status_code

    threads = [threading.Thread(target=send, args=(number, *request)) for number, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return codes


def session_file(server, session_id: str, name: str) -> dict:
    return json.loads((server.data_dir / "sessions" / session_id / name).read_text())


def test_segment_edits_sent_at_once_are_all_kept_in_the_file_the_versions_and_the_index(editing, long_session):
    session_id = long_session
    for round_number in range(ROUNDS):
        versions_before = len(list((editing.data_dir / "sessions" / session_id / "versions").glob("*.json")))
        words = {position: f"okapi{round_number}x{position}y" for position in range(WRITERS)}
        codes = at_once(
            editing,
            [
                ("PATCH", f"/session/{session_id}/segments/{position}", {"text": f"Edited {word} here."})
                for position, word in words.items()
            ],
        )
        assert codes == [200] * WRITERS
        # the file: every acknowledged edit
        segments = session_file(editing, session_id, "transcription.json")["segments"]
        kept = [position for position, word in words.items() if segments[position]["text"] == f" Edited {word} here."]
        assert kept == list(words), f"round {round_number}: only segments {kept} of {list(words)} kept their edit"
        # the versions: one per edit, each the transcript as that edit found it
        versions = sorted((editing.data_dir / "sessions" / session_id / "versions").glob("*.json"))
        assert len(versions) == versions_before + WRITERS
        new = [json.loads(path.read_text()) for path in versions[versions_before:]]
        assert [record["label"] for record in new] == ["before-edit"] * WRITERS
        edited = {f" Edited {word} here." for word in words.values()}
        edits_seen = [
            sum(segment["text"] in edited for segment in record["transcription"]["segments"]) for record in new
        ]
        assert edits_seen == list(range(WRITERS)), edits_seen  # each edit saw all the ones before it
        # the index: search finds each new word in its segment, and none of the words it replaced
        with editing.client() as client:
            for position, word in words.items():
                hits = client.get("/search", params={"q": word}).json()["results"]
                assert [hit["id"] for hit in hits] == [session_id], (word, hits)
                assert [segment["index"] for segment in hits[0]["segments"]] == [position]
                if round_number:
                    stale = client.get("/search", params={"q": f"okapi{round_number - 1}x{position}y"}).json()
                    assert stale["results"] == [], stale


def test_renames_sent_at_once_are_all_kept_in_the_history_and_the_listing(editing, long_session):
    session_id = long_session
    history_before = len(session_file(editing, session_id, "session.json").get("title_history") or [])
    titles = [f"Meeting {number} wombat{number}" for number in range(WRITERS)]
    codes = at_once(editing, [("PATCH", f"/session/{session_id}", {"title": title}) for title in titles])
    assert codes == [200] * WRITERS
    session = session_file(editing, session_id, "session.json")
    history = session["title_history"][history_before:]
    # every title but the last one standing was the title once, and is in the history, once
    assert sorted([entry["title"] for entry in history[1:]] + [session["title"]]) == sorted(titles)
    with editing.client() as client:
        (row,) = [row for row in client.get("/sessions").json()["sessions"] if row["id"] == session_id]
        assert row["title"] == session["title"]
        word = session["title"].split()[-1]
        assert [hit["id"] for hit in client.get("/search", params={"q": word}).json()["results"]] == [session_id]


def test_edits_and_renames_sent_together_are_all_kept(editing, long_session):
    session_id = long_session
    words = {position: f"tapir{position}y" for position in range(WRITERS)}
    requests = [
        ("PATCH", f"/session/{session_id}/segments/{position}", {"text": f"Mixed {word}."})
        for position, word in words.items()
    ] + [("PATCH", f"/session/{session_id}", {"title": f"Mixed title {number}"}) for number in range(WRITERS)]
    assert at_once(editing, requests) == [200] * len(requests)
    segments = session_file(editing, session_id, "transcription.json")["segments"]
    assert [segments[position]["text"] for position in words] == [f" Mixed {word}." for word in words.values()]
    session = session_file(editing, session_id, "session.json")
    assert sum(entry["title"].startswith("Mixed title") for entry in session["title_history"]) == WRITERS - 1
    with editing.client() as client:
        for word in words.values():
            assert [hit["id"] for hit in client.get("/search", params={"q": word}).json()["results"]] == [session_id]
