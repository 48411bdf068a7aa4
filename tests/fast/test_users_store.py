"""users.json: names, the first admin, hashed passwords and tokens, and a file changed by another process."""

from __future__ import annotations

import json
import stat

import pytest

from tapescribe.errors import BadRequest, Conflict, NotFound
from tapescribe.sessions.users import UserStore


def test_users_are_stored_hashed_and_the_first_is_an_admin(tmp_path):
    store = UserStore(tmp_path)
    assert not store.enabled() and store.first_admin() is None
    alice, token = store.add("alice", password="a long password")
    bob, bob_token = store.add("bob")
    assert alice.admin and not bob.admin and store.first_admin() == "alice"
    text = (tmp_path / "users.json").read_text()
    assert token not in text and bob_token not in text and "a long password" not in text
    assert stat.S_IMODE((tmp_path / "users.json").stat().st_mode) == 0o600
    assert store.by_token(token).name == "alice" and store.by_token("nope") is None
    assert store.by_password("alice", "a long password").name == "alice"
    assert store.by_password("alice", "wrong password") is None and store.by_password("bob", "") is None
    assert store.by_password("../etc", "x") is None


def test_a_new_token_kills_the_old_one_and_removal_keeps_an_admin(tmp_path):
    store = UserStore(tmp_path)
    _, old = store.add("alice")
    store.add("bob")
    new = store.new_token("alice")
    assert store.by_token(old) is None and store.by_token(new).name == "alice"
    with pytest.raises(Conflict):
        store.remove("alice")  # the last admin, with others left
    with pytest.raises(Conflict):
        store.add("bob")
    with pytest.raises(NotFound):
        store.new_token("carol")
    store.remove("bob")
    store.remove("alice")  # the only one left may go
    assert not store.enabled()


@pytest.mark.parametrize("name", ["", "Alice", "a/b", "..", "-x", "a" * 65, "é"])
def test_names_are_plain(tmp_path, name):
    with pytest.raises(BadRequest):
        UserStore(tmp_path).add(name)


def test_short_passwords_are_refused(tmp_path):
    store = UserStore(tmp_path)
    store.add("alice")
    with pytest.raises(BadRequest):
        store.set_password("alice", "short")


def test_a_change_by_another_process_is_seen_at_once(tmp_path):
    server, cli = UserStore(tmp_path), UserStore(tmp_path)
    assert not server.enabled()
    _, token = cli.add("alice")
    assert server.by_token(token).name == "alice"
    renewed = cli.new_token("alice")  # same size, maybe the same mtime tick: a new inode all the same
    assert server.by_token(token) is None and server.by_token(renewed).name == "alice"
    assert json.loads((tmp_path / "users.json").read_text())["secret"]
