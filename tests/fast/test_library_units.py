"""The pieces of the library that need no server: default titles, tag rules, the streamed zip."""

from __future__ import annotations

import io
import zipfile

import pytest

from tapescribe.errors import BadRequest, NotFound
from tapescribe.sessions.tags import checked_tags, tag_needle, tags_column
from tapescribe.sessions.titles import first_words, is_default_title, title_from_transcript
from tapescribe.sessions.zip_export import transcripts_zip

MADE_UP = ["Recording 7 Dec 2026, 09:14", "Recording Dec 7, 2026, 7:15 AM", "Live 2026-12-07 09:14"]
MADE_UP += ["Upload 2026-12-07 09:14", "Recording 07.12.2026, 09:14", "Live", ""]


@pytest.mark.parametrize("title", MADE_UP)
def test_made_up_titles_are_default(title):
    assert is_default_title(title)


@pytest.mark.parametrize("title", ["Recording of grandma 1998", "jfk", "Meeting 2026-12-07 09:14", "audio 2"])
def test_names_people_gave_are_not(title):
    assert not is_default_title(title)


def test_a_default_title_becomes_the_first_words_once_complete_and_never_after_a_rename():
    text = {"text": "And so, my fellow Americans, ask not what your country can do for you", "complete": True}
    session = {"title": "Recording 7 Dec 2026, 09:14"}
    assert title_from_transcript(session, text) == "And so, my fellow Americans, ask not what…"
    assert title_from_transcript(session, {**text, "complete": False}) is None
    assert title_from_transcript({**session, "title_history": [{"title": "x"}]}, text) is None
    assert title_from_transcript(session, {"text": "", "complete": True}) is None
    assert first_words("Hi.") == "Hi."


def test_tags_are_normalised_and_checked():
    assert checked_tags(["Work", " two  words ", "work", "Ünïcode", "q1/2026", "a+b:c"]) == [
        "work",
        "two words",
        "ünïcode",
        "q1/2026",
        "a+b:c",
    ]
    for bad in (["x" * 41], ["a,b"], ['"q"'], ["-lead"], [""], [f"t{n}" for n in range(21)], "work", [1]):
        with pytest.raises(BadRequest):
            checked_tags(bad)
    # the index finds a whole tag only
    assert tag_needle("work") in tags_column(["work"]) and tag_needle("work") not in tags_column(["homework"])


def test_the_zip_is_made_without_seeking_and_skips_sessions_deleted_meanwhile():
    records = {"a" * 32: ({"title": "One"}, {"text": "hello", "segments": [{"start": 0, "end": 1, "text": "hello"}]})}

    def read(session_id):
        if session_id not in records:
            raise NotFound("No such session.")
        return records[session_id]

    blocks = list(transcripts_zip(["a" * 32, "b" * 32], "txt", read))
    with zipfile.ZipFile(io.BytesIO(b"".join(blocks))) as archive:
        assert archive.namelist() == [f"One ({'a' * 32}).txt"]
        assert archive.read(archive.namelist()[0]).decode().strip() == "hello"
