"""Signing in to Instagram: Instagram Login, a short-lived token swapped for a long-lived one (60 days).

Instagram accepts only https redirect addresses, so with ``redirect_uri`` set the user pastes the
address the browser ended on. The token exchange and refresh take the token in the query (not
standard OAuth grants); ``crosswatch.auth.http`` redacts it from httpx's log line. There is no revoke
endpoint. What every sign-in shares is in ``crosswatch.auth``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import structlog

from crosswatch.auth.http import json_object, need_client_id, platform_words, send, with_query
from crosswatch.auth.locks import refresh_lock
from crosswatch.auth.loopback import strip_code_suffix
from crosswatch.auth.provider import BaseProvider, TokenProvider
from crosswatch.auth.tokens import Clock, TokenSet, expiry_from, login_hint, save_tokens, split_scopes
from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError, PlatformError, TransientPlatformError
from crosswatch.platforms.instagram.steps import DEFAULT_GRAPH_BASE, INSTAGRAM_SCOPES
from crosswatch.platforms.reading import id_string
from crosswatch.secrets import SecretStore

log = structlog.get_logger("crosswatch.auth")

INSTAGRAM_API_BASE = "https://api.instagram.com"
# Instagram refuses to refresh a token younger than 24 h; a token not refreshed in 60 days is dead.
INSTAGRAM_MIN_REFRESH_AGE = 24 * 3600.0


def _graph_base(cfg: TargetConfig) -> str:
    return (cfg.graph_base or DEFAULT_GRAPH_BASE).rstrip("/")


def _graph_root(cfg: TargetConfig) -> str:
    """graph_base without a version segment: Meta documents the token endpoints unversioned."""
    return re.sub(r"/v[0-9]+(?:\.[0-9]+)?$", "", _graph_base(cfg))


def _ig_api_base(cfg: TargetConfig) -> str:
    return (cfg.api_base or INSTAGRAM_API_BASE).rstrip("/")


# ---------------------------------------------------------------------------------------------------
# Instagram: Instagram Login, short-lived then long-lived tokens


def instagram_authorize_url(cfg: TargetConfig, redirect_uri: str, state: str) -> str:
    return with_query(cfg.authorize_url or "https://www.instagram.com/oauth/authorize", {
        "client_id": need_client_id(cfg),
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": ",".join(requested_scopes(cfg)),
        "state": state,
    })


def requested_scopes(cfg: TargetConfig) -> tuple[str, ...]:
    """What sign-in asks for: posting, plus the insights scope only when this target's analytics is on."""
    from crosswatch.platforms.instagram.metrics import INSIGHTS_SCOPE

    return (*INSTAGRAM_SCOPES, INSIGHTS_SCOPE) if cfg.analytics else INSTAGRAM_SCOPES


def parse_instagram_short_token(body: Mapping[str, Any]) -> tuple[str, str | None, tuple[str, ...]] | None:
    """Both documented (``{"data":[{...}]}``) and observed (flat) shapes of the code exchange."""
    item: Any = body
    if isinstance(body.get("data"), list) and body["data"]:
        item = body["data"][0]
    if not isinstance(item, dict):
        return None
    token = item.get("access_token")
    if not isinstance(token, str) or not token:
        return None
    return token, id_string(item.get("user_id")), split_scopes(item.get("permissions"), ",")


def instagram_exchange_code(cfg: TargetConfig, client: httpx.Client, secret: str, code: str,
                            redirect_uri: str, now: float) -> TokenSet:
    """The code -> short-lived token (1 h) -> long-lived token (60 days)."""
    code = strip_code_suffix(code)
    request = httpx.Request("POST", _ig_api_base(cfg) + "/oauth/access_token", data={
        "client_id": need_client_id(cfg), "client_secret": secret, "grant_type": "authorization_code",
        "redirect_uri": redirect_uri, "code": code,
    })
    response = send(client, request, "Instagram sign-in")
    short = parse_instagram_short_token(json_object(response)) if response.is_success else None
    if short is None:
        reason = platform_words(response, code, secret)
        raise AuthError(f"Instagram refused the sign-in code ({reason}); {login_hint(cfg.name)} again")
    short_token, user_id, scopes = short
    long_lived = instagram_long_lived(cfg, client, secret, short_token, now)
    return replace(long_lived, scopes=scopes, account_id=user_id)


def _instagram_token_from(response: httpx.Response, now: float) -> TokenSet | None:
    body = json_object(response)
    token = body.get("access_token")
    if not response.is_success or not isinstance(token, str) or not token:
        return None
    return TokenSet(access_token=token, expires_at=expiry_from(body.get("expires_in"), now), obtained_at=now)


def instagram_long_lived(cfg: TargetConfig, client: httpx.Client, secret: str, short_token: str,
                         now: float) -> TokenSet:
    request = httpx.Request("GET", _graph_root(cfg) + "/access_token", params={
        "grant_type": "ig_exchange_token", "client_secret": secret, "access_token": short_token,
    })
    response = send(client, request, "Instagram long-lived token")
    tokens = _instagram_token_from(response, now)
    if tokens is None:
        reason = platform_words(response, short_token, secret)
        raise AuthError(f"Instagram would not issue a long-lived token ({reason}); {login_hint(cfg.name)}")
    return tokens


def instagram_refresh(cfg: TargetConfig, client: httpx.Client, tokens: TokenSet, now: float) -> TokenSet:
    request = httpx.Request("GET", _graph_root(cfg) + "/refresh_access_token", params={
        "grant_type": "ig_refresh_token", "access_token": tokens.access_token,
    })
    response = send(client, request, "Instagram token refresh")
    fresh = _instagram_token_from(response, now)
    if fresh is not None:
        return replace(fresh, scopes=tokens.scopes, account_id=tokens.account_id, username=tokens.username)
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientPlatformError(f"Instagram token refresh failed with HTTP {response.status_code}")
    reason = platform_words(response, tokens.access_token)
    raise AuthError(f"Instagram refused to refresh the token ({reason}); {login_hint(cfg.name)}")


