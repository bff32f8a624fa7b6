"""The console's web application: routes, the guard every request passes, the pages.

The routes are thin: each reads a view (crosswatch.views) or takes a decision
(crosswatch.decisions) under one lock on the console's journal connection, and renders a template.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from crosswatch import decisions, views
from crosswatch.config import Config
from crosswatch.console import images
from crosswatch.console.security import SESSION_COOKIE, Sessions, allowed_hosts, password_matches, same_origin
from crosswatch.errors import CrosswatchError, UsageError
from crosswatch.journal import Journal

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript", "analytics.js": "text/javascript",
                "chart.umd.min.js": "text/javascript"}
PER_PAGE = 25
# How long the accounts (read from the keyring) are reused for the "needs you" count on each page.
ACCOUNTS_CACHE_SECONDS = 5.0
_ACTIONS = ("approve", "reject", "retry", "post-now", "resolve", "edit")
# The pages a decision may send the browser back to (a form's "back" field), else the queue.
_BACK = {"needs-you": "/needs-you", "posted": "/posted?state=rejected"}


@dataclass
class ConsoleState:
    """What the application shares between requests."""

    config: Config
    host: str
    port: int
    sessions: Sessions
    store: Any  # crosswatch.secrets.SecretStore, or a test double with get/set
    password_hash: Callable[[], str | None]
    clock: Callable[[], float] = time.time
    lock: threading.RLock = field(default_factory=threading.RLock)
    _journal: Journal | None = None
    _accounts: tuple[float, list[views.AccountView]] | None = None
    flows: Any = None  # SignInFlows, made by build_app
    # Called after every decision: the daemon serving this console wakes its runner (another
    # process's daemon reads the journal on its next look, within seconds).
    on_decision: Callable[[], None] = lambda: None
    # What the last revoke button did, per target (shown on the accounts page).
    revoked: dict[str, str] = field(default_factory=dict)

    def journal(self) -> Journal | None:
        """The console's journal connection, opened on first use once the journal exists (the daemon
        makes it; the console never creates one)."""
        if self._journal is None and self.config.journal_path.exists():
            self._journal = Journal(self.config.journal_path)
        return self._journal

    def accounts(self, *, fresh: bool = False) -> list[views.AccountView]:
        now = self.clock()
        if not fresh and self._accounts is not None and now - self._accounts[0] < ACCOUNTS_CACHE_SECONDS:
            return self._accounts[1]
        journal = self.journal()
        holds = journal.holds(now) if journal is not None else {}
        found = views.accounts(self.config, self.store, holds, clock=self.clock)
        self._accounts = (now, found)
        return found

    def close(self) -> None:
        with self.lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None


# ---------------------------------------------------------------------------------------------------
# The guard: Host, session, Origin


class Guard:
    """Refuses a request whose Host is not the console's address (421), sends one without a session
    to the sign-in page (and nothing else), and refuses a POST whose Origin is another site (403).
    The CSRF token is checked where the form is read (``_form``)."""

    OPEN_PATHS = frozenset({"/signin"})

    def __init__(self, app: ASGIApp, state: ConsoleState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        host = request.headers.get("host", "")
        hosts = allowed_hosts(self.state.host, self.state.port)
        if hosts is not None and host not in hosts:
            response: Response = PlainTextResponse(
                "this console answers only to its own address (the Host header names another)", status_code=421)
            await response(scope, receive, send)
            return
        if request.method not in ("GET", "HEAD") and not _origin_ok(request, host):
            await PlainTextResponse("refused: the request comes from another site (Origin)", status_code=403)(
                scope, receive, send)
            return
        session = self.state.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None and scope["path"] not in self.OPEN_PATHS:
            if request.method in ("GET", "HEAD"):
                response = _signin_page(request, self.state, status_code=401)
            else:
                response = PlainTextResponse("refused: sign in first", status_code=403)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["session"] = session
        await self.app(scope, receive, send)


def _origin_ok(request: Request, host: str) -> bool:
    origin = request.headers.get("origin")
    if origin is not None:
        return same_origin(origin, host)
    referer = request.headers.get("referer")
    return referer is None or same_origin(referer, host)


# ---------------------------------------------------------------------------------------------------
# Templates

_env = jinja2.Environment(loader=jinja2.PackageLoader("crosswatch.console", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_env.filters["when"] = views.when  # every time a page shows: one readable format
templates = Jinja2Templates(env=_env)


def _render(request: Request, state: ConsoleState, name: str, context: dict[str, Any], *,
            status_code: int = 200) -> Response:
    session = request.scope.get("state", {}).get("session")
    needs = _needs_you(state)
    base = {"csrf": session.csrf if session else "", "needs_count": needs.count, "page_name": name.split(".")[0],
            "no_journal": state.config.journal_path.exists() is False}
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = ("default-src 'none'; img-src 'self'; style-src 'self'; "
                                                   "script-src 'self'; connect-src 'self'; form-action 'self' "
                                                   "https: http:; frame-ancestors 'none'; base-uri 'none'")
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _needs_you(state: ConsoleState) -> views.NeedsYou:
    with state.lock:
        journal = state.journal()
        if journal is None:
            return views.NeedsYou()
        return views.needs_you(journal, state.accounts(), state.clock())


def _signin_page(request: Request, state: ConsoleState, *, status_code: int = 200, error: str = "") -> Response:
    response = templates.TemplateResponse(
        request, "signin.html", {"has_password": state.password_hash() is not None, "error": error},
        status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


# ---------------------------------------------------------------------------------------------------
# Routes


def build_app(state: ConsoleState) -> Starlette:
    from crosswatch.console.signin import SignInFlows

    state.flows = SignInFlows(state)

    def page(handler: Callable[[Request, ConsoleState], Awaitable[Response]]) -> Callable[[Request],
                                                                                      Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(request, state)
        return endpoint

    routes = [
        Route("/signin", page(signin), methods=["GET", "POST"]),
        Route("/", page(home)),
        Route("/queue", page(queue)),
        Route("/posted", page(posted)),
        Route("/needs-you", page(needs_you)),
        Route("/accounts", page(accounts)),
        Route("/analytics", page(analytics)),
        Route("/accounts/{target}/signin", page(account_signin), methods=["POST"]),
        Route("/accounts/{target}/revoke", page(account_revoke), methods=["POST"]),
        Route("/jobs/{job_id:int}/{action}", page(job_action), methods=["POST"]),
        Route("/check/{job_id:int}", page(check_caption), methods=["POST"]),
        Route("/images/job/{job_id:int}", page(job_image)),
        Route("/images/job/{job_id:int}/{number:int}", page(job_numbered_image)),
        Route("/images/photo/{photo_id:int}/thumb", page(photo_thumb)),
        Route("/static/{name}", page(static)),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, state=state)
    return app


async def signin(request: Request, state: ConsoleState) -> Response:
    if request.method == "GET":
        token = request.query_params.get("token", "")
        session_id = state.sessions.use_token(token) if token else None
        if session_id is None:
            return _signin_page(request, state, status_code=401 if token else 200,
                                error="that sign-in address was used already or is not known" if token else "")
        return _signed_in(session_id)
    form = await request.form()
    stored = state.password_hash()
    password = form.get("password")
    if stored is None or not isinstance(password, str) or not password_matches(password, stored):
        await asyncio.sleep(0.5)  # slows guessing; the console is for one person
        return _signin_page(request, state, status_code=401, error="wrong password")
    return _signed_in(state.sessions.new_session())


def _signed_in(session_id: str) -> Response:
    response = RedirectResponse("/queue", status_code=303)
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", path="/")
    return response


async def home(request: Request, state: ConsoleState) -> Response:
    return RedirectResponse("/queue", status_code=303)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


async def queue(request: Request, state: ConsoleState) -> Response:
    page_number = _int(request.query_params.get("page"), 1)
    return await _queue_response(request, state, page_number)


async def _queue_response(request: Request, state: ConsoleState, page_number: int, *, status_code: int = 200,
                          error: str = "", refused: dict[str, Any] | None = None) -> Response:
    def build() -> views.QueuePage | None:
        with state.lock:
            journal = state.journal()
            if journal is None:
                return None
            return views.queue_page(state.config, journal, state.clock(), page=page_number, per_page=PER_PAGE)

    view = await run_in_threadpool(build)
    return _render(request, state, "queue.html", {"view": view, "error": error, "refused": refused or {}},
                   status_code=status_code)


async def _form(request: Request) -> FormData:
    """The POSTed form, once its CSRF token matched the session's; else UsageError (403)."""
    form = await request.form()
    session = request.scope["state"]["session"]
    sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""

    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise _CsrfRefused
    return form


