"""The dashboard's ASGI app: the page, its static files and the JSON API.

The API is documented in docs/DASHBOARD.md. Redis is reached through the
read model (``rpqueue.views``) with the synchronous client the rest of
rpqueue uses, from Starlette's thread pool, so a slow Redis never blocks
the event loop.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Collection
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import VERSION
from ..storage.reads import StorageError
from ..views.history import MAX_MINUTES as MAX_HISTORY_MINUTES
from . import model
from .security import (
    AUTH_COOKIE,
    LOOPBACK_HOSTS,
    MAX_BODY,
    SESSION_COOKIE,
    Guard,
    Security,
    client_of,
)
from .sessions import Throttle

if TYPE_CHECKING:
    from ..app import RPQueue

STATIC = Path(__file__).resolve().parent / "static"
MAX_PER_PAGE = 500
MAX_DEAD_LIMIT = 1000
MAX_TARGETS = 1000
MAX_FILTER = 200
T = TypeVar("T")


class ApiError(Exception):
    """A request the API refuses; becomes ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def _queue_param(request: Request, required: bool) -> str | None:
    queue = request.query_params.get("queue")
    if queue is None or queue == "":
        if required:
            raise ApiError(400, "the queue parameter is required")
        return None
    return queue


async def _json_body(request: Request) -> dict[str, Any]:
    # A JSON content type also means a cross-site form cannot send this
    # request without a CORS preflight, which this server never grants.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "send the body as application/json")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, "request body too large")
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "the body must be a JSON object")
    return parsed


def _targets(body: dict[str, Any]) -> tuple[list[tuple[str, str]] | None, str | None]:
    """(queue, id) pairs from ``items``, or (None, queue or None) for ``"all": true``."""
    if body.get("all") is True:
        queue = body.get("queue")
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise ApiError(400, "queue must be a non-empty string")
        return None, queue
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise ApiError(400, 'give "items": [{"queue": ..., "id": ...}, ...] or "all": true')
    if len(items) > MAX_TARGETS:
        raise ApiError(400, f"at most {MAX_TARGETS} items per request")
    pairs: list[tuple[str, str]] = []
    for item in items:
        queue = item.get("queue") if isinstance(item, dict) else None
        taskid = item.get("id") if isinstance(item, dict) else None
        if not isinstance(queue, str) or not queue or not isinstance(taskid, str) or not taskid:
            raise ApiError(400, "every item needs a non-empty string queue and id")
        pairs.append((queue, taskid))
    return pairs, None


