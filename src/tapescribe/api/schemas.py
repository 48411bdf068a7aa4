"""The JSON the API answers with, as typed models: /openapi.json states the contract docs/api.md describes.

Records that come from the session files allow extra fields (older sessions, fields a later
version adds), so reading a session never fails on its shape; the fields named here are the ones
clients can rely on.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["queued", "processing", "done", "error", "cancelled"]


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class Word(Record):
    start: float
    end: float
    word: str
    probability: float | None = None
    speaker: str | None = Field(None, description="Speaker id (S1, S2, ...) when speakers were labelled")


class Segment(Record):
    id: int | None = None
    start: float
    end: float
    text: str
    words: list[Word] | None = None
    speaker: str | None = Field(None, description="Speaker id (S1, S2, ...) when speakers were labelled")


class Transcription(Record):
    text: str
    language: str | None = None
    model: str | None = None
    segments: list[Segment]
    speakers: list[str] | None = Field(None, description="Speaker ids found, most talkative first")


class StatusRecord(Record):
    status: Status
    progress: float | None = Field(None, description="0..1 while processing")
    message: str | None = Field(None, description="Why, for error and cancelled")
    updated: str | None = None
    runs: list[dict[str, Any]] | None = Field(None, description="Each run of the job and where it started")
    speakers_requested: int | str | None = Field(
        None, description='After speaker labelling: what was asked for, "auto" or a number of speakers'
    )
    speakers_found: int | None = Field(
        None,
        description="After speaker labelling: how many speakers the transcript has (the message says when "
        "fewer were found than asked for)",
    )


class Storage(Record):
    session_count: int
    total_bytes: int
    free_bytes: int
    low_space_bytes: int
    low_space: bool
    disk_full: bool
    incomplete_upload_bytes: int = Field(description="Uploads a crash cut off before they became sessions")
    library_bytes: int = Field(
        description="Everything under the data directory but model copies and caches: what a backup keeps"
    )
    model_bytes: int = Field(description="Model copies under the data directory (models/), made again if lost")
    cache_bytes: int = Field(description="Caches under the data directory (cache/, scratch/)")
    data_dir_bytes: int = Field(description="All of the data directory: library, models and caches")


class SessionRow(Record):
    id: str
    title: str
    created: str
    source: str
    filename: str | None = None
    duration: float | None = None
    model: str | None = None
    language: str | None = None
    status: Status
    progress: float | None = None
    message: str | None = None
    updated: str | None = None
    size_bytes: int
    tags: list[str] = Field(default_factory=list)
    preview: str | None = Field(None, description="The first words of the transcript")


class SessionList(Record):
    sessions: list[SessionRow]
    total: int
    limit: int
    offset: int
    storage: Storage


class SessionRecord(Record):
    """session.json: what a session is."""

    id: str
    title: str
    created: str
    source: str
    original_filename: str | None = None
    size: int | None = None
    duration: float | None = None
    model: str | None = None
    language: str | None = None
    model_reason: str | None = Field(None, description="Why this model: pinned, requested, or the language")
    detected_language: str | None = Field(None, description="Language detected on the audio to choose the model")
    detected_language_probability: float | None = None
    speaker_names: dict[str, str] | None = Field(None, description="Names the owner gave speakers, by speaker id")
    tags: list[str] | None = Field(None, description="The owner's tags, lower-cased")


class SessionDetail(SessionRecord):
    status: StatusRecord
    transcription: Transcription | None = None
    size_bytes: int
    has_audio: bool
    chunks: int


class SearchHit(Record):
    index: int
    start: float
    end: float
    text: str
    matches: list[list[int]] = Field(description="[start, end) character offsets of the matched words")


class SearchResult(Record):
    id: str
    title: str
    created: str
    duration: float | None = None
    status: Status
    segments: list[SearchHit]


class SearchAnswer(Record):
    query: str
    results: list[SearchResult]


class Deleted(Record):
    deleted: str


class VersionSummary(Record):
    number: int
    label: str
    saved: str
    preview: str


class VersionList(Record):
    versions: list[VersionSummary]


class Version(Record):
    number: int
    label: str
    saved: str
    transcription: Transcription | None = None


class Queued(Record):
    session_id: str
    status: Literal["queued"]
    title: str
    duration: float | None = None


class Transcribed(Record):
    session_id: str
    status: Literal["done"]
    text: str
    language: str | None = None
    duration: float | None = None
    segments: list[Segment]


class ChunkAnswer(Record):
    session_id: str
    text: str
    segments: list[Segment]
    duplicate: bool
    chunk_index: int


class Decodes(Record):
    """The decode scheduler of the serving process (queued jobs run by `tapescribe worker` are not counted)."""

    slots: int = Field(description="Decodes allowed at once (max_concurrent_decodes)")
    running: int
    batched: int = Field(description="Of the running, clips of the clip batch, which holds one slot between them")
    waiting: int = Field(description="Jobs and requests waiting to start")
    paused: int = Field(description="Longer jobs that gave their slot to a shorter one or to live captions")
    peak_running: int = Field(description="Most decodes that ran at once since the server started")
    preemptions: int = Field(description="Times a job gave its slot to a shorter one or to live captions")
    live_steps: int = Field(description="Live streams and chunks being captioned now (long jobs pause meanwhile)")


class Health(Record):
    status: Literal["ok"]
    version: str
    default_model: str = Field(description="'auto', or the model TAPESCRIBE_MODEL pins for every job")
    queue_pending: int
    decodes: Decodes
    max_upload_bytes: int
    login_required: bool


class OfferedModel(Record):
    id: str
    source: str
    multilingual: bool = Field(description="False for English-only models (names ending in .en)")


class SpeakerOptions(Record):
    available: bool = Field(description="Whether the speakers extra is installed (pip install 'tapescribe[speakers]')")
    default: int | str = Field(description="What a job that does not say gets (TAPESCRIBE_SPEAKERS): off, auto or N")
    max: int = Field(description="The most speakers a request may ask for")


class ModelList(Record):
    default: str = Field(description="'auto' (English: tiny.en, other languages: base), or the one pinned model")
    models: list[OfferedModel]
    speakers: SpeakerOptions | None = Field(None, description="Speaker labels this server offers")


class BulkItem(Record):
    id: str
    ok: bool
    error: dict[str, Any] | None = Field(None, description="Why not, in the one error shape's `error` object")
    tags: list[str] | None = Field(None, description="The session's tags after a tag or untag")


class BulkAnswer(Record):
    action: Literal["delete", "tag", "untag"]
    results: list[BulkItem] = Field(description="One per id asked for, in the order given")
