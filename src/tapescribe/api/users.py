"""Managing users (admins only) and who the caller is (everyone).

`GET /users` lists people with the storage their sessions take (never the sessions themselves);
`POST /users` makes one and answers their API token, shown this once; `DELETE /users/<name>`
removes a user: they can no longer sign in, and their sessions stay on disk untouched (nothing is
deleted that nobody asked to delete); adding the same name again gives them back.
`GET /me` tells the page who is signed in. A member asking for any of the admin routes gets 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request

from tapescribe.api.deps import runtime_of
from tapescribe.api.errors import error_responses
from tapescribe.api.identity import caller_of, require_admin

router = APIRouter(tags=["users"])


@router.get("/me")
def me(request: Request) -> dict:
    """Who this request comes from: a name and whether they are an admin (name null: no users)."""
    caller = caller_of(request)
    return {"name": caller.name, "admin": caller.admin, "users": runtime_of(request).users.enabled()}


@router.get("/users", responses=error_responses(403))
def list_users(request: Request) -> dict:
    """Every user, with how many sessions and bytes they keep (admins only)."""
    require_admin(request)
    runtime = runtime_of(request)
    per_owner = runtime.sessions.index.owners()
    first_admin = runtime.users.first_admin()
    users: list[dict[str, Any]] = []
    for user in runtime.users.users():
        own = dict(per_owner.get(user.name) or {"session_count": 0, "total_bytes": 0})
        if user.name == first_admin:  # sessions made before users existed are the first admin's
            unowned = per_owner.get(None) or {"session_count": 0, "total_bytes": 0}
            own = {key: own[key] + unowned[key] for key in own}
        users.append({**user.public(), "storage": own})
    return {"users": users}


@router.post("/users", status_code=201, responses=error_responses(400, 403, 409))
def add_user(
    request: Request,
    name: str = Body(..., max_length=64),
    admin: bool = Body(False),
    password: str | None = Body(None, max_length=1024),
) -> dict:
    """A new user; the answer holds their API token, shown only this once."""
    require_admin(request)
    user, token = runtime_of(request).users.add(name.strip().lower(), admin=admin, password=password)
    return {"user": user.public(), "token": token}


@router.patch("/users/{name}", responses=error_responses(400, 403, 404))
def change_user(request: Request, name: str, password: str = Body(..., embed=True, max_length=1024)) -> dict:
    """Set a user's password (an admin on the page); their browsers are signed out."""
    require_admin(request)
    users = runtime_of(request).users
    users.set_password(name, password)
    found = users.get(name)
    return {"user": found.public() if found else None}


@router.post("/users/{name}/token", responses=error_responses(403, 404))
def new_token(request: Request, name: str) -> dict:
    """A new API token for the user; the old one stops working at once."""
    require_admin(request)
    return {"token": runtime_of(request).users.new_token(name)}


@router.delete("/users/{name}", responses=error_responses(403, 404, 409))
def remove_user(request: Request, name: str) -> dict:
    """Remove a user: they can no longer sign in. Their recordings stay on disk (nothing is deleted)."""
    require_admin(request)
    runtime_of(request).users.remove(name)
    return {"deleted": name}
