"""The aiohttp application: sign-in, task pages, submissions, health and metrics.

Every request except sign-in, sign-out, health, metrics and static files must carry a valid
credential: ``Authorization: Bearer annotator:token`` (API clients) or the cookie ``lt_session``
holding a server-side session id (browsers, after signing in). It is checked on every request.
Failed credentials are rate-limited per client address and per credential (429 with
``Retry-After``); bytes that are not UTF-8 in a credential answer 400, never a traceback. An
annotator only ever reaches tasks keyed by their own id: another annotator's task answers 404,
exactly like a task that does not exist.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from labeltrail.annotate.access import authenticate, read_form, signin, signin_form, signout
from labeltrail.annotate.auth import UndecodableCredential, require_text
from labeltrail.annotate.context import (
    ANNOTATOR,
    COOKIE,
    FRONTEND,
    Frontend,
    error,
    fe_of,
    see_other,
    too_many,
    wants_json,
)
from labeltrail.annotate.queue import outcome_id
from labeltrail.annotate.sink import PublishError
from labeltrail.annotate.static import APP_CSS, APP_JS
from labeltrail.annotate.validate import SubmissionRejected, build_outcome
from labeltrail.annotate.views import render_page
from labeltrail.events.crypto import reveal_event
from labeltrail.events.models import TaskAssigned

__all__ = ["COOKIE", "Frontend", "create_app"]

_PUBLIC = ("/signin", "/signout", "/healthz", "/readyz", "/metrics", "/static/")
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send Origin: null
    "Cache-Control": "no-store",
}
_MAX_FIELDS = 64
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _security(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    fe = fe_of(request)
    response: web.StreamResponse | None = None
    if not request.path.startswith(_PUBLIC):
        response = authenticate(request)
    if response is None and request.method == "POST" and not _same_origin(request):
        response = error(request, 403, "Forbidden", "cross-origin form submission refused")
    if response is None:
        response = await handler(request)
        resource = request.match_info.route.resource
        fe.metrics.http_requests.labels(resource.canonical if resource else "unmatched").inc()
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
    return response


def _same_origin(request: web.Request) -> bool:
    """Browsers send Origin on POST; API clients without one are authenticated by bearer."""
    origin = request.headers.get("Origin")
    return origin is None or origin.split("://", 1)[-1] == request.host


# tasks -------------------------------------------------------------------------------------


async def index(request: web.Request) -> web.StreamResponse:
    return see_other("/tasks/next")


def _suspended(request: web.Request) -> web.Response | None:
    """403 with the reason while the annotator is suspended (``AnnotatorSuspended`` on
    ``annotators.status``, until an ``AnnotatorReinstated``): no task is served, no answer taken."""
    fe = fe_of(request)
    reason = fe.queue.suspension(request[ANNOTATOR])
    if reason is None:
        return None
    fe.metrics.rejected.labels("suspended").inc()
    return error(
        request,
        403,
        "Suspended",
        f"you are suspended ({reason}): no tasks are served and no answers taken until you "
        "are reinstated",
    )


async def next_task(request: web.Request) -> web.StreamResponse:
    fe = fe_of(request)
    annotator: str = request[ANNOTATOR]
    if (refused := _suspended(request)) is not None:
        return refused
    task = fe.queue.next_for(annotator) if fe.is_ready() else None
    return _render_task(request, task)


async def show_task(request: web.Request) -> web.StreamResponse:
    fe = fe_of(request)
    annotator: str = request[ANNOTATOR]
    if (refused := _suspended(request)) is not None:
        return refused
    task = fe.queue.get(annotator, request.match_info["assignment_id"])
    if task is None:
        return error(request, 404, "Not found", "no such task in your queue")
    return _render_task(request, task)


def _render_task(request: web.Request, task: TaskAssigned | None) -> web.StreamResponse:
    fe = fe_of(request)
    started = time.perf_counter()
    annotator: str = request[ANNOTATOR]
    if task is None:
        if wants_json(request):
            return web.json_response({"task": None, "ready": fe.is_ready()})
        body = render_page(
            "empty",
            title="No tasks",
            annotator=annotator,
            ready=fe.is_ready(),
            refresh=fe.empty_refresh_s,
        )
        return web.Response(text=body, content_type="text/html")
    schema = fe.queue.schema(task.schema_version)
    if schema is None:
        return error(request, 503, "Schema unknown", f"schema {task.schema_version} not read yet")
    if fe.keyring is not None:
        task = reveal_event(task, fe.keyring)
    fe.metrics.tasks_served.labels(task.pool).inc()
    if wants_json(request):
        data = task.model_dump(mode="json", exclude={"envelope", "cost_usd"})
        if task.pool != "expert":
            data.pop("prior_votes", None)  # crowd annotators are blind to each other
        data["classes"] = list(schema.classes)
        response: web.Response = web.json_response({"task": data, "ready": True})
    else:
        body = render_page(
            "task",
            title="Task",
            annotator=annotator,
            task=task,
            schema=schema,
            depth=fe.queue.depth(annotator),
        )
        response = web.Response(text=body, content_type="text/html")
    fe.metrics.request_seconds.labels("render").observe(time.perf_counter() - started)
    return response


async def submit(request: web.Request) -> web.StreamResponse:
    fe = fe_of(request)
    started = time.perf_counter()
    annotator: str = request[ANNOTATOR]
    assignment_id = request.match_info["assignment_id"]
    if (refused := _suspended(request)) is not None:
        return refused
    wait = fe.submit_limit.take(annotator)
    if wait:
        fe.metrics.rejected.labels("rate_limited").inc()
        return too_many(request, wait)
    if request.content_type == "application/json":
        try:
            raw = await request.json()
        except ValueError:
            return _reject(request, SubmissionRejected("body", "not JSON"))
        if not isinstance(raw, dict):
            return _reject(request, SubmissionRejected("body", "want a JSON object"))
        items = list(raw.items())
    else:
        try:
            items = await read_form(request)
        except UndecodableCredential:
            return _reject(request, SubmissionRejected("body", "not UTF-8 text"))
    if len(items) > _MAX_FIELDS:
        return _reject(request, SubmissionRejected("body", "too many fields"))
    form: dict[str, str] = {}
    for key, value in items:
        if not isinstance(value, str | int | float) or isinstance(value, bool) or key in form:
            return _reject(request, SubmissionRejected(str(key)[:40], "one plain value expected"))
        try:
            form[require_text(str(key), "field")] = require_text(str(value), "value")
        except UndecodableCredential:
            return _reject(request, SubmissionRejected("body", "not UTF-8 text"))
    claim = fe.queue.claim(annotator, assignment_id)
    if claim is None:
        fe.metrics.rejected.labels("not_found").inc()
        if fe.queue.is_pending(annotator, assignment_id):
            return error(request, 409, "Conflict", "this task is being submitted already")
        return error(request, 404, "Not found", "no such task in your queue")
    task = claim.task
    if claim.elapsed_ms is None:  # the time spent could only come from the client: refuse
        fe.queue.release(assignment_id)
        fe.metrics.rejected.labels("not_served").inc()
        return error(request, 409, "Not served yet", "open this task (GET it) before answering it")
    schema = fe.queue.schema(task.schema_version)
    try:
        if schema is None:
            raise SubmissionRejected("schema_version", f"{task.schema_version} is not known")
        event = build_outcome(
            task,
            schema,
            form,
            vote_or_adjudication_id=outcome_id(task),
            server_elapsed_ms=claim.elapsed_ms,
        )
    except SubmissionRejected as exc:
        fe.queue.release(assignment_id)
        return _reject(request, exc)
    try:
        await fe.sink.publish(event)
    except PublishError as exc:
        fe.queue.release(assignment_id)
        fe.metrics.rejected.labels("broker").inc()
        return error(request, 503, "Not saved", f"{exc}; submit again")
    fe.queue.record_outcome(outcome_id(task))
    draft = "yes" if task.prelabel is not None else "no"
    fe.metrics.votes_produced.labels(task.pool, draft).inc()
    spent = getattr(event, "time_spent_ms", None)
    if spent is not None:
        fe.metrics.label_seconds.labels(task.pool, draft).observe(spent / 1000)
    fe.metrics.pending.set(fe.queue.depth())
    fe.metrics.request_seconds.labels("submit").observe(time.perf_counter() - started)
    if wants_json(request):
        return web.json_response({"event_id": event.event_id, "outcome_id": outcome_id(task)})
    return see_other("/tasks/next")


def _reject(request: web.Request, exc: SubmissionRejected) -> web.Response:
    fe_of(request).metrics.rejected.labels("invalid").inc()
    return error(request, 400, "Rejected", str(exc))


# operations --------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    fe = fe_of(request)
    ready = fe.is_ready()
    body = {"ready": ready, "pending": fe.queue.depth()}
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    data = generate_latest(fe_of(request).metrics.registry)
    response = web.Response(body=data)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


_STATIC_CACHE = {"Cache-Control": "public, max-age=3600"}  # saves two round trips per page


async def static_js(request: web.Request) -> web.Response:
    return web.Response(text=APP_JS, content_type="application/javascript", headers=_STATIC_CACHE)


async def static_css(request: web.Request) -> web.Response:
    return web.Response(text=APP_CSS, content_type="text/css", headers=_STATIC_CACHE)


def create_app(frontend: Frontend) -> web.Application:
    """The application; closing it closes the sink (after in-flight requests finished)."""
    app = web.Application(middlewares=[_security], client_max_size=64 * 1024)
    app[FRONTEND] = frontend
    app.router.add_get("/", index)
    app.router.add_get("/signin", signin_form)
    app.router.add_post("/signin", signin)
    app.router.add_post("/signout", signout)
    app.router.add_get("/tasks/next", next_task)
    app.router.add_get("/tasks/{assignment_id}", show_task)
    app.router.add_post("/tasks/{assignment_id}", submit)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/static/app.js", static_js)
    app.router.add_get("/static/app.css", static_css)

    async def _close_sink(app: web.Application) -> None:
        app[FRONTEND].sink.close()

    app.on_cleanup.append(_close_sink)
    return app
