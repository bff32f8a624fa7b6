"""Signing in to X: OAuth 2.0 authorization code with PKCE (S256), single-use refresh tokens.

X access tokens last 2 hours; refresh tokens are single-use, so every refresh runs under the
target's refresh lock and the new pair is stored before it is used (``crosswatch.auth.locks``). authlib
supplies the PKCE challenge; the requests are built here because of that lock and persist-before-use.
What every sign-in shares (keyring, loopback listener, locks, the commands) is in ``crosswatch.auth``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import structlog
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from crosswatch.auth.http import basic_auth, json_object, need_client_id, platform_words, scrub, send, with_query
from crosswatch.auth.locks import refresh_lock
from crosswatch.auth.provider import BaseProvider, TokenProvider
from crosswatch.auth.tokens import (
    Clock,
    SignInRefused,
    TokenSet,
    client_secret_key,
    expiry_from,
    login_hint,
    save_tokens,
    split_scopes,
)
from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError, PlatformError, TransientPlatformError
from crosswatch.platforms.reading import id_string
from crosswatch.platforms.x.steps import DEFAULT_API_BASE, X_SCOPES
from crosswatch.secrets import SecretStore

log = structlog.get_logger("crosswatch.auth")

# X access tokens last 2 h; refresh when less than this is left (scaled down for short lifetimes).
X_REFRESH_MARGIN = 300.0


def _x_base(cfg: TargetConfig) -> str:
    return (cfg.api_base or DEFAULT_API_BASE).rstrip("/")



# ---------------------------------------------------------------------------------------------------
# X: OAuth 2.0 with PKCE


def x_authorize_url(cfg: TargetConfig, redirect_uri: str, state: str, code_verifier: str) -> str:
    return with_query(cfg.authorize_url or "https://x.com/i/oauth2/authorize", {
        "response_type": "code",
        "client_id": need_client_id(cfg),
        "redirect_uri": redirect_uri,
        "scope": " ".join(X_SCOPES),
        "state": state,
        "code_challenge": create_s256_code_challenge(code_verifier),
        "code_challenge_method": "S256",
    })


def _x_token_request(cfg: TargetConfig, secret: str | None, form: dict[str, str]) -> httpx.Request:
    headers = {}
    if secret:
        headers["Authorization"] = basic_auth(need_client_id(cfg), secret)  # confidential client
    else:
        form = {**form, "client_id": need_client_id(cfg)}  # public client
    return httpx.Request("POST", _x_base(cfg) + "/2/oauth2/token", headers=headers, data=form)


def _x_tokens_from(response: httpx.Response, now: float, previous: TokenSet | None = None) -> TokenSet | None:
    body = json_object(response)
    access = body.get("access_token")
    if not response.is_success or not isinstance(access, str) or not access:
        return None
    return TokenSet(
        access_token=access,
        refresh_token=id_string(body.get("refresh_token")),
        expires_at=expiry_from(body.get("expires_in"), now),
        obtained_at=now,
        scopes=split_scopes(body.get("scope"), " ") or (previous.scopes if previous else ()),
        account_id=previous.account_id if previous else None,
        username=previous.username if previous else None,
    )


def x_exchange_code(cfg: TargetConfig, client: httpx.Client, secret: str | None, code: str,
                    redirect_uri: str, code_verifier: str, now: float) -> TokenSet:
    request = _x_token_request(cfg, secret, {
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": redirect_uri, "code_verifier": code_verifier,
    })
    response = send(client, request, "X sign-in")
    tokens = _x_tokens_from(response, now)
    if tokens is None:
        reason = platform_words(response, code, code_verifier, secret)
        raise AuthError(f"X refused the sign-in code ({reason}); {login_hint(cfg.name)} again")
    return tokens


def x_refresh(cfg: TargetConfig, client: httpx.Client, secret: str | None, tokens: TokenSet,
              now: float) -> TokenSet:
    """One refresh. Raises AuthError when X refuses the refresh token (it is then dead)."""
    if not tokens.refresh_token:
        raise AuthError(f"the X token has expired and there is no refresh token; {login_hint(cfg.name)}")
    request = _x_token_request(cfg, secret, {"grant_type": "refresh_token",
                                             "refresh_token": tokens.refresh_token})
    response = send(client, request, "X token refresh")
    fresh = _x_tokens_from(response, now, previous=tokens)
    if fresh is not None:
        return fresh
    reason = platform_words(response, tokens.refresh_token, tokens.access_token, secret)
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientPlatformError(f"X token refresh failed ({reason}); try again")
    raise SignInRefused(f"X refused the refresh token ({reason})", login_hint(cfg.name))


def x_lookup_account(cfg: TargetConfig, client: httpx.Client, access_token: str) -> tuple[str, str | None]:
    request = httpx.Request("GET", _x_base(cfg) + "/2/users/me",
                            headers={"Authorization": f"Bearer {access_token}"})
    response = send(client, request, "X account lookup")
    data = json_object(response).get("data")
    account_id = id_string(data.get("id")) if isinstance(data, dict) else None
    if not response.is_success or account_id is None or not isinstance(data, dict):
        reason = platform_words(response, access_token)
        if response.status_code == 401:
            raise AuthError(f"X refused the access token ({reason}); {login_hint(cfg.name)}")
        raise PlatformError(f"X could not say which account this is ({reason})")
    return account_id, id_string(data.get("username"))


def x_revoke(cfg: TargetConfig, client: httpx.Client, secret: str | None, token: str,
             hint: str) -> str | None:
    """Revoke one token at X: None when X confirmed it, else X's words (secrets masked)."""
    form = {"token": token, "token_type_hint": hint}
    headers = {}
    if secret:
        headers["Authorization"] = basic_auth(need_client_id(cfg), secret)
    else:
        form["client_id"] = need_client_id(cfg)
    request = httpx.Request("POST", _x_base(cfg) + "/2/oauth2/revoke", headers=headers, data=form)
    response = send(client, request, "X revoke")
    return None if response.is_success else platform_words(response, token, secret)