def safe_url(url: str) -> str:
    """The Redis URL with any password masked: the page shows where it is connected.

    Done by hand rather than with urlsplit: cluster and sentinel URLs list
    several host:port pairs, which urlsplit's port parsing rejects.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = len(rest)
    for mark in "/?#":
        at = rest.find(mark)
        if at != -1:
            cut = min(cut, at)
    netloc, tail = rest[:cut], rest[cut:]
    if "@" in netloc:
        auth, hosts = netloc.rsplit("@", 1)
        user, colon, _ = auth.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else netloc
    # redis-py also takes the password as a query parameter.
    tail = re.sub(r"(?i)([?&](?:password|sentinel_password)=)[^&#]*", r"\1***", tail)
    return f"{scheme}{sep}{netloc}{tail}"


def create_app(rpq: RPQueue, token: str | None = None, *,
               allowed_hosts: Collection[str] | None = LOOPBACK_HOSTS,
               poll_interval: float = 2.0, throttle: Throttle | None = None) -> Starlette:
    """The dashboard for ``rpq``'s Redis and key prefix.

    ``token``: when set, every request must present it (see security.py).
    ``allowed_hosts``: names the Host header may carry; loopback names by
    default, ``None`` or ``["*"]`` for any (behind a proxy that checks it).
    ``poll_interval``: seconds between the page's refreshes, and so the
    spacing of the rate samples.
    ``throttle``: the budget of wrong tokens (``rpqueue.web.sessions.Throttle``;
    by default 10 per client then one a second, 100 overall then 10 a second).
    """
    if poll_interval <= 0:
        raise ValueError("poll_interval must be positive")
    security = Security(token, allowed_hosts, throttle)
    # Half the poll interval: every poll of one tab lands a sample even
    # when timers drift, while extra tabs add none.
    sampler = model.RateSampler(keep=60, min_interval=poll_interval / 2)
    index_html = (STATIC / "index.html").read_text(encoding="utf-8")
    login_html = (STATIC / "login.html").read_text(encoding="utf-8")

    async def call(fn: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(partial(fn, rpq, *args))

    async def index(request: Request) -> Response:
        return HTMLResponse(index_html)

    async def login_page(request: Request) -> Response:
        if security.token is None:
            return RedirectResponse("/", status_code=303)
        return HTMLResponse(login_html)

    async def login(request: Request) -> Response:
        if security.token is None:
            return RedirectResponse("/", status_code=303)
        # The guard has already refused a body over MAX_LOGIN_BODY unread.
        body = await request.body()
        fields = parse_qs(body.decode("utf-8", "replace"))
        given = (fields.get("token") or [""])[0]
        outcome = security.attempt(client_of(request.scope), given)
        if outcome != "ok":
            # The only thing inserted is constant text, never input.
            said = ("Too many wrong tokens: wait a moment." if outcome == "throttled"
                    else "Wrong token.")
            page = login_html.replace("<!--ERROR-->", f'<p class="error">{said}</p>')
            return HTMLResponse(page, status_code=429 if outcome == "throttled" else 401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(AUTH_COOKIE, security.sessions.start(), httponly=True,
                            samesite="strict", max_age=int(security.sessions.ttl),
                            secure=request.url.scheme == "https", path="/")
        return response

    async def session(request: Request) -> Response:
        sid = request.cookies.get(SESSION_COOKIE)
        fresh = not sid or len(sid) < 32
        if fresh:
            sid = secrets.token_urlsafe(32)
        assert sid is not None
        # A cluster client lists its nodes, which may ask the network.
        url = await run_in_threadpool(rpq.describe_connection)
        response = JSONResponse({
            "csrf_token": security.csrf_token(sid), "auth_required": security.token is not None,
            "poll_interval": poll_interval, "prefix": rpq.prefix, "redis": safe_url(url),
            "version": VERSION,
        })
        if fresh:
            response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path="/")
        return response

    async def logout(request: Request) -> Response:
        security.sessions.end(request.cookies.get(AUTH_COOKIE))
        response = JSONResponse({"ok": True})
        response.delete_cookie(AUTH_COOKIE, path="/")
        return response

    async def queues(request: Request) -> Response:
        return JSONResponse(await call(model.queue_overview, sampler))

    async def queue_history(request: Request) -> Response:
        queue = _queue_param(request, required=True)
        minutes = _int_param(request, "minutes", 60, 1, MAX_HISTORY_MINUTES)
        return JSONResponse(await call(model.queue_history, queue, minutes))

    async def data_queues(request: Request) -> Response:
        return JSONResponse(await call(model.data_queues))

    async def items(request: Request) -> Response:
        queue = _queue_param(request, required=True)
        page = _int_param(request, "page", 0, 0, 10**9)
        per_page = _int_param(request, "per_page", 50, 1, MAX_PER_PAGE)
        return JSONResponse(await call(model.queue_items, queue, page, per_page))

    async def dead(request: Request) -> Response:
        queue = _queue_param(request, required=False)
        params = request.query_params
        filters = {k: params[k] for k in ("name", "error", "id") if params.get(k)}
        if "limit" in params or not (filters or "page" in params or "per_page" in params):
            # The first API: the oldest ``limit``, unfiltered.
            limit = _int_param(request, "limit", 100, 1, MAX_DEAD_LIMIT)
            return JSONResponse(await call(model.dead_letters, queue, limit))
        for key, value in filters.items():
            if len(value) > MAX_FILTER:
                raise ApiError(400, f"{key} must be at most {MAX_FILTER} characters")
        page = _int_param(request, "page", 0, 0, 10**9)
        per_page = _int_param(request, "per_page", 50, 1, MAX_PER_PAGE)
        return JSONResponse(await call(model.dead_search, queue, filters, page, per_page))

    async def search(request: Request) -> Response:
        text = request.query_params.get("q", "").strip()
        if not text:
            raise ApiError(400, "the q parameter is required")
        if len(text) > MAX_FILTER:
            raise ApiError(400, f"q must be at most {MAX_FILTER} characters")
        return JSONResponse(await call(model.search, text))

    def _id_param(request: Request) -> str:
        taskid = request.query_params.get("id")
        if not taskid:
            raise ApiError(400, "the id parameter is required")
        return taskid

    async def task(request: Request) -> Response:
        queue = _queue_param(request, required=True)
        found = await call(model.task_item, queue, _id_param(request))
        if found is None:
            raise ApiError(404, "no such queued task")
        return JSONResponse(found)

    async def task_detail(request: Request) -> Response:
        queue = _queue_param(request, required=True)
        taskid = request.path_params["taskid"]
        found = await call(model.task_detail, queue, taskid)
        if found is None:
            raise ApiError(404, f"nothing is known about task {taskid!r} in queue {queue!r}")
        return JSONResponse(found)

    def _body_str(body: dict[str, Any], name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise ApiError(400, f"{name} must be a non-empty string")
        return value

    async def task_delete(request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(await call(model.delete_task, _body_str(body, "queue"),
                                       _body_str(body, "id")))

    async def task_run_now(request: Request) -> Response:
        body = await _json_body(request)
        return JSONResponse(await call(model.run_now, _body_str(body, "queue"),
                                       _body_str(body, "id")))

    async def queue_pause(request: Request) -> Response:
        queue = _body_str(await _json_body(request), "queue")
        return JSONResponse(await call(model.pause_queue, queue, True))

    async def queue_resume(request: Request) -> Response:
        queue = _body_str(await _json_body(request), "queue")
        return JSONResponse(await call(model.pause_queue, queue, False))

    async def dead_item(request: Request) -> Response:
        queue = _queue_param(request, required=True)
        found = await call(model.dead_item, queue, _id_param(request))
        if found is None:
            raise ApiError(404, "no such dead letter")
        return JSONResponse(found)

    async def dead_requeue(request: Request) -> Response:
        pairs, queue = _targets(await _json_body(request))
        return JSONResponse(await call(model.dead_action, "requeue", pairs, queue))

    async def dead_delete(request: Request) -> Response:
        pairs, queue = _targets(await _json_body(request))
        return JSONResponse(await call(model.dead_action, "delete", pairs, queue))

    async def schedule(request: Request) -> Response:
        return JSONResponse(await call(model.schedule))

    async def workers(request: Request) -> Response:
        return JSONResponse(await call(model.workers))

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def redis_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"Redis: {exc}"}, status_code=503)

    routes = [
        Route("/", index),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/api/session", session),
        Route("/api/logout", logout, methods=["POST"]),
        Route("/api/queues", queues),
        Route("/api/items", items),
        Route("/api/data", data_queues),
        Route("/api/history", queue_history),
        Route("/api/dead", dead),
        Route("/api/search", search),
        Route("/api/task", task),
        Route("/api/task/delete", task_delete, methods=["POST"]),
        Route("/api/task/run_now", task_run_now, methods=["POST"]),
        Route("/api/task/{taskid:path}", task_detail, methods=["GET"]),
        Route("/api/queue/pause", queue_pause, methods=["POST"]),
        Route("/api/queue/resume", queue_resume, methods=["POST"]),
        Route("/api/dead/item", dead_item),
        Route("/api/dead/requeue", dead_requeue, methods=["POST"]),
        Route("/api/dead/delete", dead_delete, methods=["POST"]),
        Route("/api/schedule", schedule),
        Route("/api/workers", workers),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, security=security)],
        exception_handlers={ApiError: api_error, StorageError: redis_error},
    )
