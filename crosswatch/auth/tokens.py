"""Tokens and the app's client secret in the keyring: what every platform's sign-in stores.

Secrets live only in the keyring (``crosswatch.secrets``); every token read or written is registered
with the log redaction, so it is masked wherever it might turn up. A ``TokenSet`` never shows a token
in its repr.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError
from crosswatch.logs import register_secret
from crosswatch.platforms.reading import id_string
from crosswatch.secrets import SecretStore

Clock = Callable[[], float]


class SignInRefused(AuthError):
    """The platform refused a sign-in step; ``what`` is that, in the platform's words (secrets masked)."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(f"{what}; {hint}")
        self.what = what


def login_hint(target_name: str) -> str:
    return f"run `crosswatch auth login {target_name}`"


# ---------------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True, repr=False)
class TokenSet:
    """One account's tokens as stored in the keyring. ``dead`` says why it can no longer be used."""

    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    obtained_at: float = 0.0
    scopes: tuple[str, ...] = ()
    account_id: str | None = None
    username: str | None = None
    dead: str | None = None
    # Where the account's API lives when it is not the configured one (Bluesky: the PDS named in the
    # account's DID document); None: the target's own endpoints.
    api_base: str | None = None

    def __repr__(self) -> str:
        # Never the tokens themselves: reprs end up in logs and tracebacks.
        return (f"TokenSet(access_token='***', refresh_token={'***' if self.refresh_token else None}, "
                f"expires_at={self.expires_at}, scopes={self.scopes}, account_id={self.account_id!r}, "
                f"username={self.username!r}, dead={self.dead!r}, api_base={self.api_base!r})")

    __str__ = __repr__

    @property
    def lifetime(self) -> float | None:
        return None if self.expires_at is None else self.expires_at - self.obtained_at

    def remaining(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token, "refresh_token": self.refresh_token,
            "expires_at": self.expires_at, "obtained_at": self.obtained_at, "scopes": list(self.scopes),
            "account_id": self.account_id, "username": self.username, "dead": self.dead,
            "api_base": self.api_base,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenSet | None:
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            return None
        return cls(
            access_token=token,
            refresh_token=id_string(data.get("refresh_token")),
            expires_at=_float_or_none(data.get("expires_at")),
            obtained_at=_float_or_none(data.get("obtained_at")) or 0.0,
            scopes=tuple(s for s in data.get("scopes") or () if isinstance(s, str)),
            account_id=id_string(data.get("account_id")),
            username=id_string(data.get("username")),
            dead=id_string(data.get("dead")),
            api_base=id_string(data.get("api_base")),
        )




def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def token_key(target_name: str) -> str:
    return f"{target_name}:token"


def client_secret_key(target_name: str) -> str:
    return f"{target_name}:client_secret"


def app_password_key(target_name: str) -> str:
    """Where a password sign-in (Bluesky's app password) keeps the password, to sign in again by
    itself when the session's refresh token has died."""
    return f"{target_name}:app_password"


def load_tokens(store: SecretStore, target_name: str) -> TokenSet | None:
    data = store.get_json(token_key(target_name))
    tokens = TokenSet.from_json(data) if data else None
    if tokens is not None:
        _register(tokens)
    return tokens


def save_tokens(store: SecretStore, target_name: str, tokens: TokenSet) -> None:
    _register(tokens)
    store.set_json(token_key(target_name), tokens.to_json())


def _register(tokens: TokenSet) -> None:
    # The log redaction processor masks these exact strings wherever they might turn up.
    register_secret(tokens.access_token)
    register_secret(tokens.refresh_token)


def expiry_from(expires_in: Any, now: float) -> float | None:
    seconds = _float_or_none(expires_in)
    if seconds is None and isinstance(expires_in, str):
        try:
            seconds = float(expires_in)
        except ValueError:
            seconds = None
    return None if seconds is None or seconds <= 0 else now + seconds


def split_scopes(value: Any, separator: str) -> tuple[str, ...]:
    """Scopes from a space- or comma-separated string or a JSON list."""
    if isinstance(value, list):
        return tuple(s.strip() for s in value if isinstance(s, str) and s.strip())
    if isinstance(value, str):
        return tuple(s.strip() for s in re.split(f"[{re.escape(separator)}\\s,]+", value) if s.strip())
    return ()


# ---------------------------------------------------------------------------------------------------
# Keeping secrets out of text



# ---------------------------------------------------------------------------------------------------
# The client secret


def get_client_secret(cfg: TargetConfig, store: SecretStore,
                      prompt_secret: Callable[[str], str] | None, *, required: bool) -> str | None:
    """The app's client secret from the keyring, asking once (without echo) if it is not there."""
    key = client_secret_key(cfg.name)
    secret = store.get(key)
    if secret:
        register_secret(secret)
        return secret
    if prompt_secret is not None:
        question = (f"{cfg.kind} app secret for {cfg.name}" if required else
                    f"{cfg.kind} client secret for {cfg.name} (empty for a public client)")
        secret = prompt_secret(question).strip()
        if secret:
            register_secret(secret)
            store.set(key, secret)
            return secret
    if required:
        raise AuthError(f"the {cfg.name} app secret is needed to sign in; {login_hint(cfg.name)} "
                        "and enter it when asked")
    return None
