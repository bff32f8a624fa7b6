"""The Instagram target (Instagram API with Instagram Login), sans-I/O.

Meta fetches the image from a public URL, so the steps are: put the prepared JPEG on the media host
(local), create a container with ``image_url``, poll the container until FINISHED, publish it (the one
step that is not safe to repeat, but checkable: the container then says PUBLISHED), read the
permalink, and remove the hosted copy.

Graph errors are ``{"error": {"code", "error_subcode", "message", "error_user_msg", ...}}`` and are
told apart by code and subcode (api-notes B5). Requests carry the token in the ``Authorization``
header, never in the URL, so it cannot end up in a logged URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms.base import JobContext, Kind, LinkState, Outcome, Quota
from crosswatch.platforms.meta_graph import (
    POLL_FIRST_WAIT,
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
from crosswatch.platforms.meta_graph import poll_wait as poll_wait  # for callers that knew it here
from crosswatch.platforms.reading import graph_time, id_string, integer, json_body, text

if TYPE_CHECKING:
    from crosswatch.hosting import MediaHost

DEFAULT_GRAPH_BASE = "https://graph.instagram.com"
INSTAGRAM_SCOPES: tuple[str, ...] = ("instagram_business_basic", "instagram_business_content_publish")
MAX_ALT_TEXT = 1000
# A carousel: 2 to 10 images (Meta's content publishing guide); an album's first 10 go out.
CAROUSEL_MAX = 10

DEFAULT_MAX_POLLS = 12
# An expired container is recreated this many times before the job fails.
MAX_CONTAINER_RECREATIONS = 1
# A container that expired while its job waited to publish (a quota, a pause: holds can outlast the
# 24-hour container lifetime) is made again this many times.
MAX_STALE_CONTAINERS = 3

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80002})
SPAM_BLOCK = (4, 2207051)
PUBLISH_QUOTA = (9, 2207042)
NOT_READY = (9007, 2207027)
CONTAINER_GONE = (24, 2207008)
MEDIA_EXPIRED = (-2, 2207020)
FETCH_FAILED = (9004, 2207052)
TRANSIENT_CODES = frozenset({-1, -2, 1, 2})
# Waits when Meta gives no estimate of its own.
DEFAULT_THROTTLE_WAIT = 15 * 60.0
PUBLISH_QUOTA_WAIT = 60 * 60.0
# A published post is looked for among media from a little before the intent (clocks differ).
RECONCILE_LOOKBACK_SECONDS = 300


# ---------------------------------------------------------------------------------------------------
# Graph errors


def error_outcome(response: httpx.Response, *, applied_if_transient: bool = False) -> Outcome:
    """Map a Graph error response to an outcome (api-notes B5, codes and subcodes).

    ``applied_if_transient``: for the publish step a server-side failure does not prove nothing was
    published, so it is UNKNOWN and the runner checks the container's status before anything else.
    """
    error = parse_graph_error(response)
    data: dict[str, Any] = {"http_status": error.status, "error_code": error.code,
                            "error_subcode": error.subcode}
    if error.code == 190 or (error.status == 401 and error.code is None):
        return Outcome(Kind.AUTH, data=data, reason=error.reason)
    if error.code is not None and (error.code == 10 or 200 <= error.code <= 299):
        # A permission the sign-in did not grant: jobs wait for a new sign-in rather than fail.
        return Outcome(Kind.AUTH, data=data, reason=error.reason + " — sign in again and grant "
                       + ", ".join(INSTAGRAM_SCOPES))
    if error.pair == SPAM_BLOCK:
        # Not a rate limit: Instagram restricted the account; waiting a few minutes will not help.
        return Outcome(Kind.PAUSED, data=data,
                       reason=error.reason + " — Instagram restricted this account's activity")
    if error.pair == PUBLISH_QUOTA:
        return Outcome(Kind.RATE_LIMITED, data=data, reason=error.reason,
                       retry_after=regain_access_seconds(response.headers) or PUBLISH_QUOTA_WAIT)
    if error.code in RATE_LIMIT_CODES:
        return Outcome(Kind.RATE_LIMITED, data=data, reason=error.reason,
                       retry_after=regain_access_seconds(response.headers) or DEFAULT_THROTTLE_WAIT)
    if error.pair in (NOT_READY, CONTAINER_GONE):
        # Meta's advice for both: wait a little and try again (a container may be briefly invisible).
        return Outcome(Kind.RETRY, data=data, reason=error.reason, retry_after=30.0)
    if error.pair == MEDIA_EXPIRED:
        return Outcome(Kind.FAILED, data=data, reason=error.reason + " — the container expired")
    if error.pair == FETCH_FAILED:
        return Outcome(Kind.FAILED, data=data, reason=error.reason +
                       " — check that the media host's public_url is reachable from the internet")
    transient = error.code in TRANSIENT_CODES or error.is_transient or error.status >= 500
    if transient:
        return Outcome(Kind.UNKNOWN if applied_if_transient else Kind.RETRY, data=data, reason=error.reason)
    return Outcome(Kind.FAILED, data=data, reason=error.reason)


# ---------------------------------------------------------------------------------------------------
# Requests


def graph_url(config: TargetConfig, path: str) -> str:
    return (config.graph_base or DEFAULT_GRAPH_BASE).rstrip("/") + "/" + path.lstrip("/")


def user_node(ctx_account_id: str | None) -> str:
    # ``me`` resolves to the token's own account, which avoids the id/user_id ambiguity (api-notes B1).
    return ctx_account_id or "me"




def build_create_container_request(config: TargetConfig, ctx: JobContext, image_url: str) -> httpx.Request:
    fields = {"image_url": image_url, "caption": ctx.caption.text}
    if ctx.caption.alt_text and ctx.caption.alt_text.strip():
        fields["alt_text"] = ctx.caption.alt_text.strip()[:MAX_ALT_TEXT]
    return httpx.Request("POST", graph_url(config, f"{user_node(ctx.account_id)}/media"),
                         headers=bearer(ctx.access_token), data=fields)


def build_carousel_request(config: TargetConfig, ctx: JobContext, move: CarouselMove) -> httpx.Request:
    """One move of a carousel: a child's container (``is_carousel_item``, its own alt text), a check
    of a child's status, or the CAROUSEL container with the children in order and the caption."""
    check = (build_container_status_request(config, carousel_children(ctx)[move.index], ctx.access_token)
             if move.kind == "check" else None)
    return carousel_request(ctx, graph_url(config, f"{user_node(ctx.account_id)}/media"), move,
                            status_request=check, most=CAROUSEL_MAX, max_alt_text=MAX_ALT_TEXT,
                            text_field="caption")


