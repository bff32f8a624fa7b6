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
        "expires_in_seconds": None, "has_refresh_token": False, "renews_itself": False,
        "needs_login": tokens is None,
        "problem": f"not signed in; {login_hint(target_cfg.name)}" if tokens is None else None,
        # Whether one is stored, never the secret itself.
        "client_secret_stored": store.get(client_secret_key(target_cfg.name)) is not None,
        # What the sign-in grants where it has no scopes (Bluesky's app password); else None.
        "grants": None,
    }
    if tokens is None:
        return result
    now = clock()
    remaining = tokens.remaining(now)
    result.update({
        "account_id": tokens.account_id, "username": tokens.username, "scopes": list(tokens.scopes),
        "expires_at": _iso(tokens.expires_at), "has_refresh_token": tokens.refresh_token is not None,
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
    return result


def renews_itself(cfg: TargetConfig, tokens: TokenSet, now: float) -> bool:
    """Whether the daemon renews this token by itself before it runs out, so an expiry date near
    at hand needs nobody: a refresh token where the platform renews expired access tokens (X's
    rotation, Bluesky's refreshSession), or a token the platform extends while it is still valid
    (Instagram's and Threads' long-lived refresh). A dead token renews nothing."""
    sign_in = registry.sign_in(cfg.kind)
    if tokens.dead or sign_in is None:
        return False
    if sign_in.refreshes_expired and tokens.refresh_token:
        return True
    lifetime = tokens.lifetime
    extends = bool(getattr(sign_in, "refreshes_before_expiry", False))
    return extends and lifetime is not None and lifetime > 0 and not tokens.expired(now)


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
