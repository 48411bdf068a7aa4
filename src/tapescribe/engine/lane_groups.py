"""File jobs decoded as lanes (engine/lanes.py), group by group, so memory stays bounded and a job can resume.

The audio is read in groups of at most lanes * window_seconds. A group that is not the file's last
ends at the quietest 100 ms of its last GROUP_CUT_SECONDS, and the next group starts there, so
where groups fall depends on the audio alone, counted from the start of the file. A group is cut
into one lane per LANE_SECONDS (at most `lanes`) at quiet moments (`lane_edges`); each lane is
faster-whisper's own sequential `transcribe` at `lane_beam_size` (a multilingual model's prompts
keeping the latest 128 tokens of its context: MULTILINGUAL_CONTEXT_TOKENS), and the lanes' model
calls run apart on the model's decoders (several single-thread ones, the default on a CPU), else batched.
Either way a lane's calls and what they return depend on the audio alone, never on timing. A group
too short for two lanes is one plain `transcribe` with the job's own options, so a file under two
minutes decodes exactly as transcribe_windows decodes it.

Every record says its group's start as `window_start`, so `resume_point` (jobs/journal.py)
starts a resumed job again at the group of the last saved segment and the segments of that group
already saved are skipped by time, as transcribe_windows does. The first lane of a group starts
from the text context one pass would carry there (`carried_context` over the records before it,
which a resume has as `Resume.earlier`); the other lanes start from the caller's prompt only.
Lanes are featurized alone (no whole-file feature ceiling).
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.base import LanguageFound, SpeechModel
from tapescribe.engine.batched import quietest_moment
from tapescribe.engine.lanes import BatchingWhisper, OnOneThread, lane_edges, replicas
from tapescribe.engine.malloc import RELEASE_EVERY_SECONDS, release_free_memory
from tapescribe.engine.speech_regions import speech_clips
from tapescribe.engine.transcriber import DecodeOptions, Resume, carried_context, segment_record
from tapescribe.engine.whisper_adapter import (
    calling_through,
    feature_extractor,
    generator,
    is_multilingual,
    prompt_tokens,
    start_token,
)
from tapescribe.engine.word_alignment import transcribe_with_words

LANE_SECONDS = 60.0  # a group gets one lane per this much audio: lanes shorter than a minute lose too much context
GROUP_CUT_SECONDS = 10.0  # a group that is not the last ends at the quietest moment of its last this many seconds
LANGUAGE_SECONDS = 30.0  # the language is detected once, on this much of the first group
# Context a multilingual model's lanes keep (faster-whisper gives up to 223 tokens of the text before a
# window). With all of it base's lanes looped (beam searches to the 448-token limit, then sampling
# fallbacks) in 1-3 windows of three of the four 10-minute bench files; with 128 none did, its WER was the same
# (4.41/4.41, 3.68/3.43, 3.30/3.38) and a file took 23-30 s instead of 28-44 s
# (bench/lane_context.py). tiny.en lost 0.4 point of WER at 128 and gained 10%, so English-only models keep it all.
MULTILINGUAL_CONTEXT_TOKENS = 128


def lane_context_tokens(setting: int, multilingual: bool) -> int | None:
    """Context tokens a lane's prompts keep: `setting` when 0 or more, else by the model (None: all)."""
    if setting >= 0:
        return setting
    return MULTILINGUAL_CONTEXT_TOKENS if multilingual else None


