"""Whisper on one live buffer: a single pass over a short encoder window, with word times.

Used by the streaming policy (engine/streaming.py), which decides what audio to pass in.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

WINDOW_PAD_FRAMES = 300  # 3 s of silence after the audio, inside the encoder window
WINDOW_MIN_FRAMES = 1000  # 10 s: shorter windows made tiny.en loop ("Go forward 10 meters." forty times)
WINDOW_ROUND_FRAMES = 500
FULL_WINDOW_FRAMES = 3000  # Whisper's 30 s
NO_SPEECH_THRESHOLD, LOGPROB_THRESHOLD = 0.6, -1.0  # faster-whisper's own test for a silent window
MAX_TOKENS_PER_SECOND = 10  # fast speech is about 5 (words, punctuation and timestamps)


def window_frames(content_frames: int) -> int:
    """Encoder frames for a buffer: the audio plus 3 s of padding, in 5 s steps, 10 s to 30 s."""
    wanted = math.ceil((content_frames + WINDOW_PAD_FRAMES) / WINDOW_ROUND_FRAMES) * WINDOW_ROUND_FRAMES
    return min(FULL_WINDOW_FRAMES, max(WINDOW_MIN_FRAMES, wanted))


def decode_window(model: Any, audio: np.ndarray, *, language: str, beam_size: int) -> list[dict[str, Any]]:
    """Whisper on one buffer (at most 30 s) in one pass, with a shorter encoder window.

    faster-whisper's `transcribe` pads every window to 30 s, and the encoder pass over those 30 s
    is most of a step's cost on a CPU; a buffer of a few seconds padded to 10 s costs a third of
    it, with no loss of accuracy on the shared recordings (under about 3 s of padding it loops).
    `transcribe` would also decode the unfinished
    last segment again in a second window; here it is kept, as the edge of a live buffer always is.
    This uses faster-whisper's own steps (encode, generate_with_fallback, word alignment) from the
    version pinned in pyproject.toml.
    """
    features = model.feature_extractor(audio)
    content = min(features.shape[-1] - 1, FULL_WINDOW_FRAMES)
    frames = window_frames(content)
    window = np.zeros((features.shape[0], frames), dtype=features.dtype)
    window[:, :content] = features[:, :content]
    encoder_output = model.encode(window)
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    options = TranscriptionOptions(
        beam_size=beam_size,
        best_of=1,
        patience=1.0,
        length_penalty=1.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        log_prob_threshold=LOGPROB_THRESHOLD,
        no_speech_threshold=NO_SPEECH_THRESHOLD,
        compression_ratio_threshold=None,
        condition_on_previous_text=False,
        prompt_reset_on_temperature=0.5,
        temperatures=[0.0],  # no sampling fallback: random re-decodes make hypotheses disagree
        initial_prompt=None,
        prefix=None,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        without_timestamps=False,
        max_initial_timestamp=1.0,
        word_timestamps=True,
        prepend_punctuations="\"'“¿([{-",
        append_punctuations="\"'.。,，!！?？:：”)]}、",
        multilingual=False,
        max_new_tokens=None,  # set below, from the audio's length
        clip_timestamps=[0.0],
        hallucination_silence_threshold=None,
        hotwords=None,
    )
    prompt_tokens = model.get_prompt(tokenizer, [])  # no previous text
    # A decoding loop writes until the token limit, which makes a step cost several seconds for text
    # that is then thrown away; real speech never needs more than this many tokens per second.
    budget = int(MAX_TOKENS_PER_SECOND * content * model.feature_extractor.time_per_frame) + 16
    options = replace(options, max_new_tokens=min(budget, model.max_length - len(prompt_tokens)))
    result, avg_logprob, _, _ = model.generate_with_fallback(encoder_output, prompt_tokens, tokenizer, options)
    if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD:
        return []
    # A high compression ratio means the text repeats itself somewhere; the words before the loop
    # are usually right, so the loop is cut off word by word (agreement.without_loops) instead of
    # the whole window being thrown away, which lost whole sentences.
    tokens = result.sequences_ids[0]
    duration = content * model.feature_extractor.time_per_frame
    segments, _, _ = model._split_segments_by_timestamps(tokenizer, tokens, 0.0, content, duration, 0)
    tail = tokens[sum(len(segment["tokens"]) for segment in segments) :]
    if any(token < tokenizer.eot for token in tail):  # the unfinished segment at the buffer's edge
        start = segments[-1]["end"] if segments else 0.0
        if tail[0] >= tokenizer.timestamp_begin:
            start = (tail[0] - tokenizer.timestamp_begin) * model.time_precision
        segments.append({"seek": 0, "start": start, "end": duration, "tokens": tail})
    segments = [segment for segment in segments if any(token < tokenizer.eot for token in segment["tokens"])]
    if not segments:
        return []
    model.add_word_timestamps(
        [segments],
        tokenizer,
        encoder_output,
        content,
        options.prepend_punctuations,
        options.append_punctuations,
        last_speech_timestamp=0.0,
    )
    return segments


def detect_language(model: Any, audio: np.ndarray) -> str:
    """English for English-only models; otherwise Whisper's guess, made once per stream."""
    if not model.model.is_multilingual:
        return "en"
    language, _, _ = model.detect_language(audio=audio)
    return language
