"""faster-whisper/CTranslate2: the one module that reaches into the library's internals.

The decode plans (engine/plans/), the live policy and language detection call a loaded model
through engine/base.SpeechModel (`transcribe`, `detect_language`) and reach anything deeper through
the functions here: the tokenizer (a prompt's tokens, the start token), the CTranslate2 model under
a WhisperModel (its decoders, a shallow copy calling through a batcher: lanes and clip batches), the
feature extractor (a window featurized as one pass over the file does), a segment's cycle (`seek`),
the model's load and the batched pipeline (GPU). Another engine is a module of its own beside this
one (engine/base.py). `decode_window` is Whisper on one live buffer: a single pass over a short
encoder window, with word times, for the streaming policy (engine/streaming.py), from
faster-whisper's own steps (encode, generate_with_fallback, word alignment) of the version pinned
in pyproject.toml.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens
from faster_whisper.vad import VadOptions, collect_chunks, get_vad_model

from tapescribe.engine.base import SpeechModel
from tapescribe.engine.silero_speeches import VAD_BATCH, VAD_CONTEXT, VAD_WINDOW, speeches

FRAME_SECONDS = 0.01  # a segment's `seek` (the start of its cycle) is counted in these
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


def load_whisper(path: Path, device: str, compute_type: str, cpu_threads: int, decoders: int) -> SpeechModel:
    """A faster_whisper.WhisperModel from a local directory, with `decoders` CTranslate2 replicas."""
    from faster_whisper import WhisperModel

    model: SpeechModel = WhisperModel(
        str(path),
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        num_workers=decoders,
        local_files_only=True,
    )
    return model


def speech_timestamps(audio: np.ndarray, **vad_options: Any) -> list[dict[str, int]]:
    """Silero VAD as faster-whisper ships it: [{start, end}] in samples of the stretches that hold speech
    (`vad_options` are its VadOptions: threshold, min_silence_duration_ms, speech_pad_ms, ...)."""
    return speeches(speech_probabilities(audio), len(audio), VadOptions(**vad_options))


def speech_probabilities(audio: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each 512-sample window of `audio` (the last one zero-padded, a whole
    window of zeros after audio that ends on a window's edge), as faster-whisper's VAD model computes them
    for get_speech_timestamps, the same to the bit: its session, each window with the 64 samples before
    it, the LSTM state carried on, but VAD_BATCH windows per call (a few MiB) instead of up to 10,000
    after a padded copy of the whole audio (engine/silero_speeches.py)."""
    session = get_vad_model().session
    windows = len(audio) // VAD_WINDOW + 1
    h = np.zeros((1, 1, 128), dtype=np.float32)
    c = np.zeros((1, 1, 128), dtype=np.float32)
    outputs = []
    for first in range(0, windows, VAD_BATCH):
        count = min(VAD_BATCH, windows - first)
        piece = np.zeros(count * VAD_WINDOW, dtype=np.float32)
        real = audio[first * VAD_WINDOW : (first + count) * VAD_WINDOW]
        piece[: len(real)] = real
        rows = piece.reshape(count, VAD_WINDOW)
        if first + count == windows:
            rows[-1, -VAD_CONTEXT:] = 0  # the library zeroes these (its context array is a view of the audio)
        batch = np.zeros((count, VAD_CONTEXT + VAD_WINDOW), dtype=np.float32)
        batch[:, VAD_CONTEXT:] = rows
        batch[1:, :VAD_CONTEXT] = rows[:-1, -VAD_CONTEXT:]
        if first:
            batch[0, :VAD_CONTEXT] = audio[first * VAD_WINDOW - VAD_CONTEXT : first * VAD_WINDOW]
        output, h, c = session.run(None, {"input": batch, "h": h, "c": c})
        outputs.append(output)
    return np.concatenate(outputs, axis=0)


def speech_samples(audio: np.ndarray, stretches: list[dict[str, int]]) -> np.ndarray:
    """The samples of `stretches` (speech_timestamps) of `audio`, joined."""
    return np.concatenate(collect_chunks(audio, stretches)[0])


