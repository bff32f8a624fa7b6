"""How much engagement the emulator's posts get: deterministic in the hour posted, the keywords in the
text and the post's age, so tests can plant a pattern (posts at 18:00 get three times the views) and
check that crosswatch's report and suggestions find it. The factors act on what people do (likes,
replies, shares, ...), not on how many see the post.

The model is ONE field on ``EmulatorState`` (``state.engagement``), changed through
``POST /_emulator/engagement``; ``POST /_emulator/age`` moves posts' creation times back, as if they
had been made earlier (the hour a post was made and its age both follow).

Every platform reads the same ``Counts`` and names them its own way (X's ``like_count``, Instagram's
``likes``, Mastodon's ``favourites_count``, Bluesky's ``likeCount``, Threads' ``likes``).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

WORD = re.compile(r"[#\w]+")


@dataclass
class EngagementModel:
    # Views a post reaches when it is old (its age well past ``growth_hours``).
    base_views: float = 400.0
    # UTC hour posted -> multiplier ("18": 3.0 plants a best hour); unnamed hours count 1.
    hour_factors: dict[int, float] = field(default_factory=dict)
    # A word of the text (lower case, a #tag without its #) -> multiplier; they multiply.
    keyword_factors: dict[str, float] = field(default_factory=dict)
    # Views grow as 1 - exp(-age / growth_hours): about 4 % after 1 h, 63 % after a day.
    growth_hours: float = 24.0
    # Instagram answers code 10 "Not enough viewers" while a post's views are below this.
    min_viewers: int = 5
    # Instagram's insights may lag (up to 48 h, api-notes B4): an empty data list while younger.
    insights_delay_seconds: float = 0.0


@dataclass(frozen=True)
class Counts:
    views: int
    reach: int
    likes: int
    comments: int
    shares: int
    saves: int
    quotes: int
    link_clicks: int
    profile_clicks: int

    @property
    def interactions(self) -> int:
        return self.likes + self.comments + self.shares + self.saves


def _spread(key: str) -> float:
    """A stable factor in [0.9, 1.1] per post, so equal posts do not read as identical numbers."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return 0.9 + 0.2 * (int.from_bytes(digest[:4], "big") / 0xFFFFFFFF)


def _keyword_factor(model: EngagementModel, text: str) -> float:
    words = {w.lstrip("#").lower() for w in WORD.findall(text)}
    factor = 1.0
    for word, multiplier in model.keyword_factors.items():
        if word.lower() in words:
            factor *= multiplier
    return factor


def counts(model: EngagementModel, key: str, text: str, created_at: float, now: float) -> Counts:
    """The post's engagement at ``now``; ``key`` is its platform id (for the per-post spread).

    Views and reach grow with age alone; the hour posted and the keywords multiply what people do with
    the post (likes, comments, shares, saves, ...), so the planted factor shows in the counts and in the
    engagement rate alike."""
    age_hours = max(0.0, now - created_at) / 3600.0
    growth = 1.0 - math.exp(-age_hours / model.growth_hours) if model.growth_hours > 0 else 1.0
    views = model.base_views * growth * _spread(key)
    hour = datetime.fromtimestamp(created_at, UTC).hour
    acted = views * model.hour_factors.get(hour, 1.0) * _keyword_factor(model, text)
    return Counts(views=round(views), reach=round(views * 0.8), likes=round(acted * 0.06),
                  comments=round(acted * 0.01), shares=round(acted * 0.005), saves=round(acted * 0.008),
                  quotes=round(acted * 0.002), link_clicks=round(acted * 0.004),
                  profile_clicks=round(acted * 0.003))


def configure(model: EngagementModel, body: Mapping[str, Any]) -> None:
    """Apply ``POST /_emulator/engagement``; ValueError names the bad key."""
    known = {"base_views", "hour_factors", "keyword_factors", "growth_hours", "min_viewers",
             "insights_delay_seconds"}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown engagement keys: {sorted(unknown)}; known: {sorted(known)}")
    for key in ("base_views", "growth_hours", "insights_delay_seconds"):
        if key in body:
            setattr(model, key, _number(body[key], key))
    if "min_viewers" in body:
        model.min_viewers = int(_number(body["min_viewers"], "min_viewers"))
    if "hour_factors" in body:
        factors = _factors(body["hour_factors"], "hour_factors")
        if any(not k.isdigit() or not 0 <= int(k) <= 23 for k in factors):
            raise ValueError("hour_factors keys must be hours 0..23")
        model.hour_factors = {int(k): v for k, v in factors.items()}
    if "keyword_factors" in body:
        model.keyword_factors = {k.lower(): v for k, v in _factors(body["keyword_factors"], "keyword_factors").items()}


def model_json(model: EngagementModel) -> dict[str, Any]:
    return {"base_views": model.base_views, "hour_factors": {str(h): f for h, f in model.hour_factors.items()},
            "keyword_factors": dict(model.keyword_factors), "growth_hours": model.growth_hours,
            "min_viewers": model.min_viewers, "insights_delay_seconds": model.insights_delay_seconds}


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a number >= 0")
    return float(value)


def _factors(value: Any, key: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    return {str(k): _number(v, f"{key}.{k}") for k, v in value.items()}


def graph_insights(node_id: str, values: Mapping[str, int]) -> dict[str, Any]:
    """Meta's insights answer (Instagram and Threads media): one entry per metric, lifetime period."""
    return {"data": [{"name": name, "period": "lifetime", "values": [{"value": value}],
                      "title": name.replace("_", " ").capitalize(), "description": "",
                      "id": f"{node_id}/insights/{name}/lifetime"} for name, value in values.items()]}


def ig_metric_values(seen: Counts) -> dict[str, int]:
    """Instagram media insights for an image post (insights reference; the metrics deprecated on
    21 Apr 2025, such as impressions and plays, are not offered)."""
    return {"views": seen.views, "reach": seen.reach, "likes": seen.likes, "comments": seen.comments,
            "saved": seen.saves, "shares": seen.shares, "total_interactions": seen.interactions,
            "profile_visits": seen.profile_clicks, "follows": 0, "profile_activity": seen.profile_clicks}


def threads_metric_values(seen: Counts) -> dict[str, int]:
    """Threads media insights (developers.facebook.com/documentation/threads/insights)."""
    return {"views": seen.views, "likes": seen.likes, "replies": seen.comments, "reposts": seen.shares,
            "quotes": seen.quotes, "shares": seen.saves}
