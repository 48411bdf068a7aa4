"""The trust boundary on real server processes: allowed Host names, same-Origin changes, the key, timeouts.

Requests are sent the way a hostile page's browser would send them (a rebinding Host, a foreign
Origin, Sec-Fetch-Site: cross-site), and each refusal is checked to leave nothing stored.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import audio_file, free_port, make_server

KEY = "correct horse battery staple"
EVIL = "http://evil.example"
CLIENT_TIMEOUT = 1


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """No key, no job workers (nothing here needs a transcript), a short client timeout."""
    running = make_server(
        tmp_path_factory, "open", TAPESCRIBE_WORKERS=0, TAPESCRIBE_CLIENT_TIMEOUT_SECONDS=CLIENT_TIMEOUT
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """A key, listening on every address (allowed because of the key), one extra host name."""
    running = make_server(
        tmp_path_factory,
        "keyed",
        args=("--host", "0.0.0.0"),
        TAPESCRIBE_WORKERS=0,
        TAPESCRIBE_API_KEY=KEY,
        TAPESCRIBE_ALLOWED_HOSTS="notes.example",
    ).start()
    yield running
    running.stop()


def stored(server) -> set[str]:
    sessions = server.data_dir / "sessions"
    return set(os.listdir(sessions)) if sessions.is_dir() else set()


def upload(server, headers: dict | None = None) -> httpx.Response:
    with open(audio_file("goforward.wav"), "rb") as handle:
        return httpx.post(server.url + "/transcribe-file", files={"file": ("g.wav", handle)}, headers=headers or {})


def new_session(server, headers: dict | None = None) -> str:
    response = upload(server, headers)
    assert response.status_code == 202, response.text
    return response.json()["session_id"]


def route_families(session_id: str) -> list[tuple[str, str, dict]]:
    """(method, path, request arguments) for every kind of route: page, reads, changes, uploads, OpenAI."""
    audio = audio_file("goforward.wav").read_bytes()
    return [
        ("GET", "/", {}),
        ("GET", "/static/main.js", {}),
        ("GET", "/sessions", {}),
        ("GET", "/storage", {}),
        ("GET", "/search?q=forward", {}),
        ("GET", f"/session/{session_id}", {}),
        ("GET", f"/session/{session_id}/audio", {}),
        ("GET", f"/session/{session_id}/export/txt", {}),
        ("PATCH", f"/session/{session_id}", {"json": {"title": "taken over"}}),
        ("DELETE", f"/session/{session_id}", {}),
        ("POST", "/transcribe-file", {"files": {"file": ("g.wav", audio)}}),
        ("POST", "/transcribe", {"files": {"audio": ("g.wav", audio)}}),
        ("POST", "/transcribe-live", {"files": {"audio": ("c.webm", audio)}, "data": {"chunk_index": "0"}}),
        ("POST", "/v1/audio/transcriptions", {"files": {"file": ("g.wav", audio)}, "data": {"model": "whisper-1"}}),
        ("GET", "/v1/models", {}),
    ]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message", "details"}
    assert body["error"]["status"] == status and body["error"]["code"] == code


def raw_websocket_handshake(server, host: str, origin: str | None = None, extra: str = "") -> tuple[int, bytes]:
    """The HTTP answer to a /ws/live handshake sent with any Host (a WebSocket client sets its own)."""
    lines = [
        "GET /ws/live HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    request = ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


# --- Host: DNS rebinding -------------------------------------------------------------------------


def test_a_foreign_host_is_refused_on_every_route(open_server):
    session_id = new_session(open_server)
    before = stored(open_server)
    for method, path, arguments in route_families(session_id):
        response = httpx.request(
            method, open_server.url + path, headers={"Host": f"evil.example:{open_server.port}"}, **arguments
        )
        assert_error(response, 403, "forbidden_host")
    assert stored(open_server) == before
    assert httpx.get(f"{open_server.url}/session/{session_id}").json()["title"] != "taken over"

    status, body = raw_websocket_handshake(open_server, f"evil.example:{open_server.port}")
    assert status == 403 and json.loads(body)["error"]["code"] == "forbidden_host"


def test_loopback_names_are_served(open_server):
    for host in (f"127.0.0.1:{open_server.port}", f"localhost:{open_server.port}", "localhost", "[::1]"):
        assert httpx.get(open_server.url + "/sessions", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_adds_names(keyed_server):
    host = f"notes.example:{keyed_server.port}"
    headers = {"Host": host, "Origin": f"http://{host}", "Authorization": f"Bearer {KEY}"}
    assert upload(keyed_server, headers).status_code == 202
    headers["Host"] = f"other.example:{keyed_server.port}"
    assert_error(httpx.get(keyed_server.url + "/sessions", headers=headers), 403, "forbidden_host")


# --- Origin: pages on other sites ---------------------------------------------------------------------


def test_a_foreign_origin_cannot_change_anything(open_server):
    session_id = new_session(open_server)
    before = stored(open_server)
    changes = [(m, p, a) for m, p, a in route_families(session_id) if m not in ("GET", "HEAD")]
    for origin in (EVIL, "null", f"http://localhost:{open_server.port + 1}", f"https://127.0.0.1:{open_server.port}0"):
        for method, path, arguments in changes:
            response = httpx.request(method, open_server.url + path, headers={"Origin": origin}, **arguments)
            assert_error(response, 403, "forbidden_origin")
    assert stored(open_server) == before
    assert os.listdir(open_server.data_dir / "incoming") == []
    assert httpx.get(f"{open_server.url}/session/{session_id}").json()["title"] != "taken over"


def test_cross_site_requests_are_refused_without_origin(open_server):
    """What a foreign page's no-cors fetch, <audio src> or form looks like through Fetch Metadata."""
    session_id = new_session(open_server)
    before = stored(open_server)
    cross_site = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}
    assert_error(upload(open_server, cross_site), 403, "forbidden_origin")
    response = httpx.get(f"{open_server.url}/session/{session_id}/audio", headers=cross_site)
    assert_error(response, 403, "forbidden_origin")
    assert stored(open_server) == before
    # A link followed from another site still opens the page.
    navigation = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert httpx.get(open_server.url + "/", headers=navigation).status_code == 200


