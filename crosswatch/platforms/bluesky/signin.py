"""Signing in to Bluesky with an app password (``com.atproto.server.createSession``).

Why not OAuth: atproto's OAuth profile needs a client metadata document at a public https address
(the client id *is* that URL), pushed authorization requests (PAR) and DPoP-bound tokens, which a
daemon on a home machine has no good way to host or keep. An app password is made for exactly this:
it can post, upload and read, but cannot change the account's password, email or handle, delete the
account, or (without the "direct messages" box) read DMs, and it is revoked on its own in Bluesky's
settings (Settings → Privacy and security → App passwords).

Sessions are reused, never recreated per post: createSession is limited (about 100 a day per account
at bsky.social, api-notes C). The access JWT lasts about two hours; it is refreshed with
``refreshSession`` (the refresh JWT as the bearer; each refresh hands out a new pair, stored before it
is used, under the target's refresh lock as for X) when its ``exp`` is near or the PDS refuses it
(400 ``ExpiredToken``/``InvalidToken``, 401 ``AuthMissing``). Only when the refresh JWT itself is dead
does the provider sign in again with the app password kept in the keyring, and the log says so.

Session calls go to the configured ``service`` (the entryway that issued the session); repo calls to
the account's own PDS, from the DID document createSession returns (``didDoc``, service
``#atproto_pds``), stored with the tokens as ``api_base``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import httpx
import structlog

from crosswatch.auth.http import json_object, scrub, send
from crosswatch.auth.locks import refresh_lock
from crosswatch.auth.provider import BaseProvider, TokenProvider
from crosswatch.auth.tokens import (
    Clock,
    SignInRefused,
    TokenSet,
    app_password_key,
    login_hint,
    save_tokens,
)
from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError, ConfigError, PlatformError, TransientPlatformError, UsageError
from crosswatch.logs import redact_text, register_secret
from crosswatch.platforms.bluesky.steps import AUTH_ERRORS, DEFAULT_SERVICE, parse_error, xrpc_url
from crosswatch.platforms.reading import id_string
from crosswatch.secrets import SecretStore

log = structlog.get_logger("crosswatch.auth")

# Refresh when less than this is left of the access JWT (scaled down for short lifetimes).
REFRESH_MARGIN = 300.0
SETTINGS_URL = "https://bsky.app/settings/app-passwords"


def service_base(cfg: TargetConfig) -> str:
    return (cfg.service or DEFAULT_SERVICE).rstrip("/")


def need_handle(cfg: TargetConfig) -> str:
    if not cfg.handle:
        raise ConfigError("is required to sign in: the account's handle, e.g. alice.bsky.social",
                          key=f"targets.{cfg.name}.handle")
    return cfg.handle.lstrip("@")


# ---------------------------------------------------------------------------------------------------
# Reading the answers


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it (only the PDS can, and it will)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def pds_endpoint(did_doc: Any) -> str | None:
    """The ``#atproto_pds`` service endpoint of a DID document (atproto.com/specs/did)."""
    services = did_doc.get("service") if isinstance(did_doc, dict) else None
    for service in services if isinstance(services, list) else ():
        if (isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds")
                and isinstance(service.get("serviceEndpoint"), str)):
            endpoint: str = service["serviceEndpoint"]
            if endpoint.startswith(("https://", "http://")):
                return endpoint.rstrip("/")
    return None


def session_tokens(body: Mapping[str, Any], now: float, previous: TokenSet | None = None) -> TokenSet | None:
    """The tokens in a createSession/refreshSession answer; None without an access JWT."""
    access, refresh = body.get("accessJwt"), body.get("refreshJwt")
    if not isinstance(access, str) or not access:
        return None
    return TokenSet(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=jwt_expiry(access),
        obtained_at=now,
        account_id=id_string(body.get("did")) or (previous.account_id if previous else None),
        username=id_string(body.get("handle")) or (previous.username if previous else None),
        api_base=pds_endpoint(body.get("didDoc")) or (previous.api_base if previous else None),
    )


def platform_words(response: httpx.Response, *secrets: str | None) -> str:
    """XRPC's ``error: message`` made safe to show: the given secrets and every registered one masked."""
    error = parse_error(response)
    words = ": ".join(p for p in (error.error, error.message) if p) or f"HTTP {response.status_code}"
    words = " ".join(redact_text(scrub(words, *secrets)).split())
    return words if len(words) <= 300 else words[:297] + "..."


