"""The ``crosswatch auth`` commands, the same for every platform: login, import, status, revoke.

- ``login(target_cfg, store, client, open_browser, prompt_secret, paste_redirect=None)``: browser
  sign-in. A listener on ``127.0.0.1:<redirect_port>`` takes exactly one callback carrying the right
  ``state``; the code is exchanged at once (X's codes live 30 s). With an https ``redirect_uri`` in the
  config (Instagram accepts no other), ``paste_redirect`` asks for the address the browser ended on
  instead.
- ``import_tokens``, ``status``, ``revoke``: the other ``crosswatch auth`` commands.
- ``token_provider(target_cfg, store, client, state_dir)``: what the runner asks for a valid access
  token (``crosswatch.auth.provider``).

What differs between platforms (the authorize address, the code exchange, the account lookup,
revocation, refresh rules) is the platform's ``SignIn`` (``platforms/<name>/signin.py``), found by
the target's type in the registry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from authlib.common.security import generate_token

from crosswatch.auth.flow import SignIn
from crosswatch.auth.http import need_client_id
from crosswatch.auth.loopback import DEFAULT_LOGIN_TIMEOUT, listen, pasted_code
from crosswatch.auth.provider import TokenProvider
from crosswatch.auth.state import status
from crosswatch.auth.tokens import (
    Clock,
    TokenSet,
    app_password_key,
    client_secret_key,
    get_client_secret,
    load_tokens,
    save_tokens,
    token_key,
)
from crosswatch.config import TargetConfig
from crosswatch.errors import UsageError
from crosswatch.logs import register_secret
from crosswatch.platforms import registry
from crosswatch.secrets import SecretStore

# ---------------------------------------------------------------------------------------------------
# Commands: login, import, status, revoke


def login(target_cfg: TargetConfig, store: SecretStore, client: httpx.Client,
          open_browser: Callable[[str], None], prompt_secret: Callable[[str], str] | None = None, *,
          paste_redirect: Callable[[str], str] | None = None, timeout: float = DEFAULT_LOGIN_TIMEOUT,
          clock: Clock = time.time, ask_password: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Browser sign-in; stores the tokens and returns ``status`` (never a secret).

    With ``redirect_uri`` unset, a loopback listener receives the browser; with an https
    ``redirect_uri`` (Instagram accepts only those) ``paste_redirect`` asks the user for the address
    the browser ended on. A platform that signs in with a password (Bluesky) asks ``ask_password``.
    """
    sign_in = registry.sign_in(target_cfg.kind)
    if sign_in is None:
        raise UsageError(f"target {target_cfg.name} ({target_cfg.kind}) has no sign-in")
    if getattr(sign_in, "method", "oauth") == "password":
        return login_with_password(sign_in, target_cfg, store, client, ask_password, clock=clock)
    # A platform that registers its app at sign-in (Mastodon: per server) has a ``prepare`` that
    # returns the config with the app's client id and the app's secret, once the redirect is known.
    prepare = getattr(sign_in, "prepare", None)
    if getattr(sign_in, "needs_client_id", True):
        need_client_id(target_cfg)
    secret = None if prepare else get_client_secret(target_cfg, store, prompt_secret,
                                                    required=sign_in.needs_client_secret)
    state = generate_token(32)
    verifier = generate_token(64)  # RFC 7636: 43 to 128 characters

    def authorize_url(redirect_uri: str) -> str:
        nonlocal target_cfg, secret
        if prepare is not None:
            target_cfg, secret = prepare(target_cfg, store, client, redirect_uri)
        return sign_in.authorize_url(target_cfg, redirect_uri, state, verifier)

    if target_cfg.redirect_uri:
        redirect_uri = target_cfg.redirect_uri
        code = pasted_code(target_cfg, authorize_url(redirect_uri), state, open_browser, paste_redirect)
    else:
        with listen(target_cfg, state) as listener:
            redirect_uri = listener.redirect_uri
            open_browser(authorize_url(redirect_uri))
            code = listener.wait(timeout)
    # Exchange at once: X's authorization codes are valid for 30 seconds.
    tokens = sign_in.exchange_code(target_cfg, client, secret, code, redirect_uri, verifier, clock())
    _store_and_identify(sign_in, target_cfg, store, client, tokens)
    return status(target_cfg, store, clock=clock)


