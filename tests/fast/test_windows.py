"""The window hold-back of file jobs (engine/transcriber.py) and where a job resumes
(jobs/journal.py `resume_point`), on exact inputs.

A scripted model stands in for Whisper: the policy under test is which audio each window gets and
which segments are kept, so the model's answers are written out per window. The audio's samples
are their own index, so the model can tell which part of the file it was handed.
"""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.transcribe import Segment, Word

from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.transcriber import (
    CONTEXT_TOKENS,
    DecodeOptions,
    LanguageFound,
    Resume,
    carried_context,
    for_transcript,
    segment_record,
    transcribe_windows,
)
from tapescribe.jobs.journal import resume_point

WINDOW = 30.0


def segment(
    start: float, end: float, text: str, words: bool = False, temperature: float = 0.0, cycle: float = 0.0
) -> Segment:
    timed = [Word(start, (start + end) / 2, " " + text, 0.9), Word((start + end) / 2, end, "!", 0.8)] if words else None
    return Segment(
        id=0,
        seek=round(cycle * 100),  # the start of the 30 s cycle that gave the segment, in frames
        start=start,
        end=end,
        text=" " + text,
        tokens=[ord(letter) for letter in text.split(",")[0]],  # "c, cut by the edge" and "c" alike: [99]
        avg_logprob=-0.2,
        compression_ratio=1.3,
        no_speech_prob=0.01,
        words=timed,
        temperature=temperature,
    )


class Info:
    language = "de"
    language_probability = 0.8


class ScriptedModel:
    """Answers each window with the segments written for the second it starts at (times within the window)."""

    def __init__(self, script: dict[float, list[Segment]]) -> None:
        self.script = script
        self.calls: list[tuple[float, float, str | None]] = []  # window start, length, language asked for
        self.prompts: list[object] = []  # the initial_prompt each window was given

    def transcribe(self, audio: np.ndarray, language=None, initial_prompt=None, **kwargs):
        start = float(audio[0]) / SAMPLE_RATE
        assert np.array_equal(audio, np.arange(audio[0], audio[0] + len(audio), dtype=np.float32)), "audio out of order"
        self.calls.append((start, len(audio) / SAMPLE_RATE, language))
        self.prompts.append(initial_prompt)
        return iter(self.script.get(start, [])), Info()


def blocks(seconds: float, start: float = 0.0, size: int = 7000):
    """The file from `start`, in blocks of an odd size (windows never fall on block edges)."""
    samples = np.arange(round(start * SAMPLE_RATE), round(seconds * SAMPLE_RATE), dtype=np.float32)
    for position in range(0, len(samples), size):
        yield samples[position : position + size]


# 100 s of audio in 30 s windows. Each window's last segment may be cut by its edge, so it is held
# back and decoded again at the start of the next window, which begins where the last kept one ended.
SCRIPT = {
    0.0: [segment(0, 10, "a"), segment(10, 20, "b"), segment(20, 29.5, "c, cut by the edge")],
    20.0: [segment(0, 9.5, "c"), segment(9.5, 20, "d", words=True), segment(20, 30, "e, cut")],
    40.0: [segment(0, 15, "e"), segment(15, 28, "f, cut")],
    55.0: [segment(2, 10, "f")],  # one segment: kept (nothing better will come); the next window starts at its end
    65.0: [],  # silence: the next window starts at this one's end
    95.0: [segment(1, 4, "g"), segment(4, 4.9, "h")],  # the last window keeps everything
}
KEPT = [
    ("a", 0, 10),
    ("b", 10, 20),
    ("c", 20, 29.5),
    ("d", 29.5, 40),
    ("e", 40, 55),
    ("f", 57, 65),
    ("g", 96, 99),
    ("h", 99, 99.9),
]
WINDOW_STARTS = [0.0, 20.0, 40.0, 55.0, 65.0, 95.0]


def run(model, resume=None, start=0.0, seconds=100.0, options=None):
    languages: list[LanguageFound] = []
    progress: list[float] = []
    records = list(
        transcribe_windows(
            model,
            blocks(seconds, start),
            options or DecodeOptions(vad_filter=False),  # the audio is sample numbers, not sound
            resume=resume,
            window_seconds=WINDOW,
            on_language=languages.append,
            on_progress=progress.append,
        )
    )
    return records, languages, progress


def test_the_last_segment_of_a_window_is_held_back_and_decoded_again():
    model = ScriptedModel(SCRIPT)
    records, _, progress = run(model)
    assert [(r["text"].strip(), r["start"], r["end"]) for r in records] == KEPT
    assert [(start, length) for start, length, _ in model.calls] == [
        (0.0, 30.0),
        (20.0, 30.0),
        (40.0, 30.0),
        (55.0, 30.0),
        (65.0, 30.0),
        (95.0, 5.0),
    ]
    assert [r["window_start"] for r in records] == [0.0, 0.0, 20.0, 20.0, 40.0, 55.0, 95.0, 95.0]
    assert progress == [20.0, 40.0, 55.0, 65.0, 95.0, 100.0]  # also after the window without speech