def instagram_lookup_account(cfg: TargetConfig, client: httpx.Client,
                             access_token: str) -> tuple[str, str | None]:
    request = httpx.Request("GET", _graph_base(cfg) + "/me", params={"fields": "user_id,username"},
                            headers={"Authorization": f"Bearer {access_token}"})
    response = send(client, request, "Instagram account lookup")
    body = json_object(response)
    # user_id is the professional account id used for publishing; id is app-scoped (api-notes B1).
    account_id = id_string(body.get("user_id")) or id_string(body.get("id"))
    if not response.is_success or account_id is None:
        reason = platform_words(response, access_token)
        if response.status_code in (400, 401, 403):
            raise AuthError(f"Instagram refused the access token ({reason}); {login_hint(cfg.name)}")
        raise PlatformError(f"Instagram could not say which account this is ({reason})")
    return account_id, id_string(body.get("username"))


class InstagramTokenProvider(BaseProvider):
    """Instagram long-lived tokens: 60 days, refreshable once at least 24 h old. Threads' tokens follow
    the same rules; its provider changes only the calls (``_lookup``, ``_refresh_call``) and the name."""

    platform = "Instagram"

    def _refresh_call(self, tokens: TokenSet, now: float) -> TokenSet:
        return instagram_refresh(self.cfg, self.client, tokens, now)

    def _lookup(self, access_token: str) -> tuple[str, str | None]:
        return instagram_lookup_account(self.cfg, self.client, access_token)

    def _wants_refresh(self, tokens: TokenSet, now: float) -> bool:
        lifetime = tokens.lifetime
        if lifetime is None or lifetime <= 0:
            return False
        # Daily for real 60-day tokens (Meta refuses a token younger than 24 h); at half-life for the
        # short ones an emulator hands out. Either is well before expiry.
        return now - tokens.obtained_at >= min(INSTAGRAM_MIN_REFRESH_AGE, lifetime / 2)

    def access_token(self) -> str:
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
            now = self.clock()
            if tokens.expired(now):
                self._mark_dead(tokens, "the token expired")
                raise AuthError(f"the {self.cfg.name} token has expired; {login_hint(self.cfg.name)}")
            if self._wants_refresh(tokens, now):
                try:
                    tokens = self._refresh_locked(tokens)
                except (AuthError, TransientPlatformError) as exc:
                    # The current token is still valid: keep using it and try again another time.
                    log.warning("token refresh failed; the current token is still valid",
                                target=self.cfg.name, reason=str(exc))
            return self._hand_out(tokens)

    def _refresh_after_refusal(self, tokens: TokenSet) -> TokenSet:
        """After the token was refused: a refresh is the only hope; if it fails, sign in again."""
        try:
            return self._refresh_locked(tokens)
        except AuthError:
            self._mark_dead(tokens, f"{self.platform} refused the token")
            raise

    def _refresh_locked(self, tokens: TokenSet) -> TokenSet:
        fresh = self._refresh_call(tokens, self.clock())
        save_tokens(self.store, self.cfg.name, fresh)
        log.info("refreshed access token", target=self.cfg.name)
        return fresh


def instagram_imported_tokens(body: Mapping[str, Any], now: float) -> TokenSet | None:
    tokens = _instagram_token_from(httpx.Response(200, json=body), now)
    if tokens is None:
        return None
    return replace(tokens, account_id=id_string(body.get("user_id")),
                   scopes=split_scopes(body.get("permissions"), ","))


class InstagramSignIn:
    """Instagram's part of the sign-in commands (``crosswatch.auth.flow.SignIn``)."""

    scopes = INSTAGRAM_SCOPES
    needs_client_secret = True  # the code exchange takes the app secret
    refreshes_expired = False  # an expired long-lived token cannot be refreshed
    # The long-lived token renews itself while it is valid (after 24 h); tokenhealth.py.
    refreshes_before_expiry = True
    # Where the user sees and removes the apps that may use the account.
    connected_apps = "https://www.instagram.com/accounts/manage_access/"

    def authorize_url(self, cfg: TargetConfig, redirect_uri: str, state: str, code_verifier: str) -> str:
        return instagram_authorize_url(cfg, redirect_uri, state)  # Instagram Login has no PKCE

    def exchange_code(self, cfg: TargetConfig, client: httpx.Client, secret: str | None, code: str,
                      redirect_uri: str, code_verifier: str, now: float) -> TokenSet:
        assert secret is not None
        return instagram_exchange_code(cfg, client, secret, code, redirect_uri, now)

    def lookup_account(self, cfg: TargetConfig, client: httpx.Client,
                       access_token: str) -> tuple[str, str | None]:
        return instagram_lookup_account(cfg, client, access_token)

    def imported_tokens(self, cfg: TargetConfig, body: Mapping[str, Any], now: float) -> TokenSet | None:
        return instagram_imported_tokens(body, now)

    def revoke_at_platform(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client | None,
                           tokens: TokenSet | None) -> tuple[bool, str | None]:
        return False, ("Instagram has no revoke endpoint: remove crosswatch under Settings > "
                       "Apps and websites in Instagram")

    def provider(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                 clock: Clock) -> TokenProvider:
        return InstagramTokenProvider(cfg, store, client, state_dir, clock)


SIGN_IN = InstagramSignIn()
