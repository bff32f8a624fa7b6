"""A target's sign-in state for ``auth status``, ``doctor`` and the runner; never a secret."""

from __future__ import annotations

import time
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
        "expires_in_seconds": None, "has_refresh_token": False, "needs_login": tokens is None,
        "problem": f"not signed in; {login_hint(target_cfg.name)}" if tokens is None else None,
        # Whether one is stored, never the secret itself.
        "client_secret_stored": store.get(client_secret_key(target_cfg.name)) is not None,
        "analytics_problem": None,
    }
    if tokens is None:
        return result
    now = clock()
    remaining = tokens.remaining(now)
    result.update({
        "account_id": tokens.account_id, "username": tokens.username, "scopes": list(tokens.scopes),
        "expires_at": _iso(tokens.expires_at), "has_refresh_token": tokens.refresh_token is not None,
        "expires_in_seconds": None if remaining is None else max(0, int(remaining)),
    })
    problem = _token_problem(target_cfg, tokens, now)
    result["problem"] = problem
    result["needs_login"] = problem is not None
    result["analytics_problem"] = analytics_problem(target_cfg, tokens)
    return result


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
    wanted = sign_in.scopes if sign_in is not None else ()
    missing = [s for s in wanted if tokens.scopes and s not in tokens.scopes]
    if missing:
        return f"the token lacks the scopes {', '.join(missing)}; {login_hint(cfg.name)}"
    return None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
