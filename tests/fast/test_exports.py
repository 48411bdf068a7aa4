"""Subtitle cues and every export format, on transcripts written out by hand. SRT is read back with
the `srt` package and WebVTT with `webvtt-py`, as a player or editor would read them."""

from __future__ import annotations

import itertools
import json
import unicodedata
from datetime import timedelta

import pytest
import srt
import webvtt

from conftest import AUDIO_DIR
from tapescribe.errors import BadRequest
from tapescribe.sessions.exports import (
    EXPORT_MEDIA_TYPES,
    MAX_CUE_LINES,
    MAX_CUE_SECONDS,
    MAX_LINE_WIDTH,
    cues,
    render,
)

SENTENCE = (
    "It is a truth universally acknowledged that a single man in possession of a good fortune must be in want of a wife"
)


def timed_words(text: str, start: float, seconds_per_word: float) -> list[dict]:
    return [
        {
            "word": " " + word,
            "start": round(start + number * seconds_per_word, 3),
            "end": round(start + (number + 1) * seconds_per_word - 0.05, 3),
            "probability": 0.9,
        }
        for number, word in enumerate(text.split())
    ]


def width(line: str) -> int:
    """Columns on a screen: a CJK character takes two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in line)


def check_readable(found: list[tuple[float, float, str]]) -> None:
    previous_end = 0.0
    for start, end, text in found:
        assert previous_end <= start < end
        lines = text.split("\n")
        assert end - start <= MAX_CUE_SECONDS and len(lines) <= MAX_CUE_LINES, (start, end, text)
        for line in lines:
            assert width(line) <= MAX_LINE_WIDTH and line == line.strip() and line, (start, end, text)
        previous_end = end


def spoken(found: list[tuple[float, float, str]], between: str = " ") -> str:
    """The cues' text read in a row, lines and cues joined by `between`."""
    return between.join(text.replace("\n", between) for _, _, text in found)


def test_a_short_segment_is_one_cue_as_it_is():
    assert cues([{"start": 1.0, "end": 3.5, "text": " Go forward ten meters."}]) == [
        (1.0, 3.5, "Go forward ten meters.")
    ]
    assert cues([{"start": 0.0, "end": 1.0, "text": "  "}]) == []


def test_a_long_segment_is_split_at_its_word_times():
    words = timed_words(SENTENCE, start=10.0, seconds_per_word=0.6)  # 23 words over 13.8 s, 106 characters
    segment = {"start": 10.0, "end": words[-1]["end"], "text": "".join(w["word"] for w in words), "words": words}
    found = cues([segment])
    check_readable(found)
    assert [text for _, _, text in found] == [  # three cues, as even as may be: no "wife" left alone
        "It is a truth universally acknowledged",
        "that a single man in possession of a",
        "good fortune must be in want of a wife",
    ]
    assert spoken(found) == SENTENCE  # no word lost, doubled or reordered
    word_starts, word_ends = {w["start"] for w in words}, {w["end"] for w in words}
    for start, end, _ in found:  # every cut falls where a word begins and ends
        assert start in word_starts and end in word_ends
    assert found[0][0] == 10.0 and found[-1][1] == words[-1]["end"]


def test_a_segment_over_the_character_limit_is_split_even_when_short_in_time():
    words = timed_words(SENTENCE + " " + SENTENCE, start=0.0, seconds_per_word=0.1)  # 4.6 s, 213 characters
    found = cues([{"start": 0.0, "end": 4.6, "text": "".join(w["word"] for w in words), "words": words}])
    check_readable(found)
    assert len(found) == 3 and spoken(found) == SENTENCE + " " + SENTENCE


def test_without_word_times_a_long_segment_is_split_evenly_by_words():
    found = cues([{"start": 20.0, "end": 40.0, "text": " " + SENTENCE}])
    check_readable(found)
    assert spoken(found) == SENTENCE
    assert found[0][0] == 20.0 and found[-1][1] == pytest.approx(40.0)
    assert len(found) == 3  # 20 s in cues of at most 7 s


