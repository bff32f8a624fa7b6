"""Signing in to a Mastodon server: register crosswatch as an app there, then OAuth 2.0 authorization
code with PKCE (S256) and the loopback redirect (mastodon/documentation methods/apps.md, oauth.md).

- The app is registered once per server and redirect address (``POST /api/v1/apps``); its client id
  and secret go to the keyring only (``mastodon-app:<instance> <redirect>``, and the target's own
  entry for revocation), never the config.
- Mastodon's access tokens do not expire and come without a refresh token
  (``{"access_token","token_type","scope","created_at"}``): a refused token means signing in again.
- Scopes are hierarchical (api/oauth-scopes.md): ``write`` covers ``write:media`` and
  ``write:statuses``, ``read`` covers ``read:accounts`` and ``read:statuses``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from crosswatch.auth.http import json_object, platform_words, scrub, send, with_query
from crosswatch.auth.provider import BaseProvider, TokenProvider
from crosswatch.auth.tokens import Clock, SignInRefused, TokenSet, client_secret_key, login_hint, split_scopes
from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError, ConfigError, PlatformError
from crosswatch.logs import register_secret
from crosswatch.platforms.mastodon.steps import MASTODON_SCOPES, api_url
from crosswatch.platforms.reading import id_string, text
from crosswatch.secrets import SecretStore

APP_NAME = "crosswatch"
APP_WEBSITE = "https://github.com/crosswatch/crosswatch"
# What a broad scope covers (api/oauth-scopes.md).
_COVERS = {"write": ("write:media", "write:statuses"), "read": ("read:accounts", "read:statuses")}


def covered_scopes(granted: tuple[str, ...]) -> tuple[str, ...]:
    """The granted scopes with what the broad ones (``read``, ``write``) cover spelled out."""
    covered = list(granted)
    for scope in granted:
        covered += [s for s in _COVERS.get(scope, ()) if s not in covered]
    return tuple(covered)


def _instance(cfg: TargetConfig) -> str:
    if not cfg.instance:
        raise ConfigError("is required: the Mastodon server's address", key=f"targets.{cfg.name}.instance")
    return cfg.instance.rstrip("/")


def app_key(cfg: TargetConfig, redirect_uri: str) -> str:
    return f"mastodon-app:{_instance(cfg)} {redirect_uri}"


def _app(store: SecretStore, key: str) -> tuple[str, str] | None:
    stored = store.get_json(key) or {}
    client_id, secret = text(stored.get("client_id")), text(stored.get("client_secret"))
    if client_id and secret:
        register_secret(secret)
        return client_id, secret
    return None


def _keep_app(store: SecretStore, cfg: TargetConfig, client_id: str, secret: str, key: str | None) -> None:
    register_secret(secret)
    record = {"client_id": client_id, "client_secret": secret}
    if key:
        store.set_json(key, record)
    store.set_json(client_secret_key(cfg.name), record)


def register_app(cfg: TargetConfig, client: httpx.Client, redirect_uri: str) -> tuple[str, str]:
    """``POST /api/v1/apps``: the new app's client id and secret."""
    request = httpx.Request("POST", api_url(cfg, "/api/v1/apps"), data={
        "client_name": APP_NAME, "redirect_uris": redirect_uri, "scopes": " ".join(MASTODON_SCOPES),
        "website": APP_WEBSITE,
    })
    response = send(client, request, "Mastodon app registration")
    body = json_object(response)
    client_id, secret = id_string(body.get("client_id")), text(body.get("client_secret"))
    if not response.is_success or not client_id or not secret:
        raise PlatformError(f"{_instance(cfg)} refused to register crosswatch as an app "
                            f"({platform_words(response, secret)}); check targets.{cfg.name}.instance")
    return client_id, secret


def _tokens_from(body: Mapping[str, Any], now: float) -> TokenSet | None:
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        return None
    created = body.get("created_at")
    obtained = float(created) if isinstance(created, int | float) and not isinstance(created, bool) else now
    return TokenSet(access_token=access, obtained_at=obtained,
                    scopes=covered_scopes(split_scopes(body.get("scope"), " ")))


def lookup_account(cfg: TargetConfig, client: httpx.Client, access_token: str) -> tuple[str, str | None]:
    request = httpx.Request("GET", api_url(cfg, "/api/v1/accounts/verify_credentials"),
                            headers={"Authorization": f"Bearer {access_token}"})
    response = send(client, request, "Mastodon account lookup")
    body = json_object(response)
    account_id = id_string(body.get("id"))
    if not response.is_success or account_id is None:
        reason = platform_words(response, access_token)
        if response.status_code in (401, 403):
            raise AuthError(f"Mastodon refused the access token ({reason}); {login_hint(cfg.name)}")
        raise PlatformError(f"Mastodon could not say which account this is ({reason})")
    return account_id, text(body.get("acct")) or text(body.get("username"))