def test_a_window_is_kept_up_to_the_first_cycle_that_saw_its_edge():
    """Cycles wholly inside a window decode as one pass does; the next window starts with the first that was cut."""
    script = {
        0.0: [segment(0, 8, "a"), segment(8, 18, "b"), segment(18, 25, "c", cycle=18), segment(25, 30, "d", cycle=18)],
        18.0: [segment(0, 7, "c"), segment(7, 12, "d")],
    }
    model = ScriptedModel(script)
    records, _, _ = run(model, seconds=30.0 + 18.0 - 0.5)
    assert [(start, length) for start, length, _ in model.calls] == [(0.0, 30.0), (18.0, 29.5)]
    assert [(r["text"].strip(), r["start"], r["window_start"]) for r in records] == [
        ("a", 0, 0.0),
        ("b", 8, 0.0),
        ("c", 18, 18.0),
        ("d", 25, 18.0),
    ]
    assert model.prompts == [None, [ord("a"), ord("b")]]


def test_records_carry_absolute_times_words_and_the_decoder_fields():
    records, _, _ = run(ScriptedModel(SCRIPT))
    d = records[3]
    assert d["words"] == [
        {"start": 29.5, "end": 34.75, "word": " d", "probability": 0.9},
        {"start": 34.75, "end": 40.0, "word": "!", "probability": 0.8},
    ]
    assert {key: d[key] for key in ("seek", "temperature", "compression_ratio", "avg_logprob", "no_speech_prob")} == {
        "seek": 0,
        "temperature": 0.0,
        "compression_ratio": 1.3,
        "avg_logprob": -0.2,
        "no_speech_prob": 0.01,
    }
    assert "words" not in records[0]


def test_words_that_stick_out_of_their_segment_are_kept_inside_it():
    """faster-whisper lets a first or last word it shortened stick out of its segment by up to the
    median word length (seen through the server: 12.96-13.22 s in a segment ending at 13.0 s)."""
    sticking_out = segment(6.84, 13.0, "you")
    sticking_out.words = [Word(6.6, 7.1, " thank", 0.9), Word(12.96, 13.22, " you.", 0.99), Word(13.1, 13.3, "!", 0.5)]
    record = segment_record(sticking_out, offset=100.0)
    kept = [(word["start"], word["end"]) for word in record["words"]]
    assert kept == [(106.84, 107.1), (112.96, 113.0), (113.0, 113.0)]


def test_each_window_starts_from_the_tokens_kept_before_it():
    """The context one pass over the whole file would have: the kept segments' tokens, not the held-back one's."""
    model = ScriptedModel(SCRIPT)
    run(model)
    a, b, c, d, e, f = ([ord(letter)] for letter in "abcdef")
    assert model.prompts == [
        None,
        a + b,
        a + b + c + d,
        a + b + c + d + e,
        a + b + c + d + e + f,
        a + b + c + d + e + f,
    ]


def test_the_context_is_forgotten_after_a_window_decoded_at_a_high_temperature():
    """faster-whisper resets its prompt after a cycle above prompt_reset_on_temperature; so do windows."""
    hot = {
        0.0: [segment(0, 10, "a"), segment(10, 20, "b", temperature=0.8), segment(20, 29.5, "c, cut")],
        20.0: [segment(0, 9.5, "c", temperature=0.4), segment(9.5, 20, "d"), segment(20, 30, "e, cut")],
        40.0: [segment(0, 5, "e")],
    }
    model = ScriptedModel(hot)
    run(model, seconds=60.0)
    assert model.prompts == [None, None, [ord("c"), ord("d")]]


def test_carried_context_keeps_what_get_prompt_keeps():
    records = [{"tokens": list(range(200)), "temperature": 0.0}, {"tokens": list(range(200, 300)), "temperature": 0.2}]
    assert carried_context([], records) == list(range(300 - CONTEXT_TOKENS, 300))
    assert carried_context([1, 2], [{"tokens": [3], "temperature": 0.0}]) == [1, 2, 3]  # the caller's prompt first
    assert carried_context([1, 2], [{"tokens": [3], "temperature": 0.6}, {"tokens": [4], "temperature": 0.0}]) == [4]
    assert carried_context([1, 2], [{"text": " from a journal without tokens"}, {"tokens": [4]}]) == [4]


def test_records_keep_their_tokens_for_the_journal_but_not_for_the_transcript():
    records, _, _ = run(ScriptedModel(SCRIPT))
    assert records[0]["tokens"] == [ord("a")]
    assert "tokens" not in for_transcript(records[0]) and for_transcript(records[0])["text"] == " a"


def test_the_language_is_found_once_then_asked_for():
    model = ScriptedModel(SCRIPT)
    _, languages, _ = run(model)
    assert languages == [LanguageFound("de", 0.8)]
    assert [language for _, _, language in model.calls] == [None] + ["de"] * 5
    # A language chosen by the user is used from the first window; its probability is not the model's guess.
    model = ScriptedModel(SCRIPT)
    _, languages, _ = run(model, options=DecodeOptions(language="en", vad_filter=False))
    assert languages == [LanguageFound("en", 1.0)] and {language for _, _, language in model.calls} == {"en"}