def test_overlapping_segments_give_monotonic_cues():
    segments = [
        {"start": 0.0, "end": 2.4, "text": " First."},
        {"start": 2.2, "end": 4.0, "text": " Second starts before the first ended."},
        {"start": 3.0, "end": 3.0, "text": " Third, with no length at all."},
    ]
    found = cues(segments)
    assert [start for start, _, _ in found] == [0.0, 2.4, 4.0]
    assert [text for _, _, text in found] == [
        "First.",
        "Second starts before the first ended.",
        "Third, with no length at all.",
    ]
    for (_, end, _), (start, _, _) in itertools.pairwise(found):
        assert end <= start
    assert all(end > start for start, end, _ in found)


def test_a_single_word_longer_than_a_cue_stays_whole():
    words = [{"word": " Hello", "start": 0.0, "end": 0.5}, {"word": " thereeeee", "start": 0.5, "end": 9.0}]
    found = cues([{"start": 0.0, "end": 9.0, "text": " Hello thereeeee", "words": words}])
    assert found == [(0.0, 0.5, "Hello"), (0.5, 9.0, "thereeeee")]


AUDIO = AUDIO_DIR  # TAPESCRIBE_TEST_AUDIO, else ../shared/audio (conftest)


def reference(language: str) -> str:
    """The reference transcript of a shared recording (leopard_test_<language>.txt)."""
    return (AUDIO / f"leopard_test_{language}.txt").read_text().strip()


@pytest.mark.parametrize("language", ["de", "es", "fr", "it", "pt"])
def test_a_short_segment_in_a_spaced_script_breaks_into_two_lines_at_a_space(language):
    text = reference(language)
    assert 42 < len(text) <= 84
    found = cues([{"start": 0.0, "end": 5.0, "text": " " + text}])
    check_readable(found)
    assert len(found) == 1 and len(found[0][2].split("\n")) == 2
    assert spoken(found) == text
    assert set(found[0][2].split()) <= set(text.split())  # no word cut in two


def test_japanese_breaks_between_characters_two_columns_each():
    text = reference("ja")  # 21 characters, 42 columns: one line
    assert cues([{"start": 0.0, "end": 5.0, "text": text}]) == [(0.0, 5.0, text)]
    found = cues([{"start": 0.0, "end": 5.0, "text": "「" + text + "」"}])
    assert found == [
        (0.0, 5.0, "「客観的実在の判断的知\n識が成立するのである。」")
    ]  # 」 with 。; no word list: 知識 may split
    long = cues([{"start": 0.0, "end": 6.0, "text": text * 3}])  # no word times, no spaces at all
    check_readable(long)
    assert spoken(long, between="") == text * 3 and len(long) == 2
    assert not any(line.startswith("。") for _, _, cue in long for line in cue.split("\n"))


def test_chinese_with_timed_words_and_brackets():
    text = "他说：「我们今天在北京讨论天气，明天去上海。」然后他就走了，没有再回来。"
    words = [{"word": char, "start": 0.25 * at, "end": 0.25 * at + 0.2} for at, char in enumerate(text)]
    found = cues([{"start": 0.0, "end": words[-1]["end"], "text": text, "words": words}])
    check_readable(found)
    assert spoken(found, between="") == text
    for _, _, cue in found:
        for line in cue.split("\n"):
            assert line[0] not in "：，。」" and line[-1] != "「", cue  # no line starts with a closing mark


def test_korean_breaks_at_spaces_never_inside_a_word():
    text = reference("ko")
    found = cues([{"start": 0.0, "end": 4.0, "text": text + " " + text}])
    check_readable(found)
    assert spoken(found) == text + " " + text
    assert all(word in text.split() for _, _, cue in found for word in cue.split())


