"""The trust boundary in front of every route: an allowed Host, the page's own Origin for changes, the key.

A local server is attacked through the browser: any page can send requests to 127.0.0.1, and DNS
rebinding lets a page on another name read the answers. This is pure ASGI middleware, so it sees
every HTTP request and every WebSocket handshake before a route does, and refuses:

- a Host that is not an allowed name (rebinding arrives with the attacker's name in Host);
- a state-changing request (any method but GET, HEAD, OPTIONS) or a WebSocket whose Origin is not
  the server's own or an allowed one; requests without Origin (curl, the OpenAI SDK) pass;
- any request a browser marks `Sec-Fetch-Site: cross-site`, except a top-level navigation
  (a foreign page cannot embed the audio or post a no-cors form);
- with a key set, any request without `Authorization: Bearer <key>` or a valid login cookie,
  except /health (liveness probes), the login page and its stylesheet; a client address that sent
  too many wrong keys waits before its next key is looked at (api/throttle.py, 429).

Every answer says that no other site may frame it and that its content type is not to be sniffed.

Refusals use the one error shape; a refused WebSocket never opens (an HTTP denial response).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import time
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tapescribe.api.errors import error_response
from tapescribe.api.identity import CALLER, Caller, caller_for, user_from_cookie
from tapescribe.api.throttle import KeyThrottle, address_key
from tapescribe.config import Settings
from tapescribe.sessions.users import UserStore

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset({"/health", "/login", "/logout", "/static/app.css"})
LOGIN_PATH = "/login"
SHARED_PREFIX = "/shared/"
LOGIN_COOKIE = "tapescribe_login"
LOGIN_MAX_AGE = 30 * 24 * 3600
CLOSE_POLICY = 1008
ISSUED = re.compile(r"[0-9]{1,12}")  # a login cookie's issue time: ASCII digits, seconds since 1970
# On every answer: no other site may frame the pages (clickjacking of Delete), no content sniffing.
SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def host_name(host_header: str) -> str:
    """'Example.com:8000' -> 'example.com', '[::1]:8000' and '::1' -> '::1'."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") > 1:
        return host  # a bare IPv6 address, as --host takes it
    name, _, port = host.rpartition(":")
    return (name if name and port.isdigit() else host).rstrip(".")


def is_loopback(host: str) -> bool:
    if host_name(host) == "localhost":
        return True
    try:
        return ipaddress.ip_address(host_name(host)).is_loopback
    except ValueError:
        return False


def allowed_host_names(settings: Settings) -> frozenset[str]:
    """Loopback names, the address `serve` listens on when it is a specific one, and the allowed_hosts."""
    names = set(LOOPBACK_NAMES) | {host_name(name) for name in settings.allowed_hosts}
    try:
        if not ipaddress.ip_address(settings.host).is_unspecified:
            names.add(host_name(settings.host))
    except ValueError:
        names.add(host_name(settings.host))
    return frozenset(names)


def _authority(scheme: str, netloc: str) -> str:
    """host[:port] without the scheme's default port, so 'https://x' and Host 'x:443' compare equal."""
    netloc = netloc.strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return netloc.removesuffix(default) if default else netloc


def origin_allowed(origin: str, host_header: str, allowed_origins: frozenset[str]) -> bool:
    """The Origin is the server's own (same host and port as the Host asked for) or an allowed one.

    The scheme is not compared with the request's: behind a TLS proxy the page is https while the
    server sees http, and the Host check already decides which names are ours.
    """
    origin = origin.strip().lower().rstrip("/")
    if origin in allowed_origins:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # 'null' (sandboxed frames, file:// pages) and anything unparseable
    return _authority(parts.scheme, parts.netloc) == _authority(parts.scheme, host_header)


def login_token(api_key: str, issued: int | None = None) -> str:
    """The login cookie's value: when it was issued, signed with the key (never the key itself).

    Stateless: it survives restarts, expires after LOGIN_MAX_AGE, and every cookie stops working
    when the key is changed.
    """
    issued = int(time.time()) if issued is None else issued
    signature = hmac.new(api_key.encode(), f"tapescribe-login:{issued}".encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{signature}"


def login_token_valid(api_key: str, token: str) -> bool:
    """Any cookie that is not one of ours (too long, not ASCII digits, another key's) is simply not a login."""
    issued, _, _ = token.partition(".")
    if not ISSUED.fullmatch(issued) or not 0 <= time.time() - int(issued) <= LOGIN_MAX_AGE:
        return False
    return hmac.compare_digest(token.encode(), login_token(api_key, int(issued)).encode())


def key_matches(api_key: str, given: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), api_key.encode())