class _CsrfRefused(Exception):
    pass


_CSRF_RESPONSE = "refused: the form's CSRF token is missing or wrong; reload the page and try again"


async def job_action(request: Request, state: ConsoleState) -> Response:
    job_id = int(request.path_params["job_id"])
    action = str(request.path_params["action"])
    if action not in _ACTIONS:
        return PlainTextResponse("not found", status_code=404)
    try:
        form = await _form(request)
    except _CsrfRefused:
        return PlainTextResponse(_CSRF_RESPONSE, status_code=403)
    page_number = _int(str(form.get("page") or "1"), 1)

    def decide() -> None:
        with state.lock:
            journal = state.journal()
            if journal is None:
                raise UsageError("there is no journal yet; `crosswatch run` creates it")
            by = "console"
            if action == "approve":
                decisions.approve(journal, job_id, clock=state.clock)
            elif action == "reject":
                decisions.reject(journal, job_id, by=by)
            elif action == "retry":
                decisions.retry(journal, job_id, clock=state.clock)
            elif action == "post-now":
                decisions.post_now(journal, job_id, clock=state.clock)
            elif action == "resolve":
                verdict = form.get("posted")
                if verdict not in ("yes", "no"):
                    raise UsageError("say what you found on the platform: posted yes or no")
                decisions.resolve(state.config, journal, job_id, posted=verdict == "yes", clock=state.clock)
            else:
                caption = form.get("caption")
                alt_text = form.get("alt_text")
                decisions.edit(state.config, journal, job_id, caption=caption if isinstance(caption, str) else None,
                               alt_text=alt_text if isinstance(alt_text, str) else None, by=by)

    try:
        await run_in_threadpool(decide)
        state.on_decision()
    except CrosswatchError as exc:
        refused = {"job": job_id, "action": action, "error": str(exc),
                   "caption": form.get("caption"), "alt_text": form.get("alt_text")}
        return await _queue_response(request, state, page_number, status_code=400 if action == "edit" else 409,
                                     error=f"job {job_id}: {exc}", refused=refused)
    back = _BACK.get(str(form.get("back") or ""))
    return RedirectResponse(back or f"/queue?page={page_number}#job-{job_id}", status_code=303)


