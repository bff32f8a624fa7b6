"""Threads sign-in, under the ``/threads`` prefix (graph_base ``<url>/threads``): the Authorization Window,
the code exchange, the long-lived exchange (``th_exchange_token``) and the refresh (``th_refresh_token``),
as developers.facebook.com/docs/threads/get-started/{get-access-tokens-and-permissions,long-lived-tokens}
describe them. Every error is in Graph's ``{"error": {...}}`` shape.
"""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx

from crosswatch.emulator.httputil import (
    BadRequestBody,
    bearer_token,
    form_params,
    graph_error,
    json_response,
    query_params,
    redirect_response,
    text_response,
)
from crosswatch.emulator.routing import Call, Route
from crosswatch.emulator.state import new_secret
from crosswatch.emulator.threads_state import ThreadsCode, ThreadsState, ThreadsToken

PREFIX = "/threads"
THREADS_SCOPES = frozenset({"threads_basic", "threads_content_publish", "threads_manage_replies",
                            "threads_read_replies", "threads_manage_insights"})
BASIC_SCOPE = "threads_basic"
_VERSION = r"(?:/v[0-9]+(?:\.[0-9]+)?)?"


def threads_route(method: str, template: str, endpoint: str, handler: object, *, versioned: bool = True) -> Route:
    """``/threads[/v1.0]/{id}/threads``-style routes; ids are numeric or ``me``."""
    body = re.sub(r"\{([a-z_]+)\}", lambda m: f"(?P<{m.group(1)}>[0-9]+|me)", template)
    version = _VERSION if versioned else ""
    return Route(method, re.compile(f"^{PREFIX}{version}{body}/?$"), endpoint, handler, "threads")  # type: ignore[arg-type]


def routes() -> list[Route]:
    return [
        threads_route("GET", "/oauth/authorize", "threads.authorize", authorize, versioned=False),
        threads_route("POST", "/oauth/access_token", "threads.code_exchange", exchange_code, versioned=False),
        threads_route("GET", "/access_token", "threads.exchange_token", exchange_long_lived, versioned=False),
        threads_route("GET", "/refresh_access_token", "threads.refresh_token", refresh, versioned=False),
    ]


def authorize(call: Call) -> httpx.Response:
    threads = call.state.threads
    params = query_params(call.request)
    app = threads.apps.get(params.get("client_id", ""))
    if app is None:
        return text_response(400, "Invalid Request: Invalid platform app")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or (app.redirect_uris and redirect_uri not in app.redirect_uris):
        return text_response(400, "Invalid Request: Invalid redirect_uri")
    scopes = tuple(part for part in params.get("scope", "").replace(",", " ").split() if part)
    if params.get("response_type") != "code" or not scopes or set(scopes) - THREADS_SCOPES \
            or BASIC_SCOPE not in scopes:
        return text_response(400, "Invalid Request: response_type must be code and scope known scopes "
                             "including threads_basic")
    extra = {"state": params["state"]} if "state" in params else {}
    if not threads.settings.consent:
        denied = {"error": "access_denied", "error_reason": "user_denied",
                  "error_description": "The user denied your request", **extra}
        return redirect_response(_append(redirect_uri, denied) + "#_")
    user_id = threads.signed_in_user or next(iter(threads.users), None)
    if user_id is None:
        return text_response(400, "Invalid Request: no Threads user is seeded in the emulator")
    code = new_secret("thcode-")
    threads.codes[code] = ThreadsCode(code, app.client_id, user_id, redirect_uri, scopes, call.state.now())
    return redirect_response(_append(redirect_uri, {"code": code, **extra}) + "#_")


