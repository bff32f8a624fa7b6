"""What Meta's two container-and-publish APIs share (pure): Instagram (graph.instagram.com) and Threads
(graph.threads.net) answer errors in the same Graph shape, take the token as a bearer header, and fetch
the image from a public URL, so both put the prepared JPEG on a media host first and remove it after.

Graph errors are ``{"error": {"code", "error_subcode", "message", "error_user_msg", ...}}`` (api-notes B5).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from crosswatch.platforms.base import JobContext, Kind, MetricsAnswer, Outcome, Reading
from crosswatch.platforms.reading import graph_time, id_string, integer, json_body, text

if TYPE_CHECKING:
    from crosswatch.hosting import MediaHost

# Container polling: 2, 4, 8, 16, 32, then 60 s; Meta asks for no more than about 5 minutes of it.
POLL_FIRST_WAIT = 2.0
POLL_MAX_WAIT = 60.0


@dataclass(frozen=True)
class GraphError:
    status: int
    code: int | None
    subcode: int | None
    message: str | None
    user_title: str | None
    user_message: str | None
    is_transient: bool
    platform: str = "Instagram"

    @property
    def pair(self) -> tuple[int | None, int | None]:
        return (self.code, self.subcode)

    @property
    def reason(self) -> str:
        text = self.user_message or self.message or f"HTTP {self.status}"
        if self.user_title and self.user_message:
            text = f"{self.user_title}: {self.user_message}"
        codes = f"code {self.code}" + (f"/{self.subcode}" if self.subcode is not None else "")
        return f"{self.platform} answered {self.status} ({codes}): {text}"


def parse_graph_error(response: httpx.Response, platform: str = "Instagram") -> GraphError:
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphError(response.status_code, None, None, response.reason_phrase or None, None, None, False,
                          platform)
    return GraphError(
        status=response.status_code,
        code=integer(error.get("code")),
        subcode=integer(error.get("error_subcode")),
        message=text(error.get("message")),
        user_title=text(error.get("error_user_title")),
        user_message=text(error.get("error_user_msg")),
        is_transient=error.get("is_transient") is True,
        platform=platform,
    )


def regain_access_seconds(headers: httpx.Headers) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in X-Business-Use-Case-Usage, in s."""
    raw = headers.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes: list[float] = []
    for entries in usage.values() if isinstance(usage, dict) else ():
        for entry in entries if isinstance(entries, list) else ():
            value = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                minutes.append(float(value))
    return max(minutes) * 60.0 if minutes else None


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or ''}"}


def graph_object(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    return body if isinstance(body, dict) else {}


def hosted_key(ctx: JobContext) -> str:
    """A stable name for the hosted copy: repeating the host step overwrites the same object."""
    return f"{ctx.photo_hash[:24]}-{ctx.job_id}.jpg"


def poll_wait(poll_count: int, first: float = POLL_FIRST_WAIT) -> float:
    """Seconds before poll number ``poll_count + 1``: first, 2 x first, ... capped at 60."""
    return min(POLL_MAX_WAIT, first * float(2 ** max(0, poll_count)))


@dataclass
class HostImage:
    """Put the prepared JPEG where Meta can fetch it (a LocalStep)."""

    host: MediaHost
    platform: str = "Instagram"
    name: str = "host_image"
    safe_to_repeat: bool = True
    # The upload check reads the prepared image again before this step (uploadcheck.py).
    sends_media: bool = True

    def run(self, ctx: JobContext) -> Outcome:
        if ctx.image is None:
            return Outcome(Kind.REJECTED, reason=f"no prepared image for {self.platform}")
        key = hosted_key(ctx)
        try:
            url = self.host.put(Path(ctx.image.path), key)
        except Exception as exc:  # a host failure is a value here: the runner retries later
            return Outcome(Kind.RETRY, reason=f"could not put the image on the media host: {exc}")
        return Outcome.next(image_url=url, hosted_key=key)


@dataclass
class Unhost:
    """Remove the hosted copy, then report the job DONE. A failed removal never fails the post."""

    host: MediaHost
    name: str = "unhost_image"
    safe_to_repeat: bool = True

    def run(self, ctx: JobContext) -> Outcome:
        data: dict[str, Any] = {}
        key = ctx.data.get("hosted_key")
        if key:
            try:
                self.host.delete(str(key))
            except Exception as exc:  # keep the post; report the leftover copy
                data["unhost_error"] = f"could not remove the hosted copy {key}: {exc}"
        media_id = id_string(ctx.data.get("media_id"))
        return Outcome(Kind.DONE, data=data, remote_id=media_id, permalink=text(ctx.data.get("permalink")))


def discard_hosted(host: MediaHost, data: Any) -> str | None:
    """Remove the hosted copy of a job that ended without reaching its last step (failed, rejected):
    the photo must not stay public. Returns what went wrong, or None."""
    key = data.get("hosted_key")
    if not key:
        return None
    try:
        host.delete(str(key))
    except Exception as exc:  # reported to the caller, who logs it; the job's end stands
        return f"could not remove the hosted copy {key}: {exc}"
    return None


# ---------------------------------------------------------------------------------------------------
# Media insights (Instagram, Threads): GET /{media-id}/insights?metric=..., one media per request.

GRAPH_RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80002})
GRAPH_MISSING_OBJECT = (100, 33)
INSIGHTS_THROTTLE_WAIT = 3600.0


