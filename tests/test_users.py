"""Users on one real server: each person reaches only their own sessions, share links are read-only.

One server, started as an old single-key library (a session without an owner), then given users
while it runs (`tapescribe users add`): the old session becomes the first admin's, and every route
of the OpenAPI document is probed by one user with the other's session ids. Another person's id
must answer exactly what an id that does not exist answers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import httpx
import numpy as np
import pytest
from test_web_ui import CHROMIUM, FAKE_MICROPHONE, chromium_args, chromium_env, expect, open_session, page_of
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import audio_file, make_server, read_pcm

KEY = "the admin's old key, still good"
PASSWORD = "alice's long password"
CHANGES = ("post", "put", "patch", "delete")


def users_cli(server, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tapescribe", "users", *args, "--data-dir", str(server.data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TMPDIR": str(server.tmp_dir)},
    )
    return done.stdout.strip().splitlines()[-1]


def upload(server, headers: dict, name: str = "goforward.wav") -> str:
    with server.client() as client, open(audio_file(name), "rb") as audio:
        answer = client.post("/transcribe-file", files={"file": (name, audio)}, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()["session_id"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A keyed server with one old session; then users alice (admin) and bob, added while it runs."""
    server = make_server(tmp_path_factory, "users", TAPESCRIBE_API_KEY=KEY, TAPESCRIBE_WORKERS=1).start()
    try:
        old = upload(server, bearer(KEY))
        _wait_done(server, old, bearer(KEY))
        assert "owner" not in json.loads((server.data_dir / "sessions" / old / "session.json").read_text())
        alice = users_cli(server, "add", "alice", "--admin")
        users_cli(server, "passwd", "alice", stdin=PASSWORD + "\n")
        bob = users_cli(server, "add", "bob")
        mine = upload(server, bearer(alice))
        his = upload(server, bearer(bob))
        for session_id, token in ((mine, alice), (his, bob)):
            _wait_done(server, session_id, bearer(token))
        yield {"server": server, "old": old, "alice": alice, "bob": bob, "mine": mine, "his": his}
    finally:
        server.stop()


def _wait_done(server, session_id: str, headers: dict) -> dict:
    import time

    deadline = time.monotonic() + 180
    with server.client() as client:
        while time.monotonic() < deadline:
            body = client.get(f"/session/{session_id}", headers=headers).json()
            if body["status"]["status"] not in ("queued", "processing"):
                return body
            time.sleep(0.2)
    raise AssertionError(f"{session_id} did not finish:\n{server.log()}")


def _fill(path: str, session_id: str) -> str:
    values = {"session_id": session_id, "number": "1", "position": "0", "fmt": "txt", "speaker": "S1", "token": "x"}
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match[1], "alice"), path)


def _same(answer: httpx.Response, missing: httpx.Response, other_id: str, missing_id: str) -> bool:
    return answer.status_code == missing.status_code and answer.text.replace(other_id, missing_id) == missing.text


