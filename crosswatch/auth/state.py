"""A target's sign-in state for ``auth status``, ``doctor`` and the runner; never a secret."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from crosswatch.auth.tokens import Clock, TokenSet, client_secret_key, load_tokens, login_hint
from crosswatch.config import TargetConfig
from crosswatch.platforms import registry
from crosswatch.secrets import SecretStore


def status(target_cfg: TargetConfig, store: SecretStore, *, clock: Clock = time.time) -> dict[str, Any]:
    """Account, scopes and expiry for ``auth status`` and ``doctor``; never a secret."""
    tokens = load_tokens(store, target_cfg.name)
    result: dict[str, Any] = {
        "target": target_cfg.name, "kind": target_cfg.kind, "signed_in": tokens is not None,
        "account_id": None, "username": None, "scopes": [], "expires_at": None,
        "expires_in_seconds": None, "has_refresh_token": False, "renews_itself": False,
        "needs_login": tokens is None,
        "problem": f"not signed in; {login_hint(target_cfg.name)}" if tokens is None else None,
        # Whether one is stored, never the secret itself.
        "client_secret_stored": store.get(client_secret_key(target_cfg.name)) is not None,
        # What the sign-in grants where it has no scopes (Bluesky's app password); else None.
        "grants": None,
        "analytics_problem": None,
    }
    if tokens is None:
        return result
    now = clock()
    remaining = tokens.remaining(now)
    result.update({
        "account_id": tokens.account_id, "username": tokens.username, "scopes": list(tokens.scopes),
        "expires_at": iso_time(tokens.expires_at), "has_refresh_token": tokens.refresh_token is not None,
        "expires_in_seconds": None if remaining is None else max(0, int(remaining)),
        "renews_itself": renews_itself(target_cfg, tokens, now),
    })
    # A sign-in without scopes (Bluesky's app password) says what it grants instead.
    sign_in = registry.sign_in(target_cfg.kind)
    grants = getattr(sign_in, "grants", None)
    if isinstance(grants, str) and not tokens.scopes:
        result["grants"] = grants
    problem = _token_problem(target_cfg, tokens, now)
    result["problem"] = problem
    result["needs_login"] = problem is not None
    result["analytics_problem"] = analytics_problem(target_cfg, tokens)
    return result


def renews_itself(cfg: TargetConfig, tokens: TokenSet, now: float) -> bool:
    """Whether the daemon renews this token by itself before it runs out, so an expiry date near
    at hand needs nobody (the rule is tokenhealth.can_refresh: X's rotation, Bluesky's
    refreshSession, Instagram's and Threads' long-lived refresh; a dead token renews nothing)."""
    from crosswatch.tokenhealth import can_refresh

    return can_refresh(cfg.kind, tokens, now)


def analytics_problem(cfg: TargetConfig, tokens: TokenSet) -> str | None:
    """With analytics on, what keeps the token from reading metrics (Instagram's and Threads' insights
    scopes); posting is not affected. None when nothing does, or the platform did not say its scopes."""
    scope = registry.insights_scope(cfg.kind) if cfg.analytics else None
    if scope is None or not tokens.scopes or scope in tokens.scopes:
        return None
    return (f"the token lacks {scope}, so its post metrics are not read (analytics is on); "
            f"{login_hint(cfg.name)}")


def _token_problem(cfg: TargetConfig, tokens: TokenSet, now: float) -> str | None:
    if tokens.dead:
        return f"{tokens.dead}; {login_hint(cfg.name)}"
    sign_in = registry.sign_in(cfg.kind)
    refreshes = sign_in.refreshes_expired if sign_in is not None else True
    if tokens.expired(now) and (not refreshes or not tokens.refresh_token):
        return f"the token has expired; {login_hint(cfg.name)}"
    missing = missing_scopes(cfg.kind, tokens.scopes)
    if missing:
        return f"the token lacks the scopes {', '.join(missing)}; {login_hint(cfg.name)}"
    return None


def needed_scopes(kind: str) -> tuple[str, ...]:
    """The scopes crosswatch asks for, and needs, on this platform (its sign-in's ``scopes``)."""
    sign_in = registry.sign_in(kind)
    return tuple(sign_in.scopes) if sign_in is not None else ()


def missing_scopes(kind: str, granted: Sequence[str]) -> list[str]:
    """Needed scopes the token lacks; none when the platform did not say what it granted."""
    return [s for s in needed_scopes(kind) if granted and s not in granted]


def extra_scopes(kind: str, granted: Sequence[str]) -> list[str]:
    """Granted scopes crosswatch does not need: more power than it uses (``audit`` reports them)."""
    needed = needed_scopes(kind)
    return [s for s in granted if s not in needed]


def iso_time(epoch: float | None) -> str | None:
    """UTC, to the second, with a Z: how every token time is shown."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
