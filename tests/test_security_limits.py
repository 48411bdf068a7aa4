"""Trust, round two, on real server processes: malformed login cookies, slow request heads, connections
per address, key guessing, framing headers, HEAD and Range on the audio route.

Everything runs on loopback only. A client address of its own (127.0.0.x: all of 127/8 reaches a
server on 127.0.0.1 on Linux) keeps each test's wrong keys apart from the others'. Every loop is
bounded and stops by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect

from conftest import audio_file, make_server

KEY = "correct horse battery staple"
FREE_FAILURES = 5
MAX_WAIT = 2  # seconds: the longest an address waits between keys on these servers
HEAD_TIMEOUT = 3
PER_CLIENT = 10
MAX_CONNECTIONS = 30


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A key, a short deadline for a request's head, the login limits this file counts on."""
    running = make_server(
        tmp_path_factory,
        "guarded",
        TAPESCRIBE_WORKERS=0,
        TAPESCRIBE_API_KEY=KEY,
        TAPESCRIBE_REQUEST_HEAD_TIMEOUT_SECONDS=HEAD_TIMEOUT,
        TAPESCRIBE_CLIENT_TIMEOUT_SECONDS=30,
        TAPESCRIBE_LOGIN_FREE_FAILURES=FREE_FAILURES,
        TAPESCRIBE_LOGIN_MAX_WAIT_SECONDS=MAX_WAIT,
    ).start()
    yield running
    running.stop()


