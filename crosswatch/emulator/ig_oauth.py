"""Instagram API with Instagram Login: authorize, code exchange, long-lived exchange, refresh.

The authorize redirect appends ``#_`` like the real one; the code lives an hour and is single use.
The code exchange host (api.instagram.com) answers errors in its own flat shape, the Graph host in
the ``{"error": {...}}`` shape.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from crosswatch.emulator.httputil import (
    BadRequestBody,
    bearer_token,
    form_params,
    graph_error,
    instagram_oauth_error,
    json_response,
    query_params,
    redirect_response,
    text_response,
)
from crosswatch.emulator.routing import Call, Route, route
from crosswatch.emulator.state import EmulatorState, IGAuthCode, IGToken, new_secret

IG_SCOPES = frozenset(
    {
        "instagram_business_basic",
        "instagram_business_content_publish",
        "instagram_business_manage_comments",
        "instagram_business_manage_messages",
        "instagram_business_manage_insights",
    }
)
BASIC_SCOPE = "instagram_business_basic"


def routes() -> list[Route]:
    return [
        # www.instagram.com and api.instagram.com paths carry no Graph version segment.
        route("GET", "/oauth/authorize", "ig.authorize", authorize, "instagram", versioned=False),
        route("POST", "/oauth/access_token", "ig.code_exchange", exchange_code, "instagram", versioned=False),
        route("GET", "/access_token", "ig.exchange_token", exchange_long_lived, "instagram"),
        route("GET", "/refresh_access_token", "ig.refresh_token", refresh, "instagram"),
    ]


def parse_scopes(value: str) -> tuple[str, ...]:
    return tuple(part for part in value.replace(",", " ").split() if part)


def authorize(call: Call) -> httpx.Response:
    state = call.state
    params = query_params(call.request)
    app = state.ig_apps.get(params.get("client_id", ""))
    if app is None:
        return text_response(400, "Invalid Request: Invalid platform app")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or (app.redirect_uris and redirect_uri not in app.redirect_uris):
        return text_response(400, "Invalid Request: Invalid redirect_uri")
    scopes = parse_scopes(params.get("scope", ""))
    if params.get("response_type") != "code" or not scopes or set(scopes) - IG_SCOPES:
        return text_response(400, "Invalid Request: response_type must be code and scope known scopes")
    extra = {"state": params["state"]} if "state" in params else {}
    if not state.ig_consent:
        denied = {
            "error": "access_denied",
            "error_reason": "user_denied",
            "error_description": "The user denied your request",
            **extra,
        }
        return redirect_response(_append(redirect_uri, denied) + "#_")
    user_id = state.ig_signed_in_user or next(iter(state.ig_users), None)
    if user_id is None:
        return text_response(400, "Invalid Request: no Instagram user is seeded in the emulator")
    code = new_secret("igcode-")
    state.ig_codes[code] = IGAuthCode(code, app.client_id, user_id, redirect_uri, scopes, state.now())
    return redirect_response(_append(redirect_uri, {"code": code, **extra}) + "#_")


def _append(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def exchange_code(call: Call) -> httpx.Response:
    state = call.state
    try:
        form = form_params(call.request)
    except BadRequestBody as exc:
        return instagram_oauth_error(str(exc))
    app = state.ig_apps.get(form.get("client_id", ""))
    if app is None:
        return instagram_oauth_error("Invalid platform app")
    if not hmac.compare_digest(app.client_secret, form.get("client_secret", "")):
        return instagram_oauth_error("Error validating client secret.")
    if form.get("grant_type") != "authorization_code":
        return instagram_oauth_error("Invalid grant_type")
    code = state.ig_codes.get(form.get("code", ""))
    if (
        code is None
        or code.used
        or code.client_id != app.client_id
        or state.now() > code.issued_at + state.settings.ig_authorization_code_lifetime
    ):
        return instagram_oauth_error("Matching code was not found or was already used")
    if code.redirect_uri != form.get("redirect_uri"):
        return instagram_oauth_error(
            "Error validating verification code. Please make sure your redirect_uri is identical to the "
            "one you used in the OAuth dialog request"
        )
    code.used = True
    token = issue_token(state, code.user_id, app.client_id, code.scopes, "short")
    if state.settings.ig_token_response_shape == "data":
        entry = {"access_token": token.token, "user_id": token.user_id, "permissions": ",".join(token.scopes)}
        return json_response(200, {"data": [entry]})
    return json_response(
        200, {"access_token": token.token, "user_id": int(token.user_id), "permissions": list(token.scopes)}
    )


def issue_token(
    state: EmulatorState, user_id: str, client_id: str, scopes: tuple[str, ...], kind: str
) -> IGToken:
    now = state.now()
    settings = state.settings
    lifetime = settings.ig_long_token_lifetime if kind == "long" else settings.ig_short_token_lifetime
    token = IGToken(
        token=new_secret("IGAA"),
        user_id=user_id,
        client_id=client_id,
        kind="long" if kind == "long" else "short",
        scopes=scopes,
        issued_at=now,
        expires_at=now + lifetime,
    )
    state.ig_tokens[token.token] = token
    return token


def long_lived_payload(state: EmulatorState, token: IGToken) -> dict[str, Any]:
    return {
        "access_token": token.token,
        "token_type": "bearer",
        "expires_in": int(token.expires_at - state.now()),
    }


def exchange_long_lived(call: Call) -> httpx.Response:
    state = call.state
    params = query_params(call.request)
    if params.get("grant_type") != "ig_exchange_token":
        return graph_error(100, "Invalid grant_type, expected ig_exchange_token", error_type="IGApiException")
    token = token_from(call, params)
    if isinstance(token, httpx.Response):
        return token
    app = state.ig_apps.get(token.client_id)
    if app is None or not hmac.compare_digest(app.client_secret, params.get("client_secret", "")):
        return graph_error(101, "Error validating client secret.")
    if token.kind != "short":
        return graph_error(100, "Only a short-lived token can be exchanged for a long-lived one.")
    long_token = issue_token(state, token.user_id, token.client_id, token.scopes, "long")
    return json_response(200, long_lived_payload(state, long_token))


def refresh(call: Call) -> httpx.Response:
    state = call.state
    params = query_params(call.request)
    if params.get("grant_type") != "ig_refresh_token":
        return graph_error(100, "Invalid grant_type, expected ig_refresh_token", error_type="IGApiException")
    token = token_from(call, params)
    if isinstance(token, httpx.Response):
        return token
    if token.kind != "long" or BASIC_SCOPE not in token.scopes:
        return graph_error(100, "Only a long-lived token with instagram_business_basic can be refreshed.")
    if state.now() - token.issued_at < state.settings.ig_refresh_min_age:
        # Reported text for a refresh under 24 h (UNCONFIRMED); the code is our choice.
        return graph_error(100, "Token not yet eligible for refresh", error_type="IGApiException")
    fresh = issue_token(state, token.user_id, token.client_id, token.scopes, "long")
    return json_response(200, long_lived_payload(state, fresh))


def token_from(call: Call, params: dict[str, str]) -> IGToken | httpx.Response:
    """The live token named by ``access_token`` (query, form) or the Authorization header."""
    state = call.state
    value = params.get("access_token") or bearer_token(call.request)
    if not value:
        return graph_error(
            190, "An active access token must be used to query information about the current user."
        )
    token = state.ig_tokens.get(value)
    if token is None or token.revoked:
        return graph_error(190, "Invalid OAuth access token - Cannot parse access token", subcode=467)
    now = state.now()
    if now >= token.expires_at:
        return graph_error(
            190,
            f"Error validating access token: Session has expired on {_graph_date(token.expires_at)}. "
            f"The current time is {_graph_date(now)}.",
            subcode=463,
        )
    return token


def _graph_date(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%A, %d-%b-%y %H:%M:%S UTC")