def insights_request(url: str, metrics: Sequence[str], token: str | None) -> httpx.Request:
    """The insights edge, ``/{media-id}/insights?metric=...``."""
    return httpx.Request("GET", url, headers=bearer(token), params={"metric": ",".join(metrics)})


def node_insights_request(url: str, metrics: Sequence[str], token: str | None) -> httpx.Request:
    """The media node with its timestamp and the insights as a field expansion, in one call:
    ``/{media-id}?fields=timestamp,insights.metric(...)``."""
    return httpx.Request("GET", url, headers=bearer(token),
                         params={"fields": f"timestamp,insights.metric({','.join(metrics)})"})


def parse_insights(media_id: str, response: httpx.Response, platform: str, scope: str) -> MetricsAnswer:
    """The insights answer as a reading. An empty ``data`` is "empty" and code 10 "Not enough viewers"
    is "not_enough_viewers", never zeros (api-notes B4); code 100/33 (or 404) means the post is gone;
    other code 10 and 200-299 answers mean the token lacks ``scope``."""
    if response.is_success:
        body = graph_object(response)
        # The edge answers {"data": [...]}; the media node with insights.metric(...) nests it under
        # "insights" beside the post's own timestamp (left out when there is no data).
        nested = body.get("insights")
        data = (nested if isinstance(nested, dict) else {}).get("data") if "id" in body else body.get("data")
        metrics: dict[str, int] = {}
        for item in data if isinstance(data, list) else ():
            values = item.get("values") if isinstance(item, dict) else None
            first = values[0] if isinstance(values, list) and values and isinstance(values[0], dict) else {}
            number = integer(first.get("value")) if isinstance(first, dict) else None
            name = text(item.get("name")) if isinstance(item, dict) else None
            if name is not None and number is not None:
                metrics[name] = number
        posted_at = graph_time(body.get("timestamp"))
        reading = (Reading("ok", metrics, posted_at=posted_at) if metrics
                   else Reading("empty", posted_at=posted_at, detail=f"{platform} sent no data yet"))
        return MetricsAnswer({media_id: reading})
    error = parse_graph_error(response, platform)
    words = f"{error.message or ''} {error.user_message or ''}".lower()
    if error.code == 10 and "not enough viewers" in words:
        return MetricsAnswer({media_id: Reading("not_enough_viewers", detail=error.reason)})
    if error.pair == GRAPH_MISSING_OBJECT or response.status_code == 404:
        return MetricsAnswer({media_id: Reading("deleted", detail=error.reason)})
    if error.code == 190 or (error.status == 401 and error.code is None):
        return MetricsAnswer(kind="auth", problem=error.reason)
    if error.code is not None and (error.code == 10 or 200 <= error.code <= 299):
        return MetricsAnswer(kind="scope", problem=f"{error.reason} — the sign-in lacks {scope}")
    if error.code in GRAPH_RATE_LIMIT_CODES or response.status_code == 429:
        return MetricsAnswer(kind="rate_limited", problem=error.reason,
                             retry_after=regain_access_seconds(response.headers) or INSIGHTS_THROTTLE_WAIT)
    return MetricsAnswer(kind="failed", problem=error.reason)
