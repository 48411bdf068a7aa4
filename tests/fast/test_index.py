"""The session index on a real SQLite file: what a person types becomes a safe FTS5 query, and
rows, segments, search with match offsets, filtered listing and removal work end to end."""

from __future__ import annotations

import pytest

from tapescribe.sessions.index import SessionIndex, fts_query

# Things people type, with what reaches FTS5: every word quoted (so it is text, never syntax),
# words ANDed, "phrases" kept, a trailing * kept as a prefix search.
QUERIES = {
    "hello world": '"hello" AND "world"',
    '"good morning" everyone': '"good morning" AND "everyone"',
    '"good   morning"': '"good morning"',
    "marr*": '"marr"*',
    "foo-bar*": '"foo" AND "bar"*',
    '"marr*"': '"marr"',  # inside a phrase the star is punctuation
    "AND OR NOT": '"AND" AND "OR" AND "NOT"',
    "NEAR(a b)": '"NEAR" AND "a" AND "b"',
    "title:secret": '"title" AND "secret"',
    "-minus ^caret": '"minus" AND "caret"',
    'say "hello': '"say" AND "hello"',  # an unclosed quote is just a character
    'x"y"z': '"x" AND "y" AND "z"',
    "don't": '"don" AND "t"',  # as unicode61 splits the text
    "Grüße 東京": '"Grüße" AND "東京"',
    "привет мир*": '"привет" AND "мир"*',
}
NOTHING_TO_SEARCH = ["", "   ", "*", '"', '""', '" "', "-", "()", "^*", "🙂"]
ODD = [
    *QUERIES,
    *NOTHING_TO_SEARCH,
    "__",
    "_*",
    '"_"',
    "a" * 5000,
    "\x00",
    "'; DROP TABLE sessions; --",
    "col:",
    "{title text}:x",
    "NOT",
    "x AND",
    "* *",
    "a\u0301",
    "\u200b",
    "ひらがな*",
]


@pytest.mark.parametrize("typed", QUERIES)
def test_fts_query_quotes_every_word(typed):
    assert fts_query(typed) == QUERIES[typed]


@pytest.mark.parametrize("typed", NOTHING_TO_SEARCH)
def test_fts_query_without_words_is_none(typed):
    assert fts_query(typed) is None


def row(session_id: str, created: str, title: str = "", status: str = "done", size: int = 100) -> dict:
    return {
        "id": session_id,
        "title": title,
        "created": created,
        "source": "upload",
        "status": status,
        "size_bytes": size,
    }


def segments(*texts: str) -> list[dict]:
    return [{"start": 2.0 * number, "end": 2.0 * number + 1.5, "text": " " + text} for number, text in enumerate(texts)]


@pytest.fixture
def index(tmp_path):
    made = SessionIndex(tmp_path / "index.sqlite3")
    assert made.needs_rebuild  # a new file: the caller refills it from the session files
    made.upsert(row("a", "2025-01-01T10:00:00", title="Leopard notes"))
    made.set_segments(
        "a",
        segments(
            "Mr. Quilter is the apostle of the middle classes.",
            "We are glad to welcome his gospel.",
            "The middle of the road.",
        ),
    )
    made.upsert(row("b", "2025-01-02T10:00:00", title="Café meeting", status="processing"))
    made.set_segments("b", segments("Had he married a woman of fortune?", "Привет, мир! Grüße aus Köln."))
    made.upsert(row("c", "2025-01-03T10:00:00", title="Empty", status="queued"))
    return made


def test_reopening_an_index_keeps_it(index):
    again = SessionIndex(index.path)
    assert not again.needs_rebuild
    assert again.page(10, 0)[1] == 3


def test_search_finds_segments_with_the_offsets_of_each_match(index):
    results = index.search("middle")
    assert [result["id"] for result in results] == ["a"]
    hits = results[0]["segments"]
    assert [hit["index"] for hit in hits] == [0, 2]
    assert [(hit["start"], hit["end"]) for hit in hits] == [(0.0, 1.5), (4.0, 5.5)]
    for hit in hits:
        assert [hit["text"][start:end] for start, end in hit["matches"]] == ["middle"]
    assert hits[0]["text"] == "Mr. Quilter is the apostle of the middle classes."


def test_search_by_prefix_phrase_diacritics_and_other_scripts(index):
    def found(query: str) -> dict[str, list[str]]:
        return {
            result["id"]: [hit["text"][start:end] for hit in result["segments"] for start, end in hit["matches"]]
            for result in index.search(query)
        }

    assert found("marr*") == {"b": ["married"]}
    assert found("marr") == {}  # without the star, a whole word
    assert found('"middle classes"') == {"a": ["middle classes"]}  # a phrase is one match
    assert found('"classes middle"') == {}
    assert set(found("middle gospel")) == {"a"}  # ANDed over the whole session, not one segment
    assert found("MIDDLE")["a"] == ["middle", "middle"]
    assert found("мир") == {"b": ["мир"]} and found("привет") == {"b": ["Привет"]}
    assert found("grusse koln") == {}  # ü is not ue
    assert found("gruße koln") == {"b": ["Grüße", "Köln"]}  # diacritics are ignored both ways
    assert found("cafe") == {"b": []}  # a title match: the session, with no segment to show


def test_every_kind_of_input_is_answered_without_an_sqlite_error(index):
    for typed in ODD:
        assert isinstance(index.search(typed), list), typed
        rows, total = index.page(10, 0, typed)
        assert len(rows) == total or total > 10, typed


def test_list_is_newest_first_and_filters_by_transcript_or_title(index):
    rows, total = index.page(10, 0)
    assert [entry["id"] for entry in rows] == ["c", "b", "a"] and total == 3
    assert set(rows[0]) >= {"id", "title", "created", "status", "size_bytes"} and "text" not in rows[0]
    rows, total = index.page(1, 1)
    assert [entry["id"] for entry in rows] == ["b"] and total == 3
    assert index.page(10, 0, "leopard")[1] == 1  # title
    assert [entry["id"] for entry in index.page(10, 0, "welcome")[0]] == ["a"]  # transcript
    assert index.page(10, 0, "nowhere") == ([], 0)
    assert index.page(10, 0, "*") == ([], 0)  # a query with no words matches nothing, not everything


def test_new_segments_replace_the_old_and_remove_takes_everything(index):
    index.set_segments("a", segments("Entirely new words."))
    assert index.search("middle") == []
    assert [result["id"] for result in index.search("entirely")] == ["a"]
    index.update("a", title="Renamed")
    assert index.page(10, 0, "leopard") == ([], 0) and index.page(10, 0, "renamed")[1] == 1
    assert index.totals() == {"session_count": 3, "total_bytes": 300}
    index.remove("a")
    assert index.search("entirely") == [] and index.page(10, 0, "renamed") == ([], 0)
    assert index.totals() == {"session_count": 2, "total_bytes": 200}
    with pytest.raises(ValueError):
        index.update("b", text="not a column a caller may set")
