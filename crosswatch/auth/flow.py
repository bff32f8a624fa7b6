"""What a platform's sign-in offers the shared commands (login, import, status, revoke) and the runner.

Each platform that signs in has one ``SignIn`` in ``platforms/<name>/signin.py``, found through the
registry; ``crosswatch.auth.commands`` drives it and never asks which platform it is.

Optional, looked up with ``getattr`` (Mastodon has them): ``needs_client_id = False`` for a platform
whose app is registered at sign-in; ``prepare(cfg, store, client, redirect_uri) -> (cfg, secret)``
registers (or finds) that app once the redirect address is known and returns the config with its
client id and the app's secret; ``keep_imported(cfg, store, body)`` keeps what ``auth import`` was
given besides the token (the app's id and secret, for revocation).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from crosswatch.auth.provider import TokenProvider
from crosswatch.auth.tokens import Clock, TokenSet
from crosswatch.config import TargetConfig
from crosswatch.secrets import SecretStore


class SignIn(Protocol):
    # How `auth login` signs in: "oauth", the browser and a code (``authorize_url``, ``exchange_code``);
    # "password", a password the user gives once (``login_with_password``; Bluesky's app passwords).
    # A SignIn without the attribute is "oauth".
    method: Literal["oauth", "password"]
    # The scopes a token must carry (only checked when the platform says which scopes it granted).
    scopes: tuple[str, ...]
    # Whether signing in needs the app's secret (Instagram), or a public client may do without (X).
    needs_client_secret: bool
    # Whether an expired access token is renewed with the refresh token (X) or the sign-in is over.
    refreshes_expired: bool
    # Optional (absent: False): whether a still valid token is extended before it expires (Instagram's
    # and Threads' long-lived refresh), so it renews without a refresh token.

    def authorize_url(self, cfg: TargetConfig, redirect_uri: str, state: str, code_verifier: str) -> str:
        """The address the browser opens to approve access."""

    def exchange_code(self, cfg: TargetConfig, client: httpx.Client, secret: str | None, code: str,
                      redirect_uri: str, code_verifier: str, now: float) -> TokenSet:
        """The tokens for an authorization code; AuthError when the platform refuses it."""

    def login_with_password(self, cfg: TargetConfig, client: httpx.Client, password: str,
                            now: float) -> TokenSet:
        """"password" sign-ins only: the tokens for the account's password; AuthError when refused."""

    def lookup_account(self, cfg: TargetConfig, client: httpx.Client,
                       access_token: str) -> tuple[str, str | None]:
        """The account id and username the token belongs to."""

    def imported_tokens(self, cfg: TargetConfig, body: Mapping[str, Any], now: float) -> TokenSet | None:
        """The tokens in a token response given to ``auth import``; None when it holds no access token."""

    def revoke_at_platform(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client | None,
                           tokens: TokenSet | None) -> tuple[bool, str | None]:
        """Whether the platform confirmed the revocation, and a note for the user (or None)."""

    def provider(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                 clock: Clock) -> TokenProvider:
        """What the runner asks for a valid access token."""