# ---------------------------------------------------------------------------------------------------
# The calls


def create_session(cfg: TargetConfig, client: httpx.Client, password: str, now: float) -> TokenSet:
    request = httpx.Request("POST", xrpc_url(service_base(cfg), "com.atproto.server.createSession"),
                            json={"identifier": need_handle(cfg), "password": password})
    response = send(client, request, "Bluesky sign-in")
    tokens = session_tokens(json_object(response), now) if response.is_success else None
    if tokens is not None:
        return tokens
    reason = platform_words(response, password)
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientPlatformError(f"Bluesky sign-in failed ({reason}); try again later")
    raise SignInRefused(f"Bluesky refused the sign-in ({reason})",
                        f"check the handle and the app password ({SETTINGS_URL}), then {login_hint(cfg.name)}")


def refresh_session(cfg: TargetConfig, client: httpx.Client, tokens: TokenSet, now: float) -> TokenSet:
    """One refreshSession. SignInRefused when the refresh JWT is dead, TransientPlatformError when
    Bluesky could not be asked."""
    if not tokens.refresh_token:
        raise SignInRefused("the Bluesky session has no refresh token", login_hint(cfg.name))
    request = httpx.Request("POST", xrpc_url(service_base(cfg), "com.atproto.server.refreshSession"),
                            headers={"Authorization": f"Bearer {tokens.refresh_token}"})
    response = send(client, request, "Bluesky session refresh")
    fresh = session_tokens(json_object(response), now, tokens) if response.is_success else None
    if fresh is not None:
        return fresh
    reason = platform_words(response, tokens.refresh_token, tokens.access_token)
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientPlatformError(f"Bluesky session refresh failed ({reason}); try again")
    raise SignInRefused(f"Bluesky refused the refresh token ({reason})", login_hint(cfg.name))


def get_session(cfg: TargetConfig, client: httpx.Client, access_token: str) -> dict[str, Any]:
    request = httpx.Request("GET", xrpc_url(service_base(cfg), "com.atproto.server.getSession"),
                            headers={"Authorization": f"Bearer {access_token}"})
    response = send(client, request, "Bluesky account lookup")
    body = json_object(response)
    if response.is_success and id_string(body.get("did")):
        return body
    reason = platform_words(response, access_token)
    refused = response.status_code == 401 or parse_error(response).error in AUTH_ERRORS
    if refused:
        raise AuthError(f"Bluesky refused the session ({reason}); {login_hint(cfg.name)}")
    raise PlatformError(f"Bluesky could not say which account this is ({reason})")


def delete_session(cfg: TargetConfig, client: httpx.Client, tokens: TokenSet) -> str | None:
    """End the session at Bluesky (deleteSession takes the refresh JWT): None when confirmed."""
    request = httpx.Request("POST", xrpc_url(service_base(cfg), "com.atproto.server.deleteSession"),
                            headers={"Authorization": f"Bearer {tokens.refresh_token or tokens.access_token}"})
    response = send(client, request, "Bluesky sign-out")
    return None if response.is_success else platform_words(response, tokens.refresh_token, tokens.access_token)


# ---------------------------------------------------------------------------------------------------
# The provider the runner asks