def client_from(server, address: str, **arguments) -> httpx.Client:
    """An HTTP client whose connections come from `address` (a loopback address of the test's own)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=60, **arguments)


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message", "details"}
    assert body["error"]["status"] == status and body["error"]["code"] == code
    return body["error"]


def new_session(server) -> str:
    with open(audio_file("goforward.wav"), "rb") as handle:
        response = httpx.post(
            server.url + "/transcribe-file",
            files={"file": ("g.wav", handle)},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert response.status_code == 202, response.text
    return response.json()["session_id"]


def handshake(server, headers: dict[str, str], source: str = "127.0.0.1") -> tuple[int, bytes]:
    """The HTTP answer to a /ws/live handshake with these extra headers."""
    lines = [
        "GET /ws/live HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30, source_address=(source, 0)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < 2:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]


# --- item 6: a login cookie that is not ours is not a login -------------------------------------------


def test_a_malformed_login_cookie_is_simply_not_a_login(guarded):
    session_id = new_session(guarded)
    cookies = [b"9" * 400 + b".x", b"9" * 4400 + b".x", b"\xb2.x", "\u0663\u0663.x".encode(), b"-1.x", b"+5.x"]
    routes = [
        ("GET", "/sessions"),
        ("GET", "/storage"),
        ("GET", f"/session/{session_id}"),
        ("GET", f"/session/{session_id}/audio"),
        ("GET", f"/session/{session_id}/events"),
        ("PATCH", f"/session/{session_id}"),
        ("DELETE", f"/session/{session_id}"),
        ("POST", "/transcribe-file"),
        ("GET", "/v1/models"),
    ]
    for cookie in cookies:
        header = {"Cookie": b"tapescribe_login=" + cookie}
        page = httpx.get(guarded.url + "/", headers=header)
        assert page.status_code == 303 and page.headers["location"] == "/login", (cookie[:20], page.text[:200])
        for method, path in routes:
            assert_error(httpx.request(method, guarded.url + path, headers=header), 401, "unauthorized")
        status, body = handshake(guarded, {"Cookie": "tapescribe_login=" + cookie.decode("latin-1")})
        assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    assert "Traceback" not in guarded.log()
    bearer = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(f"{guarded.url}/session/{session_id}", headers=bearer).status_code == 200


# --- item 8: guessing the key ---------------------------------------------------------------------


def guess_until_refused(send, limit: int = 50) -> tuple[int, httpx.Response]:
    """Send different wrong keys until one is refused with 429; (keys sent, that answer)."""
    for attempt in range(1, limit + 1):
        response = send(f"wrong guess {attempt}")
        if response.status_code == 429:
            return attempt, response
        assert response.status_code == 401, response.text
    pytest.fail(f"{limit} wrong keys in a row were all looked at")


def retry_after(response: httpx.Response) -> int:
    error = assert_error(response, 429, "too_many_attempts")
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= MAX_WAIT and error["details"]["retry_after_seconds"] == seconds
    return seconds


def test_login_guesses_slow_down_and_are_refused_without_locking_the_owner_out(guarded):
    with client_from(guarded, "127.0.0.3") as attacker, client_from(guarded, "127.0.0.5") as owner:
        attempts, refused = guess_until_refused(lambda key: attacker.post("/login", data={"key": key}))
        assert attempts == FREE_FAILURES + 2  # free ones, the one that starts the wait, then refused
        wait = retry_after(refused)
        # During the wait even the right key is refused unread: the answer says nothing about the key.
        retry_after(attacker.post("/login", data={"key": KEY}))
        page = attacker.post("/login", data={"key": KEY}, headers={"Accept": "text/html"})
        assert page.status_code == 429 and "wait" in page.text and int(page.headers["retry-after"]) >= 1
        assert "set-cookie" not in page.headers
        # The owner, from another address, signs in at once.
        assert owner.post("/login", data={"key": KEY}).status_code == 303
        # After the wait the right key works, and clears the address's record.
        time.sleep(wait)
        signed_in = attacker.post("/login", data={"key": KEY})
        assert signed_in.status_code == 303 and "tapescribe_login=" in signed_in.headers["set-cookie"]
        assert attacker.post("/login", data={"key": "one more typo"}).status_code == 401


def test_the_same_wrong_key_again_is_not_a_new_guess(guarded):
    with client_from(guarded, "127.0.0.8") as script:
        for _ in range(3 * FREE_FAILURES):
            assert_error(script.post("/login", data={"key": "last year's key"}), 401, "unauthorized")
            old_key = {"Authorization": "Bearer last year's key"}
            assert_error(script.get("/sessions", headers=old_key), 401, "unauthorized")
        assert script.post("/login", data={"key": KEY}).status_code == 303


def test_bearer_guesses_are_refused_but_a_signed_in_browser_is_not(guarded):
    with client_from(guarded, "127.0.0.4") as attacker, client_from(guarded, "127.0.0.6") as elsewhere:
        cookie = elsewhere.post("/login", data={"key": KEY}).cookies["tapescribe_login"]
        attempts, refused = guess_until_refused(
            lambda key: attacker.get("/sessions", headers={"Authorization": f"Bearer {key}"})
        )
        assert attempts == FREE_FAILURES + 2
        wait = retry_after(refused)
        retry_after(attacker.get("/sessions", headers={"Authorization": f"Bearer {KEY}"}))
        status, body = handshake(guarded, {"Authorization": f"Bearer {KEY}"}, source="127.0.0.4")
        assert status == 429 and json.loads(body)["error"]["code"] == "too_many_attempts"
        # A browser signed in from the same address goes on working: a cookie cannot be guessed.
        attacker.cookies.set("tapescribe_login", cookie)
        assert attacker.get("/sessions").status_code == 200
        attacker.cookies.clear()
        assert elsewhere.get("/sessions", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        time.sleep(wait)
        assert attacker.get("/sessions", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


# --- item 9: no framing by other sites, no sniffing ---------------------------------------------------


def test_every_answer_forbids_framing_and_sniffing(guarded):
    bearer = {"Authorization": f"Bearer {KEY}"}
    answers = [
        httpx.get(guarded.url + "/", headers=bearer),
        httpx.get(guarded.url + "/login"),
        httpx.get(guarded.url + "/static/main.js", headers=bearer),
        httpx.get(guarded.url + "/sessions", headers=bearer),
        httpx.get(guarded.url + "/sessions"),  # 401
        httpx.get(guarded.url + "/nowhere", headers=bearer),  # 404
        httpx.get(guarded.url + "/health", headers={"Host": "evil.example"}),  # 403
    ]
    for response in answers:
        where = (response.request.url.path, response.status_code)
        assert response.headers.get("x-frame-options") == "DENY", where
        assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), where
        assert response.headers.get("x-content-type-options") == "nosniff", where


# --- item 12 (part): HEAD and Range on the audio route, and what the OpenAPI document says --------------


def test_audio_answers_head_and_bad_ranges_in_the_error_shape(guarded):
    session_id = new_session(guarded)
    bearer = {"Authorization": f"Bearer {KEY}"}
    url = f"{guarded.url}/session/{session_id}/audio"
    size = os.path.getsize(audio_file("goforward.wav"))

    head = httpx.head(url, headers=bearer)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == size and head.headers["accept-ranges"] == "bytes"
    assert head.headers["content-type"].startswith("audio/")
    missing = httpx.head(f"{guarded.url}/session/01ARZ3NDEKTSV4RRFFQ69G5FAV/audio", headers=bearer)
    assert missing.status_code == 404

    part = httpx.get(url, headers={**bearer, "Range": "bytes=0-9"})
    assert part.status_code == 206 and len(part.content) == 10
    for malformed in ("bytes=abc", "items=0-9", "bytes=9-2", "nonsense"):
        assert_error(httpx.get(url, headers={**bearer, "Range": malformed}), 400, "bad_range")
    beyond = httpx.get(url, headers={**bearer, "Range": f"bytes={size + 10}-"})
    error = assert_error(beyond, 416, "range_not_satisfiable")
    assert beyond.headers["content-range"] == f"bytes */{size}" and error["details"]["size"] == size

    document = httpx.get(guarded.url + "/openapi.json", headers=bearer).json()["paths"]
    audio = document["/session/{session_id}/audio"]["get"]["responses"]
    assert "application/json" not in audio["200"]["content"] and "audio/*" in audio["200"]["content"]
    assert {"206", "400", "416"} <= set(audio)
    events = document["/session/{session_id}/events"]["get"]["responses"]
    assert list(events["200"]["content"]) == ["text/event-stream"]


# --- item 7: slow request heads, and connections per address -------------------------------------------


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Send `trickle` a byte every half second until the server closes the connection; the seconds
    that took, or None if it was still open after `seconds`."""
    started = time.monotonic()
    sock.settimeout(0.5)
    for position in range(int(seconds / 0.5)):
        try:
            if trickle:
                sock.sendall(trickle[position % len(trickle) : position % len(trickle) + 1])
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    return None


