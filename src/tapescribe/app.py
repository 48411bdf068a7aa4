"""create_app(settings): wiring and lifespan only."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from tapescribe import __version__
from tapescribe.api import (
    events,
    library,
    live_ws,
    login,
    openai_compat,
    sessions,
    shares,
    speakers,
    system,
    transcribe,
    users,
    voices,
)
from tapescribe.api.errors import error_responses, install_error_handlers
from tapescribe.api.identity import owned_session
from tapescribe.api.security import TrustBoundary
from tapescribe.api.throttle import KeyThrottle
from tapescribe.config import Settings
from tapescribe.live.chunk_service import LiveChunkService
from tapescribe.runtime import Runtime

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"


def create_app(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime.recover()
        runtime.queue.start_workers(settings.workers)
        runtime.start_takeover()
        try:
            yield
        finally:
            # Jobs stop at their next model call and resume at the next start. One that did not stop in
            # time keeps the index it may still write to (the process ends it).
            if runtime.stop():
                runtime.sessions.index.close()  # PostgreSQL: its connections end now, not when the process does

    app = FastAPI(title="tapescribe", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    app.state.live_chunks = LiveChunkService(runtime.sessions, runtime.transcription.pipeline, runtime.decodes)
    # Wrong keys per client address, this process's own: the login form and Bearer keys share it.
    app.state.key_throttle = KeyThrottle(
        settings.login_free_failures, settings.login_max_wait_seconds, settings.login_forget_seconds
    )
    install_error_handlers(app)
    app.add_middleware(TrustBoundary, settings=settings, throttle=app.state.key_throttle, users=runtime.users)
    app.include_router(login.router)
    # Every route sits behind the trust boundary: a foreign Host or Origin (403), a missing key (401),
    # a key from an address that sent too many wrong ones (429).
    guarded = error_responses(401, 403, 429)
    routers = (
        transcribe.router,
        sessions.router,
        library.router,
        speakers.router,
        voices.router,
        events.router,
        live_ws.router,
        openai_compat.router,
        shares.router,
        users.router,
    )
    for router in routers:
        # A route that names a session serves its owner only (404 for anyone else's, as for none).
        app.include_router(router, responses=guarded, dependencies=[Depends(owned_session)])
    app.include_router(shares.shared)  # /shared/<id>/<token>: the token is the credential, read-only
    app.include_router(system.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app