class BlueskyTokenProvider(BaseProvider):
    """Bluesky sessions: short access JWTs, refresh JWTs, the app password as the last resort."""

    def _lookup(self, access_token: str) -> tuple[str, str | None]:
        body = get_session(self.cfg, self.client, access_token)
        return str(body["did"]), id_string(body.get("handle"))

    def _needs_refresh(self, tokens: TokenSet, now: float) -> bool:
        remaining, lifetime = tokens.remaining(now), tokens.lifetime
        if remaining is None:
            return False
        return remaining <= min(REFRESH_MARGIN, max(0.0, (lifetime or 0.0) * 0.2))

    def access_token(self) -> str:
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
            if self._needs_refresh(tokens, self.clock()):
                try:
                    tokens = self._refresh_locked(tokens)
                except TransientPlatformError as exc:
                    if tokens.expired(self.clock()):
                        raise AuthError(f"the {self.cfg.name} session expired and could not be refreshed "
                                        f"just now ({exc}); crosswatch will try again") from None
                    log.warning("session refresh failed; the current token is still valid",
                                target=self.cfg.name, reason=str(exc))
            return self._hand_out(tokens)

    def api_base(self) -> str | None:
        """The account's PDS; looked up once (getSession's DID document) for imported sessions."""
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
            if tokens.api_base:
                return tokens.api_base
            body = get_session(self.cfg, self.client, tokens.access_token)
            found = pds_endpoint(body.get("didDoc"))
            if found:
                save_tokens(self.store, self.cfg.name, replace(tokens, api_base=found))
            return found

    def _refresh_locked(self, tokens: TokenSet) -> TokenSet:
        try:
            fresh = refresh_session(self.cfg, self.client, tokens, self.clock())
        except SignInRefused as refused:
            fresh = self._sign_in_again(tokens, refused)
        save_tokens(self.store, self.cfg.name, fresh)  # before use: the old refresh JWT is spent
        log.info("refreshed the Bluesky session", target=self.cfg.name)
        return fresh

    def _sign_in_again(self, tokens: TokenSet, refused: SignInRefused) -> TokenSet:
        """The refresh JWT is dead: a new session from the stored app password, if there is one."""
        password = self.store.get(app_password_key(self.cfg.name))
        if not password:
            self._mark_dead(tokens, refused.what)
            raise refused
        register_secret(password)
        log.warning("the Bluesky refresh token is no longer accepted; signing in again with the stored "
                    "app password (createSession, limited to about 100 a day)",
                    target=self.cfg.name, reason=refused.what)
        try:
            fresh = create_session(self.cfg, self.client, password, self.clock())
        except SignInRefused as again:
            self._mark_dead(tokens, again.what)
            raise
        return replace(fresh, api_base=fresh.api_base or tokens.api_base)


# ---------------------------------------------------------------------------------------------------
# The sign-in commands' part


class BlueskySignIn:
    """Bluesky's part of the sign-in commands (``crosswatch.auth.flow.SignIn``)."""

    method: Literal["oauth", "password"] = "password"
    scopes: tuple[str, ...] = ()
    # What `auth status` says in place of scopes: an app password has none, it grants a fixed set.
    grants = ("app password: post, upload images, read; not the password, email, handle, account "
              "deletion or DMs; revoke it at " + SETTINGS_URL)
    needs_client_secret = False
    refreshes_expired = True
    # App passwords are listed (and revoked) here; crosswatch signs in with one.
    connected_apps = "https://bsky.app/settings/app-passwords"

    def authorize_url(self, cfg: TargetConfig, redirect_uri: str, state: str, code_verifier: str) -> str:
        raise UsageError("Bluesky signs in with an app password, not in the browser")

    def exchange_code(self, cfg: TargetConfig, client: httpx.Client, secret: str | None, code: str,
                      redirect_uri: str, code_verifier: str, now: float) -> TokenSet:
        raise UsageError("Bluesky signs in with an app password, not with a code")

    def login_with_password(self, cfg: TargetConfig, client: httpx.Client, password: str,
                            now: float) -> TokenSet:
        return create_session(cfg, client, password, now)

    def lookup_account(self, cfg: TargetConfig, client: httpx.Client,
                       access_token: str) -> tuple[str, str | None]:
        body = get_session(cfg, client, access_token)
        return str(body["did"]), id_string(body.get("handle"))

    def imported_tokens(self, cfg: TargetConfig, body: Mapping[str, Any], now: float) -> TokenSet | None:
        tokens = session_tokens(body, now)
        if tokens is not None and not tokens.refresh_token:
            log.warning("imported Bluesky session has no refresh JWT; it stops working when it expires",
                        target=cfg.name)
        return tokens

    def revoke_at_platform(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client | None,
                           tokens: TokenSet | None) -> tuple[bool, str | None]:
        advice = f"the app password itself stays valid until you revoke it at {SETTINGS_URL}"
        if tokens is None or client is None:
            return False, advice
        try:
            refused = delete_session(cfg, client, tokens)
        except TransientPlatformError as exc:
            return False, f"{exc}; the local copy is deleted anyway; {advice}"
        if refused:
            return False, f"Bluesky did not end the session ({refused}); {advice}"
        return True, advice

    def provider(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                 clock: Clock) -> TokenProvider:
        return BlueskyTokenProvider(cfg, store, client, state_dir, clock)


SIGN_IN = BlueskySignIn()
