"""The settling rules of live captions, on hypotheses written out by hand (no model needed).

Times move between hypotheses as they do with Whisper: by a tenth of a second or more, most of all
in repeated words. What must hold: a settled word is never settled again, and none is skipped.
"""

from __future__ import annotations

from tapescribe.engine.agreement import LocalAgreement, Word, without_loops, without_trailing_hallucination


def hypothesis(*timed: tuple[str, float, float], probability: float = 0.9) -> list[Word]:
    return [Word(start, end, " " + text, probability) for text, start, end in timed]


def text(words: list[Word]) -> str:
    return "".join(word.text for word in words).strip()


def test_words_settle_once_hypotheses_agree_and_are_never_sent_twice():
    agreement = LocalAgreement(span=0.0)
    assert agreement.settle(hypothesis(("how", 0.0, 0.3), ("do", 0.3, 0.5)), audio_end=0.6, buffer_start=0.0) == []
    settled = agreement.settle(
        hypothesis(("had", 0.0, 0.3), ("he", 0.3, 0.5), ("married", 0.5, 0.9)), audio_end=0.9, buffer_start=0.0
    )
    assert settled == []  # the first words changed: nothing agreed yet
    settled = agreement.settle(
        hypothesis(("had", 0.0, 0.35), ("he", 0.35, 0.5), ("married", 0.5, 1.0), ("a", 1.0, 1.1)),
        audio_end=1.2,
        buffer_start=0.0,
    )
    assert text(settled) == "had he married"
    # The same words heard again with other times are recognised by their text: only new ones settle.
    settled = agreement.settle(
        hypothesis(("had", 0.1, 0.4), ("he", 0.4, 0.6), ("married", 0.6, 0.95), ("a", 0.95, 1.1), ("more", 1.1, 1.4)),
        audio_end=1.5,
        buffer_start=0.0,
    )
    assert text(settled) == "a"
    assert text(agreement.pending) == "more"


def test_repeated_words_are_neither_doubled_nor_lost_when_their_times_move():
    agreement = LocalAgreement(span=0.0)
    first = hypothesis(("more", 20.3, 20.5), ("words", 20.5, 21.0), ("words", 21.3, 21.6), ("words", 21.9, 21.9))
    assert agreement.settle(first, audio_end=22.0, buffer_start=19.0) == []
    second = hypothesis(
        ("more", 20.3, 20.5), ("words", 20.5, 21.3), ("words", 21.3, 21.6), ("words", 21.9, 22.0), ("words", 22.0, 22.2)
    )
    settled_second = agreement.settle(second, audio_end=22.4, buffer_start=19.0)
    assert text(settled_second) == "more words words words"
    # The last "words" now starts before the end of the settled ones: by time it would be dropped.
    third = hypothesis(
        ("more", 20.2, 20.5),
        ("words", 20.5, 21.3),
        ("words", 21.3, 21.6),
        ("words", 21.6, 21.9),
        ("words", 21.85, 22.3),
        ("and", 24.3, 24.4),
    )
    fifth = agreement.settle(third, audio_end=24.6, buffer_start=19.0)
    assert text(fifth) == "words"
    # ...and it is sent starting where the one before it starts, so captions keep the order of the audio
    assert (fifth[0].start, fifth[0].end) == (21.9, 22.3)
    last = agreement.settle_all(third, buffer_start=19.0)
    assert text(last) == "and"
    sent = [word.start for word in [*settled_second, *fifth, *last]]
    assert sent == sorted(sent)


def test_an_utterance_settled_whole_then_new_speech_starts_afresh():
    agreement = LocalAgreement(span=0.7)
    agreement.settle_all(hypothesis(("ask", 0.9, 1.7), ("not", 1.7, 2.5)), buffer_start=0.0)
    # the buffer restarts after the pause: the settled words are not in it any more
    new = hypothesis(("what", 3.0, 3.6), ("your", 3.6, 3.9), ("country", 3.9, 4.3))
    assert agreement.settle(new, audio_end=4.4, buffer_start=2.9) == []
    assert text(agreement.pending) == "what your country"
    assert text(agreement.settle_all(new, buffer_start=2.9)) == "what your country"
    assert agreement.total == 5


def test_loops_and_trailing_hallucinations_are_cut():
    looped = hypothesis(
        ("we're", 0, 0.2),
        ("just", 0.2, 0.4),
        ("saying", 0.4, 0.6),
        ("words.", 0.6, 0.8),
        ("we're", 0.8, 1.0),
        ("just", 1.0, 1.2),
        ("saying", 1.2, 1.4),
        ("words.", 1.4, 1.6),
    )
    assert text(without_loops(looped)) == "we're just saying words."
    spoken = hypothesis(("words", 0, 0.2), ("words", 0.2, 0.4), ("words", 0.4, 0.6))
    assert without_loops(spoken) == spoken  # a word said again is speech
    tail = hypothesis(("glad.", 0, 0.5)) + hypothesis(("Thank", 0.5, 0.6), ("you.", 0.6, 0.7), probability=0.05)
    assert text(without_trailing_hallucination(tail)) == "glad."