def login_with_password(sign_in: SignIn, target_cfg: TargetConfig, store: SecretStore, client: httpx.Client,
                        ask_password: Callable[[str], str] | None, *, clock: Clock = time.time) -> dict[str, Any]:
    """Password sign-in (Bluesky's app password): the password is kept in the keyring only, so the
    provider can sign in again by itself when the session's refresh token has died."""
    if ask_password is None:
        raise UsageError(f"signing in to {target_cfg.name} needs its app password")
    password = ask_password(f"{target_cfg.kind} app password for {target_cfg.name}").strip()
    if not password:
        raise UsageError(f"no app password given for {target_cfg.name}; make one in the platform's "
                         "settings and enter it when asked (or pipe it on stdin)")
    register_secret(password)
    tokens = sign_in.login_with_password(target_cfg, client, password, clock())
    store.set(app_password_key(target_cfg.name), password)
    _store_and_identify(sign_in, target_cfg, store, client, tokens)
    return status(target_cfg, store, clock=clock)


def _store_and_identify(sign_in: SignIn, cfg: TargetConfig, store: SecretStore, client: httpx.Client,
                        tokens: TokenSet) -> TokenSet:
    """After a sign-in: store first (an X refresh token must never be lost), then look the account up."""
    save_tokens(store, cfg.name, tokens)
    identified = _identify(sign_in, cfg, client, tokens)
    save_tokens(store, cfg.name, identified)
    return identified


def _identify(sign_in: SignIn, cfg: TargetConfig, client: httpx.Client, tokens: TokenSet) -> TokenSet:
    account_id, username = sign_in.lookup_account(cfg, client, tokens.access_token)
    return replace(tokens, account_id=account_id, username=username)


def import_tokens(target_cfg: TargetConfig, store: SecretStore, json_text: str,
                  client: httpx.Client | None = None, *, clock: Clock = time.time) -> dict[str, Any]:
    """Store a platform token response read from stdin; with a client, look up the account."""
    try:
        body = json.loads(json_text)
    except ValueError:
        # No chaining and no excerpt: the text holds the token.
        raise UsageError(f"the token for {target_cfg.name} on stdin is not valid JSON") from None
    if not isinstance(body, dict):
        raise UsageError(f"the token for {target_cfg.name} on stdin must be a JSON object")
    now = clock()
    sign_in = registry.sign_in(target_cfg.kind)
    if sign_in is None:
        raise UsageError(f"target {target_cfg.name} ({target_cfg.kind}) takes no tokens")
    tokens = sign_in.imported_tokens(target_cfg, body, now)
    if tokens is None:
        raise UsageError(f"the JSON on stdin has no access_token for {target_cfg.name}")
    # Checked before it is stored: a token the platform refuses must not look like a sign-in.
    if client is not None:
        tokens = _identify(sign_in, target_cfg, client, tokens)
    save_tokens(store, target_cfg.name, tokens)
    keep_imported = getattr(sign_in, "keep_imported", None)  # Mastodon: the app's id and secret, if given
    if keep_imported is not None:
        keep_imported(target_cfg, store, body)
    return status(target_cfg, store, clock=clock)


def revoke(target_cfg: TargetConfig, store: SecretStore,
           client: httpx.Client | None = None) -> dict[str, Any]:
    """Revoke at the platform where it has an endpoint (X), then delete tokens and secret locally."""
    tokens = load_tokens(store, target_cfg.name)
    result: dict[str, Any] = {"target": target_cfg.name, "revoked_at_platform": False, "deleted": False,
                              "note": None}
    sign_in = registry.sign_in(target_cfg.kind)
    if sign_in is not None:
        result["revoked_at_platform"], result["note"] = sign_in.revoke_at_platform(target_cfg, store, client,
                                                                                   tokens)
    deleted_token = store.delete(token_key(target_cfg.name))
    deleted_secret = store.delete(client_secret_key(target_cfg.name))
    deleted_password = store.delete(app_password_key(target_cfg.name))
    result["deleted"] = deleted_token or deleted_secret or deleted_password
    return result


def token_provider(target_cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                   *, clock: Clock = time.time) -> TokenProvider:
    sign_in = registry.sign_in(target_cfg.kind)
    if sign_in is not None:
        return sign_in.provider(target_cfg, store, client, state_dir, clock)
    raise UsageError(f"target {target_cfg.name} ({target_cfg.kind}) has no tokens")
