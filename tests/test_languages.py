"""Languages by default: with no model or language given, each job detects the language on the audio
and uses tiny.en for English and the multilingual base for everything else, as accurately as
faster-whisper's own models run directly. Real server, real models, the shared recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import audio_file, make_server, read_pcm, reference_text, write_wav
from tapescribe.engine.audio import SAMPLE_RATE, pcm_blocks
from tapescribe.engine.language_detection import detect_over_parts, part_starts
from tapescribe.engine.models import resolve_model

OTHER_LANGUAGES = ["de", "es", "fr", "it", "pt", "ja", "ko"]
NO_WORD_SPACES = {"ja", "ko"}  # scored by character error rate
ENGLISH = ["jfk.flac", "leopard_test.wav"]


def recording(language: str) -> str:
    return f"leopard_test_{language}.wav"


def error_rate(language: str, reference: str, hypothesis: str) -> float:
    """WER in percent after Whisper's basic normaliser (English: its English one); CER for ja/ko."""
    import jiwer
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalise = EnglishTextNormalizer() if language == "en" else BasicTextNormalizer()
    ref, hyp = normalise(reference), normalise(hypothesis)
    if language in NO_WORD_SPACES:
        return 100.0 * jiwer.cer("".join(ref.split()), "".join(hyp.split()))
    return 100.0 * jiwer.wer(ref, hyp)


def units(language: str, reference: str) -> int:
    """Words in the normalised reference (characters for ja/ko), as error_rate counts them."""
    from whisper_normalizer.basic import BasicTextNormalizer

    text = BasicTextNormalizer()(reference)
    return len("".join(text.split())) if language in NO_WORD_SPACES else len(text.split())


def upload(client, name: str, **fields) -> str:
    with open(audio_file(name), "rb") as handle:
        response = client.post("/transcribe-file", data=fields, files={"file": (name, handle)})
    assert response.status_code == 202, response.text
    return response.json()["session_id"]


@pytest.fixture(scope="module")
def auto_server(tmp_path_factory):
    running = make_server(tmp_path_factory, "languages").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def served(auto_server) -> dict[str, dict]:
    """Every recording uploaded once with the defaults, and its finished session."""
    names = [recording(code) for code in OTHER_LANGUAGES] + ENGLISH
    with auto_server.client() as client:
        ids = {name: upload(client, name) for name in names}
    return {name: auto_server.wait_done(ids[name], timeout=600) for name in names}


@pytest.fixture(scope="module")
def library_run():
    """faster-whisper run directly with its defaults: `library_run(model_dir, path)` -> (text, fell back to
    sampling), one loaded copy per model."""
    from faster_whisper import WhisperModel

    loaded: dict[str, WhisperModel] = {}

    def transcribe(model_dir, path) -> tuple[str, bool]:
        model = loaded.setdefault(str(model_dir), WhisperModel(str(model_dir)))
        segments = list(model.transcribe(str(path))[0])
        return "".join(segment.text for segment in segments).strip(), any(s.temperature > 0 for s in segments)

    return transcribe


@pytest.fixture(scope="module")
def library(library_run):
    """faster-whisper run directly with its defaults: `library(model_dir, path)` -> text."""
    return lambda model_dir, path: library_run(model_dir, path)[0]


def test_defaults_detect_each_language_and_match_the_multilingual_model(auto_server, served, library_run):
    """Within one word of base run directly with faster-whisper's own defaults, over all languages.

    Each clip is a single sentence of 5 to 20 words (characters for ja/ko), so one word is 5 to 20
    points of that language's rate: one language may differ from the library by one word (the
    server decodes the file through its own decoder and int8 weights, the library with the model's
    float weights; on one machine the Italian clip came out one word worse and the French one two
    better, on a later one with AMX the Spanish one a word worse, "tienen" for "tiene"), and the mean
    over all languages by at most one word of one clip (a point was too tight for that Spanish word).
    Where either side fell back to sampling (Whisper found its own text repeating) its text is random
    from run to run, so that language counts in the mean only.
    """
    base_dir = auto_server.data_dir / "models" / "base"  # joined by the server for its first detection
    rows = []
    for code in OTHER_LANGUAGES:
        name = recording(code)
        body = served[name]
        assert body["status"]["status"] == "done", body["status"]
        assert body["detected_language"] == code, body
        assert body["detected_language_probability"] > 0.5
        assert body["model"] == "base" and body["transcription"]["model"] == "base"
        assert body["transcription"]["language"] == code
        assert body["model_reason"].startswith("detected ") and "multilingual model" in body["model_reason"]
        reference = reference_text(name)
        library_text, library_sampled = library_run(base_dir, audio_file(name))
        served_sampled = any(segment["temperature"] > 0 for segment in body["transcription"]["segments"])
        served_rate = error_rate(code, reference, body["transcription"]["text"])
        one_word = error_rate(code, reference, "") / max(1, units(code, reference))  # 100% over its length
        rows.append(
            (code, served_rate, error_rate(code, reference, library_text), served_sampled or library_sampled, one_word)
        )
    print("\nlanguage  tapescribe (auto)  base, faster-whisper's defaults   (CER for ja, ko)")
    for code, served_rate, library_rate, sampled, _ in rows:
        print(f"{code:8}  {served_rate:16.1f}%  {library_rate:30.1f}%  {'(sampled)' if sampled else ''}")
    assert all(served <= library + word + 0.01 for _, served, library, sampled, word in rows if not sampled), rows
    means = [sum(row[column] for row in rows) / len(rows) for column in (1, 2)]
    print(f"{'mean':8}  {means[0]:16.1f}%  {means[1]:30.1f}%")
    # at most one word worse over all languages together (one word of the clip whose words weigh most)
    assert means[0] <= means[1] + max(row[4] for row in rows) / len(rows) + 0.01, rows


