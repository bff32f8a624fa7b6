"""Tunable behaviour of the emulator: lifetimes, delays, rate limits and quotas.

Defaults follow the platforms' documented values (see api-notes.md); tests shrink them to seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DAY = 86400.0


@dataclass(frozen=True)
class RateLimit:
    """``limit`` requests per ``window`` seconds, counted per endpoint and per user."""

    limit: int
    window: float = 900.0


def default_x_rate_limits() -> dict[str, RateLimit]:
    # Per-user limits from X's 2026 rate-limit table.
    return {
        "x.tweets.create": RateLimit(100, 900),
        "x.media.upload": RateLimit(500, 900),
        "x.media.metadata": RateLimit(500, 900),
        "x.users.me": RateLimit(75, 900),
        "x.users.tweets": RateLimit(900, 900),
        "x.tweets.lookup": RateLimit(900, 900),  # GET /2/tweets: 900 per 15 min per user (X rate-limit table)
    }


@dataclass(frozen=True)
class EmulatorSettings:
    # X
    x_access_token_lifetime: float = 7200.0
    x_authorization_code_lifetime: float = 30.0
    x_media_expires_after: int = 86400
    x_image_max_bytes: int = 5 * 1024 * 1024
    x_alt_text_max_chars: int = 1000
    x_rate_limits: dict[str, RateLimit] = field(default_factory=default_x_rate_limits)
    # Hidden 24-hour caps per user (reported in x-user-limit-24hour-* headers), e.g. the old Free tier's
    # {"x.tweets.create": RateLimit(17, 86400)}; none by default, as in the 2026 pay-per-use table.
    x_daily_limits: dict[str, RateLimit] = field(default_factory=dict)
    # Third parties report that presenting an already-rotated refresh token kills the whole token
    # family (UNCONFIRMED); off by default, the old token is merely rejected.
    x_refresh_reuse_revokes_family: bool = False
    x_problem_prefix: str = "https://api.x.com/2/problems/"
    # Instagram
    ig_authorization_code_lifetime: float = 3600.0
    ig_short_token_lifetime: float = 3600.0
    ig_long_token_lifetime: float = 5183944.0
    ig_refresh_min_age: float = DAY
    ig_container_processing_seconds: float = 2.0
    ig_container_expiry: float = DAY
    ig_publish_quota: int = 50
    ig_publish_quota_window: float = DAY
    ig_image_max_bytes: int = 8 * 1024 * 1024
    ig_caption_max_chars: int = 2200
    ig_alt_text_max_chars: int = 1000
    ig_max_hashtags: int = 30
    ig_max_mentions: int = 20
    ig_image_fetch_timeout: float = 10.0
    # Oldest entries of the request log are dropped beyond this many.
    request_log_limit: int = 10_000
    # The documented code-exchange response is {"data":[{...}]}; the live one is reported flat.
    ig_token_response_shape: Literal["flat", "data"] = "flat"
