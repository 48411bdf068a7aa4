"""The session index on both backends, a real SQLite file and a real PostgreSQL database: what a person
types becomes a safe query, and rows, segments, search with match offsets, filtered listing and
removal work end to end, with the same answers from either."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from conftest import AUDIO_DIR
from tapescribe.config import Settings
from tapescribe.sessions.index import PREVIEW_LENGTH, FingerprintStep, SessionIndex, redacted_url
from tapescribe.sessions.index_migrations import Migration, pending
from tapescribe.sessions.index_sqlite import SCHEMA_VERSION as SQLITE_VERSION
from tapescribe.sessions.index_sqlite import SqliteSessionIndex, fts_query
from tapescribe.sessions.tags import tags_column, tags_of

# Things people type, with what reaches FTS5: every word quoted (so it is text, never syntax),
# words ANDed, "phrases" kept, a trailing * kept as a prefix search.
QUERIES = {
    "hello world": '"hello" AND "world"',
    '"good morning" everyone': '"good morning" AND "everyone"',
    '"good   morning"': '"good morning"',
    "marr*": '"marr"*',
    "foo-bar*": '"foo bar"*',  # a word the tokenizer splits stays one phrase
    '"marr*"': '"marr"',  # inside a phrase the star is punctuation
    "AND OR NOT": '"AND" AND "OR" AND "NOT"',
    "NEAR(a b)": '"NEAR a" AND "b"',
    "title:secret": '"title secret"',
    "-minus ^caret": '"minus" AND "caret"',
    'say "hello': '"say" AND "hello"',  # an unclosed quote is just a character
    'x"y"z': '"x y z"',
    "don't": '"don t"',  # as unicode61 splits the text, in that order
    "l’homme": '"l homme"',
    "Straße": '("Straße" OR "strasse")',  # unicode61 does not fold ß: both spellings are asked for
    "STRASSE*": '("STRASSE"* OR "straße"*)',
    '"die straße"': '("die straße" OR "die strasse")',
    "Grüße 東京": '("Grüße" OR "grüsse") AND "東 京"',  # Han a character at a time, as indexed
    "知識*": '"知 識"*',
    "fu\u0308r": '"für"',  # decomposed input is composed first
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


@pytest.fixture(params=["sqlite", "postgres"])
def open_index(request, tmp_path):
    """Opens the index on one backend (a new SQLite file, a new PostgreSQL database); again: reopens it."""
    if request.param == "sqlite":
        path = tmp_path / "index.sqlite3"

        def opener() -> SessionIndex:
            return SqliteSessionIndex(path)
    else:
        from tapescribe.sessions.index_postgres import PostgresSessionIndex

        url = request.getfixturevalue("postgres_database")

        def opener() -> SessionIndex:
            return PostgresSessionIndex(url)

    opened: list[SessionIndex] = []

    def open_() -> SessionIndex:
        opened.append(opener())
        return opened[-1]

    yield open_
    for index in opened:
        index.close()


@pytest.fixture
def index(open_index):
    made = open_index()
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


def test_reopening_an_index_keeps_it(index, open_index):
    again = open_index()
    assert not again.needs_rebuild
    assert again.page(10, 0)[1] == 3


def test_a_partial_write_moves_the_fingerprint_only_from_the_one_before_it(index):
    """A row's fingerprint says which files it was built from; a write of some fields moves it only when
    the row was in step before (else it is cleared: the next start rebuilds the row from the files)."""
    index.upsert({**row("d", "2025-01-04T10:00:00", title="Fingerprinted"), "fingerprint": "f1"})
    assert index.fingerprints()["d"] == "f1"
    assert "fingerprint" not in index.page(10, 0)[0][0]  # not shown to clients
    index.update("d", step=FingerprintStep("f1", "f2"), status="done")
    assert index.fingerprints()["d"] == "f2"
    index.update("d", step=FingerprintStep("f1", "f3"), status="error")  # the row was not at f1
    assert index.fingerprints()["d"] is None
    index.update("d", step=FingerprintStep("f1", "f3"), title="Renamed")  # nor is it now
    assert index.fingerprints()["d"] is None
    index.upsert_many([({**row("d", "2025-01-04T10:00:00", title="Renamed"), "fingerprint": "f4"}, [])])
    index.set_segments("d", segments("Pangolins at dawn."), step=FingerprintStep("f4", "f5"))
    assert index.fingerprints()["d"] == "f5" and [hit["id"] for hit in index.search("pangolins")] == ["d"]
    index.set_segments("d", segments("Tapirs at dusk."))  # a write that does not say what it moved from
    assert index.fingerprints()["d"] is None
    assert index.fingerprints()["a"] is None  # rows written without one


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
    assert found("gruesse koln") == {}  # ü is not ue
    assert found("grusse koln") == {"b": ["Grüße", "Köln"]}  # but ss is ß
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


def test_each_owner_lists_searches_and_counts_only_their_rows(index):
    """Rows a-c have no owner (made before users: the first admin's); d is bob's, e is alice's."""
    index.upsert({**row("d", "2025-01-04T10:00:00", title="Bob's middle", size=7), "owner": "bob"})
    index.set_segments("d", segments("The middle of bob's road."))
    index.upsert({**row("e", "2025-01-05T10:00:00", title="Alice", size=5), "owner": "alice"})
    bob, alice = ("bob", False), ("alice", True)  # alice is the first admin: unowned rows are hers

    def ids(visible) -> list[str]:
        return [entry["id"] for entry in index.page(10, 0, visible=visible)[0]]

    assert ids(None) == ["e", "d", "c", "b", "a"]
    assert ids(bob) == ["d"] and ids(alice) == ["e", "c", "b", "a"]
    assert index.page(10, 0, "middle", visible=bob) == (index.page(10, 0, "middle", visible=bob)[0], 1)
    assert [hit["id"] for hit in index.search("middle", visible=bob)] == ["d"]
    assert {hit["id"] for hit in index.search("middle", visible=alice)} == {"a"}
    assert {hit["id"] for hit in index.search("middle")} == {"a", "d"}
    assert index.totals(bob) == {"session_count": 1, "total_bytes": 7}
    assert index.totals(alice)["session_count"] == 4 and index.totals()["session_count"] == 5
    assert index.owners()["bob"] == {"session_count": 1, "total_bytes": 7}
    assert index.owners()[None]["session_count"] == 3


def test_list_filters_by_a_whole_tag_and_shows_the_first_words(index):
    index.upsert({**row("a", "2025-01-01T10:00:00", title="welcome"), "tags": tags_column(["work", "q1/2026"])})
    index.upsert({**row("b", "2025-01-02T10:00:00"), "tags": tags_column(["homework"])})
    assert [entry["id"] for entry in index.page(10, 0, tag="work")[0]] == ["a"]
    assert [entry["id"] for entry in index.page(10, 0, tag="Q1/2026")[0]] == ["a"]
    assert index.page(10, 0, "welcome", tag="homework") == ([], 0)
    assert index.page(10, 0, tag="home") == ([], 0)
    rows = {entry["id"]: entry for entry in index.page(10, 0)[0]}
    assert tags_of(rows["a"]["tags"]) == ["work", "q1/2026"] and tags_of(rows["c"]["tags"]) == []
    assert rows["a"]["preview"].startswith("Mr. Quilter is the apostle") and len(rows["a"]["preview"]) <= PREVIEW_LENGTH


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


# -- languages ----------------------------------------------------------------------------------
# The reference transcripts of the shared recordings (tests/../shared/audio/leopard_test_*.txt),
# plus a sentence per language for what those lack (ß, élisions, ¿¡, Chinese).
AUDIO = AUDIO_DIR  # TAPESCRIBE_TEST_AUDIO, else ../shared/audio (conftest)
LANGUAGE_SEGMENTS = {
    "de": ["Für die Straße nach Köln.", "Übermorgen fahren wir über die Brücke."],
    "fr": ["C'est l'homme qu’il faut, à l’évidence.", "« Où est-il ? » demanda-t-il."],
    "es": ["¿Dónde está el niño? ¡Mañana llega!"],
    "zh": ["我们今天讨论北京的天气。"],
}


@pytest.fixture
def languages(open_index):
    made = open_index()
    for number, language in enumerate(["de", "es", "fr", "it", "pt", "ja", "ko", "zh"]):
        reference = AUDIO / f"leopard_test_{language}.txt"
        texts = ([reference.read_text().strip()] if reference.exists() else []) + LANGUAGE_SEGMENTS.get(language, [])
        made.upsert(row(language, f"2025-02-0{number + 1}T10:00:00"))
        made.set_segments(language, segments(*texts))
    made.upsert(row("title-ja", "2025-03-01T10:00:00", title="東京会議の記録"))
    return made


def found_in(index: SessionIndex, query: str) -> dict[str, list[str]]:
    """Session id -> the text of each match, cut from the segment's original text by its offsets."""
    return {
        result["id"]: [hit["text"][start:end] for hit in result["segments"] for start, end in hit["matches"]]
        for result in index.search(query)
    }


def test_the_reference_transcripts_are_there():
    for language in ["de", "es", "fr", "ja", "ko"]:
        assert (AUDIO / f"leopard_test_{language}.txt").read_text().strip()


def test_german_umlauts_and_sharp_s_fold_both_ways(languages):
    assert found_in(languages, "für") == {"de": ["Für"]}
    assert found_in(languages, "fur") == {"de": ["Für"]}  # typed without the umlaut
    assert found_in(languages, "FÜR") == {"de": ["Für"]}
    assert found_in(languages, "fu\u0308r") == {"de": ["Für"]}  # decomposed ü, as some keyboards send it
    assert found_in(languages, "koln") == {"de": ["Köln"]}
    assert found_in(languages, "straße") == {"de": ["Straße"]}
    assert found_in(languages, "strasse") == {"de": ["Straße"]}  # ß written ss (Switzerland, capitals)
    assert found_in(languages, "STRASSE köln") == {"de": ["Straße", "Köln"]}
    assert found_in(languages, "strass*") == {"de": ["Straße"]}
    assert found_in(languages, '"die strasse"') == {"de": ["die Straße"]}
    assert found_in(languages, "koeln") == {}  # ö is not oe: no guessing at transliterations


def test_german_compound_words_are_found_by_their_start(languages):
    assert found_in(languages, "leichenhalle") == {"de": ["Leichenhalle"]}
    assert found_in(languages, "leichen*") == {"de": ["Leichenhalle"]}
    assert found_in(languages, "halle") == {}  # no splitting of compounds: a part inside is not a word


def test_french_accents_and_elisions(languages):
    assert found_in(languages, "forets") == {"fr": ["forêts"]}
    assert found_in(languages, "general") == {"fr": ["général"]}
    assert found_in(languages, "homme") == {"fr": ["homme"]}  # l'homme
    assert found_in(languages, "l'homme") == {"fr": ["l'homme"]}  # one phrase, not "l" anywhere
    assert found_in(languages, "evidence") == {"fr": ["évidence"]}  # l\u2019évidence: a typographic apostrophe
    assert found_in(languages, "ou") == {"fr": ["Où"]}  # « Où est-il ? »


def test_spanish_tilde_and_inverted_marks(languages):
    assert found_in(languages, "niño") == {"es": ["niño"]}
    assert found_in(languages, "nino") == {"es": ["niño"]}
    assert found_in(languages, "¿dónde") == {"es": ["Dónde"]}
    assert found_in(languages, "manana") == {"es": ["Mañana"]}  # ñ folds to n (so "ano" finds "año" too)


def test_japanese_and_chinese_words_inside_a_sentence_are_found(languages):
    ja = (AUDIO / "leopard_test_ja.txt").read_text().strip()
    assert found_in(languages, "知識") == {"ja": ["知識"]}
    assert found_in(languages, "判断") == {"ja": ["判断"]}
    assert found_in(languages, "客観的実在") == {"ja": ["客観的実在"]}
    assert found_in(languages, '"成立する"') == {"ja": ["成立する"]}
    assert found_in(languages, "知識 成立") == {"ja": ["知識", "成立"]}
    assert found_in(languages, "識知") == {}  # the characters in that order only
    assert found_in(languages, "北京") == {"zh": ["北京"]} and found_in(languages, "天气") == {"zh": ["天气"]}
    hit = languages.search("知識")[0]["segments"][0]
    assert hit["text"] == ja  # the text as spoken, whatever the index keeps
    assert [hit["text"][start:end] for start, end in hit["matches"]] == ["知識"]
    assert languages.page(10, 0, "知識")[1] == 1  # listing with a query, over the whole transcript
    assert [entry["id"] for entry in languages.page(10, 0, "会議")[0]] == ["title-ja"]  # and the title


def test_korean_finds_a_word_stem_without_its_particles(languages):
    assert found_in(languages, "걸어갔다") == {"ko": ["걸어갔다"]}
    assert found_in(languages, "피하") == {"ko": ["피하"]}  # 피하면서: stem and ending are one spaced word
    assert found_in(languages, "옆") == {"ko": ["옆"]}  # 옆으로: noun with a particle


def test_a_query_mixing_scripts_matches_each_part(languages):
    languages.set_segments("zh", segments("我们在Zürich讨论AI模型。"))
    assert found_in(languages, "zurich 模型") == {"zh": ["Zürich", "模型"]}
    assert found_in(languages, "讨论ai") == {"zh": ["讨论AI"]}


# -- both backends, schema migrations, many writers ------------------------------------------------


def test_both_backends_find_the_same_segments_and_spans(tmp_path, postgres_database):
    from tapescribe.sessions.index_postgres import PostgresSessionIndex

    backends = [SqliteSessionIndex(tmp_path / "index.sqlite3"), PostgresSessionIndex(postgres_database)]
    try:
        for made in backends:
            for number, language in enumerate(["de", "es", "fr", "it", "pt", "ja", "ko", "zh"]):
                reference = AUDIO / f"leopard_test_{language}.txt"
                texts = [reference.read_text().strip()] if reference.exists() else []
                made.upsert(row(language, f"2025-02-0{number + 1}T10:00:00", title=f"Notes {language}"))
                made.set_segments(
                    language, segments(*texts, *LANGUAGE_SEGMENTS.get(language, []), "e-mail l'homme 2.5")
                )
        words = {word for text in LANGUAGE_SEGMENTS.values() for sentence in text for word in sentence.split()}
        for typed in sorted(words) + ODD + ["notes", "notes fr", "e-mail", "mail*", "2.5", "知識", "天*"]:
            sqlite_found, postgres_found = (
                sorted((result["id"], result["segments"]) for result in made.search(typed)) for made in backends
            )
            assert sqlite_found == postgres_found, typed
            assert backends[0].page(5, 0, typed) == backends[1].page(5, 0, typed), typed
    finally:
        for made in backends:
            made.close()


def test_sqlite_index_from_before_the_version_table_is_kept_and_an_older_schema_rebuilt(tmp_path):
    path = tmp_path / "index.sqlite3"
    made = SqliteSessionIndex(path)
    made.upsert(row("a", "2025-01-01T10:00:00", title="kept"))
    made.close()
    with sqlite3.connect(path) as connection:  # as tapescribe left it before schema_version existed
        connection.execute("DROP TABLE schema_version")
        connection.execute("ALTER TABLE sessions DROP COLUMN fingerprint")  # version 7 had none
        connection.execute("ALTER TABLE sessions DROP COLUMN tags")  # nor tags (version 9)
        connection.execute("DROP INDEX sessions_owner")  # nor an owner (version 10)
        connection.execute("ALTER TABLE sessions DROP COLUMN owner")
        connection.execute("PRAGMA user_version=7")
    again = SqliteSessionIndex(path)
    assert not again.needs_rebuild and again.page(10, 0, "kept")[1] == 1
    assert again.fingerprints() == {"a": None}  # added in place, unknown: the next start rebuilds the row
    again.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(SQLITE_VERSION,)]
        connection.execute("UPDATE schema_version SET version=6")  # a schema that cannot be changed in place
    older = SqliteSessionIndex(path)
    assert older.needs_rebuild and older.page(10, 0) == ([], 0)  # remade empty: the caller refills it
    older.close()


