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


def test_a_whisper_the_vad_cannot_hear_is_written_as_the_librarys_defaults_write_it(server, library_model, tmp_path):
    """A real whispered English sentence came back empty ("no speech was found") while faster-whisper's
    defaults wrote it exactly: Silero hears no speech in it, even evened out. This whisper (jfk, its
    envelope excited by noise through an order-8 filter) is one Silero cannot hear either."""
    path = write_wav(tmp_path / "unheard_whisper.wav", whispered(read_pcm(audio_file("jfk.flac")), 3, order=8))
    reference = reference_text("jfk.flac")
    library = wer([reference], [library_default_text(library_model, path)])
    body = served_text(server, path)
    served = wer([reference], [body["transcription"]["text"]])
    print(f"\nunheard whisper: tapescribe {served:.2f}% WER, faster-whisper's defaults {library:.2f}%")
    assert library < 30  # the library writes it
    assert served <= library + 0.5, body["transcription"]["text"]
