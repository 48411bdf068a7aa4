"""Who a request comes from, and the one check that keeps each person to their own sessions.

TrustBoundary (api/security.py) puts a `Caller` in the request's scope once it has checked the
credentials. With no users (the loopback single-user mode, or TAPESCRIBE_API_KEY alone) there is no
caller name and every session is visible, as before users existed. With users, `Caller.name` is
the person; TAPESCRIBE_API_KEY speaks for the first admin.

A session belongs to the name in its session.json's `owner`; a session without one (made before
users existed) belongs to the first admin. Another person's session answers exactly what a session
that does not exist answers (404 "No such session."), on every route that names one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from tapescribe.errors import Forbidden, NotFound
from tapescribe.sessions.ids import checked_session_id
from tapescribe.sessions.users import User, UserStore

CALLER = "tapescribe.caller"
USER_COOKIE = re.compile(r"u\.([a-z0-9][a-z0-9_.-]{0,63})\.([0-9]{1,12})\.([0-9a-f]{64})")
NO_SUCH_SESSION = "No such session."


@dataclass(frozen=True)
class Caller:
    name: str | None = None  # None: no users, every session is visible
    admin: bool = True

    def visible(self, default_owner: str | None) -> tuple[str, bool] | None:
        """The index filter: (owner, whether sessions without an owner count); None: everything."""
        if self.name is None:
            return None
        return self.name, self.name == default_owner


def caller_of(connection: HTTPConnection) -> Caller:
    return connection.scope.get(CALLER) or Caller()


def visible_to(connection: HTTPConnection) -> tuple[str, bool] | None:
    """The index filter for this caller's list, search and storage."""
    return caller_of(connection).visible(connection.app.state.runtime.users.first_admin())


def caller_for(user: User) -> Caller:
    return Caller(user.name, user.admin)


def owner_fields(connection: HTTPConnection) -> dict[str, Any]:
    """What a new session's session.json gets: its owner, when there are users."""
    name = caller_of(connection).name
    return {"owner": name} if name else {}


def owner_of(session: dict[str, Any], users: UserStore) -> str | None:
    return session.get("owner") or users.first_admin()


def require_owner(connection: HTTPConnection, session_id: str) -> None:
    """NotFound ('No such session.', as for a missing id) when the caller may not see the session."""
    caller = caller_of(connection)
    if caller.name is None:
        return
    runtime = connection.app.state.runtime
    session = runtime.sessions.session(checked_session_id(session_id))  # NotFound when missing
    if owner_of(session, runtime.users) != caller.name:
        raise NotFound(NO_SUCH_SESSION)


def owned_session(connection: HTTPConnection) -> None:
    """A dependency of every guarded router: a route naming a session id serves its owner only."""
    session_id = connection.path_params.get("session_id")
    if session_id is not None:
        require_owner(connection, session_id)


def require_admin(connection: HTTPConnection) -> Caller:
    """The caller, when an admin; 403 for a member, and in the open loopback mode (no key, no users),
    where the first user is made on the command line (`tapescribe users add`), which shows their token."""
    caller = caller_of(connection)
    runtime = connection.app.state.runtime
    if not runtime.settings.api_key_value() and not runtime.users.enabled():
        raise Forbidden("This server has no users: add the first one with `tapescribe users add NAME --admin`.")
    if not caller.admin:
        raise Forbidden("Only an admin may manage users.")
    return caller


# -- the login cookie of a user ------------------------------------------------------------------


def _signature(secret: bytes, user: User, issued: int) -> str:
    # The password hash is signed in: a new password signs every browser of that user out.
    message = f"tapescribe-user:{user.name}:{issued}:{user.password_hash or ''}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def user_cookie(users: UserStore, user: User, issued: int | None = None) -> str:
    issued = int(time.time()) if issued is None else issued
    return f"u.{user.name}.{issued}.{_signature(users.cookie_secret(), user, issued)}"


def user_from_cookie(users: UserStore, value: str, max_age: int) -> User | None:
    """The user a login cookie names, if it is ours, fresh, and the user still exists."""
    match = USER_COOKIE.fullmatch(value)
    if match is None:
        return None
    name, issued = match[1], int(match[2])
    user = users.get(name)
    if user is None or not 0 <= time.time() - issued <= max_age:
        return None
    expected = _signature(users.cookie_secret(), user, issued)
    return user if hmac.compare_digest(expected.encode(), match[3].encode()) else None