def test_postgres_schema_is_versioned_and_a_newer_one_refused_untouched(postgres_database):
    import psycopg

    from tapescribe.errors import IndexUnavailable
    from tapescribe.sessions.index_postgres import SCHEMA_VERSION, PostgresSessionIndex

    made = PostgresSessionIndex(postgres_database)
    made.upsert(row("a", "2025-01-01T10:00:00", title="kept"))
    made.close()
    with psycopg.connect(postgres_database) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    again = PostgresSessionIndex(postgres_database)
    assert not again.needs_rebuild and again.page(10, 0, "kept")[1] == 1
    again.close()
    with psycopg.connect(postgres_database) as connection:
        connection.execute("UPDATE schema_version SET version=%s", (SCHEMA_VERSION + 1,))
    # A newer tapescribe on another host made this schema: an older one must not drop it.
    with pytest.raises(IndexUnavailable, match="newer tapescribe"):
        PostgresSessionIndex(postgres_database)
    with psycopg.connect(postgres_database) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION + 1,)]
        assert connection.execute("SELECT count(*) FROM sessions").fetchone() == (1,)


def test_pending_migrations_start_at_the_last_rebuild():
    steps = (Migration(1, (), rebuild=True), Migration(2, ()), Migration(3, (), rebuild=True), Migration(4, ()))
    assert [step.version for step in pending(steps, 0)] == [3, 4]
    assert [step.version for step in pending(steps, 3)] == [4]
    assert pending(steps, 4) == []