async def check_caption(request: Request, state: ConsoleState) -> Response:
    """The live check of a caption being typed: its length by the platform's count, the limit, and
    what ``edit`` would refuse (the same rules; nothing is saved)."""
    job_id = int(request.path_params["job_id"])
    try:
        form = await _form(request)
    except _CsrfRefused:
        return JSONResponse({"error": _CSRF_RESPONSE}, status_code=403)
    caption, alt_text = form.get("caption"), form.get("alt_text")

    def check() -> dict[str, Any]:
        with state.lock:
            journal = state.journal()
            if journal is None:
                return {"error": "there is no journal yet"}
            return decisions.check_edit(state.config, journal, job_id,
                                        caption=caption if isinstance(caption, str) else None,
                                        alt_text=alt_text if isinstance(alt_text, str) else None)

    return JSONResponse(await run_in_threadpool(check))


def _day(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value).astimezone().timestamp()
    except ValueError:
        return None


def _posted_state(value: str | None) -> str:
    return value if value is not None and value in views.POSTED_STATES else "posted"


async def posted(request: Request, state: ConsoleState) -> Response:
    params = request.query_params
    until = _day(params.get("until"))
    wanted = views.PostedFilter(target=params.get("target") or None, since=_day(params.get("since")),
                                until=until + 86400.0 if until is not None else None,
                                link_state=params.get("link") or None,
                                state=_posted_state(params.get("state")))

    def build() -> list[views.PostedRow] | None:
        with state.lock:
            journal = state.journal()
            return None if journal is None else views.posted_page(state.config, journal, wanted)

    rows = await run_in_threadpool(build)
    return _render(request, state, "posted.html", {
        "rows": rows, "targets": sorted(state.config.targets), "states": tuple(views.POSTED_STATES), "filters": {
            "target": params.get("target", ""), "since": params.get("since", ""), "until": params.get("until", ""),
            "link": params.get("link", ""), "state": wanted.state}})