def _status_reading(response: httpx.Response) -> tuple[str, str | None] | None:
    status = parse_container_status(response)
    return None if status is None else (status.status_code, status.status)


def build_container_status_request(config: TargetConfig, container_id: str,
                                   token: str | None) -> httpx.Request:
    return httpx.Request("GET", graph_url(config, container_id), headers=bearer(token),
                         params={"fields": "status_code,status"})


@dataclass(frozen=True)
class ContainerStatus:
    status_code: str  # EXPIRED, ERROR, FINISHED, IN_PROGRESS, PUBLISHED
    status: str | None

    @property
    def published(self) -> bool:
        return self.status_code == "PUBLISHED"


def parse_container_status(response: httpx.Response) -> ContainerStatus | None:
    """The container's status, or None when the answer is an error or carries no status_code."""
    if not response.is_success:
        return None
    body = graph_object(response)
    code = text(body.get("status_code"))
    return ContainerStatus(code.upper(), text(body.get("status"))) if code else None


def build_publishing_limit_request(config: TargetConfig, account_id: str | None, token: str | None,
                                   since: int | None = None) -> httpx.Request:
    params = {"fields": "config,quota_usage"}
    if since is not None:
        params["since"] = str(since)
    return httpx.Request("GET", graph_url(config, f"{user_node(account_id)}/content_publishing_limit"),
                         headers=bearer(token), params=params)


@dataclass
class PublishingQuota:
    usage: int
    total: int | None
    duration: int | None

    @property
    def remaining(self) -> int | None:
        return None if self.total is None else max(0, self.total - self.usage)


def parse_publishing_limit(response: httpx.Response) -> PublishingQuota | None:
    """``{"data":[{"quota_usage":2,"config":{"quota_total":50,"quota_duration":86400}}]}``."""
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
    return PublishingQuota(usage, integer(config.get("quota_total")), integer(config.get("quota_duration")))


@dataclass
class PublishingLimitCheck:
    """Instagram's content_publishing_limit, read before ``publish`` (api-notes B3: plan for 50 per
    rolling 24 h, but read the live value; going over it earns error 9/2207042)."""

    config: TargetConfig
    step: str = "publish"
    label: str = "publishing quota"

    def build(self, ctx: JobContext) -> httpx.Request:
        return build_publishing_limit_request(self.config, ctx.account_id, ctx.access_token)

    def parse(self, response: httpx.Response) -> Quota | None:
        quota = parse_publishing_limit(response)
        if quota is None:
            return None
        return Quota(quota.usage, quota.total, float(quota.duration) if quota.duration else None)


