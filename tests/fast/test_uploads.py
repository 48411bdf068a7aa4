"""The streaming multipart parser (api/uploads.py) on real multipart bytes, cut into chunks the way
a socket may deliver them: the boundary split anywhere, one byte at a time, all at once. It is
driven through a real Starlette Request, as the routes call it, with a tmp directory as target."""

from __future__ import annotations

import asyncio
import os

import pytest

from tapescribe.api.uploads import MAX_FIELD_BYTES, receive_form, require_file
from tapescribe.errors import BadRequest, EmptyUpload, UploadTooLarge

BOUNDARY = b"----tapescribeBoundary7MA4YWxkTrZu0gW"
# File content that looks like multipart syntax: only the full boundary after CRLF ends a part.
AUDIO = b"RIFF\x00\x00WAVE" + b"\r\n--" + BOUNDARY[:-1] + b"\r\n\r\n--" + bytes(range(256)) * 40


def part(name: str, value: bytes, filename: str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"Content-Disposition: {disposition}\r\n".encode()
    if content_type:
        head += f"Content-Type: {content_type}\r\n".encode()
    return b"--" + BOUNDARY + b"\r\n" + head + b"\r\n" + value + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"


FORM = body(
    part("language", b"de"),
    part("file", AUDIO, filename="Über uns.wav", content_type="audio/wav"),
    part("title", "Grüße".encode()),
    part("tag", b"one"),
    part("tag", b"two"),
)


def receive(
    data: bytes,
    chunks: list[int] | None = None,
    *,
    target,
    max_bytes: int = 10**6,
    content_type: bytes | None = None,
    declared: int | None = None,
    disconnect: bool = False,
):
    """receive_form on `data` delivered in pieces of the given sizes (the rest in one piece)."""
    from starlette.requests import Request

    pieces, position = [], 0
    for size in chunks or []:
        pieces.append(data[position : position + size])
        position += size
    pieces.append(data[position:])
    messages = [{"type": "http.request", "body": piece, "more_body": True} for piece in pieces]
    if disconnect:
        messages[-1] = {"type": "http.disconnect"}
    else:
        messages[-1]["more_body"] = False

    async def next_message():
        return messages.pop(0)

    headers = [
        (b"content-type", content_type or b"multipart/form-data; boundary=" + BOUNDARY),
        (b"content-length", str(len(data) if declared is None else declared).encode()),
    ]
    scope = {"type": "http", "method": "POST", "path": "/upload", "headers": headers, "query_string": b""}
    return asyncio.run(receive_form(Request(scope, next_message), "file", target, max_bytes))


def split_points() -> dict[str, list[int]]:
    """Chunkings of FORM: inside each boundary at every offset, and a few regular ones."""
    first = FORM.index(b"--" + BOUNDARY)
    file_end = FORM.index(b"\r\n--" + BOUNDARY, FORM.index(AUDIO)) + 2
    chunkings = {f"boundary cut after {cut} bytes": [file_end + cut] for cut in range(0, len(BOUNDARY) + 6, 3)}
    chunkings["header cut"] = [first + 20]
    chunkings["7 bytes at a time"] = [7] * (len(FORM) // 7)
    chunkings["4 KiB at a time"] = [4096] * (len(FORM) // 4096)
    chunkings["whole body"] = []
    return chunkings


@pytest.mark.parametrize("chunks", list(split_points().values()), ids=list(split_points()))
def test_fields_and_file_survive_any_chunking(tmp_path, chunks):
    target = tmp_path / "upload.partial"
    form = receive(FORM, chunks, target=target)
    assert form.fields == {"language": "de", "title": "Grüße", "tag": "two"}
    assert form.repeated["tag"] == ["one", "two"]
    assert form.file_path == target and target.read_bytes() == AUDIO
    assert form.size == len(AUDIO) and require_file(form, "file") == target
    assert form.filename == "Über uns.wav"
    assert os.listdir(tmp_path) == ["upload.partial"]  # the file lands at the target and nowhere else


def test_one_byte_at_a_time(tmp_path):
    small = body(part("language", b"en"), part("file", AUDIO[:3000], filename="a.wav"))
    form = receive(small, [1] * len(small), target=tmp_path / "upload.partial")
    assert form.fields == {"language": "en"} and form.file_path.read_bytes() == AUDIO[:3000]


def test_a_file_over_the_limit_is_refused(tmp_path):
    with pytest.raises(UploadTooLarge) as raised:
        receive(FORM, [4096] * 3, target=tmp_path / "upload.partial", max_bytes=len(AUDIO) - 1)
    assert raised.value.details["limit_bytes"] == len(AUDIO) - 1
    assert os.listdir(tmp_path) == ["upload.partial"]  # what arrived stays where the caller will discard it
    # A declared length far over the limit is refused before a byte is read or written.
    with pytest.raises(UploadTooLarge):
        receive(FORM, target=tmp_path / "other.partial", max_bytes=100, declared=100 + MAX_FIELD_BYTES * 16 + 1)
    assert not (tmp_path / "other.partial").exists()
    # Exactly at the limit is fine.
    assert receive(FORM, target=tmp_path / "upload.partial", max_bytes=len(AUDIO)).size == len(AUDIO)


def test_a_text_field_over_the_limit_is_refused(tmp_path):
    long_field = body(part("prompt", b"x" * (MAX_FIELD_BYTES + 1)), part("file", b"abc", filename="a.wav"))
    with pytest.raises(BadRequest, match="prompt"):
        receive(long_field, [1000] * 10, target=tmp_path / "upload.partial")
    at_limit = body(part("prompt", b"x" * MAX_FIELD_BYTES), part("file", b"abc", filename="a.wav"))
    assert len(receive(at_limit, target=tmp_path / "upload.partial").fields["prompt"]) == MAX_FIELD_BYTES


def test_without_the_file_field_nothing_is_written(tmp_path):
    target = tmp_path / "upload.partial"
    # A file under another name, and a "file" field that is text (no filename), are not the upload.
    form = receive(body(part("audio", AUDIO, filename="a.wav"), part("file", b"just text")), target=target)
    assert form.file_path is None and form.fields["file"] == "just text"  # other parts: bounded text
    assert os.listdir(tmp_path) == []
    with pytest.raises(EmptyUpload):
        require_file(form, "file")
    empty = receive(body(part("file", b"", filename="empty.wav")), target=target)
    with pytest.raises(EmptyUpload, match="empty"):
        require_file(empty, "file")


def test_a_second_file_never_replaces_the_first(tmp_path):
    target = tmp_path / "upload.partial"
    form = receive(
        body(part("file", b"first", filename="1.wav"), part("file", b"second", filename="2.wav")), target=target
    )
    assert target.read_bytes() == b"first" and form.filename == "1.wav"


@pytest.mark.parametrize("content_type", [b"application/json", b"multipart/form-data", b"text/plain; boundary=x"])
def test_other_content_types_are_a_bad_request(tmp_path, content_type):
    with pytest.raises(BadRequest, match="multipart/form-data"):
        receive(FORM, target=tmp_path / "upload.partial", content_type=content_type)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "malformed",
    [
        b"not multipart at all",
        b"--" + BOUNDARY[:-3] + b"xyz\r\n\r\n",
        FORM.replace(b"--" + BOUNDARY, b"--" + BOUNDARY[::-1], 1),
    ],
)
def test_a_malformed_body_is_a_bad_request(tmp_path, malformed):
    with pytest.raises(BadRequest, match="malformed"):
        receive(malformed, [5, 5], target=tmp_path / "upload.partial")


def test_a_dropped_connection_is_a_bad_request_and_the_file_is_closed(tmp_path):
    cut = FORM.index(AUDIO) + 1000
    with pytest.raises(BadRequest, match="interrupted"):
        receive(FORM[:cut], [100, 2000], target=tmp_path / "upload.partial", disconnect=True)
    assert os.listdir(tmp_path) == ["upload.partial"]


@pytest.mark.parametrize("cut", ["in the file", "before the closing boundary", "inside the closing boundary"])
def test_a_body_without_its_closing_boundary_is_a_bad_request(tmp_path, cut):
    """A complete request whose multipart body stops short (a client or proxy that cut it) must not
    become an upload of a truncated file."""
    end = {
        "in the file": FORM.index(AUDIO) + 5000,
        "before the closing boundary": len(FORM) - len(BOUNDARY) - 6,
        "inside the closing boundary": len(FORM) - 10,
    }[cut]
    with pytest.raises(BadRequest, match="closing boundary"):
        receive(FORM[:end], [1000], target=tmp_path / "upload.partial")
