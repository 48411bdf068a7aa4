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


def login_page(error: str | None = None, status_code: int = 200) -> HTMLResponse:
    page = LOGIN_HTML.read_text(encoding="utf-8")
    if error:
        notice = f'<div class="notice notice-error" role="alert"><strong>{html.escape(error)}</strong></div>'
        page = page.replace("<!--login-error-->", notice)
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})


async def _submitted_key(request: Request) -> str:
    """The `key` field of a urlencoded form, read with a size cap (a key is short)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return ""
    try:
        return parse_qs(body.decode("utf-8", "replace"), max_num_fields=10).get("key", [""])[0]
    except ValueError:  # too many fields: not our form
        return ""


@router.get(LOGIN_PATH)
def show_login(request: Request) -> Response:
    if not runtime_of(request).settings.api_key_value():
        return RedirectResponse("/", status_code=303)
    return login_page()


def _refused(request: Request, response: Response, message: str) -> Response:
    """`response` (the one error shape) for a script; the login page saying `message` for a browser."""
    if "text/html" not in request.headers.get("accept", ""):
        return response
    page = login_page(message, status_code=response.status_code)
    if "retry-after" in response.headers:
        page.headers["Retry-After"] = response.headers["retry-after"]
    return page


@router.post(LOGIN_PATH)
async def log_in(request: Request) -> Response:
    api_key = runtime_of(request).settings.api_key_value()
    if not api_key:
        return RedirectResponse("/", status_code=303)
    submitted = await _submitted_key(request)
    # From here on nothing is awaited: parallel guesses are counted one after another.
    throttle: KeyThrottle = request.app.state.key_throttle
    address = address_key(request.scope.get("client"))
    wait = throttle.wait_left(address)
    if wait:
        refusal = too_many_attempts(wait)
        seconds = refusal.headers["retry-after"]
        return _refused(request, refusal, f"Too many wrong keys came from here: wait {seconds} s and try again.")
    if not key_matches(api_key, submitted):
        throttle.failed(address, submitted)
        return _refused(request, error_response(401, "unauthorized", WRONG_KEY), WRONG_KEY)
    throttle.succeeded(address)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        LOGIN_COOKIE,
        login_token(api_key),
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
