"""X's metrics read (sans-I/O): ``GET /2/tweets?ids=`` for up to 100 posts with ``public_metrics``, and
``non_public_metrics`` for the account's own posts younger than 30 days (docs.x.com fundamentals/metrics:
the non-public, organic and promoted metrics cover the last 30 days only). Every post returned is a
"Posts: Read" resource, $0.005 (pricing.py); the collector counts it against the monthly budget.

``public_metrics`` names the repost count ``retweet_count`` (2025 document) or ``repost_count`` (2026
document; the rename is UNCONFIRMED): whichever is sent is kept under its own name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms.base import MetricsAnswer, Reading
from crosswatch.platforms.reading import integer, iso_time, json_body
from crosswatch.platforms.x.steps import api_url, bearer, parse_problem, rate_limited_wait

PRIVATE_FIELDS = ("url_link_clicks", "user_profile_clicks")


class XMetrics:
    batch = 100
    scope = None  # tweet.read, asked for anyway
    interactions = ("like_count", "reply_count", "repost_count", "retweet_count", "quote_count", "bookmark_count")
    audience = ("impression_count",)
    # Non-public metrics end 30 days after posting: the collector reads once before then.
    private_window = 30 * 86400.0

    def build(self, cfg: TargetConfig, remote_ids: Sequence[str], token: str | None, *,
              recent: bool, api_base: str | None = None) -> httpx.Request:
        fields = "created_at,public_metrics" + (",non_public_metrics" if recent else "")
        return httpx.Request("GET", api_url(cfg, "/2/tweets"), headers=bearer(token),
                             params={"ids": ",".join(remote_ids), "post.fields": fields})

    def parse(self, remote_ids: Sequence[str], response: httpx.Response, now: float) -> MetricsAnswer:
        if response.status_code == 429:
            return MetricsAnswer(kind="rate_limited", retry_after=rate_limited_wait(response.headers, now),
                                 problem="X's rate limit for reading posts is reached")
        if response.status_code == 401:
            return MetricsAnswer(kind="auth", problem=parse_problem(response).reason)
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, Mapping):
            return MetricsAnswer(kind="failed", problem=parse_problem(response).reason)
        readings: dict[str, Reading] = {}
        data = body.get("data")
        for post in data if isinstance(data, list) else ():
            if isinstance(post, Mapping) and isinstance(post.get("id"), str):
                readings[post["id"]] = _reading(post)
        errors = body.get("errors")
        for error in errors if isinstance(errors, list) else ():
            if isinstance(error, Mapping) and str(error.get("type", "")).endswith("/resource-not-found"):
                missing = str(error.get("resource_id") or error.get("value") or "")
                if missing in remote_ids:
                    readings[missing] = Reading("deleted", detail=str(error.get("detail") or "X cannot find it"))
        return MetricsAnswer(readings)


def _reading(post: Mapping[str, object]) -> Reading:
    metrics: dict[str, int] = {}
    public = post.get("public_metrics")
    for name, value in public.items() if isinstance(public, Mapping) else ():
        number = integer(value)
        if number is not None:
            metrics[str(name)] = number
    if "repost_count" in metrics:
        metrics.pop("retweet_count", None)  # one count sent under both names: counted once
    private = post.get("non_public_metrics")
    for name in PRIVATE_FIELDS:
        number = integer(private.get(name)) if isinstance(private, Mapping) else None
        if number is not None:
            metrics[name] = number
    return Reading("ok" if metrics else "empty", metrics, posted_at=iso_time(post.get("created_at")))


METRICS = XMetrics()