class XTokenProvider(BaseProvider):
    """X tokens: 2-hour access tokens, single-use refresh tokens."""

    def _secret(self) -> str | None:
        return self.store.get(client_secret_key(self.cfg.name))

    def _lookup(self, access_token: str) -> tuple[str, str | None]:
        return x_lookup_account(self.cfg, self.client, access_token)

    def _needs_refresh(self, tokens: TokenSet, now: float) -> bool:
        remaining, lifetime = tokens.remaining(now), tokens.lifetime
        if remaining is None:
            return False
        margin = min(X_REFRESH_MARGIN, max(0.0, (lifetime or 0.0) * 0.2))
        return remaining <= margin

    def access_token(self) -> str:
        # Everything under the lock, reads included: a reader must never see a half-written
        # keyring entry, nor hand out a token whose refresh another thread is doing right now.
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
            if self._needs_refresh(tokens, self.clock()):
                tokens = self._refresh_or_keep(tokens)
            return self._hand_out(tokens)

    def _refresh_or_keep(self, tokens: TokenSet) -> TokenSet:
        """Refresh; when X cannot be reached, keep a token that has not expired yet."""
        try:
            return self._refresh_locked(tokens)
        except TransientPlatformError as exc:
            if not tokens.expired(self.clock()):
                log.warning("token refresh failed; the current token is still valid",
                            target=self.cfg.name, reason=str(exc))
                return tokens
            # Not a sign-in problem: the runner parks the target and asks again shortly.
            raise AuthError(f"the {self.cfg.name} token expired and could not be refreshed just now "
                            f"({exc}); crosswatch will try again") from None

    def _refresh_locked(self, tokens: TokenSet) -> TokenSet:
        """One refresh; the caller holds the lock and has just read ``tokens`` under it."""
        try:
            fresh = x_refresh(self.cfg, self.client, self._secret(), tokens, self.clock())
        except AuthError as exc:
            # The platform's words are kept with the dead sign-in, for `status` and `doctor` to show.
            self._mark_dead(tokens, exc.what if isinstance(exc, SignInRefused) else "X refused the refresh token")
            raise
        # Persist before use: the old refresh token is spent from this moment on.
        save_tokens(self.store, self.cfg.name, fresh)
        log.info("refreshed access token", target=self.cfg.name)
        return fresh


def x_imported_tokens(cfg: TargetConfig, body: Mapping[str, Any], now: float) -> TokenSet | None:
    tokens = _x_tokens_from(httpx.Response(200, json=body), now)
    if tokens is not None and not tokens.refresh_token:
        log.warning("imported X token has no refresh token; it stops working when it expires",
                    target=cfg.name)
    return tokens


def x_revoke_tokens(cfg: TargetConfig, store: SecretStore, client: httpx.Client | None,
                    tokens: TokenSet | None) -> tuple[bool, str | None]:
    """Revoke both tokens at X: whether X confirmed it, and a note for the user."""
    if tokens is None or client is None:
        return False, None
    secret = store.get(client_secret_key(cfg.name))
    try:
        # The refresh token first: revoking it ends the chain even if the next call fails.
        refusals = [x_revoke(cfg, client, secret, tokens.refresh_token, "refresh_token")
                    if tokens.refresh_token else None,
                    x_revoke(cfg, client, secret, tokens.access_token, "access_token")]
    except TransientPlatformError as exc:
        return False, f"{exc}; the local copy is deleted anyway"
    said = [scrub(words, tokens.refresh_token, tokens.access_token) for words in refusals if words]
    if said:
        return False, (f"X did not confirm the revocation ({'; '.join(dict.fromkeys(said))}); "
                       "check https://x.com/settings/connected_apps")
    return True, None


class XSignIn:
    """X's part of the sign-in commands (``crosswatch.auth.flow.SignIn``)."""

    scopes = X_SCOPES
    needs_client_secret = False  # a public client signs in with PKCE alone
    refreshes_expired = True
    connected_apps = "https://x.com/settings/connected_apps"

    def authorize_url(self, cfg: TargetConfig, redirect_uri: str, state: str, code_verifier: str) -> str:
        return x_authorize_url(cfg, redirect_uri, state, code_verifier)

    def exchange_code(self, cfg: TargetConfig, client: httpx.Client, secret: str | None, code: str,
                      redirect_uri: str, code_verifier: str, now: float) -> TokenSet:
        return x_exchange_code(cfg, client, secret, code, redirect_uri, code_verifier, now)

    def lookup_account(self, cfg: TargetConfig, client: httpx.Client,
                       access_token: str) -> tuple[str, str | None]:
        return x_lookup_account(cfg, client, access_token)

    def imported_tokens(self, cfg: TargetConfig, body: Mapping[str, Any], now: float) -> TokenSet | None:
        return x_imported_tokens(cfg, body, now)

    def revoke_at_platform(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client | None,
                           tokens: TokenSet | None) -> tuple[bool, str | None]:
        return x_revoke_tokens(cfg, store, client, tokens)

    def provider(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                 clock: Clock) -> TokenProvider:
        return XTokenProvider(cfg, store, client, state_dir, clock)


SIGN_IN = XSignIn()
