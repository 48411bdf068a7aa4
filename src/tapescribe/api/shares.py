"""Share links: one session, read-only, for anyone who holds the link (no account).

`POST /session/<id>/share` (its owner only, like every session route) makes a link
`/shared/<id>/<token>`: 32 random bytes, of which the session keeps only the sha256 (share.json in
its directory), so the link cannot be rebuilt from the files. Making a new link replaces the old
one; `DELETE /session/<id>/share` ends it at once. Under /shared/ the trust boundary lets only
GET and HEAD through (405 for any change), and every answer for a wrong or revoked token, or a
session that is gone, is the same 404 as for a session that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, Response

from tapescribe.api import sessions as session_routes
from tapescribe.api.deps import runtime_of
from tapescribe.api.errors import error_responses
from tapescribe.api.identity import NO_SUCH_SESSION
from tapescribe.errors import NotFound
from tapescribe.sessions.files import utc_now
from tapescribe.sessions.ids import checked_session_id

SHARE_FILE = "share.json"

router = APIRouter(tags=["sharing"])
shared = APIRouter(tags=["sharing"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@router.post("/session/{session_id}/share", responses=error_responses(404))
def share_session(request: Request, session_id: str) -> dict:
    """A read-only link to this session for people without an account; a new one replaces the old."""
    runtime = runtime_of(request)
    session_id = checked_session_id(session_id)
    token = secrets.token_urlsafe(32)
    runtime.sessions.store.write(session_id, SHARE_FILE, {"token_sha256": _digest(token), "created": utc_now()})
    path = f"/shared/{session_id}/{token}"
    return {"url": str(request.base_url).rstrip("/") + path, "path": path}


@router.delete("/session/{session_id}/share", responses=error_responses(404))
def stop_sharing(request: Request, session_id: str) -> dict:
    """The link stops working at once."""
    runtime = runtime_of(request)
    session_id = checked_session_id(session_id)
    runtime.sessions.session(session_id)  # NotFound when there is none
    runtime.sessions.store.write(session_id, SHARE_FILE, {"token_sha256": None, "revoked": utc_now()})
    return {"shared": False}


@router.get("/session/{session_id}/share", responses=error_responses(404))
def share_state(request: Request, session_id: str) -> dict:
    """Whether a link is live (the link itself is shown once, when made)."""
    record = runtime_of(request).sessions.store.read(checked_session_id(session_id), SHARE_FILE) or {}
    return {"shared": bool(record.get("token_sha256")), "created": record.get("created")}


def shared_session(request: Request, session_id: str, token: str) -> str:
    """The session id when the token is this session's live link; else the 404 of a missing session."""
    try:
        session_id = checked_session_id(session_id)
        record = runtime_of(request).sessions.store.read(session_id, SHARE_FILE) or {}
    except Exception as error:  # a bad id or a gone session: the same answer as a wrong token
        raise NotFound(NO_SUCH_SESSION) from error
    stored = record.get("token_sha256")
    if not stored or len(token) > 200 or not hmac.compare_digest(stored, _digest(token)):
        raise NotFound(NO_SUCH_SESSION)
    return session_id


@shared.get("/shared/{session_id}/{token}/session", responses=error_responses(404))
def shared_json(request: Request, session_id: str, token: str) -> dict:
    """The shared session's record and transcript (read-only)."""
    runtime = runtime_of(request)
    found = runtime.sessions.get(shared_session(request, session_id, token))
    found.pop("owner", None)
    return found


@shared.get(
    "/shared/{session_id}/{token}/audio",
    response_class=Response,
    response_model=None,
    responses=session_routes.AUDIO_RESPONSES,
)
@shared.head(
    "/shared/{session_id}/{token}/audio", response_class=Response, response_model=None, include_in_schema=False
)
def shared_audio(
    request: Request,
    session_id: str,
    token: str,
    download: bool = False,
    range_: str | None = Header(None, alias="range", max_length=1000),
) -> Response:
    """The shared session's recording, with Range support."""
    return session_routes.session_audio(request, shared_session(request, session_id, token), download, range_)


@shared.get("/shared/{session_id}/{token}/export/{fmt}", response_model=None, responses=error_responses(400, 404))
def shared_export(request: Request, session_id: str, token: str, fmt: str) -> Response:
    """The shared transcript as txt, srt, vtt, json or tsv."""
    return session_routes.export_session(request, shared_session(request, session_id, token), fmt)


@shared.get("/shared/{session_id}/{token}", response_class=HTMLResponse, responses=error_responses(404))
def shared_page(request: Request, session_id: str, token: str) -> HTMLResponse:
    """A read-only page: title, player, transcript and downloads."""
    session = runtime_of(request).sessions.get(shared_session(request, session_id, token))
    base = f"/shared/{session['id']}/{html.escape(token, quote=True)}"
    segments = (session.get("transcription") or {}).get("segments") or []
    lines = "\n".join(
        f'<p class="shared-line"><span class="shared-time">{_clock(segment.get("start") or 0)}</span> '
        f"{html.escape(segment.get('text') or '')}</p>"
        for segment in segments
    )
    exports = " ".join(
        f'<a class="button" href="{base}/export/{fmt}">{fmt.upper()}</a>' for fmt in ("txt", "srt", "vtt", "json")
    )
    title = html.escape(session.get("title") or "Shared recording")
    audio = f'<audio controls preload="metadata" src="{base}/audio"></audio>' if session.get("has_audio") else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title} · tapescribe</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><main class="shared" style="max-width: 760px; margin: 32px auto; padding: 0 16px">
<h1 id="shared-title">{title}</h1><p class="muted">Shared read-only from tapescribe.</p>
{audio}
<p class="shared-exports">{exports}</p>
<section id="shared-transcript">{lines or "<p>No transcript yet.</p>"}</section>
</main></body></html>"""
    return HTMLResponse(page, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return (
        f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
        if whole >= 3600
        else f"{whole // 60}:{whole % 60:02d}"
    )