def _append(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def exchange_code(call: Call) -> httpx.Response:
    state = call.state
    threads = state.threads
    try:
        form = {**query_params(call.request), **form_params(call.request)}
    except BadRequestBody as exc:
        return graph_error(100, f"Invalid parameter: {exc}")
    missing = [k for k in ("client_id", "client_secret", "code", "grant_type", "redirect_uri") if not form.get(k)]
    if missing:
        return graph_error(100, f"The parameter {missing[0]} is required")
    app = threads.apps.get(form["client_id"])
    if app is None:
        return graph_error(101, "Error validating application. Invalid application ID.")
    if not hmac.compare_digest(app.client_secret, form["client_secret"]):
        return graph_error(101, "Error validating client secret.")
    if form["grant_type"] != "authorization_code":
        return graph_error(100, "Invalid grant_type, expected authorization_code")
    code = threads.codes.get(form["code"])
    if code is None or code.used or code.client_id != app.client_id \
            or state.now() > code.issued_at + threads.settings.code_lifetime:
        return graph_error(100, "Matching code was not found or was already used", subcode=36007)
    if code.redirect_uri != form["redirect_uri"]:
        return graph_error(100, "Error validating verification code. Please make sure your redirect_uri is "
                           "identical to the one you used in the OAuth dialog request", subcode=36008)
    code.used = True
    token = issue_token(threads, state.now(), code.user_id, app.client_id, code.scopes, "short")
    return json_response(200, {"access_token": token.token, "user_id": int(token.user_id)})


def issue_token(threads: ThreadsState, now: float, user_id: str, client_id: str, scopes: tuple[str, ...],
                kind: str) -> ThreadsToken:
    lifetime = threads.settings.long_token_lifetime if kind == "long" else threads.settings.short_token_lifetime
    token = ThreadsToken(new_secret("TH" + kind[0]), user_id, client_id, "long" if kind == "long" else "short",
                         scopes, now, now + lifetime)
    threads.tokens[token.token] = token
    return token


def long_lived_payload(token: ThreadsToken, now: float) -> dict[str, object]:
    return {"access_token": token.token, "token_type": "bearer", "expires_in": int(token.expires_at - now)}


def exchange_long_lived(call: Call) -> httpx.Response:
    state = call.state
    params = query_params(call.request)
    if params.get("grant_type") != "th_exchange_token":
        return graph_error(100, "Invalid grant_type, expected th_exchange_token")
    token = token_from(call, params)
    if isinstance(token, httpx.Response):
        return token
    app = state.threads.apps.get(token.client_id)
    if app is None or not hmac.compare_digest(app.client_secret, params.get("client_secret", "")):
        return graph_error(101, "Error validating client secret.")
    if token.kind != "short":
        return graph_error(100, "Only a short-lived token can be exchanged for a long-lived one.")
    long_token = issue_token(state.threads, state.now(), token.user_id, token.client_id, token.scopes, "long")
    return json_response(200, long_lived_payload(long_token, state.now()))


def refresh(call: Call) -> httpx.Response:
    state = call.state
    params = query_params(call.request)
    if params.get("grant_type") != "th_refresh_token":
        return graph_error(100, "Invalid grant_type, expected th_refresh_token")
    token = token_from(call, params)
    if isinstance(token, httpx.Response):
        return token
    if token.kind != "long" or BASIC_SCOPE not in token.scopes:
        return graph_error(100, "Only a long-lived token with threads_basic can be refreshed.")
    if state.now() - token.issued_at < state.threads.settings.refresh_min_age:
        # Meta: refreshable "as long as they are at least 24 hours old"; the words are the emulator's.
        return graph_error(100, "Token not yet eligible for refresh: it must be at least 24 hours old")
    fresh = issue_token(state.threads, state.now(), token.user_id, token.client_id, token.scopes, "long")
    return json_response(200, long_lived_payload(fresh, state.now()))


def token_from(call: Call, params: dict[str, str]) -> ThreadsToken | httpx.Response:
    """The live token named by ``access_token`` (query, form) or the Authorization header."""
    threads = call.state.threads
    value = params.get("access_token") or bearer_token(call.request)
    if not value:
        return graph_error(190, "An active access token must be used to query information about the current user.")
    token = threads.tokens.get(value)
    if token is None or token.revoked:
        return graph_error(190, "Invalid OAuth access token - Cannot parse access token", subcode=467)
    now = call.state.now()
    if now >= token.expires_at:
        return graph_error(190, f"Error validating access token: Session has expired on "
                           f"{_graph_date(token.expires_at)}. The current time is {_graph_date(now)}.", subcode=463)
    return token


def _graph_date(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%A, %d-%b-%y %H:%M:%S UTC")


def mint_token(threads: ThreadsState, now: float, user_id: str | None = None,
               scopes: tuple[str, ...] = ("threads_basic", "threads_content_publish")) -> dict[str, object]:
    """A long-lived token as ``auth import`` takes it, without the browser round trip."""
    user = user_id or next(iter(threads.users))
    client_id = next(iter(threads.apps))
    token = issue_token(threads, now, user, client_id, scopes, "long")
    return {**long_lived_payload(token, now), "user_id": user, "scope": ",".join(scopes)}