def bearer_token(headers: Headers) -> str | None:
    """The token of 'Authorization: Bearer <token>', or None when the request sends none."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def too_many_attempts(wait_seconds: float) -> JSONResponse:
    """429 for a key sent while its address must wait (see api/throttle.py)."""
    seconds = max(1, math.ceil(wait_seconds))
    return error_response(
        429,
        "too_many_attempts",
        f"Too many wrong keys came from this address: wait {seconds} s before sending a key again.",
        {"retry_after_seconds": seconds},
        headers={"Retry-After": str(seconds)},
    )


def _with_security_headers(send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] in ("http.response.start", "websocket.http.response.start"):
            headers = list(message.get("headers", []))
            present = {bytes(name).lower() for name, _ in headers}
            headers += [header for header in SECURITY_HEADERS if header[0] not in present]
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers


class TrustBoundary:
    """ASGI middleware; one instance per app, configured from Settings."""

    def __init__(self, app: ASGIApp, settings: Settings, throttle: KeyThrottle, users: UserStore) -> None:
        self.app = app
        self.throttle = throttle
        self.hosts = allowed_host_names(settings)
        self.any_host = "*" in settings.allowed_hosts
        self.origins = frozenset(origin.strip().lower().rstrip("/") for origin in settings.allowed_origins)
        self.api_key = settings.api_key_value()
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await refusal(scope, receive, send)
        elif "websocket.http.response" in scope.get("extensions", {}):
            await refusal(scope, receive, send)  # Starlette sends it as the handshake's HTTP answer
        else:
            await send({"type": "websocket.close", "code": CLOSE_POLICY})

    def refusal(self, scope: Scope) -> Response | None:
        """The answer that refuses this request, or None to let it through."""
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.any_host and host_name(host) not in self.hosts:
            return error_response(
                403,
                "forbidden_host",
                f"This server does not answer to the host name {host_name(host)!r}. "
                "Its operator can add it to TAPESCRIBE_ALLOWED_HOSTS.",
            )
        websocket = scope["type"] == "websocket"
        changes = websocket or scope["method"] not in SAFE_METHODS
        origin = headers.get("origin")
        if changes and origin is not None and not origin_allowed(origin, host, self.origins):
            return error_response(
                403,
                "forbidden_origin",
                "Requests that change data, and WebSockets, are only accepted from this server's own pages "
                "(or an origin in TAPESCRIBE_ALLOWED_ORIGINS).",
            )
        cross_site = headers.get("sec-fetch-site") == "cross-site"
        if cross_site and not (headers.get("sec-fetch-mode") == "navigate" and not changes):
            return error_response(403, "forbidden_origin", "Requests from other sites are not accepted.")
        if scope["path"].startswith(SHARED_PREFIX):
            if changes:  # a share link is read-only, whoever holds it
                return error_response(405, "read_only", "A shared link is read-only.")
            return None  # its unguessable token is the credential (api/shares.py)
        if scope["path"] not in OPEN_PATHS and (self.api_key or self.users.enabled()):
            return self.credential_refusal(scope, headers)
        return None

    def _cookie_caller(self, headers: Headers) -> Caller | None:
        cookie = cookie_parser(headers.get("cookie", "")).get(LOGIN_COOKIE, "")
        if not cookie:
            return None
        user = user_from_cookie(self.users, cookie, LOGIN_MAX_AGE) if cookie.startswith("u.") else None
        if user is not None:
            return caller_for(user)
        if self.api_key and login_token_valid(self.api_key, cookie):
            return self._key_caller()
        return None

    def _key_caller(self) -> Caller:
        """TAPESCRIBE_API_KEY: the first admin's key once there are users; without users, everything."""
        admin = self.users.first_admin()
        return Caller(admin, True) if admin else Caller()

    def _token_caller(self, token: str) -> Caller | None:
        if self.api_key and key_matches(self.api_key, token):
            return self._key_caller()
        user = self.users.by_token(token.strip()) if token.strip() else None
        return caller_for(user) if user is not None else None

    def credential_refusal(self, scope: Scope, headers: Headers) -> Response | None:
        """None (the caller put in the scope) for a valid login cookie, the right Bearer key or a user's
        token; 429 while this address must wait after wrong keys or tokens (the token is not looked
        at); else 401, or the login page for a browser."""
        caller = self._cookie_caller(headers)  # a cookie cannot be guessed: a signed-in browser is never throttled
        token = bearer_token(headers)
        if caller is None and token is not None:
            address = address_key(scope.get("client"))
            wait = self.throttle.wait_left(address)
            if wait:
                return too_many_attempts(wait)
            caller = self._token_caller(token)
            if caller is None:
                self.throttle.failed(address, token)
            else:
                self.throttle.succeeded(address)
        if caller is not None:
            scope[CALLER] = caller
            return None
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and (scope["path"] == "/" or "text/html" in headers.get("accept", ""))
        ):
            return RedirectResponse(LOGIN_PATH, status_code=303)
        return error_response(
            401,
            "unauthorized",
            "A key is required: sign in on the web page, or send 'Authorization: Bearer <key or token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
