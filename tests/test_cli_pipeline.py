"""`tapescribe transcribe FILE` goes through the job's pipeline (jobs/pipeline.py): the same model choice
(the language detected on the audio: tiny.en for English, base otherwise), the same English-only
refusal, the same decoding and decode plan. The real CLI process, the real server process, the real
models and the shared recordings; the CLI and an upload of the same file must agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_languages import error_rate, units

from conftest import audio_file, make_server, reference_text

FILES = {"leopard_test_es.wav": "es", "leopard_test_fr.wav": "fr", "jfk.flac": "en"}


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Runs `python -m tapescribe transcribe ...` with a data directory and TMPDIR of its own (set through
    the environment, as a user of TAPESCRIBE_DATA_DIR does, so the command line holds only the request)."""
    base = tmp_path_factory.mktemp("cli")
    (base / "tmp").mkdir()
    env = {
        **os.environ,
        "TAPESCRIBE_DATA_DIR": str(base / "data"),
        "TMPDIR": str(base / "tmp"),
        "TEMP": str(base / "tmp"),
        "TMP": str(base / "tmp"),
    }
    env.pop("TAPESCRIBE_MODEL", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tapescribe", "transcribe", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    return run


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = make_server(tmp_path_factory, "cli-server").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def cli_results(cli) -> dict[str, tuple[str, dict]]:
    """Every file through the CLI with no options, all in one command (each is routed on its own audio, as
    one job each: the English file comes after two the multilingual model wrote): each file's plain text,
    and its JSON from a second command that asks for JSON."""
    paths = [str(audio_file(name)) for name in FILES]
    plain = cli(*paths)
    assert plain.returncode == 0, plain.stderr
    texts = plain.stdout.split("\n\n")  # txt is the text and a newline, and each file's output ends a line
    assert len(texts) == len(FILES) + 1 and texts[-1] == "", plain.stdout
    as_json = cli("--format", "json", *paths)
    assert as_json.returncode == 0, as_json.stderr
    decoder, bodies, position = json.JSONDecoder(), [], 0
    while position < len(as_json.stdout.rstrip()):  # one JSON document per file, one after another
        body, position = decoder.raw_decode(as_json.stdout, position)
        bodies.append(body)
        position += len(as_json.stdout[position:]) - len(as_json.stdout[position:].lstrip())
    assert len(bodies) == len(FILES), as_json.stdout
    return {name: (texts[number], bodies[number]) for number, name in enumerate(FILES)}


def one_word(language: str, reference: str) -> float:
    """One word of this reference, in points of its error rate."""
    return error_rate(language, reference, "") / max(1, units(language, reference))


@pytest.mark.parametrize("name", list(FILES))
def test_the_cli_with_no_options_writes_each_language_in_that_language(cli_results, name):
    """The Spanish and French clips came out as English nonsense: the CLI always used tiny.en."""
    language = FILES[name]
    plain, _ = cli_results[name]
    reference = reference_text(name)
    rate = error_rate(language, reference, plain)
    print(f"\n{name}: {rate:.1f}% WER by the CLI with no options: {plain.strip()!r}")
    assert rate <= one_word(language, reference) + 0.01, plain


@pytest.mark.parametrize("name", list(FILES))
def test_the_cli_chooses_the_model_as_a_job_does(cli_results, name):
    language = FILES[name]
    _, body = cli_results[name]
    assert body["language"] == language and body["detected_language"] == language, body
    if language == "en":
        assert body["model"] == "tiny.en" and body["model_reason"].startswith("detected English"), body
    else:
        assert body["model"] == "base" and "multilingual model" in body["model_reason"], body


def test_the_cli_and_an_upload_agree_on_model_language_and_text(cli_results, server):
    with server.client() as client:
        ids = {}
        for name in FILES:
            with open(audio_file(name), "rb") as handle:
                response = client.post("/transcribe-file", files={"file": (name, handle)})
            assert response.status_code == 202, response.text
            ids[name] = response.json()["session_id"]
    for name, session_id in ids.items():
        served = server.wait_done(session_id, timeout=600)
        assert served["status"]["status"] == "done", served["status"]
        _, body = cli_results[name]
        assert (body["model"], body["model_reason"]) == (served["model"], served["model_reason"]), name
        assert body["language"] == served["transcription"]["language"], name
        assert body["detected_language"] == served["detected_language"], name
        assert body["text"] == served["transcription"]["text"], name
        assert [s["text"] for s in body["segments"]] == [s["text"] for s in served["transcription"]["segments"]]


def test_an_english_only_model_for_another_language_fails_as_the_api_refuses_it(cli, server):
    """`--model tiny.en --language es` wrote English nonsense (faster-whisper's 'English-only ... using
    en instead'); now it is the API's 400, word for word, and a non-zero exit, before any decoding."""
    with server.client() as client, open(audio_file("leopard_test_es.wav"), "rb") as handle:
        refused = client.post(
            "/transcribe-file", data={"model": "tiny.en", "language": "es"}, files={"file": ("es.wav", handle)}
        )
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]["message"]
    result = cli("--model", "tiny.en", "--language", "es", str(audio_file("leopard_test_es.wav")))
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert result.stdout == ""
    assert "using 'en' instead" not in result.stderr


def test_an_english_only_model_chosen_for_other_speech_is_warned_about(cli):
    result = cli("--model", "tiny.en", str(audio_file("leopard_test_es.wav")))
    assert result.returncode == 0, result.stderr
    assert "sounds like Spanish" in result.stderr and "tiny.en writes English only" in result.stderr
