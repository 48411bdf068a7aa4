"""The decoding defaults the server starts every job from, and where its VAD finds speech."""

from __future__ import annotations

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from audio_conditions import hiss, music, room_noise, soft, whispered
from conftest import audio_file, read_pcm
from tapescribe.config import Settings
from tapescribe.engine.speech_regions import speech_clips
from tapescribe.engine.transcriber import KEEP_SOFT_SPEECH_VAD, DecodeOptions
from tapescribe.runtime import decode_defaults


def test_the_servers_defaults_are_the_engines_defaults_with_words_timed():
    # tests compare the server with decode_defaults run in-process (tests/conftest.py engine_records);
    # the server times words by default (subtitles start and end on them), after decoding: faster-whisper
    # decodes as its own defaults do, never with word_timestamps (that changes the text)
    assert decode_defaults(Settings()) == DecodeOptions(word_timestamps=True)
    assert decode_defaults(Settings(word_timestamps=False)) == DecodeOptions()
    assert DecodeOptions(word_timestamps=True).as_kwargs() == DecodeOptions().as_kwargs()
    assert DecodeOptions(word_timestamps=True).as_kwargs()["word_timestamps"] is False


def test_vad_settings_are_faster_whispers_vad_options():
    settings = Settings(vad_threshold=0.3, vad_min_silence_ms=700, vad_speech_pad_ms=90)
    options = VadOptions(**decode_defaults(settings).vad_parameters)  # an unknown name would raise here
    assert (options.threshold, options.min_silence_duration_ms, options.speech_pad_ms) == (0.3, 700, 90)


def covered(clips: list[float], start: float, end: float) -> bool:
    return any(a <= start and end <= b for a, b in zip(clips[::2], clips[1::2], strict=True))


def test_a_soft_sentence_between_loud_ones_is_found():
    """Silero alone, at the same settings, misses a sentence 30 dB quieter than its neighbours."""
    loud = read_pcm(audio_file("jfk.flac"))
    quiet = soft(read_pcm(audio_file("speechbrain_spk1_snt1.wav")))
    gap = room_noise(8.0, 1)
    audio = np.concatenate([loud, gap, quiet, gap, loud])
    start = (len(loud) + len(gap)) / 16000
    end = start + len(quiet) / 16000
    plain = get_speech_timestamps(audio, VadOptions(**KEEP_SOFT_SPEECH_VAD))
    plain_clips = [edge / 16000 for chunk in plain for edge in (chunk["start"], chunk["end"])]
    assert not covered(plain_clips, start + 0.5, end - 0.5)
    clips = speech_clips(audio, KEEP_SOFT_SPEECH_VAD)
    assert covered(clips, start, end), clips
    assert not any(covered(clips, t, t + 0.5) for t in np.arange(13.0, 16.5, 0.5))  # room noise before it: skipped


def test_silence_is_never_decoded_and_other_sound_without_speech_is_left_to_whisper():
    """Digital silence (and a floor below -60 dBFS) is skipped: Whisper invents "you" there. Music and hiss
    hold no speech for Silero either, but are sound: decoded whole, where Whisper writes nothing over
    them (tests/test_defaults.py checks that on the server)."""
    assert speech_clips(np.zeros(16000 * 60, dtype=np.float32), KEEP_SOFT_SPEECH_VAD) == []
    assert speech_clips(hiss(60.0, 0) / 100, KEEP_SOFT_SPEECH_VAD) == []  # -90 dBFS
    assert speech_clips(music(60.0, 0), KEEP_SOFT_SPEECH_VAD) is None
    assert speech_clips(hiss(60.0, 0), KEEP_SOFT_SPEECH_VAD) is None  # as loud as the soft speech above


def test_a_whisper_silero_cannot_hear_is_decoded_whole():
    """Silero, even on the evened copy, hears no speech in this whisper (as in a real whispered English
    sentence that came back empty); faster-whisper's own defaults write it. The server skipped it all."""
    audio = whispered(read_pcm(audio_file("jfk.flac")), 3, order=8)
    assert speech_clips(audio, KEEP_SOFT_SPEECH_VAD) is None


def test_a_whispered_sentence_is_decoded_whole():
    """Silero hears nothing in 5 s of this whispered sentence; at 5 s of minimum silence that middle
    was skipped and Whisper lost "ask not what" (the whispered set's WER rose from 10.8% to 13.1%)."""
    audio = whispered(read_pcm(audio_file("jfk.flac")), 3)
    assert speech_clips(audio, KEEP_SOFT_SPEECH_VAD) == [0.0, 11.0]


def test_a_short_lead_in_and_tail_are_kept():
    """Only stretches of at least the minimum silence are skipped, at the window's edges too."""
    speech = read_pcm(audio_file("jfk.flac"))
    audio = np.concatenate([room_noise(3.0, 2), speech, room_noise(3.0, 3)])
    assert speech_clips(audio, KEEP_SOFT_SPEECH_VAD) == [0.0, round(len(audio) / 16000, 3)]


def test_a_stored_job_times_words_when_the_request_or_the_setting_asks():
    """Uploads, recordings and the live second pass (whose session options hold at most `speakers`)
    get word times by default (aligned after decoding), unless the request or the setting says not; a
    request's word_timestamps=true or false overrides the setting; speaker labels always need them."""
    from tapescribe.jobs.transcription import JobSettings, TranscriptionJob

    def timed(settings: Settings, options: dict) -> bool:
        job = TranscriptionJob(None, None, JobSettings(decoding=decode_defaults(settings)), None)  # type: ignore[arg-type]
        return job.options_for({"options": options}).word_timestamps

    assert timed(Settings(), {}) and timed(Settings(), {"speakers": "auto"})  # an upload; a live second pass
    assert not timed(Settings(), {"word_timestamps": False}) and timed(Settings(), {"speakers": 2})
    off = Settings(word_timestamps=False)
    assert not timed(off, {}) and timed(off, {"word_timestamps": True}) and timed(off, {"speakers": 2})


def test_the_rest_of_a_whisper_silero_heard_the_start_of_is_decoded():
    """Silero hears the first 2.6 s of this whisper and nothing of its last 8.4 s: that stretch was
    skipped and the server wrote "And so my fellow Americans." of the whole sentence. Its sound rises
    and falls like speech, so it is decoded; steady room noise between sentences is still skipped
    (test_a_soft_sentence_between_loud_ones_is_found)."""
    audio = whispered(read_pcm(audio_file("jfk.flac")), 0, order=8)
    assert speech_clips(audio, KEEP_SOFT_SPEECH_VAD) == [0.0, 11.0]