def test_no_route_lets_one_user_reach_another_users_sessions(library):
    """Every path and method of the OpenAPI document, by bob with alice's ids (and by alice with bob's):
    the answer is the one for an id that does not exist; lists and searches never name the other's."""
    server = library["server"]
    with server.client(timeout=60) as client:
        document = client.get("/openapi.json", headers=bearer(library["alice"])).json()
        probed, leaks = 0, []
        for me, other_ids in (("bob", (library["mine"], library["old"])), ("alice", (library["his"],))):
            headers = bearer(library[me])
            for path, methods in document["paths"].items():
                for method in methods:
                    if "{session_id}" not in path:
                        if method == "get" and "{" not in path and path != "/openapi.json":
                            text = client.get(path, params={"q": "forward"}, headers=headers).text
                            probed += 1
                            leaks += [(me, "GET", path) for other in other_ids if other in text]
                        continue
                    # deletes last: a leaking delete must not hide the other probes' leaks
                    for other in other_ids:
                        missing = str(uuid.uuid4())
                        body = {"title": "x", "text": "x", "name": "x"} if method in CHANGES else None
                        answers = [
                            client.request(method.upper(), _fill(path, target), json=body, headers=headers)
                            for target in (other, missing)
                        ]
                        probed += 1
                        if not _same(*answers, other, missing):
                            leaks.append((me, method.upper(), path, answers[0].status_code, answers[0].text[:200]))
        # the routes that take session ids in their body: bulk delete/tag/untag and the zip export
        for path, body in (
            ("/sessions/bulk", {"action": "tag", "tags": ["x"]}),
            ("/sessions/export", {"format": "txt"}),
            ("/sessions/bulk", {"action": "delete"}),
        ):
            missing = str(uuid.uuid4())
            answers = [
                client.post(path, json={**body, "ids": [target]}, headers=bearer(library["bob"]))
                for target in (library["mine"], missing)
            ]
            probed += 1
            if not _same(*answers, library["mine"], missing):
                leaks.append(("bob", "POST", path, answers[0].status_code, answers[0].text[:200]))
        # the chunk route takes the session id in its form
        with open(audio_file("goforward.wav"), "rb") as audio:
            chunk = client.post(
                "/transcribe-live",
                data={"session_id": library["mine"], "chunk_index": "5"},
                files={"audio": ("c.webm", audio)},
                headers=bearer(library["bob"]),
            )
        probed += 1
        if chunk.status_code != 404:
            leaks.append(("bob", "POST", "/transcribe-live", chunk.status_code, chunk.text[:200]))
    print(f"probed {probed} route x method x id combinations")
    assert probed > 40
    assert leaks == []
    # and the owners still have theirs, untouched
    for session_id, token in ((library["mine"], library["alice"]), (library["his"], library["bob"])):
        assert httpx.get(f"{server.url}/session/{session_id}", headers=bearer(token)).status_code == 200


def test_lists_search_and_storage_are_per_user_and_the_old_library_is_the_first_admins(library):
    server = library["server"]
    with server.client() as client:
        for who, own, others in (
            ("alice", {library["mine"], library["old"]}, {library["his"]}),
            ("bob", {library["his"]}, {library["mine"], library["old"]}),
        ):
            listed = client.get("/sessions", headers=bearer(library[who])).json()
            assert {row["id"] for row in listed["sessions"]} == own and listed["total"] == len(own)
            assert listed["storage"]["session_count"] == len(own)
            found = client.get("/search", params={"q": "forward"}, headers=bearer(library[who])).json()["results"]
            assert {hit["id"] for hit in found} == own
            assert not others & {hit["id"] for hit in found}
        # TAPESCRIBE_API_KEY is the first admin's key
        by_key = client.get("/sessions", headers=bearer(KEY)).json()
        assert {row["id"] for row in by_key["sessions"]} == {library["mine"], library["old"]}
        assert client.get("/me", headers=bearer(KEY)).json() == {"name": "alice", "admin": True, "users": True}


def test_live_streams_belong_to_their_maker(library):
    server = library["server"]
    samples = read_pcm(audio_file("goforward.wav"))
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    url = server.url.replace("http://", "ws://") + "/ws/live"
    with connect(url, additional_headers=bearer(library["bob"]), open_timeout=30) as websocket:
        websocket.send(json.dumps({"type": "start", "format": "pcm"}))
        assert json.loads(websocket.recv(timeout=30))["type"] == "ready"
        for start in range(0, len(pcm), 32000):
            websocket.send(pcm[start : start + 32000])
        websocket.send(json.dumps({"type": "stop"}))
        while (message := json.loads(websocket.recv(timeout=120)))["type"] not in ("done", "error"):
            pass
    session_id = message["session_id"]
    assert session_id
    with server.client() as client:
        assert client.get(f"/session/{session_id}", headers=bearer(library["bob"])).status_code == 200
        refused = client.get(f"/session/{session_id}", headers=bearer(library["alice"]))
        assert refused.status_code == 404 and refused.json()["error"]["message"] == "No such session."
        assert client.get(f"/session/{session_id}/events", headers=bearer(library["alice"])).status_code == 404
    with pytest.raises(InvalidStatus):  # no credentials: refused before it opens
        connect(url, open_timeout=30)