class MastodonTokenProvider(BaseProvider):
    """Tokens that do not expire and cannot be refreshed: a refusal ends the sign-in."""

    def access_token(self) -> str:
        return self._hand_out(self._load())

    def _lookup(self, access_token: str) -> tuple[str, str | None]:
        return lookup_account(self.cfg, self.client, access_token)

    def _refresh_locked(self, tokens: TokenSet) -> TokenSet:
        what = "Mastodon refused the access token"
        self._mark_dead(tokens, what)
        raise SignInRefused(what, login_hint(self.cfg.name))


class MastodonSignIn:
    """Mastodon's part of the sign-in commands (``crosswatch.auth.flow.SignIn``)."""

    scopes = MASTODON_SCOPES
    needs_client_secret = False  # the app is registered at sign-in; nothing to ask the user
    needs_client_id = False
    refreshes_expired = False

    def connected_apps(self, cfg: TargetConfig) -> str:
        """Where the user sees and revokes the apps that may use the account: on their own server."""
        return (cfg.instance or "").rstrip("/") + "/oauth/authorized_applications"

    def prepare(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client,
                redirect_uri: str) -> tuple[TargetConfig, str]:
        """The app registered on this server for this redirect (registered now if it is not yet)."""
        key = app_key(cfg, redirect_uri)
        app = _app(store, key)
        if app is None:
            app = register_app(cfg, client, redirect_uri)
        _keep_app(store, cfg, *app, key)
        return replace(cfg, client_id=app[0]), app[1]

    def authorize_url(self, cfg: TargetConfig, redirect_uri: str, state: str, code_verifier: str) -> str:
        return with_query(api_url(cfg, "/oauth/authorize"), {
            "response_type": "code", "client_id": cfg.client_id or "", "redirect_uri": redirect_uri,
            "scope": " ".join(MASTODON_SCOPES), "state": state,
            "code_challenge": create_s256_code_challenge(code_verifier), "code_challenge_method": "S256",
        })

    def exchange_code(self, cfg: TargetConfig, client: httpx.Client, secret: str | None, code: str,
                      redirect_uri: str, code_verifier: str, now: float) -> TokenSet:
        request = httpx.Request("POST", api_url(cfg, "/oauth/token"), data={
            "grant_type": "authorization_code", "code": code, "client_id": cfg.client_id or "",
            "client_secret": secret or "", "redirect_uri": redirect_uri, "code_verifier": code_verifier,
            "scope": " ".join(MASTODON_SCOPES),
        })
        response = send(client, request, "Mastodon sign-in")
        tokens = _tokens_from(json_object(response), now) if response.is_success else None
        if tokens is None:
            reason = platform_words(response, code, code_verifier, secret)
            raise AuthError(f"Mastodon refused the sign-in code ({reason}); {login_hint(cfg.name)} again")
        return tokens

    def lookup_account(self, cfg: TargetConfig, client: httpx.Client,
                       access_token: str) -> tuple[str, str | None]:
        return lookup_account(cfg, client, access_token)

    def imported_tokens(self, cfg: TargetConfig, body: Mapping[str, Any], now: float) -> TokenSet | None:
        return _tokens_from(body, now)

    def keep_imported(self, cfg: TargetConfig, store: SecretStore, body: Mapping[str, Any]) -> None:
        """An imported token's app (optional ``client_id``/``client_secret``), kept for revocation."""
        client_id, secret = id_string(body.get("client_id")), text(body.get("client_secret"))
        if client_id and secret:
            _keep_app(store, cfg, client_id, secret, None)

    def revoke_at_platform(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client | None,
                           tokens: TokenSet | None) -> tuple[bool, str | None]:
        if tokens is None or client is None:
            return False, None
        app = _app(store, client_secret_key(cfg.name))
        if app is None:
            return False, ("the app's client id and secret are not stored (an imported token without "
                           "them), so Mastodon cannot be asked; revoke it in "
                           f"{_instance(cfg)}/oauth/authorized_applications")
        request = httpx.Request("POST", api_url(cfg, "/oauth/revoke"), data={
            "client_id": app[0], "client_secret": app[1], "token": tokens.access_token})
        try:
            response = send(client, request, "Mastodon revoke")
        except PlatformError as exc:
            return False, f"{exc}; the local copy is deleted anyway"
        if response.is_success:
            return True, None
        said = scrub(platform_words(response, tokens.access_token, app[1]), tokens.access_token)
        return False, f"Mastodon did not confirm the revocation ({said})"

    def provider(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                 clock: Clock) -> TokenProvider:
        return MastodonTokenProvider(cfg, store, client, state_dir, clock)


SIGN_IN = MastodonSignIn()
