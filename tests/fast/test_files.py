"""The durable-write helpers, in-process (no server, no model): fast."""

from __future__ import annotations

import json
import threading
from typing import Any

from tapescribe.sessions import files


def test_concurrent_atomic_writes_never_corrupt_or_fail(tmp_path):
    """A cancel and a progress update writing status.json at once: every write lands whole, readers
    always parse a complete file, and no temporary file is left behind."""
    target = tmp_path / "status.json"
    files.write_json_atomic(target, {"writer": 0, "n": 0, "padding": ""})
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for n in range(150):
                files.write_json_atomic(target, {"writer": number, "n": n, "padding": "x" * (number * 300)})
        except BaseException as error:
            errors.append(error)

    def reader() -> None:
        try:
            for _ in range(600):
                record = json.loads(target.read_text())
                assert record["padding"] == "x" * (record["writer"] * 300)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(6)]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["status.json"]


def test_a_torn_journal_line_is_ignored(tmp_path):
    journal = tmp_path / "segments.jsonl"
    files.append_json_line(journal, {"start": 0, "end": 1})
    with open(journal, "ab") as handle:
        handle.write(b'{"start": 1, "en')  # the crash came mid-append
    assert files.read_json_lines(journal) == [{"start": 0, "end": 1}]


def test_a_write_refused_right_before_its_rename_leaves_the_file_as_it_was(tmp_path):
    """A job's lease found lost after the bytes were written and fsynced: nothing replaces the file,
    and no temporary file is left behind."""
    target = tmp_path / "status.json"
    files.write_json_atomic(target, {"status": "done", "by": "the worker that took the job over"})
    before = target.read_bytes()
    checked: list[bool] = []

    class LeaseLost(Exception):
        pass

    def lost() -> None:
        checked.append(any(path.name.endswith(".partial") for path in tmp_path.iterdir()))  # written by now
        raise LeaseLost

    try:
        files.write_json_atomic(target, {"status": "processing", "by": "a paused worker"}, before_replace=lost)
    except LeaseLost:
        pass
    else:
        raise AssertionError("the refused write went through")
    assert checked == [True]
    assert target.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["status.json"]


def long_transcript(segments: int) -> dict[str, Any]:
    """A transcript shaped as a job saves it: segments with tokens and timed words (2,200 segments of 15
    words is about three hours of speech)."""
    made: list[dict[str, Any]] = []
    for number in range(segments):
        words: list[dict[str, Any]] = [
            {"start": number * 5 + w * 0.3, "end": number * 5 + w * 0.3 + 0.25, "word": f" wörd{w}", "probability": 0.9}
            for w in range(15)
        ]
        text = "".join(str(word["word"]) for word in words)
        made.append({"id": number, "start": number * 5.0, "end": number * 5.0 + 4.5, "text": text, "words": words})
        made[-1]["tokens"] = list(range(40))
    return {"text": "…", "language": "en", "model": "tiny.en", "complete": False, "segments": made}


def test_a_long_transcript_is_written_in_parts_with_the_same_bytes(tmp_path):
    """A job saves its growing transcript every second: json.dumps held the whole text's pieces, the
    text and its bytes at once (35 MiB at three hours); written in parts, the same bytes, a few MiB."""
    import tracemalloc

    data = long_transcript(2200)
    target = tmp_path / "transcription.json"
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        files.write_json_atomic(target, data)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert target.read_bytes() == json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB"
    small = {"a": [1, 2.5, None, True], "b": "ü", "c": {}}
    files.write_json_atomic(target, small)
    assert target.read_bytes() == json.dumps(small, ensure_ascii=False, indent=1).encode("utf-8")