def test_spanish_and_french_punctuation_stays_with_its_word():
    spanish = "¿Dónde está el niño que vino ayer por la tarde? ¡Mañana llega con su madre y su hermano!"
    french = "« Où est-il donc passé, ce vieux conservateur des eaux et forêts ? » demanda-t-il ! Puis il partit."
    for segment in [
        {"start": 0.0, "end": 6.0, "text": " " + spanish},
        {"start": 6.0, "end": 12.0, "text": " " + french},
        {"start": 12.0, "end": 30.0, "text": " " + french + " " + french},
    ]:
        found = cues([segment])
        check_readable(found)
        for _, _, cue in found:
            for line in cue.split("\n"):
                assert not line.startswith(("»", "?", "!", ":", ";")) and not line.endswith(("«", "¿", "¡")), cue
    # Whisper's words with a mark on its own: it goes with the next word, into the same cue.
    timed = [{"word": " ¿", "start": 0.0, "end": 0.1}] + [
        {"word": (" " if at else "") + w, "start": 0.1 + 0.5 * at, "end": 0.5 + 0.5 * at}
        for at, w in enumerate(spanish[1:].split())
    ]
    found = cues([{"start": 0.0, "end": timed[-1]["end"], "text": " " + spanish, "words": timed}])
    check_readable(found)
    assert found[0][2].startswith("¿Dónde") and not any(cue.endswith("¿") for _, _, cue in found)


TRANSCRIPTION = {
    "text": "Tab\there and a line\nbreak. Straße über 東京. An hour later. " + SENTENCE,
    "language": "en",
    "segments": [
        {"start": 0.0, "end": 2.5, "text": " Tab\there and a line\nbreak."},
        {"start": 2.5, "end": 5.0, "text": " Straße über 東京."},
        {"start": 3722.0, "end": 3725.25, "text": " An hour later."},
        {"start": 3725.25, "end": 3745.25, "text": " " + SENTENCE},  # split into three cues
    ],
}


def test_srt_reads_back_with_the_srt_package():
    body = render(TRANSCRIPTION, "srt")
    parsed = list(srt.parse(body))
    expected = cues(TRANSCRIPTION["segments"])
    assert [cue.index for cue in parsed] == list(range(1, len(expected) + 1))
    assert [(cue.start, cue.end) for cue in parsed] == [
        (timedelta(milliseconds=round(start * 1000)), timedelta(milliseconds=round(end * 1000)))
        for start, end, _ in expected
    ]
    assert [cue.content for cue in parsed] == [text for _, _, text in expected]
    assert "01:02:05,250" in body  # hours, minutes, seconds, milliseconds


def test_vtt_reads_back_with_webvtt_py():
    body = render(TRANSCRIPTION, "vtt")
    assert body.startswith("WEBVTT\n")
    captions = webvtt.from_string(body).captions
    expected = cues(TRANSCRIPTION["segments"])
    assert [(c.start_time.in_milliseconds(), c.end_time.in_milliseconds()) for c in captions] == [
        (round(start * 1000), round(end * 1000)) for start, end, _ in expected
    ]
    assert [caption.text for caption in captions] == [text for _, _, text in expected]
    assert len(captions) == 6 and (captions[2].start, captions[2].end) == ("01:02:02.000", "01:02:05.250")


def test_tsv_txt_and_json():
    lines = render(TRANSCRIPTION, "tsv").splitlines()
    assert lines[0] == "start\tend\ttext" and len(lines) == 5  # one row per segment, not per cue
    assert lines[1] == "0\t2500\tTab here and a line break."  # tabs and newlines cannot break a row
    assert lines[2] == "2500\t5000\tStraße über 東京."
    assert lines[3] == "3722000\t3725250\tAn hour later."
    assert all(len(line.split("\t")) == 3 for line in lines)
    assert render(TRANSCRIPTION, "txt") == TRANSCRIPTION["text"] + "\n"
    session = {"id": "s1", "title": "Über"}
    body = render(TRANSCRIPTION, "json", session)
    assert "Straße über 東京" in body  # UTF-8, not \u escapes
    assert json.loads(body) == {"session": session, **TRANSCRIPTION}


def test_no_transcript_renders_empty_and_unknown_formats_are_refused():
    assert render(None, "txt") == "\n"
    assert list(srt.parse(render(None, "srt"))) == []
    assert webvtt.from_string(render(None, "vtt")).captions == []
    assert render(None, "tsv") == "start\tend\ttext\n"
    assert set(EXPORT_MEDIA_TYPES) == {"txt", "srt", "vtt", "json", "tsv"}
    with pytest.raises(BadRequest):
        render(TRANSCRIPTION, "docx")
