"""Who is asking: bearer tokens, sign-in sessions, and limits on failed credentials.

API clients send ``Authorization: Bearer annotator:token``; browsers sign in with the token
once and then carry the cookie ``lt_session`` holding a server-side session id
(:mod:`labeltrail.annotate.sessions`). Every failed credential, on every path (bearer, cookie,
sign-in), spends a token of two buckets, the client address's and the credential's (the
annotator id, or the hashed session id); while either is empty the request answers 429 with
``Retry-After`` before any check. Bytes that are not UTF-8 in a credential answer 400 and a
log line, never a traceback.
"""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import parse_qsl

from aiohttp import web

from labeltrail.annotate.auth import (
    ANNOTATOR_ID_PATTERN,
    UndecodableCredential,
    parse_credential,
    require_text,
    token_digest,
)
from labeltrail.annotate.context import (
    ANNOTATOR,
    COOKIE,
    Frontend,
    error,
    fe_of,
    see_other,
    too_many,
    wants_json,
)
from labeltrail.annotate.views import render_page

__all__ = ["authenticate", "read_form", "signin", "signin_form", "signout"]

log = logging.getLogger(__name__)


def authenticate(request: web.Request) -> web.Response | None:
    """Set the request's annotator from its bearer token or session, or answer the refusal."""
    fe = fe_of(request)
    try:
        auth = require_text(request.headers.get("Authorization", ""), "Authorization header")
        bearer = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        value = bearer if bearer is not None else _session_cookie(request)
        if not value:
            return _unauthorized(request, cookie=False)
        keys = _limit_keys(request, bearer=bearer, session_id=None if bearer else value)
        wait = fe.auth_limit.peek(*keys)
        if wait:
            return too_many(request, wait)
        if bearer is not None:
            annotator = fe.tokens.check_credential(bearer)
        else:
            annotator = fe.sessions.authenticate(value, fe.tokens)
    except UndecodableCredential as exc:
        return _undecodable(request, exc)
    if annotator is None:
        _failed(fe, keys)
        return _unauthorized(request, cookie=bearer is None)
    request[ANNOTATOR] = annotator
    return None


def _session_cookie(request: web.Request) -> str | None:
    value = request.cookies.get(COOKIE)
    return require_text(value, "session cookie") if value else None


def _address_key(request: web.Request) -> str:
    return f"addr:{request.remote or '?'}"


def _limit_keys(
    request: web.Request, *, bearer: str | None = None, session_id: str | None = None
) -> list[str]:
    """Failure-limit keys: the client address, and the credential when one can be named."""
    keys = [_address_key(request)]
    if bearer is not None and (parsed := parse_credential(bearer)) is not None:
        keys.append(f"cred:{parsed[0]}")
    elif session_id:
        keys.append(f"cred:session:{hashlib.sha256(session_id.encode()).hexdigest()[:32]}")
    return keys


def _failed(fe: Frontend, keys: list[str]) -> None:
    fe.metrics.auth_failures.inc()
    for key in keys:
        fe.auth_limit.take(key)


def _unauthorized(request: web.Request, *, cookie: bool) -> web.Response:
    if wants_json(request) or request.method != "GET":
        response = web.json_response({"error": "unauthorized"}, status=401)
    else:
        response = see_other("/signin")
    if cookie:
        response.del_cookie(COOKIE, path="/")  # expired or signed out: the browser drops it
    return response


def _undecodable(request: web.Request, exc: UndecodableCredential) -> web.Response:
    """400 for credential bytes that are not text; counted as a failure of the address."""
    fe = fe_of(request)
    log.warning("refused %s from %s: %s", request.method, request.remote, exc)
    _failed(fe, [_address_key(request)])
    return error(request, 400, "Bad request", str(exc))


async def read_form(request: web.Request) -> list[tuple[str, object]]:
    """The form's fields; raises :class:`UndecodableCredential` when they are not UTF-8."""
    try:
        if request.content_type == "application/x-www-form-urlencoded":
            body = (await request.read()).decode("utf-8")
            return list(parse_qsl(body, keep_blank_values=True, errors="strict"))
        return list((await request.post()).items())
    except UnicodeDecodeError as exc:
        raise UndecodableCredential("form is not UTF-8 text") from exc


async def signin_form(request: web.Request) -> web.Response:
    body = render_page("signin", title="Sign in", error=None)
    return web.Response(text=body, content_type="text/html")


async def signin(request: web.Request) -> web.StreamResponse:
    fe = fe_of(request)
    wait = fe.signin_limit.take(request.remote or "?")
    if wait:
        return too_many(request, wait)
    try:
        form = dict(await read_form(request))
        annotator = str(form.get("annotator", "")).strip()
        token = str(form.get("token", "")).strip()
        keys = _limit_keys(request)
        if ANNOTATOR_ID_PATTERN.match(annotator):
            keys.append(f"cred:{annotator}")
        wait = fe.auth_limit.peek(*keys)
        if wait:
            return too_many(request, wait)
        ok = bool(annotator and token) and fe.tokens.check(annotator, token)
    except UndecodableCredential as exc:
        return _undecodable(request, exc)
    if not ok:
        _failed(fe, keys)
        body = render_page("signin", title="Sign in", error="Unknown annotator or wrong token.")
        return web.Response(text=body, status=401, content_type="text/html")
    response = see_other("/tasks/next")
    response.set_cookie(
        COOKIE,
        fe.sessions.create(annotator, token_digest(token)),
        max_age=int(fe.sessions.max_age),
        httponly=True,
        samesite="Strict",
        secure=fe.secure_cookie,
        path="/",
    )
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    """End the session server-side, so the old cookie stops working even if kept."""
    try:
        session_id = _session_cookie(request)
    except UndecodableCredential as exc:
        return _undecodable(request, exc)
    if session_id:
        fe_of(request).sessions.delete(session_id)
    response = see_other("/signin")
    response.del_cookie(COOKIE, path="/")
    return response