def test_concurrent_writers_leave_one_whole_set_of_segments(index):
    def write(number: int) -> None:
        index.set_segments("b", segments(*[f"writer{number} line {line}" for line in range(number + 1)]))
        index.update("b", title=f"title {number}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(write, range(12)))
    (result,) = index.search("line")
    writers = {segment["text"].split()[0] for segment in result["segments"]}
    assert len(writers) == 1  # never a mix of two writers' segments
    assert len(index.search("line", hits_per_session=100)[0]["segments"]) == int(writers.pop()[6:]) + 1


def test_the_password_of_an_index_url_is_never_shown():
    assert redacted_url("postgresql://app:s3cret@db.example:5432/tapescribe") == (
        "postgresql://app:***@db.example:5432/tapescribe"
    )
    assert redacted_url("postgresql://db.example/tapescribe") == "postgresql://db.example/tapescribe"
    with pytest.raises(ValidationError) as raised:
        Settings(index_url="mysql://app:s3cret@db.example/tapescribe")
    assert "s3cret" not in str(raised.value)


def test_a_query_matching_many_sessions_ranks_the_ones_indexed_last(tmp_path, postgres_database):
    from tapescribe.sessions.index_postgres import PostgresSessionIndex

    backends = [
        SqliteSessionIndex(tmp_path / "index.sqlite3", ranked_candidates=3),
        PostgresSessionIndex(postgres_database, ranked_candidates=3),
    ]
    try:
        for made in backends:
            # the first indexed says "budget" most: the best match, but only the last three are ranked
            for number, times in enumerate([6, 1, 2, 3, 1]):
                made.upsert(row(f"s{number}", f"2025-01-0{number + 1}T10:00:00"))
                made.set_segments(f"s{number}", segments(*["the budget again"] * times, f"only{number}"))
            made.set_segments("s2", segments("the budget again", "budget"))  # new segments keep its place
            assert {result["id"] for result in made.search("budget")} == {"s2", "s3", "s4"}
            assert [result["id"] for result in made.search("only0")] == ["s0"]  # fewer matches: all ranked
            assert made.page(10, 0, "budget")[1] == 5  # the listing counts every match
            # another person's newer matches do not push the caller's own out of the candidates
            for number in range(5, 9):
                made.upsert({**row(f"s{number}", f"2025-01-0{number + 1}T10:00:00"), "owner": "bob"})
                made.set_segments(f"s{number}", segments("the budget again"))
            assert {result["id"] for result in made.search("budget", visible=("alice", True))} == {"s2", "s3", "s4"}
    finally:
        for made in backends:
            made.close()


def test_a_writer_paused_mid_transaction_holds_the_session_only_briefly(postgres_database):
    """A worker SIGSTOPped inside an index write (seen in the scale-out test: the job another worker
    took over) held the session's lock until it died; PostgreSQL now ends its idle transaction."""
    import threading

    import psycopg

    from tapescribe.sessions.index_postgres import PostgresSessionIndex, _lock

    index = PostgresSessionIndex(postgres_database, idle_transaction_seconds=1)
    index.upsert(row("a", "2025-01-01T10:00:00"))
    holder = PostgresSessionIndex(postgres_database, idle_transaction_seconds=1)
    locked, resumed = threading.Event(), threading.Event()
    ended: list[BaseException] = []

    def paused_writer() -> None:
        try:
            with holder._pool.connection() as connection, connection.cursor() as cursor:
                _lock(cursor, "a")
                locked.set()
                time.sleep(4)  # paused mid-write
                resumed.set()
        except psycopg.Error as error:  # its transaction was ended meanwhile
            ended.append(error)

    thread = threading.Thread(target=paused_writer)
    thread.start()
    assert locked.wait(30)
    index.update("a", status="processing")  # another worker's write to the same session
    assert not resumed.is_set()  # it went through while the paused writer still held its transaction
    thread.join()
    assert ended and index.page(10, 0, None)[0][0]["status"] == "processing"
    index.close()
    holder.close()
