"""A live stream as a session: keep every byte received, transcribe as it comes, finish like an upload.

One `LiveStream` per connection. The connection hands it audio messages (`receive`) and says when
the input ended (`end_input`: a clean stop and a dropped connection are the same call). Three
threads share the work, so neither the socket nor the model ever waits for the other:

- the caller's: each message is stored as it arrives (`chunk_<n>.webm` per MediaRecorder slice,
  or raw PCM appended to `chunk_<n>.pcm`, a new file every ten seconds) and handed on;
- a decoder (webm only, live/webm_decoder.py): PyAV reads the slices as one stream through a pipe
  whose read blocks until more bytes come, so each byte is decoded once;
- a worker: waits for `min_step_seconds` of new audio, then takes *all* audio received since its
  last step (a machine that cannot keep up makes longer steps instead of a growing queue), runs
  the streaming policy and emits what it settled. Its steps are live steps of the process's
  DecodeScheduler: long file jobs pause at their next segment while an utterance is being
  captioned, and go on between utterances.

When the input has ended and the last audio is settled, the session gets one playable recording
(`original_audio.webm`, the slices joined; `original_audio.wav` for PCM), the live transcript is kept
as the version "live-draft", and the session is queued for a second pass over the whole recording
with the configured model, which replaces the draft. The session is created with the first audio
bytes, so a connection that sends none leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tapescribe.engine.agreement import Word, words_text
from tapescribe.engine.audio import SAMPLE_RATE
from tapescribe.engine.models import ModelPool
from tapescribe.engine.records import Transcript
from tapescribe.engine.streaming import StepResult, StreamingOptions, StreamingTranscriber
from tapescribe.errors import (
    DISK_FULL_MESSAGE,
    InsufficientStorage,
    TapescribeError,
    TranscriptionFailed,
    UploadTooLarge,
    is_disk_full,
)
from tapescribe.jobs.scheduler import DecodeScheduler
from tapescribe.live.language import LiveChoice, LiveLanguage
from tapescribe.live.messages import LiveRequest, draft_transcription, final_messages
from tapescribe.live.pipes import AudioInbox, BytePipe
from tapescribe.live.recording import (
    WAV_LIMIT_BYTES,
    ChunkWriter,
    finish_stream,
    finish_when_space_is_back,
    pcm_samples,
)
from tapescribe.live.webm_decoder import decode_webm
from tapescribe.sessions import files
from tapescribe.sessions.service import PROCESSING, QUEUED, SessionService, status_record

log = logging.getLogger(__name__)

SAVE_TRANSCRIPT_EVERY_SECONDS = 5.0  # the draft on disk lags at most this much behind the socket
# Within an utterance the next audio is due in a step's time; a stream whose audio stops coming for
# longer (a stalled client) lets long jobs go on rather than pause them until it ends.
UTTERANCE_AUDIO_DUE_SECONDS = 1.0
# A live step that fails (a library error) costs no audio: every byte is on disk already, the next
# step decodes the same audio again, and the second pass transcribes the whole recording anyway.
# After this many failed steps in a row the stream stops captioning but still takes and keeps audio.
MAX_FAILED_STEPS = 3
KEPT_ON_FULL_DISK = (
    "The server's disk is full: the stream stopped here. The audio received until now is kept in "
    "session {session_id}; it is made into a recording and transcribed once space is freed. "
    "Nothing already stored was lost."
)

Emit = Callable[[dict[str, Any]], None]


class LiveStream:
    """One connection's stream. `submit` queues a session for the second pass (JobControl.submit);
    `decodes` is the process's scheduler, which pauses long jobs while this stream's steps run."""

    def __init__(
        self,
        sessions: SessionService,
        models: ModelPool,
        decodes: DecodeScheduler,
        submit: Callable[[str], None],
        request: LiveRequest,
        emit: Emit,
        *,
        options: StreamingOptions | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.sessions = sessions
        self.models = models
        self.decodes = decodes
        self.submit = submit
        self.request = request
        self.options = options or StreamingOptions(language=request.language)
        self.max_bytes = min(max_bytes or WAV_LIMIT_BYTES, WAV_LIMIT_BYTES if request.format == "pcm" else 2**62)
        self.session_id: str | None = None
        self._emit = emit
        self._inbox = AudioInbox()
        self._pipe = BytePipe() if request.format == "webm" else None
        self._writer: ChunkWriter | None = None
        self._pcm_remainder = b""
        self._input_ended = threading.Event()
        self._receiving = threading.Lock()  # a message being stored, against the input ending under it
        self._words: list[Word] = []
        self._segment = -1  # number of the transcript segment the last settled word is in
        self._partial_text = ""
        self._language = request.language
        self._samples = 0  # audio decoded so far
        self._failed_steps = 0  # live steps failed in a row
        self._disk_full_told = False  # the client was told the disk is full (told once)
        self._saved_at = 0.0
        self._stream_lock = contextlib.ExitStack()  # the session's job lock while streaming
        self._opening = LiveLanguage(models, request.live_model, self.options)
        self._worker = threading.Thread(target=self._run, name="live-stream", daemon=False)
        self._decoder = threading.Thread(target=self._decode, name="live-decoder", daemon=False) if self._pipe else None

    # -- the connection's side -------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()
        if self._decoder is not None:
            self._decoder.start()

    def receive(self, data: bytes) -> None:
        """Store one audio message and pass it on. The first one creates the session."""
        with self._receiving:
            if data and not self._input_ended.is_set():
                self._store(data)

    def _store(self, data: bytes) -> None:
        if self._writer is not None and self._writer.bytes + len(data) > self.max_bytes:
            raise UploadTooLarge(f"A live stream is limited to {self.max_bytes} bytes; the audio so far is kept.")
        try:
            writer = self._writer or self._create_session()
            writer.write(data)  # the whole message or nothing of it
        except Exception as error:
            if self._writer is None:
                self._take_back()
            if is_disk_full(error):
                raise self._disk_full() from error
            raise
        if self._writer is None:
            self._writer = writer
            self._emit({"type": "session", "session_id": self.session_id})
        if self._pipe is not None:
            self._pipe.feed(data)
        else:
            data = self._pcm_remainder + data
            usable = len(data) - len(data) % 2
            self._pcm_remainder = data[usable:]
            if usable:
                self._inbox.put(pcm_samples(data[:usable]))

    def end_input(self) -> None:
        """No more audio (a stop message or a dropped connection): the worker settles the rest and finishes."""
        with self._receiving:
            if self._input_ended.is_set():
                return
            try:
                if self._writer is not None:
                    self._writer.close()
            except Exception:  # an fsync refused: what was written stays, the stream still finishes
                log.exception("closing the chunks of live session %s failed", self.session_id)
            finally:
                self._input_ended.set()
        if self._pipe is not None:
            self._pipe.end()
        else:
            self._inbox.close()

    # -- the decoder's side ----------------------------------------------------------------------

    def _decode(self) -> None:
        assert self._pipe is not None, "only webm streams have a decoder thread"
        decode_webm(self._pipe, self._inbox, self._input_ended, lambda: self._writer is not None, self._fail)

    # -- the worker's side -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._transcribe()
        except Exception as error:
            log.exception("live transcription failed")
            self._fail(TranscriptionFailed(f"Live transcription failed: {type(error).__name__}: {error}"))
        self._input_ended.wait()
        later = False
        try:
            self._finish()
        except Exception as error:
            later = self._finish_failed(error)
        finally:
            if not later:
                self._stream_lock.close()

    def _finish_failed(self, error: Exception) -> bool:
        """Tell the client why the stream could not be finished. On a full disk the session keeps its
        chunks (and its job lock) and is finished once space is back; True then."""
        if self.session_id is None or not is_disk_full(error):
            log.exception("finishing live session %s failed", self.session_id)
            self._fail(TranscriptionFailed(f"Finishing the live session failed: {type(error).__name__}."))
            self._emit({"type": "done", "session_id": self.session_id, "status": "error", "text": "", "duration": None})
            return False
        log.info("live session %s waits for disk space to be finished", self.session_id)
        if not self._disk_full_told:
            self._fail(self._disk_full())
        self._emit_done(PROCESSING, self._transcription(True, self._language).text)
        finish_later = (self.sessions.space, self.session_id, self._finish_session, self._stream_lock.close)
        threading.Thread(target=finish_when_space_is_back, args=finish_later, name="live-finish", daemon=True).start()
        return True

    def _transcribe(self) -> None:
        """Step on the audio as it comes. From a step that hears an utterance going on until the
        step that settles it, the stream keeps the scheduler's live priority, also while it waits
        for its next audio (due in a moment): a long job's window started in that gap would slow
        the steps after it (median latency 2.4 s instead of 1.4 s beside a 10-minute upload).
        Between utterances long jobs go on."""
        policy: StreamingTranscriber | None = None
        at_least = max(1, int(self.options.min_step_seconds * SAMPLE_RATE))
        with contextlib.ExitStack() as priority:
            holding = False
            while True:
                samples, ended = self._inbox.take(at_least)
                self._samples += len(samples)
                if self._failed_steps >= MAX_FAILED_STEPS:  # captions off; the audio is still kept
                    if ended:
                        return
                    continue
                if policy is None:
                    policy = self._opening.policy(samples, ended)  # None: the language is still being heard
                    if policy is None:
                        if ended:
                            return
                        continue
                    self._chose(self._opening.choice)
                    samples = samples[:0]  # the policy was fed all audio so far
                if not holding:
                    priority.enter_context(self.decodes.live_step())
                    holding = True
                policy.feed(samples)
                result = self._step(policy, ended)
                if result is not None:
                    self._publish(result, policy)
                if ended:
                    return
                due = UTTERANCE_AUDIO_DUE_SECONDS if policy.in_utterance else 0.0
                if not self._inbox.ready(at_least, within=due):
                    priority.close()
                    holding = False

    def _step(self, policy: StreamingTranscriber, ended: bool) -> StepResult | None:
        """One step of the live policy; None if it failed (see MAX_FAILED_STEPS): the stream goes on."""
        try:
            result = policy.finish() if ended else policy.step()
        except Exception:
            self._failed_steps += 1
            log.exception(
                "a live step of session %s failed (%d in a row); its audio is kept and decoded again%s",
                self.session_id,
                self._failed_steps,
                "" if self._failed_steps < MAX_FAILED_STEPS else "; live captions stop, the second pass transcribes it",
            )
            return None
        self._failed_steps = 0
        return result

    def _chose(self, choice: LiveChoice | None) -> None:
        """The live model chosen by the language heard (live/language.py): said to the client, kept in the draft."""
        if choice is not None:
            self.request = replace(self.request, live_model=choice.model)
            self._language = choice.language or self._language
            self._emit(choice.message())

    def _publish(self, result: StepResult, policy: StreamingTranscriber) -> None:
        self._language = policy.language or self._language
        if result.final:
            self._words += result.final
            self._emit_finals(result.final)
        partial = words_text(result.partial)
        if partial != self._partial_text:
            self._partial_text = partial
            message: dict[str, Any] = {"type": "partial", "text": partial}
            if result.partial:
                message.update(start=round(result.partial[0].start, 3), end=round(result.partial[-1].end, 3))
            self._emit(message)
        if result.final and time.monotonic() - self._saved_at >= SAVE_TRANSCRIPT_EVERY_SECONDS:
            try:
                self._save_draft(complete=False)
            except Exception as error:  # on a full disk the draft waits; the captions go on
                if not is_disk_full(error):
                    raise
                self.sessions.space.note_full(f"saving the live draft of session {self.session_id}")

    def _emit_finals(self, words: list[Word]) -> None:
        messages, self._segment = final_messages(self._segment, words)
        for message in messages:
            self._emit(message)

    # -- the session -----------------------------------------------------------------------------

    def _create_session(self) -> ChunkWriter:
        """The session, made with the first audio; its first chunk is written by the caller. A session
        made here but whose first chunk cannot be stored is taken back (`_take_back`)."""
        title = self.request.title or f"Live {files.utc_now()[:16].replace('T', ' ')}"
        self.session_id = self.sessions.create(
            source="live",
            title=title,
            status=status_record(PROCESSING, message="Live: receiving audio."),
            requested_language=self.request.language,
            model=self.request.model,
            live_format=self.request.format,
            options={"speakers": self.request.speakers} if self.request.speakers else {},
            **({"owner": self.request.owner} if self.request.owner else {}),
        )
        # Held while the stream runs: a process starting meanwhile must not take the session for an
        # interrupted one (finish_interrupted_streams finishes those whose lock nobody holds).
        self._stream_lock.enter_context(self.sessions.locks.hold(self.session_id))
        return ChunkWriter(self.sessions.store.dir(self.session_id), self.request.format)

    def _take_back(self) -> None:
        """A session whose first audio could not be stored is taken back: the client is told nothing
        was kept, so nothing is left behind (and no session sits in `processing` without audio)."""
        if self.session_id is not None:
            self._stream_lock.close()
            self.sessions.withdraw(self.session_id)
            self.session_id = None

    def _disk_full(self) -> InsufficientStorage:
        """The error for a stream the disk cannot hold more of: after its first chunk the session keeps
        what arrived and is finished when the input ends (or once space is back)."""
        self.sessions.space.note_full("receiving a live stream")
        self._disk_full_told = True
        if self._writer is None:
            return InsufficientStorage(DISK_FULL_MESSAGE)
        return InsufficientStorage(KEPT_ON_FULL_DISK.format(session_id=self.session_id), session_id=self.session_id)

    @property
    def _seconds(self) -> float:
        return self._samples / SAMPLE_RATE

    def _transcription(self, complete: bool, language: str | None) -> Transcript:
        return draft_transcription(self._words, language, self.request.live_model, complete)

    def _save_draft(self, complete: bool) -> Transcript:
        self._saved_at = time.monotonic()
        transcription = self._transcription(complete, self._language)
        if self.session_id is not None:
            self.sessions.save_transcription(self.session_id, transcription, index=complete)
        return transcription

    def _finish(self) -> None:
        """As an upload ends: one playable recording, the draft kept as a version, the second pass queued."""
        if self.session_id is None or self._writer is None:
            self._emit({"type": "done", "session_id": None, "status": None, "text": "", "duration": 0.0})
            return
        state, text = self._finish_session()
        self._emit_done(state, text)

    def _finish_session(self) -> tuple[str, str]:
        """finish_stream, then the second pass queued; the state left and the draft's text."""
        assert self.session_id is not None and self._writer is not None, "a stream with audio"
        draft = self._transcription(True, self._language)
        state = finish_stream(
            self.sessions,
            self.session_id,
            self.request.format,
            self._writer.paths(),
            duration=self._seconds,
            language=self._language,
            draft=draft,
        )
        self._stream_lock.close()  # the second pass takes it
        if state == QUEUED:
            self.submit(self.session_id)
        return state, draft.text

    def _emit_done(self, state: str, text: str) -> None:
        self._emit(
            {
                "type": "done",
                "session_id": self.session_id,
                "status": state,
                "text": text,
                "duration": round(self._seconds, 3),
            }
        )

    def _fail(self, error: TapescribeError) -> None:
        """Tell the client; the connection layer turns the error into the one error shape."""
        self._emit({"type": "error", "error": error})