def build_permalink_request(config: TargetConfig, media_id: str, token: str | None) -> httpx.Request:
    return httpx.Request("GET", graph_url(config, media_id), headers=bearer(token),
                         params={"fields": "permalink"})


# ---------------------------------------------------------------------------------------------------
# Steps: the shared container flow (meta_graph), with what is Instagram's own


def _create_request(config: TargetConfig, ctx: JobContext) -> httpx.Request:
    return build_create_container_request(config, ctx, str(ctx.data.get("image_url", "")))


def _account_url(config: TargetConfig, ctx: JobContext, path: str) -> str:
    return graph_url(config, f"{user_node(ctx.account_id)}/{path}")


FLOW = ContainerFlow(
    platform="Instagram", publish_path="media_publish", first_wait=POLL_FIRST_WAIT, status_field="status_code",
    carousel_max=CAROUSEL_MAX, max_recreations=MAX_CONTAINER_RECREATIONS, max_stale=MAX_STALE_CONTAINERS,
    error_outcome=error_outcome, create_request=_create_request, carousel_request=build_carousel_request,
    status_request=build_container_status_request, read_status=_status_reading, account_url=_account_url,
    permalink_request=build_permalink_request,
)


class InstagramTarget(ContainerTarget):
    """Posts one photo (or a carousel) to Instagram through the container flow."""

    kind = "instagram"

    def __init__(self, config: TargetConfig, host: MediaHost, *, max_polls: int = DEFAULT_MAX_POLLS) -> None:
        super().__init__(config, host, FLOW, max_polls)
        self.reconciler = InstagramReconciler(config)
        self.quota_check = PublishingLimitCheck(config)


# ---------------------------------------------------------------------------------------------------
# Reconciliation: did media_publish go out?


def build_recent_media_request(config: TargetConfig, account_id: str | None, token: str | None,
                               since: int | None = None, limit: int = 25) -> httpx.Request:
    params = {"fields": "id,caption,permalink,timestamp", "limit": str(max(1, min(100, limit)))}
    if since is not None:
        params["since"] = str(since)
    return httpx.Request("GET", graph_url(config, f"{user_node(account_id)}/media"), headers=bearer(token),
                         params=params)


def _same_caption(a: str, b: str) -> bool:
    # Compare words only: Instagram may normalise line endings and trailing space.
    return a.split() == b.split()


def find_media_by_caption(response: httpx.Response, caption: str,
                          not_before: float) -> Mapping[str, str | None] | None:
    """``{"id", "permalink"}`` of the newest media with this caption posted at or after ``not_before``."""
    if not response.is_success:
        return None
    items = graph_object(response).get("data")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("caption"), str):
            continue
        posted_at = graph_time(item.get("timestamp"))
        media_id = id_string(item.get("id"))
        if media_id and posted_at is not None and posted_at >= not_before and \
                _same_caption(item["caption"], caption):
            return {"id": media_id, "permalink": text(item.get("permalink"))}
    return None


class InstagramReconciler(ContainerReconciler):
    """The container's status says whether ``media_publish`` took effect (PUBLISHED); the media id
    itself is then found among the account's recent media by caption and time."""

    def __init__(self, config: TargetConfig) -> None:
        super().__init__(config, FLOW, RecentPosts(
            build_recent_media_request, find_media_by_caption,
            "the container is published; its media was not found by caption", RECONCILE_LOOKBACK_SECONDS))


# ---------------------------------------------------------------------------------------------------
# `crosswatch links check`: is the post still there?

# Graph's answer for an object that does not exist (or is not visible to this token).
MISSING_OBJECT = (100, 33)


class InstagramLinkCheck:
    """``GET /{media-id}?fields=permalink``; a deleted post answers code 100, subcode 33 (or 404)."""

    def build(self, cfg: TargetConfig, remote_id: str, token: str | None) -> httpx.Request:
        return build_permalink_request(cfg, remote_id, token)

    def parse(self, response: httpx.Response) -> tuple[LinkState, str]:
        if response.is_success:
            body = json_body(response)
            permalink = body.get("permalink") if isinstance(body, Mapping) else None
            return "ok", f"the post is there ({permalink})" if permalink else "the post is there"
        error = parse_graph_error(response)
        if error.pair == MISSING_OBJECT or response.status_code == 404:
            return "broken", f"Instagram cannot find the post; it was deleted ({error.reason})"
        return "unknown", error.reason


LINK_CHECK = InstagramLinkCheck()