async def needs_you(request: Request, state: ConsoleState) -> Response:
    items = await run_in_threadpool(_needs_you, state)
    return _render(request, state, "needs_you.html", {"items": items.items})


async def accounts(request: Request, state: ConsoleState) -> Response:
    def build() -> list[views.AccountView]:
        with state.lock:
            return state.accounts(fresh=True)

    found = await run_in_threadpool(build)
    audit = await run_in_threadpool(_audit, state)
    return _render(request, state, "accounts.html", {"accounts": found, "flows": state.flows.messages(),
                                                     "audit": audit, "revoked": state.revoked})


def _audit(state: ConsoleState) -> views.AuditPage | None:
    with state.lock:
        return views.audit_page(state.config, state.journal(), state.store, state.clock())


async def account_revoke(request: Request, state: ConsoleState) -> Response:
    """The revoke button: as `crosswatch auth revoke TARGET`; the accounts page says what happened."""
    found = await _account_target(request, state)
    if isinstance(found, Response):
        return found
    target = found

    def revoke() -> str:
        import httpx

        with httpx.Client(timeout=30.0, headers={"User-Agent": "crosswatch/0.1"}) as client:
            try:
                result = decisions.revoke_account(state.config, state.store, target, client)
            except CrosswatchError as exc:
                return f"{target}: {exc}"
        with state.lock:
            state._accounts = None  # the next page reads the keyring again
        return views.revoked_text(target, result)

    state.revoked[target] = await run_in_threadpool(revoke)
    return RedirectResponse(f"/accounts#account-{target}", status_code=303)


async def analytics(request: Request, state: ConsoleState) -> Response:
    """Engagement per post with thumbnails, over time, by weekday and hour, by keyword and lens, and the
    best-window suggestions (crosswatch.report builds all of it; `crosswatch report` is its CLI face)."""
    from crosswatch import report

    def build() -> report.AnalyticsPage | None:
        with state.lock:
            journal = state.journal()
            return None if journal is None else report.analytics_page(state.config, journal)

    found = await run_in_threadpool(build)
    return _render(request, state, "analytics.html", {
        # "<" escaped: a keyword holding "</script>" cannot end the data block.
        "page": found, "chart_json": json.dumps(found.chart_data if found else {}).replace("<", "\\u003c"),
        "enabled": any(t.analytics for t in state.config.targets.values()),
        "zone": found.report.zone if found else None})


async def _account_target(request: Request, state: ConsoleState) -> str | Response:
    """The target an account button POSTs for, once its CSRF token matched; else the refusal."""
    try:
        await _form(request)
    except _CsrfRefused:
        return PlainTextResponse(_CSRF_RESPONSE, status_code=403)
    target = str(request.path_params["target"])
    if target not in state.config.targets:
        return PlainTextResponse("not found", status_code=404)
    return target


async def account_signin(request: Request, state: ConsoleState) -> Response:
    target = await _account_target(request, state)
    if isinstance(target, Response):
        return target
    address = await run_in_threadpool(state.flows.start, target)
    if address is None:
        return RedirectResponse("/accounts", status_code=303)
    return RedirectResponse(address, status_code=303)


async def job_image(request: Request, state: ConsoleState) -> Response:
    return await _image(state, images.job_image, int(request.path_params["job_id"]))


async def job_numbered_image(request: Request, state: ConsoleState) -> Response:
    """An album job's images, by number from 0 (the card's strip)."""
    number = int(request.path_params["number"])
    return await _image(state, lambda config, journal, job_id: images.job_image(config, journal, job_id, number),
                        int(request.path_params["job_id"]))


async def photo_thumb(request: Request, state: ConsoleState) -> Response:
    return await _image(state, images.photo_thumbnail, int(request.path_params["photo_id"]))


async def _image(state: ConsoleState, find: Callable[[Config, Journal, int], Path | None], key: int) -> Response:
    """The image ``find`` names for an id from the journal; 404 when there is none."""
    def look() -> Path | None:
        with state.lock:
            journal = state.journal()
            return None if journal is None else find(state.config, journal, key)

    path = await run_in_threadpool(look)
    if path is None:
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})


async def static(request: Request, state: ConsoleState) -> Response:
    name = str(request.path_params["name"])
    if name not in STATIC_FILES:  # a fixed list: never a path from the request
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name])
