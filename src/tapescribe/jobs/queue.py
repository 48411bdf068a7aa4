"""JobQueue: Huey behind a small interface, with an SQLite file (default) or Redis as its storage.

Huey drops a task once a worker takes it, so the queue alone would lose a job interrupted by a
crash. The session files are the record instead: `recover()` puts every session whose status.json
says queued or processing back on the queue, and the job itself skips sessions that are finished
or held by another worker. A duplicate entry therefore costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from huey import PriorityRedisHuey, SqliteHuey
from huey.consumer import Consumer
from huey.storage import SqliteStorage

from tapescribe.config import Settings
from tapescribe.errors import is_disk_full
from tapescribe.sessions.space import DiskSpace

log = logging.getLogger(__name__)

TASK_NAME = "transcribe_session"


class _EmbeddedConsumer(Consumer):
    """A consumer that leaves signal handling to its host (uvicorn, or our CLI)."""

    def _set_signal_handlers(self) -> None:
        pass


class _StoppingConsumer(Consumer):
    """`tapescribe worker`'s consumer: a stop (SIGINT, SIGTERM) first tells the jobs to stop at their next
    model call, so the workers it joins end within seconds instead of at the end of their files."""

    def __init__(self, *args, on_stop: Callable[[], None], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._on_stop = on_stop

    def stop(self, graceful: bool = False) -> None:
        self._on_stop()
        super().stop(graceful=graceful)


class _SpaceAwareSqliteStorage(SqliteStorage):
    """Taking a task deletes its row, which needs space in the queue's WAL. On a full disk that fails
    on every poll; Huey would log a traceback each time (ten a second). Instead it counts as an
    empty queue and the disk is reported full (one log line); the task is taken once a poll succeeds."""

    def __init__(self, *args, space: DiskSpace, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.space = space

    def dequeue(self):
        try:
            return super().dequeue()
        except Exception as error:
            if not is_disk_full(error):
                raise
            self.space.note_full("taking a job from the queue")
            return None


def priority_for(duration: float | None) -> int:
    """Shorter recordings first, so a quick clip is never stuck behind a three-hour file."""
    if not duration:
        return 1_000_000
    return max(0, 1_000_000 - int(duration))


class JobQueue:
    def __init__(self, settings: Settings, handler: Callable[[str], object], space: DiskSpace) -> None:
        self.settings = settings
        if settings.queue_backend == "redis":
            self.huey = PriorityRedisHuey("tapescribe", url=settings.redis_url, results=False)
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey(
                "tapescribe",
                filename=str(settings.queue_path),
                results=False,
                storage_class=_SpaceAwareSqliteStorage,
                space=space,
            )
        self._task = self.huey.task(name=TASK_NAME)(handler)
        self._consumer: Consumer | None = None

    def enqueue(self, session_id: str, duration: float | None = None) -> None:
        self.huey.enqueue(self._task.s(session_id, priority=priority_for(duration)))

    def pending(self) -> int:
        return self.huey.pending_count()

    def start_workers(self, count: int) -> None:
        if count <= 0 or self._consumer is not None:
            return
        self._consumer = _EmbeddedConsumer(
            self.huey,
            workers=count,
            worker_type="thread",
            periodic=False,
            initial_delay=min(0.05, self.settings.queue_poll_seconds),
            max_delay=self.settings.queue_poll_seconds,
            check_worker_health=False,
        )
        self._consumer.start()
        log.info("started %d job worker thread(s)", count)

    def stop_workers(self) -> None:
        """Stop taking jobs. A job in progress is interrupted; it resumes from its journal next start."""
        if self._consumer is not None:
            self._consumer.stop(graceful=False)
            self._consumer = None

    def run_workers_forever(self, count: int, on_stop: Callable[[], None], grace_seconds: float) -> None:
        """For `tapescribe worker`: the consumer in the foreground, Ctrl-C or SIGTERM to stop. `on_stop`
        is called first (it tells the jobs to stop); the workers are then waited for up to `grace_seconds`
        (a job that stopped goes on at the next start)."""
        consumer = _StoppingConsumer(
            self.huey,
            on_stop=on_stop,
            shutdown_timeout=grace_seconds,
            workers=max(1, count),
            worker_type="thread",
            periodic=False,
            initial_delay=min(0.05, self.settings.queue_poll_seconds),
            max_delay=self.settings.queue_poll_seconds,
        )
        consumer.run()
