"""The one settings object. Read from TAPESCRIBE_* variables and CLI flags, validated once, passed down.

Nothing else in the package reads os.environ: every module gets what it needs from a Settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CT2_DEFAULT_THREADS = 4  # CTranslate2's threads per decode on CPU when cpu_threads is 0


class Settings(BaseSettings):
    """Everything that can be configured. Each field is documented; a test fails if one is not."""

    # hide_input_in_errors: a wrong setting is named, never echoed (index_url and api_key hold secrets)
    model_config = SettingsConfigDict(env_prefix="TAPESCRIBE_", extra="forbid", hide_input_in_errors=True)

    data_dir: Path = Field(
        Path("data"),
        description="Where sessions, the index, the job queue and the model cache live. Nothing is written elsewhere.",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port the HTTP server listens on.")
    model: str = Field(
        "auto",
        description="'auto': a job with no model requested uses tiny.en for English and the multilingual base "
        "for any other language (the one requested, else detected on several parts of the audio). A model "
        "name (tiny.en, base), a local CTranslate2 directory, or a Hugging Face name already in the local "
        "cache pins that one model for every job that does not name its own.",
    )
    live_model: str | None = Field(
        None,
        description="Model for live captions over /ws/live (empty: the stream's `model`, else the pinned model, "
        "else tiny.en for English and base for another language: the one requested, else the one heard in the "
        "stream's first seconds of speech, said in a `language` message). The second pass over the whole "
        "recording uses the stream's `model`, or chooses as for an upload: it may be larger than the live one.",
    )
    models: dict[str, Path] = Field(
        default_factory=dict,
        description='More model directories to offer, as JSON {"name": "/path/to/ctranslate2-model"}. Clients '
        "choose models by these names (see GET /models), never by path.",
    )
    max_loaded_models: int = Field(
        2, ge=1, le=16, description="Models kept loaded at once per process; the least recently used is let go first."
    )
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="Where the model runs ('auto': CUDA when CTranslate2 finds a GPU, else CPU)."
    )
    compute_type: str = Field(
        "default",
        description="CTranslate2 compute type; 'default' means int8 on CPU and float16 on CUDA.",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=256,
        description="File jobs (uploads, /transcribe, /v1) decode this many pieces of up to 30 s of speech in one "
        "model call (faster-whisper's BatchedInferencePipeline). Empty: 8 on CUDA, 1 on CPU (sequential "
        "decoding: a batch only shares the same cores). 1 keeps sequential decoding on a GPU too. Live "
        "captions are never batched.",
    )
    cpu_threads: int = Field(
        1,
        ge=0,
        description="Threads per decoder on CPU (CTranslate2's intra_threads); 0 lets CTranslate2 decide (4). "
        "One thread per decoder, and one decoder per core, was the fastest on a CPU: a beam search ran 2-3.5x "
        "faster on one thread than on CTranslate2's 4 on 2 cores (bench/threads.py).",
    )
    cpu_decoders: int = Field(
        0,
        ge=0,
        description="Decoders per loaded model on a CPU (CTranslate2 replicas, num_workers): each runs one model "
        "call at a time on cpu_threads threads, so this many calls (lanes of a file, clips, live steps) run at "
        "once. 0: one per cpu_threads cores of this machine, at least 1.",
    )
    beam_size: int = Field(5, ge=1, le=16, description="Beam size for decoding (faster-whisper's default is 5).")
    word_timestamps: bool = Field(
        True,
        description="Time every word of a stored transcript (uploads, recordings, the live second pass, /v1), so "
        "subtitles start and end on words; a request may say word_timestamps=true or false. The words are "
        "aligned to the decoded text afterwards (faster-whisper's alignment, one encoder pass per 30 s of "
        "speech), so the text is the same with or without them (docs/performance.md has the cost). Speaker "
        "labels always time words.",
    )
    vad_filter: bool = Field(
        True,
        description="Skip long stretches with no speech (Silero VAD) before decoding: no text invented over "
        "silence, faster on pauses. The three vad_* settings below decide what counts as no speech.",
    )
    vad_threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Speech probability under which audio may be skipped, judged on a copy evened to one "
        "loudness (on the audio as it is, 0.5 dropped soft and whispered words).",
    )
    vad_min_silence_ms: int = Field(
        7000,
        ge=0,
        description="Only a stretch without speech at least this long is skipped (milliseconds; at 5000 the "
        "middle of a whispered sentence was).",
    )
    vad_speech_pad_ms: int = Field(
        1500, ge=0, description="Audio kept on each side of detected speech (milliseconds), so soft word ends stay."
    )
    window_seconds: float = Field(
        240.0,
        ge=30.0,
        description="Audio decoded and held in memory at once for file jobs; bounds memory for any file length.",
    )
    file_lanes: int = Field(
        4,
        ge=1,
        le=8,
        description="Lanes per file job on a CPU (engine/lane_groups.py): above 1, a file of 2 minutes or more is "
        "cut into up to this many contiguous lanes per group, each faster-whisper's own transcribe, whose model "
        "calls run at once on the model's decoders (4: 1.6-2.8x faster than faster-whisper's default on 2 cores "
        "with tiny.en, 1.9-2.4x with base, at its WER on average: docs/performance.md); 1 decodes in windows, "
        "one after another, with the text one transcribe over the whole file gives.",
    )
    lane_beam_size: int = Field(
        5,
        ge=1,
        le=16,
        description="Beam size of the lanes when file_lanes is above 1 (5, faster-whisper's default: on "
        "single-thread decoders the lanes reach twice its speed at its own beam size).",
    )
    lane_context_tokens: int = Field(
        -1,
        ge=-1,
        le=223,
        description="Tokens of the text before a window that a lane gives the model as context (faster-whisper "
        "gives up to 223). -1: by the model: all for English-only models, 128 for multilingual ones (with all "
        "of it base's lanes looped in 1-3 windows of three of four 10-minute bench files, with 128 never, at the same "
        "WER and 1.2-1.5x the speed).",
    )
    workers: int = Field(
        3,
        ge=0,
        description="Job worker threads started inside `serve` (0: none, use `worker`). Each takes a queued job "
        "and waits for a decode slot, so with more workers than slots a short upload overtakes a long one.",
    )
    max_concurrent_decodes: int = Field(
        0,
        ge=0,
        description="Decodes (uploads, /transcribe, /v1, retranscribe) run at once per process; more wait in "
        "order, shortest audio first. With 2 or more, one is kept for audio of 30 s or less. 0: one per "
        "file_lanes decoders (cpu_decoders: what one file job in lanes keeps busy), at least 1, plus the one for "
        "short audio; 2 on CUDA. Live captions are not counted.",
    )
    clip_batch: int = Field(
        4,
        ge=1,
        le=64,
        description="Clips of 30 s or less transcribed at the same time on a CPU share one decode slot and "
        "their model calls, up to this many at once (4: ten clips sent together were all answered in 4.1-4.8 s "
        "against 5.4-5.8 s in two slots, at the same mean time per answer); 1 gives each clip a slot of its own.",
    )
    max_waiting_decodes: int = Field(
        16,
        ge=0,
        description="Requests (/transcribe, /v1) waiting for a decode slot beyond which new ones get 503 with "
        "Retry-After. Queued uploads always wait on the queue.",
    )
    queue_backend: Literal["sqlite", "redis"] = Field(
        "sqlite", description="Job queue storage: an SQLite file in the data directory, or a Redis server."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis server for queue_backend=redis.")
    lease_seconds: float = Field(
        15.0,
        ge=1.0,
        description="With queue_backend=redis, how long a worker's hold on a session's job lasts without a "
        "renewal (its heartbeat renews it every third of this). A worker that dies loses its jobs to another "
        "after this long; a worker paused for longer finds its job taken over and stops without writing.",
    )
    index_url: str = Field(
        "",
        description="Where the session index lives. Empty: an SQLite file in the data directory. "
        "postgresql://user:password@host/database: a PostgreSQL database (its own, or one no other program "
        "puts tables named sessions or segments in) that every host can reach; it is filled from the "
        "session files on first start, and `reindex` rebuilds it. Needs the postgres extra.",
    )
    queue_poll_seconds: float = Field(
        0.1, gt=0, description="Longest an idle worker waits before looking at the queue again."
    )
    max_upload_bytes: int = Field(4 * 1024**3, gt=0, description="Largest accepted upload, in bytes (default 4 GiB).")
    low_space_bytes: int = Field(
        1024**3,
        ge=0,
        description="Free space on the data directory's disk below which /storage and the History tab warn "
        "(default 1 GiB: room for an hour of uncompressed audio or a large video upload).",
    )
    api_key: SecretStr | None = Field(
        None,
        description="If set, every route but /health and the login page needs it: 'Authorization: Bearer <key>' "
        "from scripts, or the cookie the login page sets in a browser.",
    )
    insecure_no_auth: bool = Field(
        False,
        description="Let `serve` listen on a non-loopback address without an api_key (anyone who can reach it "
        "can read and delete every session).",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names (comma-separated) served besides localhost, 127.0.0.1 and ::1; '*' serves any. "
        "Requests naming another Host are refused, which stops DNS rebinding.",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (comma-separated, e.g. https://notes.example.com) besides the server's own whose pages "
        "may send state-changing requests and open WebSockets.",
    )
    client_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A connection that sends no byte of a request's headers or body for this long is closed "
        "(half-open and slow clients would otherwise hold it forever).",
    )
    keep_alive_seconds: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this long without a new request."
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Open connections (WebSockets and event streams included) above which new requests get 503.",
    )
    request_head_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="The whole head of a request (request line and headers) must arrive within this long of the "
        "connection opening or the previous response ending, or the connection is closed: a client sending a "
        "header a byte at a time cannot hold it open.",
    )
    max_connections_per_client: int = Field(
        100,
        ge=0,
        description="Open connections one client address may hold (WebSockets and event streams included); one "
        "more is answered 503 and closed, so one address cannot take all of max_connections. 0: no limit. "
        "Behind a reverse proxy every connection comes from the proxy's address: raise it or set 0 there, "
        "and let the proxy limit its clients.",
    )
    login_free_failures: int = Field(
        5,
        ge=0,
        le=1000,
        description="Wrong keys (login form or Bearer, each different one counted once) a client address may send "
        "before it must wait between tries.",
    )
    login_max_wait_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="After login_free_failures, each further wrong key makes its address wait 1 s, 2 s, 4 s ... "
        "up to this long before a key from it is looked at again (keys sent meanwhile get 429 with Retry-After, "
        "the right one too). Another address, and a browser already signed in, are not affected.",
    )
    login_forget_seconds: float = Field(
        900.0,
        gt=0,
        description="An address's wrong keys are forgotten this long after the last one, or at once when it "
        "sends the right key.",
    )

    speakers: str = Field(
        "off",
        pattern=r"^(off|auto|[1-9][0-9]?)$",
        description="Label who speaks when, after transcription, for jobs that do not say (the `speakers` "
        "form field): 'off', 'auto' (count the speakers) or a number of speakers. Needs the optional "
        "extra: pip install 'tapescribe[speakers]'. Off by default: on 2 CPU cores it adds 0.03-0.2x "
        "real time and about 1 GB of memory to a job.",
    )
    speaker_merge_threshold: float = Field(
        0.68,
        gt=0,
        le=1,
        description="Two speaker clusters whose centres are at least this similar (cosine) are taken for one "
        "speaker, within a recording (a recording past 20 minutes is clustered 10 minutes at a time, then the "
        "clusters of all its parts are merged at this threshold too). "
        "Lower merges more. Measured on conversations of the shared recordings and LibriSpeech voices "
        "(bench/speakers.py, docs/performance.md): at 0.575 two men whose voices are 0.6 alike became one speaker; "
        "at 0.7 one voice of a 132 s conversation stayed two clusters 0.698 alike.",
    )
    speaker_voice_match_threshold: float = Field(
        0.7,
        gt=0,
        le=1,
        description="A speaker whose voice is at least this similar (cosine of CAM++ embeddings) to a remembered "
        "voice (a speaker named with `remember`) is named by it; the transcript's `speaker_matches` shows the "
        "similarity. Lower names more speakers, strangers included: on the measured voices 0.7 took no stranger "
        "(0 of 72 pairs) and 0.6 took 6 of 72 (docs/performance.md).",
    )

    def api_key_value(self) -> str | None:
        """The API key as text, or None when none is set (an empty one included); only for checking a key."""
        if self.api_key is None:
            return None
        return self.api_key.get_secret_value() or None

    def vad_parameters(self) -> dict[str, float]:
        """The vad_* settings under faster-whisper's names."""
        return {
            "threshold": self.vad_threshold,
            "min_silence_duration_ms": self.vad_min_silence_ms,
            "speech_pad_ms": self.vad_speech_pad_ms,
        }

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("index_url")
    @classmethod
    def _index_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be empty (SQLite in the data directory) or a postgresql:// URL")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def decode_slots(self) -> int:
        """max_concurrent_decodes, with 0 resolved for this machine."""
        if self.max_concurrent_decodes:
            return self.max_concurrent_decodes
        if self.device == "cuda":
            return 2
        # a file job in lanes keeps file_lanes decoders busy; + the one kept for short audio
        return max(1, self.decoders // self.file_lanes) + 1

    @property
    def decoders(self) -> int:
        """cpu_decoders, with 0 resolved for this machine."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return self.cpu_decoders or max(1, cores // (self.cpu_threads or CT2_DEFAULT_THREADS))

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"

    @property
    def incoming_dir(self) -> Path:
        """Uploads being received; a finished one is renamed into sessions_dir."""
        return self.data_dir / "incoming"

    @property
    def index_path(self) -> Path:
        return self.data_dir / "index.sqlite3"

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.sqlite3"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def voices_dir(self) -> Path:
        """Remembered voices, one JSON file each (sessions/voices.py)."""
        return self.data_dir / "voices"

    @property
    def numba_cache_dir(self) -> Path:
        """Compiled code numba keeps (UMAP, used by the speakers extra), inside the data directory."""
        return self.data_dir / "cache" / "numba"
