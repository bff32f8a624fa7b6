"""Bluesky's metrics read (sans-I/O): ``app.bsky.feed.getPosts?uris=...`` (up to 25 at-uris; the account's
PDS proxies it to the AppView): each postView's ``likeCount``, ``repostCount``, ``replyCount`` and
``quoteCount``. A post the answer leaves out no longer exists (or was taken down): it is marked deleted.
Bluesky shows no views or reach, so the report counts interactions only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms.base import MetricsAnswer, Reading
from crosswatch.platforms.bluesky.steps import DEFAULT_SERVICE, parse_error, rate_limited_wait, xrpc_url
from crosswatch.platforms.reading import integer, iso_time, json_body

COUNTS = ("likeCount", "repostCount", "replyCount", "quoteCount")
SESSION_ERRORS = ("ExpiredToken", "InvalidToken", "AuthMissing")


class BlueskyMetrics:
    batch = 25
    scope = None
    interactions = COUNTS
    audience: tuple[str, ...] = ()

    def build(self, cfg: TargetConfig, remote_ids: Sequence[str], token: str | None, *,
              recent: bool, api_base: str | None = None) -> httpx.Request:
        base = (api_base or cfg.service or DEFAULT_SERVICE).rstrip("/")
        return httpx.Request("GET", xrpc_url(base, "app.bsky.feed.getPosts"),
                             headers={"Authorization": f"Bearer {token or ''}"},
                             params=[("uris", uri) for uri in remote_ids])

    def parse(self, remote_ids: Sequence[str], response: httpx.Response, now: float) -> MetricsAnswer:
        body = json_body(response)
        if response.status_code == 200 and isinstance(body, Mapping) and isinstance(body.get("posts"), list):
            readings: dict[str, Reading] = {uri: Reading("deleted", detail="Bluesky no longer shows the post")
                                            for uri in remote_ids}
            for post in body["posts"]:
                if isinstance(post, Mapping) and post.get("uri") in readings:
                    metrics = {name: n for name in COUNTS if (n := integer(post.get(name))) is not None}
                    readings[str(post["uri"])] = Reading("ok" if metrics else "empty", metrics,
                                                         posted_at=iso_time(post.get("indexedAt")))
            return MetricsAnswer(readings)
        error = parse_error(response)
        if response.status_code == 429:
            return MetricsAnswer(kind="rate_limited", problem=error.reason,
                                 retry_after=rate_limited_wait(response.headers, now))
        if response.status_code == 401 or error.error in SESSION_ERRORS:
            return MetricsAnswer(kind="auth", problem=error.reason)
        return MetricsAnswer(kind="failed", problem=error.reason)


METRICS = BlueskyMetrics()
