"""The login page: a browser trades the key for an HttpOnly, SameSite=Strict cookie (scripts send Bearer).

The form is plain HTML and needs no JavaScript. The cookie holds a signed issue time, never the key
(see security.login_token); signing out clears it in the browser. Wrong keys are counted per client
address with the Bearer ones (api/throttle.py): after a few, the address waits before its next try.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tapescribe.api.deps import runtime_of
from tapescribe.api.errors import error_response
from tapescribe.api.identity import user_cookie
from tapescribe.api.security import (
    LOGIN_COOKIE,
    LOGIN_MAX_AGE,
    LOGIN_PATH,
    key_matches,
    login_token,
    too_many_attempts,
)
from tapescribe.api.throttle import KeyThrottle, address_key

router = APIRouter(tags=["login"], include_in_schema=False)

LOGIN_HTML = Path(__file__).resolve().parent.parent / "web" / "login.html"
MAX_FORM_BYTES = 4096
WRONG_KEY = "That key is not right."
WRONG_PASSWORD = "That name or password is not right."
KEY_FIELDS = (
    "<p>This server keeps recordings. Enter the key its operator set (TAPESCRIBE_API_KEY).</p>\n"
    '    <label for="key">Key</label>\n'
    '    <input id="key" name="key" type="password" autocomplete="current-password" required autofocus>'
)
USER_FIELDS = (
    "<p>This server keeps recordings. Sign in with the name and password you were given.</p>\n"
    '    <label for="name">Name</label>\n'
    '    <input id="name" name="name" autocomplete="username" autocapitalize="none" required autofocus>\n'
    '    <label for="password">Password</label>\n'
    '    <input id="password" name="password" type="password" autocomplete="current-password" required>'
)


def login_page(error: str | None = None, status_code: int = 200, users: bool = False) -> HTMLResponse:
    page = LOGIN_HTML.read_text(encoding="utf-8").replace("<!--login-fields-->", USER_FIELDS if users else KEY_FIELDS)
    if error:
        notice = f'<div class="notice notice-error" role="alert"><strong>{html.escape(error)}</strong></div>'
        page = page.replace("<!--login-error-->", notice)
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})


async def _submitted(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form, read with a size cap (a key or a password is short)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:  # too many fields: not our form
        return {}
    return {name: values[0] for name, values in fields.items()}


@router.get(LOGIN_PATH)
def show_login(request: Request) -> Response:
    runtime = runtime_of(request)
    users = runtime.users.enabled()
    if not runtime.settings.api_key_value() and not users:
        return RedirectResponse("/", status_code=303)
    return login_page(users=users)


def _refused(request: Request, response: Response, message: str) -> Response:
    """`response` (the one error shape) for a script; the login page saying `message` for a browser."""
    if "text/html" not in request.headers.get("accept", ""):
        return response
    page = login_page(message, status_code=response.status_code, users=runtime_of(request).users.enabled())
    if "retry-after" in response.headers:
        page.headers["Retry-After"] = response.headers["retry-after"]
    return page


def _cookie_for(request: Request, form: dict[str, str]) -> tuple[str | None, str]:
    """The login cookie the form earns (None when it earns none), and what to say when it does not."""
    runtime = runtime_of(request)
    api_key = runtime.settings.api_key_value()
    if "key" in form:
        return (login_token(api_key) if api_key and key_matches(api_key, form["key"]) else None), WRONG_KEY
    user = runtime.users.by_password(form.get("name", "").strip().lower(), form.get("password", ""))
    return (user_cookie(runtime.users, user) if user else None), WRONG_PASSWORD


@router.post(LOGIN_PATH)
async def log_in(request: Request) -> Response:
    runtime = runtime_of(request)
    if not runtime.settings.api_key_value() and not runtime.users.enabled():
        return RedirectResponse("/", status_code=303)
    form = await _submitted(request)
    # From here on nothing is awaited: parallel guesses are counted one after another.
    throttle: KeyThrottle = request.app.state.key_throttle
    address = address_key(request.scope.get("client"))
    wait = throttle.wait_left(address)
    if wait:
        refusal = too_many_attempts(wait)
        seconds = refusal.headers["retry-after"]
        return _refused(request, refusal, f"Too many wrong keys came from here: wait {seconds} s and try again.")
    cookie, wrong = _cookie_for(request, form)
    if cookie is None:
        throttle.failed(address, form.get("key") or f"{form.get('name', '')}:{form.get('password', '')}")
        return _refused(request, error_response(401, "unauthorized", wrong), wrong)
    throttle.succeeded(address)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        LOGIN_COOKIE,
        cookie,
        max_age=LOGIN_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def log_out() -> Response:
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/", httponly=True, samesite="strict")
    return response
