"""What the aiohttp handlers share: the :class:`Frontend`, request keys and error replies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from labeltrail.annotate.auth import TokenStore
from labeltrail.annotate.metrics import Metrics
from labeltrail.annotate.queue import TaskQueue
from labeltrail.annotate.ratelimit import RateLimiter
from labeltrail.annotate.sessions import SessionStore
from labeltrail.annotate.sink import Sink
from labeltrail.annotate.views import render_page
from labeltrail.events.crypto import Keyring

__all__ = [
    "ANNOTATOR",
    "COOKIE",
    "FRONTEND",
    "Frontend",
    "error",
    "fe_of",
    "see_other",
    "too_many",
    "wants_json",
]

COOKIE = "lt_session"
"""The session cookie: a random session id (never the token)."""


@dataclass
class Frontend:
    """What the handlers share: queue, sink, tokens, sessions, limits and metrics.

    ``auth_limit`` counts failed credentials; its keys are ``addr:<client address>`` and
    ``cred:<annotator id or hashed session id>``.
    """

    queue: TaskQueue
    sink: Sink
    tokens: TokenStore
    submit_limit: RateLimiter
    signin_limit: RateLimiter
    sessions: SessionStore = field(default_factory=SessionStore)
    auth_limit: RateLimiter = field(default_factory=lambda: RateLimiter(0.1, 10))
    metrics: Metrics = field(default_factory=Metrics)
    is_ready: Callable[[], bool] = lambda: True
    secure_cookie: bool = False
    empty_refresh_s: int = 5
    keyring: Keyring | None = None
    """Opens sealed comment text when a task is shown (``docs/erasure.md``); an erased text
    shows as erased, whenever the task was read."""


FRONTEND = web.AppKey("frontend", Frontend)
ANNOTATOR = web.RequestKey("annotator", str)


def fe_of(request: web.Request) -> Frontend:
    """The request's :class:`Frontend`."""
    return request.app[FRONTEND]


def wants_json(request: web.Request) -> bool:
    """API clients: asking for JSON, or a bearer token without asking for HTML."""
    accept = request.headers.get("Accept", "")
    if "application/json" in accept:
        return True
    bearer = request.headers.get("Authorization", "").startswith("Bearer ")
    return bearer and "text/html" not in accept


def error(request: web.Request, status: int, title: str, message: str) -> web.Response:
    """An error as JSON (API clients) or as an HTML page."""
    if wants_json(request):
        return web.json_response({"error": title, "detail": message}, status=status)
    annotator = request.get(ANNOTATOR)
    body = render_page("error", title=title, message=message, annotator=annotator)
    return web.Response(text=body, status=status, content_type="text/html")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def too_many(request: web.Request, wait: float) -> web.Response:
    response = error(request, 429, "Too many requests", f"try again in {wait:.1f} s")
    response.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
    return response
