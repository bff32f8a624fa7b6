"""Signing in to Threads with Threads' own app id and secret (not the Meta app's).

developers.facebook.com/docs/threads/get-started/get-access-tokens-and-permissions: the Authorization
Window (``threads.net/oauth/authorize``, ``client_id``, ``redirect_uri``, ``scope``, ``response_type=code``,
``state``), then ``POST graph.threads.net/oauth/access_token`` (``client_id``, ``client_secret``, ``code``,
``grant_type=authorization_code``, ``redirect_uri``) for a one-hour token and the ``user_id``.
/docs/threads/get-started/long-lived-tokens: ``GET /access_token?grant_type=th_exchange_token`` for a 60-day
token, ``GET /refresh_access_token?grant_type=th_refresh_token`` once it is at least 24 h old and not
expired. Token endpoints are unversioned. There is no revoke endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from crosswatch.auth.http import json_object, need_client_id, platform_words, send, with_query
from crosswatch.auth.loopback import strip_code_suffix
from crosswatch.auth.provider import TokenProvider
from crosswatch.auth.tokens import Clock, TokenSet, expiry_from, login_hint, split_scopes
from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError, PlatformError, TransientPlatformError
from crosswatch.platforms.instagram.signin import InstagramTokenProvider
from crosswatch.platforms.reading import id_string
from crosswatch.platforms.threads.steps import DEFAULT_GRAPH_BASE, THREADS_SCOPES
from crosswatch.secrets import SecretStore

DEFAULT_AUTHORIZE_URL = "https://threads.net/oauth/authorize"


def _graph_base(cfg: TargetConfig) -> str:
    return (cfg.graph_base or DEFAULT_GRAPH_BASE).rstrip("/")


def _graph_root(cfg: TargetConfig) -> str:
    """graph_base without its version segment: Meta documents the token endpoints unversioned."""
    return re.sub(r"/v[0-9]+(?:\.[0-9]+)?$", "", _graph_base(cfg))


def requested_scopes(cfg: TargetConfig) -> tuple[str, ...]:
    """What sign-in asks for: posting, plus threads_manage_insights only when this target's analytics is on."""
    from crosswatch.platforms.threads.metrics import INSIGHTS_SCOPE

    return (*THREADS_SCOPES, INSIGHTS_SCOPE) if cfg.analytics else THREADS_SCOPES


def threads_authorize_url(cfg: TargetConfig, redirect_uri: str, state: str) -> str:
    return with_query(cfg.authorize_url or DEFAULT_AUTHORIZE_URL, {
        "client_id": need_client_id(cfg),
        "redirect_uri": redirect_uri,
        "scope": ",".join(requested_scopes(cfg)),
        "response_type": "code",
        "state": state,
    })


def _token_from(response: httpx.Response, now: float) -> TokenSet | None:
    body = json_object(response)
    token = body.get("access_token")
    if not response.is_success or not isinstance(token, str) or not token:
        return None
    return TokenSet(access_token=token, expires_at=expiry_from(body.get("expires_in"), now), obtained_at=now)


def threads_exchange_code(cfg: TargetConfig, client: httpx.Client, secret: str, code: str,
                          redirect_uri: str, now: float) -> TokenSet:
    """The code -> short-lived token (1 h) -> long-lived token (60 days)."""
    code = strip_code_suffix(code)
    request = httpx.Request("POST", _graph_root(cfg) + "/oauth/access_token", data={
        "client_id": need_client_id(cfg), "client_secret": secret, "code": code,
        "grant_type": "authorization_code", "redirect_uri": redirect_uri,
    })
    response = send(client, request, "Threads sign-in")
    body = json_object(response)
    short_token = body.get("access_token") if response.is_success else None
    if not isinstance(short_token, str) or not short_token:
        reason = platform_words(response, code, secret)
        raise AuthError(f"Threads refused the sign-in code ({reason}); {login_hint(cfg.name)} again")
    long_lived = threads_long_lived(cfg, client, secret, short_token, now)
    # Threads' answer lists no permissions: the token holds what was asked for.
    return replace(long_lived, scopes=requested_scopes(cfg), account_id=id_string(body.get("user_id")))


def threads_long_lived(cfg: TargetConfig, client: httpx.Client, secret: str, short_token: str,
                       now: float) -> TokenSet:
    request = httpx.Request("GET", _graph_root(cfg) + "/access_token", params={
        "grant_type": "th_exchange_token", "client_secret": secret, "access_token": short_token,
    })
    response = send(client, request, "Threads long-lived token")
    tokens = _token_from(response, now)
    if tokens is None:
        reason = platform_words(response, short_token, secret)
        raise AuthError(f"Threads would not issue a long-lived token ({reason}); {login_hint(cfg.name)}")
    return tokens


