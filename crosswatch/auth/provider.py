"""Token providers: what the runner asks for a valid access token.

``access_token()`` (refreshed when near expiry), ``force_refresh()`` after a 401, ``account_id()``,
``username()``, ``status()``. Each platform's sign-in subclasses ``BaseProvider`` with its own refresh
rules (``platforms/<name>/signin.py``). ``AuthError`` means: park the target (the message says whether
to sign in again).
"""

from __future__ import annotations

import abc
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import httpx

from crosswatch.auth.locks import refresh_lock
from crosswatch.auth.state import status
from crosswatch.auth.tokens import Clock, TokenSet, load_tokens, login_hint, save_tokens
from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError, TransientPlatformError
from crosswatch.secrets import SecretStore

# ---------------------------------------------------------------------------------------------------
# Token providers (what the runner uses)


class TokenProvider(Protocol):
    def access_token(self) -> str: ...

    def force_refresh(self) -> str: ...

    def account_id(self) -> str | None: ...

    def username(self) -> str | None: ...

    def status(self) -> dict[str, Any]: ...


class BaseProvider(abc.ABC):
    def __init__(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                 clock: Clock = time.time) -> None:
        self.cfg = cfg
        self.store = store
        self.client = client
        self.state_dir = state_dir
        self.clock = clock
        self._handed_out: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.cfg.name!r})"

    @abc.abstractmethod
    def access_token(self) -> str:
        """A valid access token, refreshed first when it is near expiry."""

    def force_refresh(self) -> str:
        """After the platform refused the token handed out (a 401): a new one, unless another thread
        or process already replaced the one used."""
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
            if self._handed_out and tokens.access_token != self._handed_out:
                return self._hand_out(tokens)
            try:
                return self._hand_out(self._refresh_after_refusal(tokens))
            except TransientPlatformError as exc:
                raise AuthError(f"the {self.cfg.name} token was refused and could not be refreshed just "
                                f"now ({exc}); crosswatch will try again") from None

    @abc.abstractmethod
    def _refresh_locked(self, tokens: TokenSet) -> TokenSet:
        """One refresh, stored before it is returned; the caller holds the refresh lock."""

    def _refresh_after_refusal(self, tokens: TokenSet) -> TokenSet:
        return self._refresh_locked(tokens)

    @abc.abstractmethod
    def _lookup(self, access_token: str) -> tuple[str, str | None]:
        """The account id and username the platform says ``access_token`` belongs to."""

    def status(self) -> dict[str, Any]:
        return status(self.cfg, self.store, clock=self.clock)

    def username(self) -> str | None:
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = load_tokens(self.store, self.cfg.name)
        return tokens.username if tokens else None

    def account_id(self) -> str | None:
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
        if tokens.account_id:
            return tokens.account_id
        # Imported without a lookup, or the lookup failed at sign-in: find out now and keep it.
        account_id, username = self._lookup(self.access_token())
        with refresh_lock(self.state_dir, self.cfg.name):
            current = self._load()
            save_tokens(self.store, self.cfg.name, replace(current, account_id=account_id, username=username))
        return account_id

    def _load(self) -> TokenSet:
        tokens = load_tokens(self.store, self.cfg.name)
        if tokens is None:
            raise AuthError(f"not signed in to {self.cfg.name}; {login_hint(self.cfg.name)}")
        if tokens.dead:
            raise AuthError(f"the {self.cfg.name} sign-in no longer works ({tokens.dead}); "
                            f"{login_hint(self.cfg.name)}")
        return tokens

    def _mark_dead(self, tokens: TokenSet, reason: str) -> None:
        current = load_tokens(self.store, self.cfg.name)
        # Only if nobody replaced the tokens meanwhile (a new sign-in must not be marked dead).
        if current is not None and current.access_token == tokens.access_token:
            save_tokens(self.store, self.cfg.name, replace(current, dead=reason))

    def _hand_out(self, tokens: TokenSet) -> str:
        self._handed_out = tokens.access_token
        return tokens.access_token