def test_english_is_routed_to_tiny_en_as_accurate_as_the_library(served, library):
    tiny_dir = resolve_model("tiny.en", Path("unused"))  # packaged: no model cache needed
    for name in ENGLISH:
        body = served[name]
        assert body["status"]["status"] == "done", body["status"]
        assert body["model"] == "tiny.en" and body["detected_language"] == "en"
        assert body["model_reason"].startswith("detected English") and "English model" in body["model_reason"]
        reference = reference_text(name)
        server_rate = error_rate("en", reference, body["transcription"]["text"])
        library_rate = error_rate("en", reference, library(tiny_dir, audio_file(name)))
        print(f"\n{name}: tapescribe (auto) {server_rate:.1f}% WER, faster-whisper tiny.en {library_rate:.1f}%")
        assert server_rate <= library_rate + 0.5


def test_english_only_model_with_another_language_is_refused(auto_server, served):
    with auto_server.client() as client:
        with open(audio_file(recording("de")), "rb") as handle:
            response = client.post(
                "/transcribe-file", data={"model": "tiny.en", "language": "de"}, files={"file": ("de.wav", handle)}
            )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "bad_request" and "English-only" in error["message"]
        assert error["details"] == {"model": "tiny.en", "language": "de"}
        session_id = served[ENGLISH[1]]["id"]
        refused = client.post(f"/session/{session_id}/retranscribe", json={"model": "tiny.en", "language": "de"})
        assert refused.status_code == 400, refused.text
        assert client.get(f"/session/{session_id}").json()["model"] == "tiny.en"  # nothing changed


def test_models_say_which_are_multilingual_and_the_default_is_auto(auto_server):
    with auto_server.client() as client:
        assert client.get("/health").json()["default_model"] == "auto"
        listing = client.get("/models").json()
    assert listing["default"] == "auto"
    flags = {entry["id"]: entry["multilingual"] for entry in listing["models"]}
    assert flags["tiny.en"] is False and flags["base"] is True


def test_a_requested_language_routes_a_retranscription_without_detection(auto_server, served):
    session_id = served[ENGLISH[1]]["id"]
    with auto_server.client() as client:
        response = client.post(f"/session/{session_id}/retranscribe", json={"language": "it"})
        assert response.status_code == 202, response.text
    body = auto_server.wait_done(session_id)
    assert body["status"]["status"] == "done"
    assert body["model"] == "base" and body["model_reason"] == "Italian requested: multilingual model"
    assert body["detected_language"] is None and body["transcription"]["language"] == "it"


def test_a_pinned_model_is_used_for_everything_without_routing(tmp_path_factory):
    pinned = make_server(tmp_path_factory, "pinned", TAPESCRIBE_MODEL="tiny.en").start()
    try:
        with pinned.client() as client:
            assert client.get("/health").json()["default_model"] == "tiny.en"
            session_id = upload(client, recording("de"))
        body = pinned.wait_done(session_id)
    finally:
        pinned.stop()
    assert body["status"]["status"] == "done"
    assert body["model"] == "tiny.en" and body["model_reason"] == "pinned by the server (TAPESCRIBE_MODEL)"
    assert "detected_language" not in body
    assert not (pinned.data_dir / "models" / "base").exists()  # the multilingual model was never needed


def test_detection_hears_more_than_the_opening(tmp_path):
    """38 s of English, then 80 s of German: the first 30 s say English, the recording is German."""
    english = [read_pcm(audio_file(name)) for name in ("acoustic_corpus.wav", "jfk.flac")]
    german = read_pcm(audio_file(recording("de")))
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    samples = np.concatenate([*english, *([german, pause] * 14)])
    path = write_wav(tmp_path / "english_intro_then_german.wav", samples)
    duration = len(samples) / SAMPLE_RATE
    assert len(part_starts(duration, 3)) == 3
    from faster_whisper import WhisperModel

    model = WhisperModel(str(resolve_model("base", tmp_path / "models")), device="cpu", compute_type="int8")
    opening, _, _ = model.detect_language(audio=samples[: 30 * SAMPLE_RATE])
    found = detect_over_parts(model, pcm_blocks(path), duration, parts=3)
    assert opening == "en"
    assert found is not None and found.language == "de" and found.parts == 3


def test_speech_encoded_unpadded_is_judged_right_in_every_language(tmp_path):
    """The router encodes 10 s of speech as it is (cheaper than padding it to 30 s), and shorter speech
    padded to 30 s as the library pads it: every shared recording, alone, and 1.9 s of real whispered
    English (judged Latin when it was encoded unpadded) are judged as their own language, as the
    library judges them."""
    from faster_whisper import WhisperModel

    from tapescribe.engine.language_detection import language_probabilities, speech_only

    model = WhisperModel(str(resolve_model("base", tmp_path / "models")), device="cpu", compute_type="int8")
    rows = [line.split("\t") for line in audio_file("MANIFEST.tsv").read_text().splitlines()[1:]]
    rows.append(["wesper_sample_whisper.wav", "1.9", "en"])  # tests/audio
    judged = {}
    for name, _, language, *_ in rows:
        if name == "vosk_digits.wav":  # spoken digits: even the library is unsure (en 0.50)
            continue
        speech = speech_only(read_pcm(audio_file(name)))
        judged[name] = (language, language_probabilities(model, speech)[0][0], model.detect_language(audio=speech)[0])
    assert all(ours == expected == library for expected, ours, library in judged.values()), judged
