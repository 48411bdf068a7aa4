"""Real recorded speech through each original route of the real server: as accurate as faster-whisper itself."""

from __future__ import annotations

from conftest import (
    ENGLISH_FILES,
    audio_file,
    encode_webm_opus,
    library_default_text,
    reference_text,
    wer,
)

ROUTE_SAMPLE = [
    "jfk.flac",
    "61-70968-0000.flac",
    "leopard_test.wav",
    "sense_and_sensibility_01_austen_64kb-0870.wav",
    "speechbrain_spk1_snt1.wav",
    "acoustic_corpus.wav",
]


def test_transcribe_file_matches_library_wer(server, library_model):
    with server.client() as client:
        session_ids = {}
        for name in ENGLISH_FILES:
            with open(audio_file(name), "rb") as handle:
                response = client.post("/transcribe-file", files={"file": (name, handle)})
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "queued"
            session_ids[name] = response.json()["session_id"]
    references = [reference_text(name) for name in ENGLISH_FILES]
    served = []
    for name in ENGLISH_FILES:
        body = server.wait_done(session_ids[name])
        assert body["status"]["status"] == "done", body["status"]
        assert body["transcription"]["language"] == "en"
        served.append(body["transcription"]["text"])
    direct = [library_default_text(library_model, audio_file(name)) for name in ENGLISH_FILES]
    served_wer, library_wer = wer(references, served), wer(references, direct)
    print(f"/transcribe-file WER {served_wer:.2f}% vs faster-whisper {library_wer:.2f}%")
    assert served_wer <= library_wer + 0.5
    assert served_wer < 25  # tiny.en on clean read speech; guards against both being broken


def test_transcribe_recording_matches_library_wer(server, library_model, tmp_path):
    references, served, direct = [], [], []
    with server.client() as client:
        for name in ROUTE_SAMPLE:
            webm = encode_webm_opus(audio_file(name), tmp_path / (name.rsplit(".", 1)[0] + ".webm"))
            with open(webm, "rb") as handle:
                response = client.post("/transcribe", files={"audio": ("recording.webm", handle, "audio/webm")})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "done"
            assert body["segments"] and all(s["end"] >= s["start"] for s in body["segments"])
            stored = client.get(f"/session/{body['session_id']}").json()
            assert stored["transcription"]["text"] == body["text"]
            assert stored["source"] == "recording"
            assert (
                server.data_dir / "sessions" / body["session_id"] / "original_audio.webm"
            ).read_bytes() == webm.read_bytes()
            references.append(reference_text(name))
            served.append(body["text"])
            direct.append(library_default_text(library_model, webm))
    served_wer, library_wer = wer(references, served), wer(references, direct)
    print(f"/transcribe WER {served_wer:.2f}% vs faster-whisper {library_wer:.2f}%")
    assert served_wer <= library_wer + 0.5


def _send_live(client, webm_bytes: bytes, pieces: int) -> dict:
    size = len(webm_bytes)
    cuts = [size * i // pieces for i in range(pieces + 1)]
    session_id, body = None, {}
    for index in range(pieces):
        data = {"chunk_index": str(index)}
        if session_id:
            data["session_id"] = session_id
        response = client.post(
            "/transcribe-live",
            data=data,
            files={"audio": (f"chunk_{index}.webm", webm_bytes[cuts[index] : cuts[index + 1]])},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        session_id = body["session_id"]
    return body


# A first, a middle and a last chunk. Each chunk decodes the recording's unsettled tail again (all of it
# under 24 s), so a clip sent in four chunks cost 2.5 transcriptions of it, in three 2.
LIVE_PIECES = 3


def test_transcribe_live_chunks_match_library_wer(server, library_model, tmp_path):
    references, served, direct = [], [], []
    with server.client() as client:
        for name in ROUTE_SAMPLE:
            webm = encode_webm_opus(audio_file(name), tmp_path / (name.rsplit(".", 1)[0] + ".webm"))
            body = _send_live(client, webm.read_bytes(), pieces=LIVE_PIECES)
            directory = server.data_dir / "sessions" / body["session_id"]
            chunks = [(directory / f"chunk_{i}.webm").read_bytes() for i in range(LIVE_PIECES)]
            assert b"".join(chunks) == webm.read_bytes()
            references.append(reference_text(name))
            served.append(body["text"])
            direct.append(library_default_text(library_model, webm))
    served_wer, library_wer = wer(references, served), wer(references, direct)
    print(f"/transcribe-live WER {served_wer:.2f}% vs faster-whisper {library_wer:.2f}%")
    assert served_wer <= library_wer + 0.5