def downloaded_model(name: str) -> Path:
    """The directory of a Hugging Face model faster-whisper downloaded before (never downloads)."""
    from faster_whisper.utils import download_model

    return Path(download_model(name, local_files_only=True))


def is_sequential(model: SpeechModel) -> bool:
    """Whether `model` is a WhisperModel itself (sequential `transcribe`), not the batched pipeline."""
    from faster_whisper import WhisperModel

    return isinstance(model, WhisperModel)


def batched_pipeline(model: SpeechModel) -> Any:
    """faster-whisper's BatchedInferencePipeline over `model` (engine/batched.py)."""
    from faster_whisper import BatchedInferencePipeline

    return BatchedInferencePipeline(model)


def is_multilingual(model: SpeechModel) -> bool:
    """Whether the model writes other languages than English (a model without a CTranslate2 one: yes)."""
    return bool(getattr(getattr(model, "model", None), "is_multilingual", True))


def decoders(model: SpeechModel) -> int:
    """How many calls a WhisperModel's CTranslate2 model runs at once (its `num_workers`)."""
    return max(1, int(getattr(getattr(model, "model", None), "num_workers", 1) or 1))


def generator(model: SpeechModel) -> Any:
    """The CTranslate2 Whisper model under a WhisperModel (its encode, generate, detect_language)."""
    return _internals(model).model


def start_token(model: SpeechModel) -> int:
    return int(_internals(model).hf_tokenizer.token_to_id("<|startoftranscript|>"))


def prompt_tokens(model: SpeechModel, prompt: str | None) -> list[int]:
    """The caller's prompt as faster-whisper encodes it ([] for none)."""
    if prompt is None:
        return []
    return list(_internals(model).hf_tokenizer.encode(" " + prompt.strip(), add_special_tokens=False).ids)


def feature_extractor(model: SpeechModel) -> Any:
    return _internals(model).feature_extractor


def calling_through(model: SpeechModel, ctranslate2: Any = None, extractor: Any = None) -> SpeechModel:
    """A shallow copy of a WhisperModel whose CTranslate2 calls go to `ctranslate2` (a batcher,
    engine/lanes.py) and whose features come from `extractor`, where given. It shares the tokenizer
    and the weights; `transcribe` reads nothing else it could change, and the shared model is untouched."""
    copied = copy.copy(_internals(model))
    if ctranslate2 is not None:
        copied.model = ctranslate2
    if extractor is not None:
        copied.feature_extractor = extractor
    result: SpeechModel = copied
    return result


def cycle_start(segment: Any) -> float:
    """Seconds into the audio given to `transcribe` where the 30 s cycle that wrote `segment` began."""
    return float(segment.seek) * FRAME_SECONDS


def language_probabilities(model: SpeechModel, speech: np.ndarray) -> list[tuple[str, float]]:
    """(language code, probability), most likely first, of `speech` by a multilingual `model`: 10 s or
    more of it encoded as it is, without padding it to 30 s; less padded with silence to 30 s, as the
    library's `detect_language` pads it. Unpadded, short speech was judged wrong: base said Latin
    (0.87) for 1.9 s of real whispered English (tests/audio), English padded to 30 s (0.66); padded to
    only 10 s it said Chinese (0.88) for 2.7 s of a shared English recording (English, 0.99, at 30 s)."""
    whisper = _internals(model)
    features = whisper.feature_extractor(speech)
    if features.shape[-1] < WINDOW_MIN_FRAMES:
        features = pad_or_trim(features)
    encoded = whisper.encode(features)
    return [(token[2:-2], float(probability)) for token, probability in whisper.model.detect_language(encoded)[0]]


def _internals(model: SpeechModel) -> Any:
    return model


