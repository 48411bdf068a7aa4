"""The people of a library: names, admin or member, a password hash and an API token hash.

Kept in `data/users.json`, written atomically; a running server reads it again when its mtime,
size or inode changes, so a user added with `tapescribe users add` can sign in at once. Nothing secret is stored
in the clear: passwords are hashed with scrypt (hashlib, the standard library: argon2-cffi and
bcrypt are not installed), tokens (32 random bytes) with sha256, which is enough for a random
secret. The file also keeps the secret that signs login cookies (made once, never shown).

Sessions written before users existed have no owner: they belong to the first admin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tapescribe.errors import BadRequest, Conflict, NotFound
from tapescribe.sessions.files import read_json, utc_now, write_json_atomic

USERS_FILE = "users.json"
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class User:
    name: str
    admin: bool
    password_hash: str | None = None
    token_hash: str | None = None
    created: str = ""

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "admin": self.admin,
            "created": self.created,
            "has_password": bool(self.password_hash),
        }


def checked_name(name: object) -> str:
    """A user name: lower-case letters, digits, '.', '_', '-' (it is never a path, but keep it plain)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise BadRequest("A user name is 1-64 characters: a-z, 0-9, '.', '_' or '-', starting with a letter or digit.")
    return name


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, maxmem=64 << 20, **SCRYPT)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${encoded[0]}${encoded[1]}"


def password_matches(stored: str | None, password: str) -> bool:
    if not stored or len(password) > MAX_PASSWORD:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), maxmem=64 << 20
        )
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(actual, expected)


class UserStore:
    """users.json under the data dir; every method reads the file's current state (by mtime)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / USERS_FILE
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._data: dict[str, Any] = {"users": []}

    # -- reading ---------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen, self._data = None, {"users": []}
            return self._data
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)  # every write is a new file renamed into place
        if seen != self._seen:
            self._data = read_json(self.path, {"users": []}) or {"users": []}
            self._seen = seen
        return self._data

    def users(self) -> list[User]:
        with self._lock:
            return [User(**entry) for entry in self._load().get("users", [])]

    def enabled(self) -> bool:
        """Users exist: every request must say who it is."""
        return bool(self.users())

    def get(self, name: str) -> User | None:
        return next((user for user in self.users() if user.name == name), None)

    def first_admin(self) -> str | None:
        """Who owns the sessions made before users existed (and those made with TAPESCRIBE_API_KEY)."""
        return next((user.name for user in self.users() if user.admin), None)

    def by_token(self, token: str) -> User | None:
        digest = token_hash(token)
        found = None
        for user in self.users():
            if user.token_hash and hmac.compare_digest(user.token_hash, digest):
                found = user
        return found

    def by_password(self, name: str, password: str) -> User | None:
        user = self.get(name) if NAME.fullmatch(name or "") else None
        if user is None:
            password_matches(hash_password("x"), password)  # the same work as for a real name
            return None
        return user if password_matches(user.password_hash, password) else None

    def cookie_secret(self) -> bytes:
        """The key that signs login cookies; made once and kept in users.json."""
        with self._lock:
            data = self._load()
            secret = data.get("secret")
            if not secret:
                secret = secrets.token_hex(32)
                self._write({**data, "secret": secret})
            return bytes.fromhex(secret)

    # -- changing --------------------------------------------------------------------------------

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, data)
        os.chmod(self.path, 0o600)  # hashes and the cookie secret: for the server's user alone
        self._seen = None

    def _change(self, name: str, **fields: Any) -> None:
        with self._lock:
            data = self._load()
            entries = data.get("users", [])
            entry = next((entry for entry in entries if entry["name"] == name), None)
            if entry is None:
                raise NotFound(f"There is no user {name!r}.")
            entry.update(fields)
            self._write({**data, "users": entries})

    def add(self, name: str, admin: bool = False, password: str | None = None) -> tuple[User, str]:
        """A new user and their API token (shown once). The first user is always an admin: someone
        must be able to manage the others, and the sessions made before users existed become theirs."""
        name = checked_name(name)
        token = secrets.token_urlsafe(32)
        with self._lock:
            data = self._load()
            entries = list(data.get("users", []))
            if any(entry["name"] == name for entry in entries):
                raise Conflict(f"There is already a user {name!r}.")
            entry: dict[str, Any] = {
                "name": name,
                "admin": admin or not any(entry.get("admin") for entry in entries),
                "password_hash": hash_password(checked_password(password)) if password else None,
                "token_hash": token_hash(token),
                "created": utc_now(),
            }
            self._write({**data, "secret": data.get("secret") or secrets.token_hex(32), "users": [*entries, entry]})
        return User(**entry), token

    def remove(self, name: str) -> None:
        with self._lock:
            data = self._load()
            entries = data.get("users", [])
            if not any(entry["name"] == name for entry in entries):
                raise NotFound(f"There is no user {name!r}.")
            rest = [entry for entry in entries if entry["name"] != name]
            if entries and not any(entry.get("admin") for entry in rest) and rest:
                raise Conflict("That is the last admin: make another user an admin first.")
            self._write({**data, "users": rest})

    def new_token(self, name: str) -> str:
        token = secrets.token_urlsafe(32)
        self._change(name, token_hash=token_hash(token))
        return token

    def set_password(self, name: str, password: str) -> None:
        self._change(name, password_hash=hash_password(checked_password(password)))


def checked_password(password: str | None) -> str:
    if not password or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"A password is {MIN_PASSWORD} to {MAX_PASSWORD} characters.")
    return password
