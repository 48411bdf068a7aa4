"""Every way in transcribes through the one pipeline (jobs/pipeline.py): the same recording, sent with no
model or language, gets the same model, language and text by a page upload (`/transcribe-file`), a
recording (`/transcribe`), `/transcribe-live`, a `/ws/live` stream (its live model and its second
pass), `/v1/audio/transcriptions`, a retranscribe and `tapescribe transcribe`; `/v1/audio/translations`
chooses the same model. One English and two other languages, short clips, one server, one CLI run.

/transcribe-live wrote Spanish as tiny.en's English nonsense: it took tiny.en for any stream without a
language and decoded with its own options and no VAD; it now decodes through the pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import soundfile
from test_live_ws import frames, stream

from conftest import audio_file

FILES = {
    "leopard_test.wav": ("en", "tiny.en"),
    "leopard_test_es.wav": ("es", "base"),
    "leopard_test_de.wav": ("de", "base"),
}


def said(session: dict) -> tuple[str, str, str]:
    """(model, language, text) as a finished session holds them."""
    assert session["status"]["status"] == "done", session["status"]
    transcription = session["transcription"]
    return session["model"], transcription["language"], transcription["text"]


def upload(server, route: str, field: str, name: str, **data) -> Any:
    with server.client() as client, open(audio_file(name), "rb") as handle:
        response = client.post(route, data=data, files={field: (name, handle)})
    assert response.status_code in (200, 202), response.text
    return response


@pytest.fixture(scope="module")
def uploads(server) -> dict[str, dict]:
    """Each file as a page upload: the reference every other way in must match."""
    ids = {name: upload(server, "/transcribe-file", "file", name).json()["session_id"] for name in FILES}
    return {name: server.wait_done(session_id, timeout=300) for name, session_id in ids.items()}


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory) -> dict[str, dict]:
    """`tapescribe transcribe --format json` on the three files in one run (no server, nothing stored)."""
    base = tmp_path_factory.mktemp("ways-cli")
    (base / "tmp").mkdir()
    env = {**os.environ, "TAPESCRIBE_DATA_DIR": str(base / "data"), "TMPDIR": str(base / "tmp")}
    env.pop("TAPESCRIBE_MODEL", None)
    paths = [str(audio_file(name)) for name in FILES]
    run = subprocess.run(
        [sys.executable, "-m", "tapescribe", "transcribe", "--format", "json", *paths],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    decoder, text, bodies = json.JSONDecoder(), run.stdout, []
    position = 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        body, position = decoder.raw_decode(text, position)
        bodies.append(body)
    return dict(zip(FILES, bodies, strict=True))


@pytest.mark.parametrize("name", list(FILES))
def test_each_language_gets_its_model_by_an_upload(uploads, name):
    language, model = FILES[name]
    assert said(uploads[name])[:2] == (model, language), uploads[name]["model_reason"]


@pytest.mark.parametrize("name", list(FILES))
def test_a_recording_is_written_as_an_upload(server, uploads, name):
    answer = upload(server, "/transcribe", "audio", name).json()
    session = server.wait_done(answer["session_id"])
    assert (answer["language"], answer["text"]) == said(uploads[name])[1:]
    assert said(session) == said(uploads[name])


@pytest.mark.parametrize("name", list(FILES))
def test_transcribe_live_chunks_are_written_as_an_upload(server, uploads, name):
    """Before: tiny.en for any chunk stream without a language, so Spanish and German came out as
    English nonsense."""
    answer = upload(server, "/transcribe-live", "audio", name).json()
    with server.client() as client:
        session = client.get(f"/session/{answer['session_id']}").json()
    assert (session["model"], session["transcription"]["language"], answer["text"]) == said(uploads[name])


@pytest.mark.parametrize("name", list(FILES))
def test_v1_transcriptions_are_written_as_an_upload(server, uploads, name):
    response = upload(server, "/v1/audio/transcriptions", "file", name, model="whisper-1")
    session = server.wait_done(response.headers["X-Tapescribe-Session"])
    assert response.json()["text"] == said(uploads[name])[2]
    assert said(session) == said(uploads[name])


@pytest.mark.parametrize("name", list(FILES))
def test_v1_translations_choose_the_model_an_upload_chooses(server, uploads, name):
    response = upload(server, "/v1/audio/translations", "file", name, model="whisper-1")
    session = server.wait_done(response.headers["X-Tapescribe-Session"])
    assert session["model"] == uploads[name]["model"] and session["status"]["status"] == "done"
    if FILES[name][0] == "en":  # English translated to English is its transcript
        assert response.json()["text"] == said(uploads[name])[2]


@pytest.mark.parametrize("name", list(FILES))
def test_a_retranscribe_writes_what_the_upload_wrote(server, uploads, name):
    session_id = uploads[name]["id"]
    with server.client() as client:
        response = client.post(f"/session/{session_id}/retranscribe", json={})
    assert response.status_code == 202, response.text
    assert said(server.wait_done(session_id, timeout=300)) == said(uploads[name])


@pytest.mark.parametrize("name", list(FILES))
def test_a_live_stream_captions_with_that_model_and_its_second_pass_writes_the_upload(server, uploads, name):
    samples, rate = soundfile.read(audio_file(name), dtype="int16")
    assert rate == 16000
    run = stream(server, "pcm", frames(np.ascontiguousarray(samples).tobytes()), interval=0.02)
    chosen = run.of("language")
    assert [(message["model"], message["language"]) for message in chosen] == [said(uploads[name])[:2]], run.messages
    assert said(server.wait_done(run.session_id, timeout=300)) == said(uploads[name])


@pytest.mark.parametrize("name", list(FILES))
def test_the_cli_writes_what_an_upload_writes(cli_results, uploads, name):
    body = cli_results[name]
    assert (body["model"], body["language"], body["text"]) == said(uploads[name])
