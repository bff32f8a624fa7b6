"""Instagram's metrics read (sans-I/O): the media's insights, ``views, reach, likes, comments, saved,
shares, total_interactions`` (not the metrics deprecated on 21 Apr 2025: impressions, plays, ...), one
post per request, asked as a field expansion of the media node
(``GET /{ig-media-id}?fields=timestamp,insights.metric(...)``) so the post's own time comes with it.
Needs ``instagram_business_manage_insights``, asked for at sign-in only when analytics is on. Insights
may lag up to 48 h (an empty answer) and low-reach media answer code 10 "Not enough viewers": both are
recorded as such, not as zeros (api-notes B4)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms.base import MetricsAnswer
from crosswatch.platforms.instagram.steps import graph_url
from crosswatch.platforms.meta_graph import node_insights_request, parse_insights

INSIGHTS_SCOPE = "instagram_business_manage_insights"
MEDIA_METRICS = ("views", "reach", "likes", "comments", "saved", "shares", "total_interactions")


class InstagramMetrics:
    batch = 1
    scope = INSIGHTS_SCOPE
    interactions = ("total_interactions",)
    audience = ("reach", "views")

    def build(self, cfg: TargetConfig, remote_ids: Sequence[str], token: str | None, *,
              recent: bool, api_base: str | None = None) -> httpx.Request:
        return node_insights_request(graph_url(cfg, remote_ids[0]), MEDIA_METRICS, token)

    def parse(self, remote_ids: Sequence[str], response: httpx.Response, now: float) -> MetricsAnswer:
        return parse_insights(remote_ids[0], response, "Instagram", INSIGHTS_SCOPE)


METRICS = InstagramMetrics()
