"""The server's default decoding settings against faster-whisper's own defaults, on harder audio.

Each condition of bench/conditions.py (soft, whispered, noisy; how they are made is written there)
is applied to every shared English recording; the clips are joined into one upload per condition
with a second of quiet between them. The server (defaults: Auto model, its VAD settings) must be
at least as accurate as `WhisperModel.transcribe(file)` with nothing changed (tiny.en, no VAD) on
every set, and write nothing over a minute of room noise, music or silence, where the library's
own defaults wrote "You You" over the silence.
"""

from __future__ import annotations

import numpy as np
import pytest

from audio_conditions import NO_SPEECH, SPEECH_CONDITIONS, room_noise, whispered
from conftest import (
    ENGLISH_FILES,
    audio_file,
    library_default_text,
    read_pcm,
    reference_text,
    wer,
    write_wav,
)

QUIET = np.zeros(16000, dtype=np.float32)


def joined(condition: str) -> np.ndarray:
    make = SPEECH_CONDITIONS[condition]
    clips = [make(read_pcm(audio_file(name)), index) for index, name in enumerate(ENGLISH_FILES)]
    return np.concatenate([piece for clip in clips for piece in (clip, QUIET)])


def with_pauses() -> np.ndarray:
    """Clean, soft and whispered clips in turn, each followed by 8 s of room noise (soft speech after silence)."""
    makers = [SPEECH_CONDITIONS[name] for name in ("clean", "soft", "whispered")]
    pieces = []
    for index, name in enumerate(ENGLISH_FILES):
        pieces += [makers[index % 3](read_pcm(audio_file(name)), index), room_noise(8.0, index)]
    return np.concatenate(pieces)


def served_text(server, path) -> dict:
    with server.client() as client, open(path, "rb") as handle:
        response = client.post("/transcribe-file", files={"file": (path.name, handle)})
    assert response.status_code == 202, response.text
    body = server.wait_done(response.json()["session_id"], timeout=600)
    assert body["status"]["status"] == "done", body["status"]
    return body


@pytest.mark.parametrize("condition", ["soft", "whispered", "noisy", "pauses"])
def test_defaults_keep_every_word_the_librarys_defaults_keep(server, library_model, tmp_path, condition):
    samples = with_pauses() if condition == "pauses" else joined(condition)
    path = write_wav(tmp_path / f"{condition}.wav", samples)
    reference = " ".join(reference_text(name) for name in ENGLISH_FILES)
    body = served_text(server, path)
    assert body["model"] == "tiny.en"
    served = wer([reference], [body["transcription"]["text"]])
    library = wer([reference], [library_default_text(library_model, path)])
    seconds = len(samples) / 16000
    print(f"\n{condition} ({seconds:.0f} s): tapescribe {served:.2f}% WER, faster-whisper's defaults {library:.2f}%")
    assert served <= library + 0.5
    assert served < 40  # both far off would mean the set is broken, not the defaults right


@pytest.mark.parametrize("kind", list(NO_SPEECH))
def test_no_text_is_invented_over_a_minute_without_speech(server, tmp_path, kind):
    path = write_wav(tmp_path / f"{kind.replace(' ', '_')}.wav", NO_SPEECH[kind](60.0, 0))
    body = served_text(server, path)
    assert body["transcription"]["text"] == "", body["transcription"]["text"]
    assert body["transcription"]["segments"] == []


HARD_VOICES = {
    # jfk's envelope excited by noise through an order-8 filter: a whisper Silero hears no speech in
    "unheard whisper": lambda: whispered(read_pcm(audio_file("jfk.flac")), 3, order=8),
    # the same whisper made with another seed: Silero hears its first 2.6 s and nothing of the last 8.4 s
    "half-heard whisper": lambda: whispered(read_pcm(audio_file("jfk.flac")), 0, order=8),
    # real far-field speech, -51 dBFS: a table-top array microphone in a meeting room (tests/audio)
    "far-field": lambda: read_pcm(audio_file("ami_wsj20_array1_1_T10c0201.wav")),
    # real whispered speech: a person whispering a short English phrase (tests/audio)
    "real whisper": lambda: read_pcm(audio_file("wesper_sample_whisper.wav")),
}
REFERENCES = {
    "unheard whisper": "jfk.flac",
    "half-heard whisper": "jfk.flac",
    "far-field": "ami_wsj20_array1_1_T10c0201.wav",
    "real whisper": "wesper_sample_whisper.wav",
}


@pytest.mark.parametrize("voice", list(HARD_VOICES))
def test_a_voice_the_vad_barely_hears_is_written_as_the_librarys_defaults_write_it(
    server, library_model, tmp_path, voice
):
    """A real whispered English sentence came back empty ("no speech was found") while faster-whisper's
    defaults wrote it exactly: Silero hears no speech in it, even evened out. The unheard whisper is one
    Silero cannot hear either (empty before the fix); of the half-heard one the server kept only
    "And so my fellow Americans."; the far-field recording guards the quiet, distant voice and the real
    whisper a person's whispering (both kept before the fix too)."""
    path = write_wav(tmp_path / f"{voice.replace(' ', '_')}.wav", HARD_VOICES[voice]())
    reference = reference_text(REFERENCES[voice])
    library = wer([reference], [library_default_text(library_model, path)])
    body = served_text(server, path)
    served = wer([reference], [body["transcription"]["text"]])
    print(f"\n{voice}: tapescribe {served:.2f}% WER, faster-whisper's defaults {library:.2f}%")
    assert library < 30  # the library writes it
    assert served <= library + 0.5, body["transcription"]["text"]
