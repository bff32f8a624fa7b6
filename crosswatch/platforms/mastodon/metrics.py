"""Mastodon's metrics read (sans-I/O): ``GET /api/v1/statuses/:id`` (methods/statuses.md), one status per
request: its ``favourites_count``, ``reblogs_count`` and ``replies_count``. Mastodon shows no views or
reach, so the report counts interactions only. A 404 means the status is gone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms.base import MetricsAnswer, Reading
from crosswatch.platforms.mastodon.steps import api_url, bearer, error_words, rate_limited_wait
from crosswatch.platforms.reading import integer, iso_time, json_body

COUNTS = ("favourites_count", "reblogs_count", "replies_count")


class MastodonMetrics:
    batch = 1
    scope = None  # read:statuses is part of the daemon's sign-in already
    interactions = COUNTS
    audience: tuple[str, ...] = ()

    def build(self, cfg: TargetConfig, remote_ids: Sequence[str], token: str | None, *,
              recent: bool, api_base: str | None = None) -> httpx.Request:
        return httpx.Request("GET", api_url(cfg, f"/api/v1/statuses/{remote_ids[0]}"), headers=bearer(token))

    def parse(self, remote_ids: Sequence[str], response: httpx.Response, now: float) -> MetricsAnswer:
        status_id = remote_ids[0]
        body = json_body(response)
        if response.status_code == 200 and isinstance(body, Mapping):
            metrics = {name: number for name in COUNTS if (number := integer(body.get(name))) is not None}
            reading = Reading("ok" if metrics else "empty", metrics, posted_at=iso_time(body.get("created_at")))
            return MetricsAnswer({status_id: reading})
        if response.status_code == 404:
            return MetricsAnswer({status_id: Reading("deleted", detail=error_words(response))})
        if response.status_code == 429:
            return MetricsAnswer(kind="rate_limited", problem=error_words(response),
                                 retry_after=rate_limited_wait(response.headers, now))
        if response.status_code in (401, 403):
            return MetricsAnswer(kind="auth", problem=error_words(response))
        return MetricsAnswer(kind="failed", problem=error_words(response))


METRICS = MastodonMetrics()
