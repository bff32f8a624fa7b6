"""Token health: per account, whether its token can still be refreshed, when it expires, when it was
obtained or last refreshed; which tokens lapse soon with no way to renew them; and the daily refresh
that keeps every refreshable token alive whether or not anything is posted.

How a platform renews its tokens is said by its sign-in (``platforms/<name>/signin.py``):
``refreshes_expired`` (X, Bluesky: a refresh token renews an expired access token) or
``refreshes_before_expiry`` (Instagram, Threads: the 60-day token renews itself while valid, once it
is 24 h old). A token that neither can renew (Mastodon's never expire; an imported Instagram token
past its date; a token the platform refused) is "unrefreshable": within ``notify.token_warning_days``
of its expiry it is reported by ``doctor``, ``audit`` and a notification, and by ``status`` from what
the daemon last found (``record_warnings``, hourly: ``status`` reads only the journal).

Never a secret here: only names, times and flags.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from crosswatch import views
from crosswatch.auth.tokens import TokenSet, load_tokens
from crosswatch.config import Config, TargetConfig
from crosswatch.errors import CrosswatchError
from crosswatch.journal import Journal
from crosswatch.platforms import registry
from crosswatch.secrets import SecretStore

log = structlog.get_logger("crosswatch.tokenhealth")

WARNING_DAYS = 7.0
# How often the daemon renews what is due (each platform's own rule says whether a token is due):
# daily, so an Instagram or Threads token is renewed a day or two after it turns 24 h old, and a
# Bluesky session or an X refresh token is used at least once a day, posting or not.
REFRESH_TICK_SECONDS = 86400.0


@dataclass(frozen=True)
class TokenHealth:
    target: str
    platform: str
    signed_in: bool
    account: str | None
    scopes: tuple[str, ...]
    expires_at: float | None
    obtained_at: float | None  # signed in or last refreshed
    refreshable: bool
    dead: str | None = None

    def lapses_within(self, now: float, seconds: float) -> bool:
        """Expires within ``seconds`` (or has expired) and nothing can renew it."""
        return (self.signed_in and not self.dead and not self.refreshable and self.expires_at is not None
                and self.expires_at - now <= seconds)


def can_refresh(kind: str, tokens: TokenSet, now: float) -> bool:
    """Whether crosswatch can renew these tokens by itself, by the platform's own rule."""
    if tokens.dead:
        return False
    sign_in = registry.sign_in(kind)
    if sign_in is None:
        return False
    if sign_in.refreshes_expired and tokens.refresh_token:
        return True
    return bool(getattr(sign_in, "refreshes_before_expiry", False)) and not tokens.expired(now)


def health(cfg: TargetConfig, store: SecretStore, now: float) -> TokenHealth:
    """One account's token health; raises CrosswatchError when the keyring cannot be read."""
    tokens = load_tokens(store, cfg.name)
    if tokens is None:
        return TokenHealth(cfg.name, cfg.kind, False, None, (), None, None, False)
    return TokenHealth(
        target=cfg.name, platform=cfg.kind, signed_in=True, account=tokens.username or tokens.account_id,
        scopes=tokens.scopes, expires_at=tokens.expires_at, obtained_at=tokens.obtained_at or None,
        refreshable=can_refresh(cfg.kind, tokens, now), dead=tokens.dead)


def accounts(config: Config, store: SecretStore, now: float) -> list[TokenHealth]:
    """Every enabled target that signs in, in config order."""
    return [health(cfg, store, now) for cfg in config.targets.values()
            if cfg.enabled and registry.signs_in(cfg.kind)]


def expiring(config: Config, store: SecretStore, *, now: float,
             within_seconds: float = WARNING_DAYS * 86400.0) -> list[TokenHealth]:
    """Tokens that cannot be refreshed and expire within ``within_seconds`` (notify.py asks this)."""
    return [found for found in accounts(config, store, now) if found.lapses_within(now, within_seconds)]


def warning_seconds(config: Config) -> float:
    return config.notify.token_warning_days * 86400.0


def expiring_line(found: TokenHealth, now: float) -> str:
    """One line for doctor and audit: when it lapses and what to do."""
    assert found.expires_at is not None
    return views.lapse_line(found.target, found.expires_at, now)


def record_warnings(journal: Journal, config: Config, store: SecretStore, now: float) -> list[TokenHealth]:
    """Keep the tokens about to lapse in the journal, for `status` (views.token_warning_lines)."""
    found = expiring(config, store, now=now, within_seconds=warning_seconds(config))
    value = json.dumps([{"target": f.target, "expires_at": f.expires_at} for f in found])
    if journal.info(views.TOKEN_WARNINGS_KEY) != value:
        journal.set_info(views.TOKEN_WARNINGS_KEY, value)
    return found


def forget_warning(journal: Journal, target: str) -> None:
    """After a new sign-in: the target's old warning goes (the daemon looks again within the hour)."""
    try:
        recorded = json.loads(journal.info(views.TOKEN_WARNINGS_KEY) or "[]")
    except ValueError:
        recorded = []
    kept = [item for item in recorded if isinstance(item, dict) and item.get("target") != target]
    journal.set_info(views.TOKEN_WARNINGS_KEY, json.dumps(kept))


# -- the daily refresh ---------------------------------------------------------------------------


class Renewable(Protocol):
    def access_token(self) -> str: ...


def refresh_due(sources: Mapping[str, Renewable]) -> dict[str, str]:
    """Ask each token source for a token: each platform's provider renews it when its rule says it
    is due (Instagram and Threads after 24 h, X and Bluesky near the access token's expiry), so a
    daily call keeps every refreshable token alive without a post. Returns the targets whose renewal
    failed, with why (logged; the runner's sign-in hold handles it when a job needs the token)."""
    failed: dict[str, str] = {}
    for name, source in sources.items():
        try:
            source.access_token()
        except CrosswatchError as exc:
            failed[name] = str(exc)
            log.warning("token could not be renewed", target=name, reason=str(exc))
    return failed


class RefreshTick:
    """Calls ``refresh_due`` at start and then every ``REFRESH_TICK_SECONDS`` (the runner's loop)."""

    def __init__(self, sources: Mapping[str, Renewable], clock: Callable[[], float],
                 every: float = REFRESH_TICK_SECONDS) -> None:
        self.sources = sources
        self.clock = clock
        self.every = every
        self._last = float("-inf")

    def __call__(self) -> dict[str, str] | None:
        now = self.clock()
        if now - self._last < self.every:
            return None
        self._last = now
        return refresh_due(self.sources)