def test_same_origin_and_scripts_may_change_things(open_server):
    same_origin = {"Origin": open_server.url, "Sec-Fetch-Site": "same-origin"}
    first = new_session(open_server, same_origin)
    second = new_session(open_server)  # curl, scripts: no Origin at all
    by_name = {"Host": f"localhost:{open_server.port}", "Origin": f"http://localhost:{open_server.port}"}
    third = new_session(open_server, by_name)
    assert (
        httpx.patch(f"{open_server.url}/session/{first}", json={"title": "mine"}, headers=same_origin).status_code
        == 200
    )
    for session_id in (first, second, third):
        assert httpx.delete(f"{open_server.url}/session/{session_id}", headers=same_origin).status_code == 200
    assert not {first, second, third} & stored(open_server)
    # Past the boundary, the route answers for itself (an empty recording is its own 400).
    empty = httpx.post(open_server.url + "/transcribe", files={"audio": ("a.webm", b"")}, headers=same_origin)
    assert_error(empty, 400, "empty_upload")


def test_websocket_from_a_foreign_origin_never_opens(open_server):
    before = stored(open_server)
    for origin in (EVIL, "null"):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{open_server.port}/ws/live", origin=origin, open_timeout=30)
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["error"]["code"] == "forbidden_origin"
    assert stored(open_server) == before


def test_websocket_from_the_servers_own_page_opens(open_server):
    with connect(f"ws://127.0.0.1:{open_server.port}/ws/live", origin=open_server.url, open_timeout=30) as socket_:
        socket_.send(json.dumps({"type": "start", "format": "mp3"}))
        answer = json.loads(socket_.recv(timeout=60))
    assert answer["type"] == "error" and answer["code"] == "bad_request"  # the route itself answered


# --- no server paths ---------------------------------------------------------------------------------


def test_no_server_path_is_shown(open_server):
    session_id = new_session(open_server)
    for path in ("/storage", "/sessions", f"/session/{session_id}", "/health", "/nowhere", "/session/not-a-session-id"):
        body = httpx.get(open_server.url + path).text
        assert str(open_server.data_dir) not in body and str(open_server.data_dir.parent) not in body, path


# --- the key -------------------------------------------------------------------------------------------


def test_a_key_guards_every_route(keyed_server):
    bearer = {"Authorization": f"Bearer {KEY}"}
    session_id = new_session(keyed_server, bearer)
    before = stored(keyed_server)
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": KEY},
        {"Cookie": f"tapescribe_login={KEY}"},
        {"Cookie": "tapescribe_login=99999999999.abc"},
    ):
        for method, path, arguments in route_families(session_id):
            response = httpx.request(method, keyed_server.url + path, headers=headers, **arguments)
            if path == "/":
                assert response.status_code == 303 and response.headers["location"] == "/login"
            else:
                assert_error(response, 401, "unauthorized")
                assert response.headers["www-authenticate"] == "Bearer"
        status, body = raw_websocket_handshake(
            keyed_server, f"127.0.0.1:{keyed_server.port}", extra="".join(f"{k}: {v}\r\n" for k, v in headers.items())
        )
        assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    assert stored(keyed_server) == before
    assert httpx.get(f"{keyed_server.url}/session/{session_id}", headers=bearer).json()["title"] != "taken over"

    # Open without the key: liveness, the login page and its stylesheet.
    for path in ("/health", "/login", "/static/app.css"):
        assert httpx.get(keyed_server.url + path).status_code == 200, path
    # With the key, scripts get everything.
    for path in (
        "/",
        "/sessions",
        "/storage",
        f"/session/{session_id}",
        f"/session/{session_id}/audio",
        "/v1/models",
        "/static/main.js",
    ):
        assert httpx.get(keyed_server.url + path, headers=bearer).status_code == 200, path