def lane_count(group_samples: int, lanes: int) -> int:
    """Lanes for a group of that length: one per LANE_SECONDS, at least one, at most `lanes`."""
    return max(1, min(lanes, int(group_samples / SAMPLE_RATE // LANE_SECONDS)))


def read_groups(
    blocks: Iterable[np.ndarray], group_samples: int, first_sample: int = 0
) -> Iterator[tuple[int, np.ndarray, bool]]:
    """(first sample in the file, audio, whether it is the last) of each group of `blocks` (from `first_sample`).

    Each group is read into one array of its own, filled block by block (a list of blocks joined
    at the end held the group twice, and the next group's tail kept the whole previous group
    alive: three groups at the join); only the audio after a group's cut is copied into the next.
    A caller that lets go of a group before asking for the next holds one group at a time.
    Group ends are a function of the audio from `first_sample` on, whatever the block sizes, so a
    resume at a group start finds the same groups.
    """
    source = iter(blocks)
    carried: list[np.ndarray] = []  # audio read past the previous group's cut
    finished = False
    position = first_sample
    while True:
        audio, finished = _filled(source, carried, group_samples + 1, finished)
        if len(audio) == 0:
            return
        if finished and len(audio) <= group_samples:
            last = [audio]
            del audio
            yield position, last.pop(), True
            return
        seconds = group_samples / SAMPLE_RATE
        end = round(quietest_moment(audio[:group_samples], seconds - GROUP_CUT_SECONDS, seconds) * SAMPLE_RATE)
        carried.insert(0, audio[end:].copy())  # a copy: a view would keep this whole group alive
        position += end
        handed = [audio[:end]]
        del audio  # this frame must not hold the group while the caller asks for the next (two groups at once)
        yield position - end, handed.pop(), False


def _filled(
    source: Iterator[np.ndarray], carried: list[np.ndarray], wanted: int, finished: bool
) -> tuple[np.ndarray, bool]:
    """Up to `wanted` samples in one new array: `carried` first (emptied, with what is read past
    `wanted` left in it), then blocks of `source`; and whether `source` has ended."""
    group = np.empty(wanted, dtype=np.float32)  # pages not written (a short last group) cost nothing
    filled = 0
    pending, carried[:] = list(carried), []
    while filled < wanted:
        block = pending.pop(0) if pending else None
        if block is None and not finished:
            block = next(source, None)
            finished = block is None
        if block is None:
            break
        take = min(len(block), wanted - filled)
        group[filled : filled + take] = block[:take]
        filled += take
        if take < len(block):
            carried.append(block[take:].copy())
    carried.extend(pending)
    return group[:filled], finished


def lane_pieces(audio: np.ndarray, count: int) -> tuple[list[int], list[np.ndarray | None]]:
    """Where each of `count` lanes of a group's `audio` starts (lane_edges, in samples), and its audio (views)."""
    starts = [round(edge * SAMPLE_RATE) for edge in lane_edges(audio, count)]
    return starts, [audio[start:end] for start, end in itertools.pairwise([*starts, len(audio)])]


def transcribe_lane(
    model: SpeechModel,
    audio: np.ndarray,
    options: DecodeOptions,
    language: str | None,
    prompt: str | list[int] | None,
    lazily: bool = False,
    passes: ThreadPoolExecutor | None = None,
) -> tuple[Iterable[Any], Any]:
    """One lane (or a one-lane group): faster-whisper's `transcribe` over the speech the VAD keeps, as
    transcribe_windows calls it; its segments as a list, or `lazily` as they are decoded. ([], None)
    when nothing may be speech. The VAD's pass over the whole lane runs on `passes` if given
    (engine/lanes.py OnOneThread says why)."""
    clips = None
    if options.vad_filter:
        find_speech = partial(speech_clips, audio, options.vad_parameters)
        clips = passes.submit(find_speech).result() if passes is not None else find_speech()
    if clips == []:
        return [], None
    segments, info = transcribe_with_words(
        model,
        audio,
        options.word_timestamps,
        language=language,
        initial_prompt=prompt,
        clip_timestamps=clips or "0",
        **options.as_kwargs(),
    )
    return (segments if lazily else list(segments)), info


def transcribe_in_step(
    model: SpeechModel,
    pieces: list[np.ndarray | None],
    options: DecodeOptions,
    language: str | None,
    prompts: list[str | list[int] | None],
    between_calls: Callable[[], None] | None,
    context_tokens: int | None = None,
) -> Generator[tuple[int, Any], None, None]:
    """(lane, segment) of each lane's audio in `pieces`, decoded in threads of their own (their calls
    apart on the model's decoders, or batched in lockstep): the first lane's segments as they are
    decoded, the others' once every lane is done.

    Each lane takes its piece out of `pieces` and lets go of it once it is featurized (its features
    and the VAD's clips are all a lane decodes from), so when the pieces are views of one group's
    audio and the caller holds no other reference, the group's audio is freed a few seconds into the
    group rather than at its end: 61 MiB for a 960 s group, held through the whole decoding before.

    Closing the generator early (a cancel, a lost lease) ends the lanes at their next model call."""
    batcher = BatchingWhisper(
        generator(model),
        start_token(model),
        trim_context=True,
        gather_seconds=None,
        between_calls=between_calls,
        apart=replicas(model),
        context_tokens=context_tokens,
        release_every=RELEASE_EVERY_SECONDS,
    )
    passes = ThreadPoolExecutor(1, thread_name_prefix="lane-passes")  # over a lane's whole audio: VAD, features
    lane_model = calling_through(model, batcher, OnOneThread(feature_extractor(model), passes))
    first_lane: queue.SimpleQueue[Any] = queue.SimpleQueue()
    finished = object()

    def run_lane(lane: int) -> list[Any]:
        segments: list[Any] = []
        try:
            piece, pieces[lane] = pieces[lane], None
            assert piece is not None
            found, _ = transcribe_lane(lane_model, piece, options, language, prompts[lane], lazily=True, passes=passes)
            del piece  # featurized: the lane decodes from its features alone
            for segment in found:
                segments.append(segment)
                if lane == 0:
                    first_lane.put(segment)
            return segments
        finally:
            batcher.lane_done()
            if lane == 0:
                first_lane.put(finished)

    count = len(pieces)
    with passes, ThreadPoolExecutor(count, thread_name_prefix="lane") as pool, batcher.lanes(count):
        futures = [pool.submit(run_lane, lane) for lane in range(count)]
        while (segment := first_lane.get()) is not finished:
            yield 0, segment
        futures[0].result()  # what ended the first lane early, raised here
        for lane, future in enumerate(futures[1:], 1):
            for segment in future.result():
                yield lane, segment


def transcribe_lane_groups(
    model: SpeechModel,
    blocks: Iterable[np.ndarray],
    options: DecodeOptions,
    resume: Resume | None = None,
    window_seconds: float = 240.0,
    lanes: int = 4,
    lane_beam_size: int = 5,
    on_language: Callable[[LanguageFound], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
    between_calls: Callable[[], None] | None = None,
    on_position: Callable[[float], None] | None = None,
    lane_context: int = -1,
) -> Iterator[dict[str, Any]]:
    """Yield final segments (absolute seconds, transcribe_windows' records) of the audio in `blocks`,
    which starts at resume.start, a group start of an uninterrupted run.

    Segments come in time order: a group's first lane's as they are decoded (so a job saves them as
    it goes, and a crash costs at most the rest of the group, decoded again the same), the other
    lanes' when the group is done. `on_progress` hears the second reached after each group, and
    `on_position` (from the caller's thread, between segments) where a group in lanes has about got
    to after each of its first lane's segments: lanes decode in step, so the first lane's share of
    its own length is about the whole group's.
    `between_calls` runs before each batched model call of a group in lanes (on the batching thread)
    and after each segment of a one-lane group: a job gives way to shorter work there and notices a
    cancel. A caller must not wait between this generator's segments: lanes may be running.
    `lane_context` is how many tokens of the text before a window a lane's prompts keep (-1: by the
    model, lane_context_tokens); a one-lane group keeps what faster-whisper gives it.
    """
    resume = resume or Resume()
    language = options.language or resume.language
    reported_language = resume.language is not None
    multilingual = is_multilingual(model)
    context: list[int] | None = None  # None: the file's start, where the caller's prompt is the context
    if resume.start > 0:
        context = carried_context(prompt_tokens(model, options.initial_prompt), resume.earlier)
    lane_options = replace(options, beam_size=lane_beam_size)
    context_tokens = lane_context_tokens(lane_context, multilingual)

    def report(found: LanguageFound) -> None:
        nonlocal reported_language
        if not reported_language and on_language is not None:
            on_language(found)
        reported_language = True

    group_samples = int(lanes * window_seconds * SAMPLE_RATE)
    for first_sample, audio, _ in read_groups(blocks, group_samples, round(resume.start * SAMPLE_RATE)):
        first_prompt = options.initial_prompt if context is None else (context or None)
        count = lane_count(len(audio), lanes)
        if count == 1:
            found, info = transcribe_lane(model, audio, options, language, first_prompt, lazily=True)
            if info is not None and not reported_language:
                probability = 1.0 if language not in (None, info.language) else float(info.language_probability)
                language = language or info.language
                report(LanguageFound(language, probability))
            starts = [0]
            per_segment: Generator[tuple[int, Any], None, None] = ((0, segment) for segment in found)
            del found  # (held by `per_segment` alone, which goes at the group's end)
        else:
            if language is None and multilingual:  # once, not in every lane
                language, probability, _ = model.detect_language(audio=audio[: int(LANGUAGE_SECONDS * SAMPLE_RATE)])
                report(LanguageFound(language, float(probability)))
            language = language or "en"
            report(LanguageFound(language, 1.0))
            starts, pieces = lane_pieces(audio, count)
            prompts = [first_prompt, *[options.initial_prompt] * (len(starts) - 1)]
            per_segment = transcribe_in_step(
                model, pieces, lane_options, language, prompts, between_calls, context_tokens
            )
            del pieces  # the lanes' now: each lets go of its piece once featurized
        samples = len(audio)
        del audio  # what decodes it holds it while it needs it: lanes until they are featurized
        records: list[dict[str, Any]] = []
        group = _Group(first_sample, samples, starts, count, resume.saved_until)
        yield from group.records(per_segment, records, between_calls, on_position)
        if context is None:
            context = prompt_tokens(model, options.initial_prompt)
        context = carried_context(context, records)
        group_end = (first_sample + samples) / SAMPLE_RATE
        del per_segment, group  # let go of the group before the next is read (a one-lane group's segments hold it)
        release_free_memory()
        if on_progress is not None:
            on_progress(group_end)
    if language is None and not multilingual:
        language = "en"
    if language is not None:
        report(LanguageFound(language, 1.0))


@dataclass(frozen=True)
class _Group:
    """One group of transcribe_lane_groups: where it starts in the file, its audio and its lanes' starts."""

    first_sample: int
    samples: int  # of the group's audio
    starts: list[int]
    count: int  # lanes: 1 decodes the group in this thread, where `between_calls` may wait
    saved_until: float | None

    def records(
        self,
        per_segment: Generator[tuple[int, Any], None, None],
        records: list[dict[str, Any]],
        between_calls: Callable[[], None] | None,
        on_position: Callable[[float], None] | None,
    ) -> Iterator[dict[str, Any]]:
        """The group's records in time order (all kept in `records`, for the context), those a resumed
        run did not save yielded."""
        group_start = self.first_sample / SAMPLE_RATE
        starts = self.starts
        with closing(per_segment):  # stopped early (a cancel, a lost lease): the lanes end now
            for lane, segment in per_segment:  # in time order: the first lane's as they come, then the others'
                record = segment_record(segment, (self.first_sample + starts[lane]) / SAMPLE_RATE)
                record["window_start"] = group_start
                records.append(record)
                if self.saved_until is None or (record["start"] + record["end"]) / 2 > self.saved_until:
                    yield record
                if self.count == 1 and between_calls is not None:  # no lanes run meanwhile: this thread may wait
                    between_calls()
                elif lane == 0 and on_position is not None:
                    share = min(1.0, segment.end * SAMPLE_RATE / max(1, starts[1]))
                    on_position(group_start + share * self.samples / SAMPLE_RATE)