def test_openai_and_recording_routes_make_sessions_of_their_caller(library):
    server = library["server"]
    made = []
    with server.client() as client:
        for path, field in (("/v1/audio/transcriptions", "file"), ("/transcribe", "audio")):
            with open(audio_file("goforward.wav"), "rb") as audio:
                answer = client.post(
                    path,
                    files={field: ("goforward.wav", audio)},
                    data={"model": "tiny.en"},
                    headers=bearer(library["bob"]),
                )
            assert answer.status_code == 200, answer.text
            made.append(answer.headers.get("x-tapescribe-session") or answer.json()["session_id"])
        for session_id in made:
            assert client.get(f"/session/{session_id}", headers=bearer(library["bob"])).json()["owner"] == "bob"
            assert client.get(f"/session/{session_id}", headers=bearer(library["alice"])).status_code == 404
            assert client.delete(f"/session/{session_id}", headers=bearer(library["bob"])).status_code == 200


def test_users_sign_in_with_a_password_and_only_admins_manage_users(library):
    server = library["server"]
    with server.client() as client:
        wrong = client.post("/login", data={"name": "alice", "password": "not it at all"})
        assert wrong.status_code == 401
        signed = client.post("/login", data={"name": "alice", "password": PASSWORD})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and PASSWORD not in cookie
        assert client.get("/me").json()["name"] == "alice"  # the cookie carries the user
        assert library["mine"] in client.get("/sessions").text
        listed = client.get("/users").json()["users"]
        assert [user["name"] for user in listed] == ["alice", "bob"]
        assert listed[0]["storage"]["session_count"] == 2
        added = client.post("/users", json={"name": "carol", "password": "carol's password"})
        assert added.status_code == 201 and added.json()["token"]
    with server.client() as client:
        assert client.get("/users", headers=bearer(library["bob"])).status_code == 403
        assert client.post("/users", json={"name": "eve"}, headers=bearer(library["bob"])).status_code == 403
        # a new token kills the old one at once
        carol = added.json()["token"]
        assert client.get("/me", headers=bearer(carol)).json()["name"] == "carol"
        fresh = users_cli(server, "token", "carol")
        assert client.get("/me", headers=bearer(carol)).status_code == 401
        assert client.get("/me", headers=bearer(fresh)).json()["name"] == "carol"
        assert client.delete("/users/carol", headers=bearer(KEY)).status_code == 200
        assert client.get("/me", headers=bearer(fresh)).status_code == 401


def test_a_share_link_is_read_only_without_an_account_and_dies_when_revoked(library):
    server = library["server"]
    session_id = library["mine"]
    with server.client() as owner:
        shared = owner.post(f"/session/{session_id}/share", headers=bearer(library["alice"]))
        assert shared.status_code == 200
        url = shared.json()["url"]
        assert url.startswith(server.url + f"/shared/{session_id}/")
        path = url.removeprefix(server.url)
    with httpx.Client(base_url=server.url) as anyone:  # no cookie, no token
        page = anyone.get(path)
        assert page.status_code == 200 and "<audio" in page.text and "forward" in page.text.lower()
        record = anyone.get(path + "/session").json()
        assert record["id"] == session_id and "forward" in record["transcription"]["text"].lower()
        assert "owner" not in record
        assert anyone.get(path + "/audio").content == audio_file("goforward.wav").read_bytes()
        assert "forward" in anyone.get(path + "/export/txt").text.lower()
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for tail in ("", "/session", "/audio", "/export/txt"):
                assert anyone.request(method, path + tail, json={"title": "x"}).status_code == 405
        # the link opens nothing else
        assert anyone.get(f"/session/{session_id}").status_code == 401
        assert anyone.get(path[:-3] + "xyz").status_code == 404
    with server.client() as owner:
        assert owner.delete(f"/session/{session_id}/share", headers=bearer(library["alice"])).status_code == 200
        assert owner.get(f"/session/{session_id}", headers=bearer(library["alice"])).json()["title"] != "x"
    with httpx.Client(base_url=server.url) as anyone:
        for tail in ("", "/session", "/audio", "/export/txt"):
            assert anyone.get(path + tail).status_code == 404


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is needed for the web UI tests and was not found at {CHROMIUM}.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=chromium_args(FAKE_MICROPHONE), env=chromium_env()
        )
        yield launched
        launched.close()