def test_silence_moves_progress_window_by_window():
    model = ScriptedModel({})
    records, _, progress = run(model, seconds=100.0)
    assert records == []
    assert [start for start, _, _ in model.calls] == [0.0, 30.0, 60.0, 90.0]
    assert progress == [30.0, 60.0, 90.0, 100.0]


@pytest.mark.parametrize("saved", range(1, len(KEPT)))
def test_a_resumed_run_decodes_the_same_windows_and_skips_what_was_saved(saved):
    """Stopped after `saved` segments: start again at the window of the last one, yield only the rest."""
    uninterrupted, _, _ = run(ScriptedModel(SCRIPT))
    journal = uninterrupted[:saved]
    resume = resume_point({"language": "de", "language_probability": 0.8}, journal)
    assert resume == Resume(
        start=journal[-1]["window_start"],
        saved_until=journal[-1]["end"],
        language="de",
        language_probability=0.8,
        earlier=[record for record in journal if record["window_start"] < journal[-1]["window_start"]],
    )
    whole = ScriptedModel(SCRIPT)
    run(whole)
    model = ScriptedModel(SCRIPT)
    records, languages, _ = run(model, resume=resume, start=resume.start)
    assert journal + records == uninterrupted
    assert model.prompts == whole.prompts[-len(model.prompts) :], "the resumed windows start from the same context"
    assert [start for start, _, _ in model.calls] == [s for s in WINDOW_STARTS if s >= resume.start]
    assert languages == [] and {language for _, _, language in model.calls} == {"de"}  # not detected again


def test_between_segments_runs_after_each_segment_the_caller_took_and_not_for_skipped_ones():
    """Where a job gives way and notices a cancel: after it saved each new segment, never inside a window
    before the caller has its segment, and not for the segments a resumed run skips."""
    events: list[str] = []

    def taken(records):
        for record in records:
            events.append(record["text"].strip())
            yield record

    uninterrupted, _, _ = run(ScriptedModel(SCRIPT))
    resume = resume_point({}, uninterrupted[:3])  # "a", "b", "c" saved; "c"'s window starts at 20
    records = transcribe_windows(
        ScriptedModel(SCRIPT),
        blocks(100.0, resume.start),
        DecodeOptions(vad_filter=False),
        resume=resume,
        window_seconds=WINDOW,
        between_segments=lambda: events.append("between"),
    )
    list(taken(records))
    assert events == [step for text, _, _ in KEPT[3:] for step in (text, "between")]


def test_resume_point_from_a_journal():
    session = {"language": "en", "language_probability": 0.97}
    assert resume_point(session, []) == Resume()
    saved = [
        {"start": 0.0, "end": 10.0, "window_start": 0.0},
        {"start": 40.0, "end": 55.0, "window_start": 40.0},
        {"start": 50.0, "end": 52.0, "window_start": 40.0},
    ]
    assert resume_point(session, saved) == Resume(
        40.0, 55.0, "en", 0.97, earlier=saved[:1]
    )  # saved until the latest end
    # Journals from before `window_start`, or with a start that cannot be one, begin again at 0.
    for window_start in (None, "40", -1.0, 60.0):
        broken = [*saved[:-1], {"start": 50.0, "end": 52.0, "window_start": window_start}]
        assert resume_point(session, broken).start == 0.0 and resume_point(session, broken).saved_until == 55.0
    assert resume_point(session, [{"start": 1.0, "end": 2.0}]) == Resume(0.0, 2.0, "en", 0.97)


def test_a_window_decoded_differently_on_resume_neither_repeats_nor_drops():
    """A window that fell back to sampling may not give the same segments again: a segment lying
    mostly before the end of the last saved one counts as saved, one lying mostly after it is new."""
    uninterrupted, _, _ = run(ScriptedModel(SCRIPT))
    journal = uninterrupted[:3]  # a, b, c; c (20 to 29.5) came from the window at 20
    again = {
        **SCRIPT,
        20.0: [segment(0, 9.9, "c, heard again a little longer"), segment(9.9, 20, "d"), segment(20, 30, "e, cut")],
    }
    records, _, _ = run(ScriptedModel(again), resume=resume_point({}, journal), start=20.0)
    assert [(r["text"].strip(), r["start"]) for r in records][:2] == [("d", 29.9), ("e", 40.0)]
    again = {
        **SCRIPT,
        20.0: [segment(0, 8.0, "c, shorter"), segment(8.0, 20, "d, starting earlier"), segment(20, 30, "e, cut")],
    }
    records, _, _ = run(ScriptedModel(again), resume=resume_point({}, journal), start=20.0)
    assert [(r["text"].strip(), r["start"]) for r in records][:2] == [("d, starting earlier", 28.0), ("e", 40.0)]
