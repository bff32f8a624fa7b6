"""X's per-endpoint, per-user rate-limit windows and the x-rate-limit-* headers."""

from __future__ import annotations

from dataclasses import dataclass

from crosswatch.emulator.settings import RateLimit


@dataclass
class _Window:
    started: float
    used: int


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # epoch seconds when the window restarts

    def headers(self, prefix: str = "x-rate-limit") -> dict[str, str]:
        return {
            f"{prefix}-limit": str(self.limit),
            f"{prefix}-remaining": str(self.remaining),
            f"{prefix}-reset": str(int(self.reset)),
        }


class RateLimiter:
    """Fixed windows that open at the first request, as X's 15-minute windows behave for a client."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], _Window] = {}

    def hit(self, endpoint: str, user_id: str, rule: RateLimit, now: float) -> RateDecision:
        key = (endpoint, user_id)
        window = self._windows.get(key)
        if window is None or now >= window.started + rule.window:
            window = _Window(started=now, used=0)
            self._windows[key] = window
        reset = window.started + rule.window
        if window.used >= rule.limit:
            return RateDecision(False, rule.limit, 0, reset)
        window.used += 1
        return RateDecision(True, rule.limit, rule.limit - window.used, reset)

    def reset(self) -> None:
        self._windows.clear()
