"""Session ids are made here and only here; anything from a client is checked against this shape first."""

from __future__ import annotations

import re
import uuid

from tapescribe.errors import NotFound

_ID_SHAPE = re.compile(r"[0-9a-f]{32}")


def new_session_id() -> str:
    return uuid.uuid4().hex


def checked_session_id(candidate: object) -> str:
    """Return the id if it has the server's shape; NotFound otherwise, before any filesystem access."""
    if isinstance(candidate, str) and len(candidate) == 32 and _ID_SHAPE.fullmatch(candidate):
        return candidate
    raise NotFound("No such session.")
