"""The Threads target (Threads API, graph.threads.net), sans-I/O.

The same container-and-publish model as Instagram (what both share is in ``platforms.meta_graph``):
put the prepared JPEG on the media host, create a container (``POST /{threads-user-id}/threads`` with
``media_type=IMAGE``, ``image_url``, ``text``, ``alt_text``), wait until it is FINISHED
(``GET /{container-id}?fields=status,error_message``), publish it (``POST /{threads-user-id}/threads_publish``
with ``creation_id``; the one step not safe to repeat), read the permalink, remove the hosted copy.
Sources: developers.facebook.com/docs/threads/posts (the two steps and their parameters; "wait on average
30 seconds before publishing"), /docs/threads/troubleshooting (container statuses; "querying a
container's status once per minute, for no more than 5 minutes"), /docs/threads/overview (250 posts per
24 h, ``threads_publishing_limit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms.base import JobContext, Kind, LinkState, Outcome, Quota
from crosswatch.platforms.meta_graph import (
    CarouselMove,
    ContainerFlow,
    ContainerReconciler,
    ContainerTarget,
    RecentPosts,
    bearer,
    carousel_children,
    carousel_request,
    graph_object,
    parse_graph_error,
    regain_access_seconds,
)
from crosswatch.platforms.reading import graph_time, id_string, integer, json_body, text

if TYPE_CHECKING:
    from crosswatch.hosting import MediaHost

PLATFORM = "Threads"
DEFAULT_GRAPH_BASE = "https://graph.threads.net"
THREADS_SCOPES: tuple[str, ...] = ("threads_basic", "threads_content_publish")
MAX_ALT_TEXT = 1000
# A carousel: 2 to 20 images (api-notes C: Ayrshare's figure; Meta's own page is unconfirmed).
CAROUSEL_MAX = 20

# Meta: wait about 30 s before publishing, then check once a minute for no more than 5 minutes.
FIRST_POLL_WAIT = 30.0
DEFAULT_MAX_POLLS = 6
MAX_CONTAINER_RECREATIONS = 1
MAX_STALE_CONTAINERS = 3

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
# UNCONFIRMED for Threads (Meta's Threads pages list no publish-quota code): Instagram's pair is used.
PUBLISH_QUOTA = (9, 2207042)
MEDIA_EXPIRED = (-2, 2207020)
NOT_READY = (9007, 2207027)
CONTAINER_GONE = (24, 2207008)
TRANSIENT_CODES = frozenset({-1, -2, 1, 2})
DEFAULT_THROTTLE_WAIT = 15 * 60.0
PUBLISH_QUOTA_WAIT = 60 * 60.0
RECONCILE_LOOKBACK_SECONDS = 300
MISSING_OBJECT = (100, 33)


def error_outcome(response: httpx.Response, *, applied_if_transient: bool = False) -> Outcome:
    """A Graph error from graph.threads.net as an outcome (same shape and code families as Instagram's)."""
    error = parse_graph_error(response, PLATFORM)
    data: dict[str, Any] = {"http_status": error.status, "error_code": error.code, "error_subcode": error.subcode}
    if error.code == 190 or (error.status == 401 and error.code is None):
        return Outcome(Kind.AUTH, data=data, reason=error.reason)
    if error.code is not None and (error.code == 10 or 200 <= error.code <= 299):
        return Outcome(Kind.AUTH, data=data, reason=error.reason + " — sign in again and grant "
                       + ", ".join(THREADS_SCOPES))
    if error.pair == PUBLISH_QUOTA:
        return Outcome(Kind.RATE_LIMITED, data=data, reason=error.reason,
                       retry_after=regain_access_seconds(response.headers) or PUBLISH_QUOTA_WAIT)
    if error.code in RATE_LIMIT_CODES:
        return Outcome(Kind.RATE_LIMITED, data=data, reason=error.reason,
                       retry_after=regain_access_seconds(response.headers) or DEFAULT_THROTTLE_WAIT)
    if error.pair in (NOT_READY, CONTAINER_GONE):
        return Outcome(Kind.RETRY, data=data, reason=error.reason, retry_after=FIRST_POLL_WAIT)
    if error.pair == MEDIA_EXPIRED:
        return Outcome(Kind.FAILED, data=data, reason=error.reason + " — the container expired")
    if error.status >= 500 or error.code in TRANSIENT_CODES or error.is_transient:
        return Outcome(Kind.UNKNOWN if applied_if_transient else Kind.RETRY, data=data, reason=error.reason)
    return Outcome(Kind.FAILED, data=data, reason=error.reason)


# ---------------------------------------------------------------------------------------------------
# Requests


def graph_url(config: TargetConfig, path: str) -> str:
    return (config.graph_base or DEFAULT_GRAPH_BASE).rstrip("/") + "/" + path.lstrip("/")


def user_node(account_id: str | None) -> str:
    return account_id or "me"


def build_create_container_request(config: TargetConfig, ctx: JobContext, image_url: str) -> httpx.Request:
    fields = {"media_type": "IMAGE", "image_url": image_url, "text": ctx.caption.text, **_reply_field(ctx)}
    if ctx.caption.alt_text and ctx.caption.alt_text.strip():
        fields["alt_text"] = ctx.caption.alt_text.strip()[:MAX_ALT_TEXT]
    return httpx.Request("POST", graph_url(config, f"{user_node(ctx.account_id)}/threads"),
                         headers=bearer(ctx.access_token), data=fields)


def _reply_field(ctx: JobContext) -> dict[str, str]:
    """An album's next post is a reply to its previous one (``reply_to_id``)."""
    reply_to = ctx.data.get("reply_to")
    if isinstance(reply_to, Mapping) and reply_to.get("remote_id"):
        return {"reply_to_id": str(reply_to["remote_id"])}
    return {}


def build_carousel_request(config: TargetConfig, ctx: JobContext, move: CarouselMove) -> httpx.Request:
    """One move of a carousel: a child's container (``is_carousel_item``, its own alt text), a check
    of a child's status, or the CAROUSEL container with the children in order and the text."""
    check = (build_container_status_request(config, carousel_children(ctx)[move.index], ctx.access_token)
             if move.kind == "check" else None)
    return carousel_request(ctx, graph_url(config, f"{user_node(ctx.account_id)}/threads"), move,
                            status_request=check, most=CAROUSEL_MAX, max_alt_text=MAX_ALT_TEXT,
                            text_field="text", extra=_reply_field(ctx))


def _status_reading(response: httpx.Response) -> tuple[str, str | None] | None:
    status = parse_container_status(response)
    return None if status is None else (status.status, status.error_message)


def build_container_status_request(config: TargetConfig, container_id: str, token: str | None) -> httpx.Request:
    return httpx.Request("GET", graph_url(config, container_id), headers=bearer(token),
                         params={"fields": "status,error_message"})


@dataclass(frozen=True)
class ContainerStatus:
    status: str  # EXPIRED, ERROR, FINISHED, IN_PROGRESS, PUBLISHED
    error_message: str | None


def parse_container_status(response: httpx.Response) -> ContainerStatus | None:
    if not response.is_success:
        return None
    body = graph_object(response)
    status = text(body.get("status"))
    return ContainerStatus(status.upper(), text(body.get("error_message"))) if status else None


def build_publishing_limit_request(config: TargetConfig, account_id: str | None, token: str | None) -> httpx.Request:
    return httpx.Request("GET", graph_url(config, f"{user_node(account_id)}/threads_publishing_limit"),
                         headers=bearer(token), params={"fields": "quota_usage,config"})


def parse_publishing_limit(response: httpx.Response) -> Quota | None:
    """``{"data":[{"quota_usage":4,"config":{"quota_total":250,"quota_duration":86400}}]}``."""
    if not response.is_success:
        return None
    items = graph_object(response).get("data")
    first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else None
    usage = integer(first.get("quota_usage")) if first else None
    if first is None or usage is None:
        return None
    config = first.get("config")
    if not isinstance(config, dict):
        config = {}
    duration = integer(config.get("quota_duration"))
    return Quota(usage, integer(config.get("quota_total")), float(duration) if duration else None)


@dataclass
class PublishingLimitCheck:
    """Read before ``threads_publish``: 250 API posts per rolling 24 h, enforced by Meta at publish."""

    config: TargetConfig
    step: str = "publish"
    label: str = "Threads publishing quota"

    def build(self, ctx: JobContext) -> httpx.Request:
        return build_publishing_limit_request(self.config, ctx.account_id, ctx.access_token)

    def parse(self, response: httpx.Response) -> Quota | None:
        return parse_publishing_limit(response)


def build_permalink_request(config: TargetConfig, media_id: str, token: str | None) -> httpx.Request:
    return httpx.Request("GET", graph_url(config, media_id), headers=bearer(token), params={"fields": "permalink"})


# ---------------------------------------------------------------------------------------------------
# Steps: the shared container flow (meta_graph), with what is Threads's own


def _create_request(config: TargetConfig, ctx: JobContext) -> httpx.Request:
    return build_create_container_request(config, ctx, str(ctx.data.get("image_url", "")))


def _account_url(config: TargetConfig, ctx: JobContext, path: str) -> str:
    return graph_url(config, f"{user_node(ctx.account_id)}/{path}")


FLOW = ContainerFlow(
    platform=PLATFORM, publish_path="threads_publish", first_wait=FIRST_POLL_WAIT, status_field="status",
    carousel_max=CAROUSEL_MAX, max_recreations=MAX_CONTAINER_RECREATIONS, max_stale=MAX_STALE_CONTAINERS,
    error_outcome=error_outcome, create_request=_create_request, carousel_request=build_carousel_request,
    status_request=build_container_status_request, read_status=_status_reading, account_url=_account_url,
    permalink_request=build_permalink_request,
)


class ThreadsTarget(ContainerTarget):
    """Posts one photo (or a carousel) to Threads through the container flow."""

    kind = "threads"

    def __init__(self, config: TargetConfig, host: MediaHost, *, max_polls: int = DEFAULT_MAX_POLLS) -> None:
        super().__init__(config, host, FLOW, max_polls)
        self.reconciler = ThreadsReconciler(config)
        self.quota_check = PublishingLimitCheck(config)


# ---------------------------------------------------------------------------------------------------
# Reconciliation: did threads_publish go out?


def build_recent_threads_request(config: TargetConfig, account_id: str | None, token: str | None,
                                 since: int | None = None, limit: int = 25) -> httpx.Request:
    params = {"fields": "id,text,permalink,timestamp", "limit": str(max(1, min(100, limit)))}
    if since is not None:
        params["since"] = str(since)
    return httpx.Request("GET", graph_url(config, f"{user_node(account_id)}/threads"), headers=bearer(token),
                         params=params)


def find_thread_by_text(response: httpx.Response, caption: str, not_before: float) -> Mapping[str, str | None] | None:
    """``{"id", "permalink"}`` of the newest thread with this text posted at or after ``not_before``."""
    if not response.is_success:
        return None
    items = graph_object(response).get("data")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        posted_at = graph_time(item.get("timestamp"))
        media_id = id_string(item.get("id"))
        # Words only: Threads may normalise line endings and trailing space.
        if media_id and posted_at is not None and posted_at >= not_before and \
                item["text"].split() == caption.split():
            return {"id": media_id, "permalink": text(item.get("permalink"))}
    return None


class ThreadsReconciler(ContainerReconciler):
    """The container's status says whether ``threads_publish`` took effect (PUBLISHED); the post itself
    is then found among the account's recent threads by text and time (Meta's troubleshooting page)."""

    def __init__(self, config: TargetConfig) -> None:
        super().__init__(config, FLOW, RecentPosts(
            build_recent_threads_request, find_thread_by_text,
            "the container is published; its thread was not found by text", RECONCILE_LOOKBACK_SECONDS))


# ---------------------------------------------------------------------------------------------------
# `crosswatch links check`


class ThreadsLinkCheck:
    """``GET /{threads-media-id}?fields=permalink``; a deleted post answers code 100/33 (or 404)."""

    def build(self, cfg: TargetConfig, remote_id: str, token: str | None) -> httpx.Request:
        return build_permalink_request(cfg, remote_id, token)

    def parse(self, response: httpx.Response) -> tuple[LinkState, str]:
        if response.is_success:
            body = json_body(response)
            permalink = body.get("permalink") if isinstance(body, Mapping) else None
            return "ok", f"the post is there ({permalink})" if permalink else "the post is there"
        error = parse_graph_error(response, PLATFORM)
        if error.pair == MISSING_OBJECT or response.status_code == 404:
            return "broken", f"Threads cannot find the post; it was deleted ({error.reason})"
        return "unknown", error.reason


LINK_CHECK = ThreadsLinkCheck()