def test_a_request_head_sent_a_byte_at_a_time_is_closed(guarded):
    """Each byte comes well inside the 30 s client timeout; the head as a whole is late after 3 s."""
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{guarded.port}\r\n".encode())
        took = closed_within(sock, 20, trickle=b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert took is not None, "a trickling connection was still open after 20 s"
    assert httpx.get(guarded.url + "/health").status_code == 200


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    running = make_server(
        tmp_path_factory,
        "capped",
        TAPESCRIBE_WORKERS=0,
        TAPESCRIBE_MAX_CONNECTIONS=MAX_CONNECTIONS,
        TAPESCRIBE_MAX_CONNECTIONS_PER_CLIENT=PER_CLIENT,
        TAPESCRIBE_CLIENT_TIMEOUT_SECONDS=60,
    ).start()
    yield running
    running.stop()


def test_one_address_cannot_take_every_connection(capped):
    partial_head = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{capped.port}\r\nX-Slow: a".encode()
    held: list[socket.socket] = []
    try:
        for _ in range(PER_CLIENT):
            sock = socket.create_connection(("127.0.0.1", capped.port), source_address=("127.0.0.9", 0))
            sock.sendall(partial_head)
            held.append(sock)
        # One more from the same address is answered at once, in the error shape, and closed.
        with socket.create_connection(("127.0.0.1", capped.port), source_address=("127.0.0.9", 0)) as extra:
            extra.settimeout(20)
            answer = b""
            while chunk := extra.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"retry-after: " in head.lower()
        assert json.loads(body)["error"]["code"] == "too_many_connections"
        # More than max_connections tries from that address: every one past its limit is closed.
        for _ in range(MAX_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", capped.port), source_address=("127.0.0.9", 0))
            held.append(sock)
            try:
                sock.sendall(partial_head)
            except (ConnectionResetError, BrokenPipeError):
                pass
        assert all(closed_within(sock, 20) is not None for sock in held[PER_CLIENT:])
        # Everyone else is still served, meanwhile.
        with client_from(capped, "127.0.0.10") as other:
            assert other.get("/health").status_code == 200
            assert other.get("/sessions").status_code == 200
    finally:
        for sock in held:
            sock.close()
    # The address's places come back when its connections end.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with client_from(capped, "127.0.0.9") as same:
            if all(same.get("/health").status_code == 200 for _ in range(3)):
                break
        time.sleep(0.2)
    else:
        pytest.fail("the address's connection places did not come back")
    with connect(f"ws://127.0.0.1:{capped.port}/ws/live", open_timeout=30) as live:
        live.send(json.dumps({"type": "start", "format": "mp3"}))
        assert json.loads(live.recv(timeout=60))["code"] == "bad_request"


def test_websockets_count_against_their_address(capped):
    """WebSockets hold a place like any connection, and give it back when they close."""
    with contextlib.ExitStack() as stack:
        for _ in range(PER_CLIENT):
            sock = socket.create_connection(("127.0.0.1", capped.port), source_address=("127.0.0.11", 0))
            stack.enter_context(connect(f"ws://127.0.0.1:{capped.port}/ws/live", sock=sock, open_timeout=30))
        # the 503 comes before the handshake is sent: the client reads a refusal or a closed connection
        # (websockets' own client may trip its internal `assert self.close_deadline is None` when the
        # socket closes under its handshake: seen once in CI; the connection was refused all the same)
        with pytest.raises((InvalidStatus, WebSocketException, OSError, AssertionError)):
            sock = socket.create_connection(("127.0.0.1", capped.port), source_address=("127.0.0.11", 0))
            with connect(f"ws://127.0.0.1:{capped.port}/ws/live", sock=sock, open_timeout=30):
                pass
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with client_from(capped, "127.0.0.11") as same:
            if same.get("/health").status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail("closed WebSockets kept their address's places")


@contextlib.contextmanager
def foreign_site(page: bytes):
    """Another site on this machine serving `page`: http://localhost:<port>/ (localhost is not the same
    site as 127.0.0.1, and a local page may frame a local server as far as the browser's own rules go)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_site_cannot_frame_the_ui(guarded):
    """Clickjacking of Delete: a real browser on a foreign page shows nothing of ours in its iframe."""
    chromium = Path(os.environ.get("TAPESCRIBE_TEST_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.is_file():
        pytest.fail(f"Chromium is needed and was not found at {chromium}; set TAPESCRIBE_TEST_CHROMIUM.")
    from playwright.sync_api import sync_playwright
    from test_web_ui import chromium_env

    attacker = f'<html><body><iframe src="{guarded.url}/login" width="800" height="600"></iframe></body></html>'
    with sync_playwright() as playwright, foreign_site(attacker.encode()) as foreign:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"], env=chromium_env()
        )
        try:
            page = browser.new_page()
            page.goto(foreign, timeout=60_000)
            frames = [frame for frame in page.frames if frame != page.main_frame]
            assert frames, "the iframe was not created"
            frames[0].wait_for_load_state("load", timeout=60_000)
            shown = frames[0].evaluate("document.body ? document.body.innerText : ''")
            assert "Sign in to tapescribe" not in shown, "the login page loaded inside another site's frame"
            # The server's own page still loads at the top level.
            page.goto(guarded.url + "/login", timeout=60_000)
            assert "Sign in to tapescribe" in page.inner_text("body")
        finally:
            browser.close()
