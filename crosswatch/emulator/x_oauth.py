"""X OAuth 2.0: authorize (auto-approved), token (code + PKCE, refresh with rotation), revoke.

Codes live 30 s, access tokens ``x_access_token_lifetime`` seconds, refresh tokens are single-use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx

from crosswatch.emulator.httputil import (
    BadRequestBody,
    basic_credentials,
    bearer_token,
    form_params,
    json_response,
    problem_response,
    query_params,
    redirect_response,
    text_response,
    x_blank_problem,
)
from crosswatch.emulator.routing import Call, Route, route
from crosswatch.emulator.state import (
    EmulatorState,
    XAccessToken,
    XAuthCode,
    XClient,
    XGrant,
    XRefreshToken,
    XUser,
    new_secret,
)

X_SCOPES = frozenset(
    {
        "tweet.read", "tweet.write", "tweet.moderate.write", "users.read", "users.email",
        "follows.read", "follows.write", "offline.access", "space.read", "mute.read", "mute.write",
        "like.read", "like.write", "list.read", "list.write", "block.read", "block.write",
        "bookmark.read", "bookmark.write", "dm.read", "dm.write", "media.write", "timeline.read",
        "broadcast.read", "broadcast.write",
    }
)  # fmt: skip

INVALID_CODE = "Value passed for the authorization code was invalid."
INVALID_TOKEN = "Value passed for the token was invalid."


def routes() -> list[Route]:
    return [
        route("GET", "/i/oauth2/authorize", "x.authorize", authorize, "x"),
        route("POST", "/2/oauth2/token", "x.token", token, "x"),
        route("POST", "/2/oauth2/revoke", "x.revoke", revoke, "x"),
    ]


# --- authorize ----------------------------------------------------------------------------------------


def authorize(call: Call) -> httpx.Response:
    state = call.state
    params = query_params(call.request)
    client = state.x_clients.get(params.get("client_id", ""))
    if client is None:
        return _authorize_error("unknown client_id")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or (client.redirect_uris and redirect_uri not in client.redirect_uris):
        return _authorize_error("redirect_uri is not registered for this client")
    problem = _authorize_params_problem(params)
    if problem is not None:
        return _authorize_error(problem)
    if not state.x_consent:
        return redirect_response(
            _with_query(redirect_uri, {"error": "access_denied", "state": params["state"]})
        )
    user_id = state.x_signed_in_user or next(iter(state.x_users), None)
    if user_id is None:
        return _authorize_error("no X user is seeded in the emulator")
    code = new_secret("xcode-")
    state.x_codes[code] = XAuthCode(
        code=code,
        client_id=client.client_id,
        user_id=user_id,
        redirect_uri=redirect_uri,
        scopes=tuple(params["scope"].split()),
        code_challenge=params["code_challenge"],
        code_challenge_method=params.get("code_challenge_method", "plain"),
        issued_at=state.now(),
    )
    return redirect_response(_with_query(redirect_uri, {"state": params["state"], "code": code}))


def _authorize_params_problem(params: dict[str, str]) -> str | None:
    if params.get("response_type") != "code":
        return "response_type must be 'code'"
    if not params.get("state") or len(params["state"]) > 500:
        return "state is required (at most 500 characters)"
    scopes = params.get("scope", "").split()
    if not scopes:
        return "scope is required"
    unknown = sorted(set(scopes) - X_SCOPES)
    if unknown:
        return f"unknown scopes: {' '.join(unknown)}"
    method = params.get("code_challenge_method", "plain")
    if method not in ("S256", "plain"):
        return "code_challenge_method must be S256 or plain"
    challenge = params.get("code_challenge", "")
    if not 43 <= len(challenge) <= 128:
        return "code_challenge must be 43 to 128 characters"
    return None


def _authorize_error(reason: str) -> httpx.Response:
    # X shows an error page in the browser rather than redirecting back for these.
    return text_response(400, f"Something went wrong: {reason}")


def _with_query(url: str, params: dict[str, str]) -> str:
    separator = "&" if "?" in url else "?"
    return url + separator + urlencode(params)


# --- token ----------------------------------------------------------------------------------------------


def _client_form(call: Call) -> tuple[dict[str, str], XClient] | httpx.Response:
    """The form of a token or revoke request and the client it authenticates, or the error to answer."""
    try:
        form = form_params(call.request)
    except BadRequestBody as exc:
        return _oauth_error(400, "invalid_request", str(exc))
    client = _authenticate_client(call, form)
    if isinstance(client, httpx.Response):
        return client
    return form, client


def token(call: Call) -> httpx.Response:
    request = _client_form(call)
    if isinstance(request, httpx.Response):
        return request
    form, client = request
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return _exchange_code(call.state, client, form)
    if grant_type == "refresh_token":
        return _refresh(call.state, client, form)
    return _oauth_error(
        400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
    )


def _authenticate_client(call: Call, form: dict[str, str]) -> XClient | httpx.Response:
    """Confidential clients use HTTP Basic; public clients name themselves with client_id."""
    state = call.state
    basic = basic_credentials(call.request)
    if basic is not None:
        client = state.x_clients.get(basic[0])
        secret = client.client_secret if client else None
        if client is None or secret is None or not hmac.compare_digest(secret, basic[1]):
            return _oauth_error(401, "unauthorized_client", "Missing valid authorization header")
        return client
    client = state.x_clients.get(form.get("client_id", ""))
    if client is None:
        return _oauth_error(400, "invalid_request", "Missing required parameter [client_id].")
    if client.client_secret is not None:
        return _oauth_error(401, "unauthorized_client", "Missing valid authorization header")
    return client


def _exchange_code(state: EmulatorState, client: XClient, form: dict[str, str]) -> httpx.Response:
    code = state.x_codes.get(form.get("code", ""))
    if (
        code is None
        or code.used
        or code.client_id != client.client_id
        or code.redirect_uri != form.get("redirect_uri")
        or state.now() > code.issued_at + state.settings.x_authorization_code_lifetime
        or not _pkce_matches(code, form.get("code_verifier", ""))
    ):
        return _oauth_error(400, "invalid_request", INVALID_CODE)
    code.used = True
    grant = XGrant(state.next_grant_id(), client.client_id, code.user_id, code.scopes)
    state.x_grants[grant.id] = grant
    return json_response(200, issue_tokens(state, grant))


def _pkce_matches(code: XAuthCode, verifier: str) -> bool:
    if not 43 <= len(verifier) <= 128:
        return False
    if code.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    else:
        expected = verifier
    return hmac.compare_digest(expected, code.code_challenge)


def _refresh(state: EmulatorState, client: XClient, form: dict[str, str]) -> httpx.Response:
    refresh = state.x_refresh_tokens.get(form.get("refresh_token", ""))
    grant = state.x_grants.get(refresh.grant_id) if refresh else None
    if refresh is None or grant is None or grant.client_id != client.client_id:
        return _oauth_error(400, "invalid_request", INVALID_TOKEN)
    if refresh.rotated_at is not None and state.settings.x_refresh_reuse_revokes_family:
        revoke_grant(state, grant)
    if refresh.rotated_at is not None or refresh.revoked or grant.revoked:
        return _oauth_error(400, "invalid_request", INVALID_TOKEN)
    refresh.rotated_at = state.now()
    return json_response(200, issue_tokens(state, grant))


def issue_tokens(state: EmulatorState, grant: XGrant) -> dict[str, Any]:
    """A fresh access token, plus a refresh token when offline.access was granted."""
    now = state.now()
    lifetime = state.settings.x_access_token_lifetime
    access = XAccessToken(new_secret("xat-"), grant.id, now, now + lifetime)
    state.x_access_tokens[access.token] = access
    payload: dict[str, Any] = {
        "token_type": "bearer",
        "expires_in": int(lifetime),
        "access_token": access.token,
        "scope": " ".join(grant.scopes),
    }
    if "offline.access" in grant.scopes:
        refresh = XRefreshToken(new_secret("xrt-"), grant.id, now)
        state.x_refresh_tokens[refresh.token] = refresh
        payload["refresh_token"] = refresh.token
    return payload


def _oauth_error(status: int, error: str, description: str) -> httpx.Response:
    return json_response(status, {"error": error, "error_description": description})


# --- revoke ---------------------------------------------------------------------------------------------


def revoke(call: Call) -> httpx.Response:
    request = _client_form(call)
    if isinstance(request, httpx.Response):
        return request
    form, client = request
    state = call.state
    value = form.get("token", "")
    found = state.x_access_tokens.get(value) or state.x_refresh_tokens.get(value)
    grant = state.x_grants.get(found.grant_id) if found else None
    # RFC 7009: an unknown token is not an error; the answer is the same either way.
    if grant is not None and grant.client_id == client.client_id:
        revoke_grant(state, grant)
    return json_response(200, {"revoked": True})


def revoke_grant(state: EmulatorState, grant: XGrant) -> None:
    """Revoking any token of a consent revokes the consent: every access and refresh token in it."""
    grant.revoked = True
    for access in state.x_access_tokens.values():
        if access.grant_id == grant.id:
            access.revoked = True
    for refresh in state.x_refresh_tokens.values():
        if refresh.grant_id == grant.id:
            refresh.revoked = True


# --- bearer checks for the API endpoints ----------------------------------------------------------


def authenticate(call: Call) -> tuple[XGrant, XUser] | httpx.Response:
    """The grant and user behind the request's bearer token, or the 401 X sends."""
    state = call.state
    value = bearer_token(call.request)
    access = state.x_access_tokens.get(value) if value else None
    grant = state.x_grants.get(access.grant_id) if access else None
    user = state.x_users.get(grant.user_id) if grant else None
    if (
        access is None
        or grant is None
        or user is None
        or access.revoked
        or grant.revoked
        or state.now() >= access.expires_at
    ):
        return problem_response(401, x_blank_problem(401))
    return grant, user


def generate_pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge): handy for tests and the demo driving the flow by hand."""
    verifier = secrets.token_urlsafe(48)[:64]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge
