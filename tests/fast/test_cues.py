"""Subtitle cues timed by words: they start and end on words, end at pauses, and leave no word alone
unless it was said alone."""

from __future__ import annotations

from tapescribe.sessions.cues import LONE_WORD_GAP, PAUSE_SECONDS, speaker_cues
from tapescribe.sessions.exports import cues


def words_at(*timed: tuple[str, float, float]) -> list[dict]:
    return [{"word": " " + text, "start": start, "end": end, "probability": 0.9} for text, start, end in timed]


def segment(words: list[dict], start: float | None = None, end: float | None = None, **extra) -> dict:
    text = "".join(word["word"] for word in words)
    first = words[0]["start"] if start is None else start
    last = words[-1]["end"] if end is None else end
    return {"start": first, "end": last, "text": text, "words": words, **extra}


def test_a_cue_starts_on_its_first_word_not_where_whisper_put_the_segment():
    words = words_at(("After", 5.0, 5.3), ("the", 5.3, 5.4), ("silence,", 5.4, 5.9), ("words.", 6.1, 6.6))
    assert cues([segment(words, start=0.0, end=6.8)]) == [(5.0, 6.6, "After the silence, words.")]


def test_a_pause_ends_a_cue():
    words = words_at(("We", 0.0, 0.2), ("stopped", 0.2, 0.6), ("here.", 0.6, 1.0))
    words += words_at(("Then", 1.0 + PAUSE_SECONDS, 2.3), ("on.", 2.3, 2.6))
    assert cues([segment(words)]) == [(0.0, 1.0, "We stopped here."), (2.0, 2.6, "Then on.")]


def test_a_lone_word_after_a_short_pause_joins_its_phrase_and_one_said_alone_stays():
    near = words_at(("Hello", 0.0, 0.4), ("there", 0.4, 0.8), ("friend.", 2.0, 2.5))  # 1.2 s pause
    assert cues([segment(near)]) == [(0.0, 2.5, "Hello there friend.")]
    gap = LONE_WORD_GAP + 1.0
    alone = words_at(("One", 0.0, 0.3), ("two.", 0.3, 0.6), ("Three.", 0.6 + gap, 1.0 + gap))
    alone += words_at(("Four", 1.0 + 2 * gap, 1.4 + 2 * gap), ("five.", 1.4 + 2 * gap, 1.8 + 2 * gap))
    assert [text for _, _, text in cues([segment(alone)])] == ["One two.", "Three.", "Four five."]


def test_a_one_word_segment_joins_the_next_of_the_same_speaker_only():
    first = segment(words_at(("So.", 1.0, 1.3)), speaker="S1")
    second = segment(words_at(("We", 1.6, 1.8), ("went", 1.8, 2.0), ("home.", 2.0, 2.4)), speaker="S1")
    assert speaker_cues([first, second]) == [(1.0, 2.4, "So. We went home.", "S1")]
    other = {**second, "speaker": "S2"}
    assert [text for _, _, text, _ in speaker_cues([first, other])] == ["So.", "We went home."]


def test_a_long_phrase_is_cut_evenly_with_no_word_left_over():
    text = "one two three four five six seven eight nine ten eleven twelve"
    times = [(round(0.6 * at, 3), round(0.6 * at + 0.55, 3)) for at in range(12)]  # 7.15 s in all
    words = words_at(*((word, *time) for word, time in zip(text.split(), times, strict=True)))
    found = cues([segment(words)])
    assert [text for _, _, text in found] == ["one two three four five six seven", "eight nine ten eleven twelve"]
    assert [(start, end) for start, end, _ in found] == [(0.0, 4.15), (4.2, 7.15)]  # the most even widths
