"""Running the app under uvicorn, with the connection limits a server open to a network needs.

uvicorn times out only idle keep-alive connections, and only after a response: a connection that
never finishes sending a request (half-open, or a slowloris client sending a byte a minute) is held
forever, and thousands of them exhaust the process. ClientTimeoutH11Protocol adds three limits:

- a connection whose client sends nothing for `client_timeout_seconds` while the server waits on it
  (for the head of a request, or for the rest of a body the app is ready to read) is closed;
- the whole head of a request (request line and headers) must arrive within
  `request_head_timeout_seconds` of the server starting to wait for it (the connection opening, or
  the previous response ending): a client trickling a byte every few seconds is closed too;
- one client address holds at most `max_connections_per_client` connections (WebSockets included);
  a connection beyond that is answered 503 at once and closed, so one address cannot take every
  one of `max_connections`.

WebSockets are left to uvicorn's ping (a peer that stops answering is dropped after
ws_ping_interval + ws_ping_timeout).

A stop (SIGINT or SIGTERM, handled by uvicorn) tells the jobs to stop the moment uvicorn begins to
shut down (`on_stop`), not after it has waited for open connections: jobs, and requests that run a
job, end at their next model call, and the lifespan's end waits a few seconds for them. Whatever
still holds the process EXIT_GRACE_SECONDS after uvicorn is done (a model call that does not return,
a thread that does not end) does not keep it alive: it exits as after a SIGKILL, which loses nothing
saved, and the next start resumes the job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_remote_addr
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

from tapescribe.api.errors import error_body
from tapescribe.config import Settings

BUSY_RETRY_SECONDS = 5


class ClientConnections:
    """Open connections per client address, shared by the connections of one server (one event loop)."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client  # 0: no limit
        self.open: Counter[str] = Counter()

    def admit(self, address: str | None) -> bool:
        if address is None or not self.per_client:
            return True
        if self.open[address] >= self.per_client:
            return False
        self.open[address] += 1
        return True

    def release(self, address: str | None) -> None:
        if address is None or not self.per_client or not self.open[address]:
            return
        self.open[address] -= 1
        if not self.open[address]:
            del self.open[address]


def _peer(transport: asyncio.BaseTransport) -> str | None:
    client = get_remote_addr(transport)  # type: ignore[arg-type]
    return client[0] if client else None


def too_many_connections(per_client: int) -> bytes:
    """The 503 (in the one error shape) for a connection over its address's limit, as raw HTTP/1.1."""
    message = (
        f"This address already has {per_client} connections open to this server; "
        f"close some or try again in {BUSY_RETRY_SECONDS} s."
    )
    body = json.dumps(
        error_body(503, "too_many_connections", message, {"retry_after_seconds": BUSY_RETRY_SECONDS})
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nretry-after: {BUSY_RETRY_SECONDS}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class ClientTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus deadlines on a slow client and a cap on connections per address."""

    client_timeout: float = 30.0
    head_timeout: float = 30.0
    client_connections: ClientConnections = ClientConnections(0)  # run_server gives each server its own

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._client_timer: asyncio.TimerHandle | None = None
        self._peer_address = _peer(transport)
        self._admitted = self.client_connections.admit(self._peer_address)
        if not self._admitted:
            self.logger.warning("refusing a connection: %s has too many open", self._peer_address)
            transport.write(too_many_connections(self.client_connections.per_client))
            transport.close()
            return
        self._last_received = self.loop.time()
        self._head_deadline = self._last_received + self.head_timeout
        self._arm_client_timer()

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        self._last_received = self.loop.time()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_client_timer()
        if self._admitted:
            self._admitted = False
            self.client_connections.release(self._peer_address)
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._admitted and not self.transport.is_closing():
            self._head_deadline = self.loop.time() + self.head_timeout  # for the next request's head
            self._arm_client_timer()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._cancel_client_timer()  # the WebSocket protocol takes the connection over
        self._admitted = False  # and gives its address's place back when it ends (ClientCountedWebSocket)
        super().handle_websocket_upgrade(event)

    def _arm_client_timer(self) -> None:
        self._cancel_client_timer()
        delay = self.client_timeout - (self.loop.time() - self._last_received)
        if self._waiting_for_head():
            delay = min(delay, self._head_deadline - self.loop.time())
        self._client_timer = self.loop.call_later(max(delay, 0.0), self._client_timer_fired)

    def _cancel_client_timer(self) -> None:
        if self._client_timer is not None:
            self._client_timer.cancel()
            self._client_timer = None

    def _waiting_for_head(self) -> bool:
        """True between requests, or part way through a request's headers."""
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def _waiting_on_client(self) -> bool:
        """True while the next step needs bytes from the client, not work from the app."""
        return self._waiting_for_head() or self.conn.their_state is h11.SEND_BODY

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
        elif self._waiting_for_head() and now >= self._head_deadline:
            self.logger.info("closing a connection that sent no complete request head in %.0f s", self.head_timeout)
            self.transport.close()
        else:
            self._arm_client_timer()


class ClientCountedWebSocket(AutoWebSocketsProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's WebSocket protocol, giving its address's connection place back when it ends."""

    client_connections: ClientConnections = ClientConnections(0)

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._peer_address = _peer(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            self.client_connections.release(self._peer_address)


def protocols(settings: Settings) -> tuple[type[ClientTimeoutH11Protocol], type[ClientCountedWebSocket]]:
    """The HTTP and WebSocket protocol classes of one server, sharing one count of connections."""
    counts = ClientConnections(settings.max_connections_per_client)
    http = type(
        "ClientTimeoutProtocol",
        (ClientTimeoutH11Protocol,),
        {
            "client_timeout": settings.client_timeout_seconds,
            "head_timeout": settings.request_head_timeout_seconds,
            "client_connections": counts,
        },
    )
    ws = type("ClientCountedWebSocketProtocol", (ClientCountedWebSocket,), {"client_connections": counts})
    return http, ws


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
    http, ws = protocols(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=5,
        http=http,
        ws=ws,
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