def decode_window(model: SpeechModel, audio: np.ndarray, *, language: str, beam_size: int) -> list[dict[str, Any]]:
    """Whisper on one buffer (at most 30 s) in one pass, with a shorter encoder window.

    faster-whisper's `transcribe` pads every window to 30 s, and the encoder pass over those 30 s
    is most of a step's cost on a CPU; a buffer of a few seconds padded to 10 s costs a third of
    it, with no loss of accuracy on the shared recordings (under about 3 s of padding it loops).
    `transcribe` would also decode the unfinished
    last segment again in a second window; here it is kept, as the edge of a live buffer always is.
    This uses faster-whisper's own steps (encode, generate_with_fallback, word alignment) from the
    version pinned in pyproject.toml.
    """
    whisper = _internals(model)
    features = whisper.feature_extractor(audio)
    content = min(features.shape[-1] - 1, FULL_WINDOW_FRAMES)
    frames = window_frames(content)
    window = np.zeros((features.shape[0], frames), dtype=features.dtype)
    window[:, :content] = features[:, :content]
    encoder_output = whisper.encode(window)
    tokenizer = Tokenizer(whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe", language=language)
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
    prompt_tokens = whisper.get_prompt(tokenizer, [])  # no previous text
    # A decoding loop writes until the token limit, which makes a step cost several seconds for text
    # that is then thrown away; real speech never needs more than this many tokens per second.
    budget = int(MAX_TOKENS_PER_SECOND * content * whisper.feature_extractor.time_per_frame) + 16
    options = replace(options, max_new_tokens=min(budget, whisper.max_length - len(prompt_tokens)))
    result, avg_logprob, _, _ = whisper.generate_with_fallback(encoder_output, prompt_tokens, tokenizer, options)
    if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD:
        return []
    # A high compression ratio means the text repeats itself somewhere; the words before the loop
    # are usually right, so the loop is cut off word by word (agreement.without_loops) instead of
    # the whole window being thrown away, which lost whole sentences.
    tokens = result.sequences_ids[0]
    duration = content * whisper.feature_extractor.time_per_frame
    segments, _, _ = whisper._split_segments_by_timestamps(tokenizer, tokens, 0.0, content, duration, 0)
    tail = tokens[sum(len(segment["tokens"]) for segment in segments) :]
    if any(token < tokenizer.eot for token in tail):  # the unfinished segment at the buffer's edge
        start = segments[-1]["end"] if segments else 0.0
        if tail[0] >= tokenizer.timestamp_begin:
            start = (tail[0] - tokenizer.timestamp_begin) * whisper.time_precision
        segments.append({"seek": 0, "start": start, "end": duration, "tokens": tail})
    segments = [segment for segment in segments if any(token < tokenizer.eot for token in segment["tokens"])]
    if not segments:
        return []
    whisper.add_word_timestamps(
        [segments],
        tokenizer,
        encoder_output,
        content,
        options.prepend_punctuations,
        options.append_punctuations,
        last_speech_timestamp=0.0,
    )
    return segments


def stream_language(model: SpeechModel, audio: np.ndarray) -> str:
    """English for English-only models; otherwise Whisper's guess, made once per stream."""
    if not is_multilingual(model):
        return "en"
    language, _, _ = model.detect_language(audio=audio)
    return language


PREPEND_PUNCTUATIONS = "\"'“¿([{-"  # faster-whisper's defaults for word timing
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


def word_tokenizer(model: SpeechModel, language: str | None, task: str) -> Tokenizer:
    """The tokenizer a word alignment of `language` decodes tokens with (English for an English-only model)."""
    multilingual = is_multilingual(model)
    return Tokenizer(
        _internals(model).hf_tokenizer, multilingual, task=task, language=(language or "en") if multilingual else None
    )


def end_of_text(tokenizer: Tokenizer) -> int:
    """The first token id that is not text (tokens at or above it are special or timestamps)."""
    return int(tokenizer.eot)


def align_words(
    model: SpeechModel,
    audio: np.ndarray,
    parts: list[dict[str, Any]],
    tokenizer: Tokenizer,
    most_frames: int,
    last_speech: float,
) -> float:
    """faster-whisper's own word timing (cross-attention and DTW, `add_word_timestamps`) of the decoded
    `parts` (seek, start, end, tokens; `words` added in place) against one encoder pass over `audio`;
    where the last words ended."""
    whisper = _internals(model)
    features = whisper.feature_extractor(audio)
    frames = min(features.shape[-1] - 1, most_frames)
    return align_in_cycle(model, whisper.encode(pad_or_trim(features)), parts, tokenizer, frames, last_speech)


def timing_words_as_decoded(
    model: SpeechModel, tail_seconds: float
) -> tuple[SpeechModel, Callable[[Any], tuple[list[dict[str, Any]], float, float] | None]]:
    """A shallow copy of a WhisperModel (or of a copy: calling_through) whose `transcribe` times the words
    of each 30 s cycle as soon as the cycle is decoded, before its segments are handed out, with
    faster-whisper's own step against the encoder output the decoding made for that cycle; and a
    function giving a segment it handed out (words, start, end): its words and where they put its
    start and end, seconds of the audio given to `transcribe`. The segments themselves stay as
    decoded (faster-whisper's `word_timestamps=True` would start the next cycle at the last word's
    end, which changes the text). The DTW goes no further than `tail_seconds` after the cycle's last
    segment. One copy per `transcribe` call: what it remembers is that call's."""
    whisper = _internals(model)
    copied = copy.copy(whisper)
    encode, split = whisper.encode, whisper._split_segments_by_timestamps
    encoded: list[Any] = [None]  # the latest encoder pass: the cycle being decoded
    last_speech = [0.0]
    timed: dict[int, tuple[list[int], dict[str, Any]]] = {}  # by id() of a segment's token list

    def remembered(features: np.ndarray) -> Any:
        encoded[0] = encode(features)
        return encoded[0]

    def split_and_time(*args: Any, **kwargs: Any) -> Any:
        segments, next_seek, single_ending = split(*args, **kwargs)
        given = inspect.signature(split).bind(*args, **kwargs).arguments
        tokenizer, offset = given["tokenizer"], float(given["time_offset"])
        timed.clear()
        parts = [dict(segment) for segment in segments]  # faster-whisper's own stay as decoded
        if encoded[0] is not None and any(token < tokenizer.eot for part in parts for token in part["tokens"]):
            last_end = max(part["end"] for part in parts)
            frames = min(int(given["segment_size"]), max(1, round((last_end - offset + tail_seconds) / FRAME_SECONDS)))
            last_speech[0] = align_in_cycle(copied, encoded[0], parts, tokenizer, frames, last_speech[0])
        for segment, part in zip(segments, parts, strict=True):
            timed[id(segment["tokens"])] = (segment["tokens"], part)  # the list kept: its id stays its own
        return segments, next_seek, single_ending

    def words_of(segment: Any) -> tuple[list[dict[str, Any]], float, float] | None:
        found = timed.get(id(segment.tokens))
        if found is None or found[0] is not segment.tokens:
            return None
        part = found[1]
        return list(part.get("words") or []), float(part["start"]), float(part["end"])

    copied.encode = remembered
    copied._split_segments_by_timestamps = split_and_time
    result: SpeechModel = copied
    return result, words_of


def align_in_cycle(
    model: SpeechModel,
    encoder_output: Any,
    parts: list[dict[str, Any]],
    tokenizer: Tokenizer,
    frames: int,
    last_speech: float,
) -> float:
    """`add_word_timestamps` of `parts` (one cycle's segments, `seek` its first frame) against the encoder
    output of that cycle, its DTW over the first `frames` frames; where the last words ended."""
    whisper = _internals(model)
    return float(
        whisper.add_word_timestamps(
            [parts],
            tokenizer,
            encoder_output,
            frames,
            PREPEND_PUNCTUATIONS,
            APPEND_PUNCTUATIONS,
            last_speech_timestamp=last_speech,
        )
    )
