"""Running the app under uvicorn, with the connection limits a server open to a network needs.

uvicorn times out only idle keep-alive connections, and only after a response: a connection that
never finishes sending a request (half-open, or a slowloris client sending a byte a minute) is held
forever, and thousands of them exhaust the process. ClientTimeoutH11Protocol closes a connection
when the client has sent nothing for `client_timeout_seconds` while the server waits on it: for
the headers of a request, or for the rest of a body the app is ready to read. WebSockets are left
to uvicorn's ping (a peer that stops answering is dropped after ws_ping_interval + ws_ping_timeout).

A stop (SIGINT or SIGTERM, handled by uvicorn) tells the jobs to stop the moment uvicorn begins to
shut down (`on_stop`), not after it has waited for open connections: jobs, and requests that run a
job, end at their next model call, and the lifespan's end waits a few seconds for them. Whatever
still holds the process EXIT_GRACE_SECONDS after uvicorn is done (a model call that does not return,
a thread that does not end) does not keep it alive: it exits as after a SIGKILL, which loses nothing
saved, and the next start resumes the job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from tapescribe.config import Settings


class ClientTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline on a client that stops sending mid-request."""

    client_timeout: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._last_received = self.loop.time()
        self._client_timer: asyncio.TimerHandle | None = None
        self._arm_client_timer(self.client_timeout)

    def data_received(self, data: bytes) -> None:
        self._last_received = self.loop.time()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_client_timer()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._cancel_client_timer()  # the WebSocket protocol takes the connection over
        super().handle_websocket_upgrade(event)

    def _arm_client_timer(self, delay: float) -> None:
        self._client_timer = self.loop.call_later(delay, self._client_timer_fired)

    def _cancel_client_timer(self) -> None:
        if self._client_timer is not None:
            self._client_timer.cancel()
            self._client_timer = None

    def _waiting_on_client(self) -> bool:
        """True while the next step needs bytes from the client, not work from the app."""
        if self.conn.their_state is h11.IDLE:  # between requests, or part way through a request's headers
            return self.cycle is None or self.cycle.response_complete
        return self.conn.their_state is h11.SEND_BODY

    def _client_timer_fired(self) -> None:
        self._client_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused or not self._waiting_on_client():
            self._last_received = now  # the app is busy or not reading yet: the client is not late
        idle = now - self._last_received
        if idle >= self.client_timeout:
            self.logger.info("closing a connection that sent nothing for %.0f s", idle)
            self.transport.close()
        else:
            self._arm_client_timer(self.client_timeout - idle)


log = logging.getLogger(__name__)

EXIT_GRACE_SECONDS = 3.0  # after uvicorn is done, what may still hold the process this long at most
STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start


class StoppingServer(uvicorn.Server):
    """uvicorn's server, calling `on_stop` as its shutdown begins (before it waits for connections)."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_stop = on_stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_stop()
        await super().shutdown(sockets=sockets)


def _exit_soon(seconds: float) -> None:
    """End the process in `seconds` if it has not ended by then (a daemon thread: a prompt exit ends it)."""

    def exit_now() -> None:
        log.warning("still running %.0f s after the server stopped: exiting now (jobs resume at next start)", seconds)
        os._exit(1)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()


def run_server(app, settings: Settings, on_stop: Callable[[], None] = lambda: None) -> None:
    """Serve `app` on settings.host:port until stopped; `on_stop` is called as the stop begins."""
    protocol = type(
        "ClientTimeoutProtocol", (ClientTimeoutH11Protocol,), {"client_timeout": settings.client_timeout_seconds}
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=5,
        http=protocol,
        timeout_keep_alive=round(settings.keep_alive_seconds),
        limit_concurrency=settings.max_connections,
    )
    server = StoppingServer(config, on_stop)
    try:
        server.run()  # re-raises the signal that stopped it once done: SIGINT as KeyboardInterrupt
    finally:
        _exit_soon(EXIT_GRACE_SECONDS)
    if not server.started:
        sys.exit(STARTUP_FAILURE)