def test_login_sets_a_strict_httponly_cookie_that_works_everywhere(keyed_server):
    page = keyed_server.url
    wrong = httpx.post(page + "/login", data={"key": "guess"}, headers={"Accept": "text/html"})
    assert wrong.status_code == 401 and "not right" in wrong.text and "set-cookie" not in wrong.headers

    right = httpx.post(page + "/login", data={"key": KEY}, headers={"Origin": page})
    assert right.status_code == 303 and right.headers["location"] == "/"
    cookie = right.headers["set-cookie"]
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    value = cookie.split(";")[0].partition("=")[2]
    assert KEY not in value and value

    with httpx.Client(base_url=page, cookies={"tapescribe_login": value}) as browser:
        assert browser.get("/").status_code == 200
        assert browser.get("/sessions").status_code == 200
        assert upload_with(browser, {"Origin": page}).status_code == 202
        assert browser.get("/v1/models").status_code == 200
    handshake = {"Cookie": f"tapescribe_login={value}", "Origin": page}
    with connect(f"ws://127.0.0.1:{keyed_server.port}/ws/live", additional_headers=handshake, open_timeout=30) as live:
        live.send(json.dumps({"type": "start", "format": "mp3"}))
        assert json.loads(live.recv(timeout=60))["code"] == "bad_request"  # the route answered
    with connect(
        f"ws://127.0.0.1:{keyed_server.port}/ws/live",
        open_timeout=30,
        additional_headers={"Authorization": f"Bearer {KEY}"},
    ) as live:
        live.send(json.dumps({"type": "start", "format": "mp3"}))
        assert json.loads(live.recv(timeout=60))["code"] == "bad_request"

    logout = httpx.post(page + "/logout", headers={"Origin": page})
    assert logout.status_code == 303 and 'tapescribe_login=""' in logout.headers["set-cookie"]
    # A foreign page cannot sign a browser in with a key of its choosing.
    assert_error(httpx.post(page + "/login", data={"key": KEY}, headers={"Origin": EVIL}), 403, "forbidden_origin")


def upload_with(client: httpx.Client, headers: dict) -> httpx.Response:
    with open(audio_file("goforward.wav"), "rb") as handle:
        return client.post("/transcribe-file", files={"file": ("g.wav", handle)}, headers=headers)


# --- serve on a network address ------------------------------------------------------------------------


def test_serve_on_a_network_address_needs_a_key(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAPESCRIBE_")}
    env.update(TMPDIR=str(tmp_path), TAPESCRIBE_WORKERS="0")
    command = [
        sys.executable,
        "-m",
        "tapescribe",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    refused = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert "TAPESCRIBE_API_KEY" in refused.stderr and "--insecure-no-auth" in refused.stderr
    assert "every recording" in refused.stderr


def test_serve_on_a_network_address_with_insecure_no_auth_starts(tmp_path_factory):
    running = make_server(
        tmp_path_factory, "insecure", args=("--host", "0.0.0.0", "--insecure-no-auth"), TAPESCRIBE_WORKERS=0
    ).start()
    try:
        assert httpx.get(running.url + "/sessions").status_code == 200
    finally:
        running.stop()


# --- connections that never finish a request -------------------------------------------------------------


def closed_by_server(sock: socket.socket) -> bool:
    """Read until the server closes the connection; False if it is still open after 60 s."""
    sock.settimeout(60)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    return True


def test_a_half_sent_request_is_closed(open_server):
    with socket.create_connection(("127.0.0.1", open_server.port)) as sock:
        sock.sendall(b"GET /sessions HTT")
        assert closed_by_server(sock)


def test_idle_connections_are_closed_and_the_server_keeps_answering(open_server):
    idle = [socket.create_connection(("127.0.0.1", open_server.port)) for _ in range(50)]
    try:
        assert all(closed_by_server(sock) for sock in idle)
    finally:
        for sock in idle:
            sock.close()
    assert httpx.get(open_server.url + "/health").status_code == 200


def test_a_stalled_upload_body_is_closed_and_leaves_nothing(open_server):
    before = stored(open_server)
    head = (
        f"POST /transcribe-file HTTP/1.1\r\nHost: 127.0.0.1:{open_server.port}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n"
        '--xyz\r\nContent-Disposition: form-data; name="file"; filename="g.wav"\r\n\r\nRIFF'
    )
    with socket.create_connection(("127.0.0.1", open_server.port)) as sock:
        sock.sendall(head.encode())
        assert closed_by_server(sock)
    assert stored(open_server) == before
    assert httpx.get(open_server.url + "/health").status_code == 200
