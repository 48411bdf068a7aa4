"""Chunked live sessions (the original `POST /transcribe-live`): keep every chunk, answer with the text so far.

Chunks are MediaRecorder slices: chunk 0 carries the webm header and later ones continue it, so
the recording is the chunks read in order. Each new chunk transcribes the audio after the last
settled segment. While that unsettled tail is shorter than one Whisper window it is all decoded
again (so a short recording ends exactly as an offline transcription would); past that, segments
ending well before the edge are settled and later chunks start after them. Each chunk's decode is
a live step of the process's DecodeScheduler: long file jobs pause at their next segment meanwhile.

What a tail is decoded with comes from the one transcription pipeline (jobs/pipeline.py), as for an
upload of the same audio: the model the request names, else the one its language needs (requested,
or detected on the recording so far, judged again on each chunk until the recording holds
CHOICE_SECONDS), the server's VAD and decoding defaults and the decode plan. So a recording sent
as chunks is written by the model and in the language an upload of it gets, never an English-only
model's guesses at Spanish.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from tapescribe.engine.audio import SAMPLE_RATE, chunks_pcm, probe, starts_recording
from tapescribe.engine.transcriber import LanguageFound, Resume, for_transcript
from tapescribe.errors import BadRequest, Conflict, UnsupportedMedia
from tapescribe.jobs.pipeline import AudioInput, DecodeHooks, TranscriptionPipeline
from tapescribe.jobs.scheduler import DecodeScheduler
from tapescribe.sessions import files
from tapescribe.sessions.ids import checked_session_id
from tapescribe.sessions.service import DONE, SessionService, status_record

CHUNK_INDEX = re.compile(r"[0-9]{1,6}")  # ASCII digits only: str.isdigit() also accepts '²'
LIVE_STATE = "live.json"
CHUNK_ROUTE = "transcribe-live"  # marks the sessions this service made: only they take chunks
SETTLE_SILENCE_AFTER = 10.0  # seconds of tail without speech that are settled as silence
SETTLE_MARGIN = 2.0  # a segment ending this close to the audio received so far may still change
MAX_CHUNK_BYTES_PER_SECOND = 256_000  # above 48 kHz stereo 16-bit PCM; opus/vorbis send a tenth of it
SETTLE_AFTER = 24.0  # below this much unsettled audio, all of it is decoded again, as Whisper's one window
CHOICE_SECONDS = 5.0  # the model is chosen again on each chunk until the recording holds this much audio
CHOICE = ("model", "model_reason", "detected_language", "detected_language_probability")


def adds_audio(new_samples: int, chunk_bytes: int) -> bool:
    """Whether a continuation chunk added the sound its size promises. Any browser codec sends fewer
    than MAX_CHUNK_BYTES_PER_SECOND; noise glued to a recording completes one frame at most."""
    return new_samples > 0 and new_samples / SAMPLE_RATE >= chunk_bytes / MAX_CHUNK_BYTES_PER_SECOND


def same_bytes(first: Path, second: Path) -> bool:
    if first.stat().st_size != second.stat().st_size:
        return False
    with open(first, "rb") as a, open(second, "rb") as b:
        while True:
            block_a, block_b = a.read(1 << 20), b.read(1 << 20)
            if block_a != block_b:
                return False
            if not block_a:
                return True


class LiveChunkService:
    def __init__(self, sessions: SessionService, pipeline: TranscriptionPipeline, decodes: DecodeScheduler) -> None:
        self.sessions = sessions
        self.pipeline = pipeline
        self.decodes = decodes
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(session_id, threading.Lock())

    def new_session(self, language: str | None, model: str | None, owner: str | None = None) -> str:
        return self.sessions.create(
            source="live",
            title="Live",
            status=status_record(DONE, progress=1.0, message=None),
            requested_language=language,
            requested_model=model,  # None: chosen by language (jobs/routing.py), on the first chunks
            model=model,
            live_route=CHUNK_ROUTE,
            **({"owner": owner} if owner else {}),
        )

    def receive(
        self, given_session_id: str | None, raw_index: str | None, received: Path, fields: dict[str, Any] | None
    ) -> dict[str, Any]:
        """One `/transcribe-live` request, after its upload arrived at `received`: join the given session
        (or start one with `fields` from the first chunk), store the chunk, answer with the text so far."""
        session_id = None
        if given_session_id:
            session_id = checked_session_id(given_session_id.strip())
            self.check_joinable(session_id)
        if raw_index is None:
            index = len(self.sessions.store.chunk_paths(session_id)) if session_id else 0
        elif CHUNK_INDEX.fullmatch(raw_index.strip()):
            index = int(raw_index)
        else:
            raise BadRequest("chunk_index must be a whole number from 0 to 999999.")
        if session_id is None:
            fields = fields or {}
            self.check_first_chunk(received)
            session_id = self.new_session(fields.get("requested_language"), fields.get("model"), fields.get("owner"))
        staged = self.sessions.store.dir(session_id) / f".incoming_chunk_{index}_{uuid.uuid4().hex}"
        received.rename(staged)
        return {**self.add_chunk(session_id, index, staged), "chunk_index": index}

    def check_joinable(self, session_id: str) -> None:
        """Chunks may only join a session that /transcribe-live made; Conflict (and nothing changed) otherwise."""
        session = self.sessions.session(session_id)
        made_by_chunks = session.get("live_route") == CHUNK_ROUTE or (
            # sessions of earlier versions carry no mark: live, and not a /ws/live stream
            session.get("source") == "live" and "live_format" not in session and "live_route" not in session
        )
        if not made_by_chunks:
            raise Conflict(
                "This session was not started by /transcribe-live, so chunks cannot be added to it; "
                "nothing was changed.",
                session_id=session_id,
            )

    @staticmethod
    def check_first_chunk(received: Path) -> None:
        """A chunk that starts a recording must decode on its own: UnsupportedMedia before anything is kept."""
        try:
            probe(received)
        except UnsupportedMedia as error:
            raise UnsupportedMedia(
                "This chunk is not audio: the first chunk of a recording must be a webm "
                "(or other audio) file with its header. Nothing was kept.",
                **error.details,
            ) from None

    def add_chunk(self, session_id: str, index: int, received: Path) -> dict[str, Any]:
        """Store chunk `index` (idempotent for identical bytes, Conflict otherwise) and return the text so far.

        A chunk that adds no decodable audio to the recording is refused (UnsupportedMedia) and not kept.
        """
        with self._lock(session_id):
            store = self.sessions.store
            target = store.chunk_path(session_id, index)
            if target.exists():
                same = same_bytes(target, received)
                received.unlink()
                if not same:
                    raise Conflict(
                        f"Chunk {index} was already received with different audio; it is kept unchanged.",
                        chunk_index=index,
                    )
                return {**self._answer(session_id), "duplicate": True}
            if starts_recording(received):
                try:
                    self.check_first_chunk(received)
                except UnsupportedMedia:
                    received.unlink()
                    raise
            received.rename(target)
            files.fsync_dir(target.parent)
            return {**self._transcribe_tail(session_id, index), "duplicate": False}

    def _answer(self, session_id: str) -> dict[str, Any]:
        transcription = self.sessions.transcription(session_id) or {"text": "", "segments": []}
        return {"session_id": session_id, "text": transcription["text"], "segments": transcription["segments"]}

    def _transcribe_tail(self, session_id: str, index: int) -> dict[str, Any]:
        store = self.sessions.store
        state_path = store.dir(session_id) / LIVE_STATE
        state = files.read_json(state_path, {"settled": [], "settled_until": 0.0})
        skip = int(round(state["settled_until"] * SAMPLE_RATE))
        blocks, total = [], 0
        chunks = store.chunk_paths(session_id)
        for block in chunks_pcm(chunks):
            if skip >= len(block):
                skip -= len(block)
                total += len(block)
                continue
            blocks.append(block[skip:])
            total += len(block)
            skip = 0
        newest = chunks[-1]
        if newest.name == store.chunk_path(session_id, index).name and not adds_audio(
            total - state.get("decoded_samples", 0), newest.stat().st_size
        ):
            store.chunk_path(session_id, index).unlink()
            raise UnsupportedMedia(
                f"Chunk {index} is not audio that continues this recording (it added no "
                "sound that could be decoded); it was not kept.",
                chunk_index=index,
            )
        state["decoded_samples"] = total
        tail = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
        offset = state["settled_until"]
        settled, draft = list(state["settled"]), []
        if len(tail) >= SAMPLE_RATE // 2:
            audio = AudioInput(samples=tail, samples_start=offset)
            with self.decodes.live_step():
                session = self._chosen(session_id, state, audio, total)
                found = self._decode(session_id, session, audio)
            tail_end = offset + len(tail) / SAMPLE_RATE
            keep = 0
            long_tail = len(tail) / SAMPLE_RATE >= SETTLE_AFTER
            while long_tail and keep < len(found) - 1 and found[keep]["end"] <= tail_end - SETTLE_MARGIN:
                keep += 1
            if found:
                settled += found[:keep]
                draft = found[keep:]
                if keep:
                    state["settled_until"] = found[keep - 1]["end"]
            elif len(tail) / SAMPLE_RATE > SETTLE_SILENCE_AFTER:
                state["settled_until"] = offset + len(tail) / SAMPLE_RATE - 1.0
        state["settled"] = settled
        files.write_json_atomic(state_path, state)
        segments = [{"id": n, **segment, "final": n < len(settled)} for n, segment in enumerate(settled + draft)]
        duration = round(total / SAMPLE_RATE, 3)
        session = self.sessions.update_session(session_id, duration=duration)
        self.sessions.save_transcription(
            session_id,
            {
                "text": "".join(segment["text"] for segment in segments).strip(),
                "language": session.get("language"),
                "language_probability": session.get("language_probability"),
                "model": session.get("model"),
                "model_reason": session.get("model_reason"),
                "detected_language": session.get("detected_language"),
                "detected_language_probability": session.get("detected_language_probability"),
                "complete": True,
                "segments": segments,
            },
        )
        self.sessions.set_status(session_id, DONE, progress=1.0)
        return self._answer(session_id)

    def _chosen(self, session_id: str, state: dict[str, Any], tail: AudioInput, total: int) -> dict[str, Any]:
        """The session with its model chosen as the pipeline chooses for an upload of the recording so far:
        chosen again on each chunk while the recording is shorter than CHOICE_SECONDS (nothing is settled
        then, so the tail is the whole recording), kept after that."""
        session = self.sessions.session(session_id)
        chosen_at = state.get("chosen_at_samples")
        if session.get("model_reason") and (
            chosen_at is None or chosen_at >= CHOICE_SECONDS * SAMPLE_RATE or total <= chosen_at
        ):
            return session
        request = {
            # sessions of earlier versions hold the model chosen then, without `requested_model`
            "model": session.get("requested_model", session.get("model")),
            "requested_language": session.get("requested_language"),
        }
        choice = self.pipeline.choose(request, tail, tail.duration())
        state["chosen_at_samples"] = total
        fields = {key: choice.get(key) for key in CHOICE}
        if any(session.get(key) != value for key, value in fields.items()):
            session = self.sessions.update_session(session_id, **fields)
        return session

    def _decode(self, session_id: str, session: dict[str, Any], tail: AudioInput) -> list[dict[str, Any]]:
        """The tail's segments (times in the recording), decoded as the pipeline decodes an upload."""
        found: list[LanguageFound] = []
        hooks = DecodeHooks(on_language=found.append)
        # No text prompt from the settled text: tiny.en follows a prompt rather than the audio
        # (measured for windows and for /ws/live; both dropped it).
        with contextlib.ExitStack() as stack:
            plan = self.pipeline.plan(False)
            model = self.pipeline.model(session.get("model"), plan, stack)
            records = list(self.pipeline.decode(model, session, tail, plan, Resume(start=tail.samples_start), hooks))
        if found and not session.get("language"):
            self.sessions.update_session(
                session_id, language=found[-1].language, language_probability=round(found[-1].probability, 4)
            )
        return [for_transcript(record.to_dict()) for record in records]