def threads_refresh(cfg: TargetConfig, client: httpx.Client, tokens: TokenSet, now: float) -> TokenSet:
    request = httpx.Request("GET", _graph_root(cfg) + "/refresh_access_token", params={
        "grant_type": "th_refresh_token", "access_token": tokens.access_token,
    })
    response = send(client, request, "Threads token refresh")
    fresh = _token_from(response, now)
    if fresh is not None:
        return replace(fresh, scopes=tokens.scopes, account_id=tokens.account_id, username=tokens.username)
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientPlatformError(f"Threads token refresh failed with HTTP {response.status_code}")
    reason = platform_words(response, tokens.access_token)
    raise AuthError(f"Threads refused to refresh the token ({reason}); {login_hint(cfg.name)}")


def threads_lookup_account(cfg: TargetConfig, client: httpx.Client, access_token: str) -> tuple[str, str | None]:
    request = httpx.Request("GET", _graph_base(cfg) + "/me", params={"fields": "id,username"},
                            headers={"Authorization": f"Bearer {access_token}"})
    response = send(client, request, "Threads account lookup")
    body = json_object(response)
    account_id = id_string(body.get("id"))
    if not response.is_success or account_id is None:
        reason = platform_words(response, access_token)
        if response.status_code in (400, 401, 403):
            raise AuthError(f"Threads refused the access token ({reason}); {login_hint(cfg.name)}")
        raise PlatformError(f"Threads could not say which account this is ({reason})")
    return account_id, id_string(body.get("username"))


class ThreadsTokenProvider(InstagramTokenProvider):
    """Threads long-lived tokens: the same 60-day, refresh-after-24-h rules as Instagram's."""

    platform = "Threads"

    def _refresh_call(self, tokens: TokenSet, now: float) -> TokenSet:
        return threads_refresh(self.cfg, self.client, tokens, now)

    def _lookup(self, access_token: str) -> tuple[str, str | None]:
        return threads_lookup_account(self.cfg, self.client, access_token)


def threads_imported_tokens(body: Mapping[str, Any], now: float) -> TokenSet | None:
    tokens = _token_from(httpx.Response(200, json=body), now)
    if tokens is None:
        return None
    scopes = split_scopes(body.get("scope") or body.get("permissions"), ",") or THREADS_SCOPES
    return replace(tokens, account_id=id_string(body.get("user_id")), scopes=scopes)


class ThreadsSignIn:
    """Threads' part of the sign-in commands (``crosswatch.auth.flow.SignIn``)."""

    scopes = THREADS_SCOPES
    needs_client_secret = True  # the code exchange and the long-lived exchange take the app secret
    refreshes_expired = False  # an expired long-lived token cannot be refreshed
    # The long-lived token renews itself while it is valid (after 24 h); tokenhealth.py.
    refreshes_before_expiry = True
    # Threads lists the apps under Settings > Account > Website permissions (the page below).
    connected_apps = "https://www.threads.net/settings/account"

    def authorize_url(self, cfg: TargetConfig, redirect_uri: str, state: str, code_verifier: str) -> str:
        return threads_authorize_url(cfg, redirect_uri, state)  # no PKCE in Threads' window

    def exchange_code(self, cfg: TargetConfig, client: httpx.Client, secret: str | None, code: str,
                      redirect_uri: str, code_verifier: str, now: float) -> TokenSet:
        assert secret is not None
        return threads_exchange_code(cfg, client, secret, code, redirect_uri, now)

    def lookup_account(self, cfg: TargetConfig, client: httpx.Client, access_token: str) -> tuple[str, str | None]:
        return threads_lookup_account(cfg, client, access_token)

    def imported_tokens(self, cfg: TargetConfig, body: Mapping[str, Any], now: float) -> TokenSet | None:
        return threads_imported_tokens(body, now)

    def revoke_at_platform(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client | None,
                           tokens: TokenSet | None) -> tuple[bool, str | None]:
        return False, ("Threads has no revoke endpoint: remove crosswatch from the apps and websites "
                       "in your Threads account settings")

    def provider(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                 clock: Clock) -> TokenProvider:
        return ThreadsTokenProvider(cfg, store, client, state_dir, clock)


SIGN_IN = ThreadsSignIn()
