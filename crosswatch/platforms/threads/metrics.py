"""Threads' metrics read (sans-I/O): ``GET /{threads-media-id}/insights?metric=views,likes,replies,
reposts,quotes,shares`` (Threads Insights API), one post per request; needs ``threads_manage_insights``,
asked for at sign-in only when analytics is on."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms.base import MetricsAnswer
from crosswatch.platforms.meta_graph import insights_request, parse_insights
from crosswatch.platforms.threads.steps import PLATFORM, graph_url

INSIGHTS_SCOPE = "threads_manage_insights"
MEDIA_METRICS = ("views", "likes", "replies", "reposts", "quotes", "shares")


class ThreadsMetrics:
    batch = 1
    scope = INSIGHTS_SCOPE
    interactions = ("likes", "replies", "reposts", "quotes", "shares")
    audience = ("views",)

    def build(self, cfg: TargetConfig, remote_ids: Sequence[str], token: str | None, *,
              recent: bool, api_base: str | None = None) -> httpx.Request:
        return insights_request(graph_url(cfg, f"{remote_ids[0]}/insights"), MEDIA_METRICS, token)

    def parse(self, remote_ids: Sequence[str], response: httpx.Response, now: float) -> MetricsAnswer:
        return parse_insights(remote_ids[0], response, PLATFORM, INSIGHTS_SCOPE)


METRICS = ThreadsMetrics()