def test_sign_in_on_the_page_then_share_and_stop_sharing(library, browser):
    """A browser: the login page asks for a name and password, History shows only alice's sessions,
    Share makes a link that opens without an account, Stop sharing kills it."""
    server = library["server"]
    with page_of(browser, server) as page:
        page.goto("/")
        expect(page.get_by_label("Name")).to_be_visible()  # redirected to the login page
        page.get_by_label("Name").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#sign-out")).to_be_visible()
        expect(page.locator("#signed-in-as")).to_have_text("Signed in as alice")
        page.goto("/#history")
        expect(page.locator(f"button.session-row[data-id='{library['mine']}']")).to_be_attached()
        assert library["his"] not in page.content()
        view = open_session(page, library["mine"])
        view.get_by_role("button", name="Share").click()
        link = view.get_by_label("Share link")
        expect(link).to_be_visible()
        url = link.input_value()
        with page_of(browser, server) as stranger:
            stranger.goto(url)
            expect(stranger.locator("#shared-transcript")).to_contain_text("forward", ignore_case=True)
            expect(stranger.locator("audio")).to_be_attached()
        view.get_by_role("button", name="Stop sharing").click()
        expect(view.get_by_role("button", name="Stop sharing")).to_have_count(0)
    assert httpx.get(url).status_code == 404


def test_a_backup_holds_the_users_and_owners_and_restores_them(library, tmp_path):
    """users.json (hashes, mode 0600) and each session's owner travel with `tapescribe backup`, taken
    while the server runs; a restored library has the same users and owners."""
    server = library["server"]
    archive, restored = tmp_path / "library.tar", tmp_path / "restored"
    env = {**os.environ, "TMPDIR": str(server.tmp_dir)}
    for command in (
        ["backup", str(archive), "--data-dir", str(server.data_dir)],
        ["restore", str(archive), "--data-dir", str(restored)],
    ):
        subprocess.run([sys.executable, "-m", "tapescribe", *command], env=env, check=True, capture_output=True)
    users = restored / "users.json"
    assert users.read_bytes() == (server.data_dir / "users.json").read_bytes()
    assert users.stat().st_mode & 0o777 == 0o600
    session = json.loads((restored / "sessions" / library["his"] / "session.json").read_text())
    assert session["owner"] == "bob"


def test_remembered_voices_are_their_owners_only(library):
    """A voice remembered from alice's recording is listed, forgotten and matched for alice only: bob's
    GET /voices does not show it, and his DELETE answers as for a voice that does not exist."""
    from tapescribe.sessions.voices import VoiceStore

    server = library["server"]
    store = VoiceStore(server.data_dir / "voices")
    voice = list(np.random.default_rng(7).normal(size=192))
    hers = store.remember("Ada", voice, {"session": library["mine"], "speaker": "S1"}, "alice")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        listed = {who: client.get("/voices", headers=bearer(library[who])).json()["voices"] for who in ("alice", "bob")}
        assert [v["id"] for v in listed["alice"]] == [hers["id"]] and listed["bob"] == []
        refused = client.delete(f"/voices/{hers['id']}", headers=bearer(library["bob"]))
        missing = client.delete(f"/voices/{uuid.uuid4().hex}", headers=bearer(library["bob"]))
        assert refused.status_code == missing.status_code == 404 and refused.json() == missing.json()
        assert client.delete(f"/voices/{hers['id']}", headers=bearer(library["alice"])).status_code == 200
    assert store.all() == []
