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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms.base import Finding, JobContext, Kind, LinkState, Outcome, Quota, Step, Verdict
from crosswatch.platforms.meta_graph import (
    CarouselMove,
    HostImage,
    Unhost,
    bearer,
    carousel_children,
    carousel_move,
    carousel_request,
    discard_hosted,
    graph_object,
    parse_carousel_step,
    parse_graph_error,
    poll_wait,
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
# Steps


def parse_created_container(response: httpx.Response) -> Outcome:
    if not response.is_success:
        return error_outcome(response)
    container_id = id_string(graph_object(response).get("id"))
    if container_id is None:
        return Outcome(Kind.RETRY, reason="Threads created no container id")
    return Outcome.next(container_id=container_id, poll_count=0)


@dataclass
class CreateContainer:
    config: TargetConfig
    name: str = "create_container"
    safe_to_repeat: bool = True

    def build(self, ctx: JobContext) -> httpx.Request:
        move = carousel_move(ctx, CAROUSEL_MAX)
        if move is not None:
            return build_carousel_request(self.config, ctx, move)
        return build_create_container_request(self.config, ctx, str(ctx.data.get("image_url", "")))

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        move = carousel_move(ctx, CAROUSEL_MAX)
        if move is not None:
            # Children are checked as the carousel is: Meta advises about 30 s before the first look.
            return parse_carousel_step(ctx, move, response, platform=PLATFORM, error_outcome=error_outcome,
                                       status_of=_status_reading, max_polls=DEFAULT_MAX_POLLS,
                                       first_wait=FIRST_POLL_WAIT)
        return parse_created_container(response)


@dataclass
class WaitForContainer:
    """Check the container until FINISHED (30 s, then once a minute, at most ``max_polls`` times);
    an EXPIRED one is made again once (the step's next build creates it, then checking starts over)."""

    config: TargetConfig
    max_polls: int = DEFAULT_MAX_POLLS
    name: str = "wait_for_container"
    safe_to_repeat: bool = True

    def build(self, ctx: JobContext) -> httpx.Request:
        container_id = ctx.data.get("container_id")
        if not container_id:
            if carousel_move(ctx, CAROUSEL_MAX) is not None:  # its children stand: the carousel again
                return build_carousel_request(self.config, ctx, CarouselMove("carousel"))
            return build_create_container_request(self.config, ctx, str(ctx.data.get("image_url", "")))
        return build_container_status_request(self.config, str(container_id), ctx.access_token)

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if not ctx.data.get("container_id"):
            created = parse_created_container(response)
            if created.kind is Kind.NEXT:
                return Outcome(Kind.AGAIN, data=created.data, retry_after=FIRST_POLL_WAIT)
            return created
        if not response.is_success:
            return error_outcome(response)
        status = parse_container_status(response)
        if status is None:
            return Outcome(Kind.RETRY, reason="Threads sent no container status")
        return self._on_status(ctx, status)

    def _on_status(self, ctx: JobContext, status: ContainerStatus) -> Outcome:
        polls = int(ctx.data.get("poll_count", 0) or 0)
        detail = f" ({status.error_message})" if status.error_message else ""
        match status.status:
            case "FINISHED":
                return Outcome.next(container_status="FINISHED")
            case "IN_PROGRESS":
                if polls + 1 >= self.max_polls:
                    reason = f"the Threads container was still IN_PROGRESS after {polls + 1} checks"
                    return Outcome(Kind.FAILED, data={"poll_count": polls + 1}, reason=reason)
                return Outcome(Kind.AGAIN, data={"poll_count": polls + 1},
                               retry_after=poll_wait(polls, FIRST_POLL_WAIT))
            case "EXPIRED":
                recreated = int(ctx.data.get("containers_recreated", 0) or 0)
                if recreated >= MAX_CONTAINER_RECREATIONS:
                    return Outcome(Kind.FAILED, reason="the Threads container expired again" + detail)
                return Outcome(Kind.AGAIN, retry_after=0.0, data={
                    "container_id": None, "poll_count": 0, "containers_recreated": recreated + 1})
            case "PUBLISHED":
                return Outcome(Kind.UNKNOWN, data={"container_status": "PUBLISHED"},
                               reason="the Threads container is already published")
            case _:
                return Outcome(Kind.FAILED, data={"container_status": status.status},
                               reason=f"Threads could not process the image: {status.status}{detail}")


@dataclass
class Publish:
    """``POST /{threads-user-id}/threads_publish``. Not safe to repeat; the container's status can tell."""

    config: TargetConfig
    name: str = "publish"
    safe_to_repeat: bool = False

    def build(self, ctx: JobContext) -> httpx.Request:
        return httpx.Request("POST", graph_url(self.config, f"{user_node(ctx.account_id)}/threads_publish"),
                             headers=bearer(ctx.access_token),
                             data={"creation_id": str(ctx.data.get("container_id", ""))})

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if not response.is_success:
            stale = int(ctx.data.get("stale_containers", 0) or 0)
            if parse_graph_error(response, PLATFORM).pair == MEDIA_EXPIRED and stale < MAX_STALE_CONTAINERS:
                # Refused, so certainly not published: the container outlived its 24 h while the job
                # waited (a quota, a pause). Make a new one rather than fail the photo.
                return Outcome(Kind.AGAIN, back_to="wait_for_container", retry_after=0.0, data={
                    "container_id": None, "poll_count": 0, "container_status": None,
                    "stale_containers": stale + 1})
            return error_outcome(response, applied_if_transient=True)
        media_id = id_string(graph_object(response).get("id"))
        if media_id is None:
            return Outcome(Kind.UNKNOWN, reason=f"Threads answered {response.status_code} without a media id")
        return Outcome.next(media_id=media_id)


@dataclass
class ReadPermalink:
    config: TargetConfig
    name: str = "read_permalink"
    safe_to_repeat: bool = True

    def applies(self, ctx: JobContext) -> bool:
        return bool(ctx.data.get("media_id"))

    def build(self, ctx: JobContext) -> httpx.Request:
        return build_permalink_request(self.config, str(ctx.data.get("media_id", "")), ctx.access_token)

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if response.is_success:
            return Outcome.next(permalink=text(graph_object(response).get("permalink")))
        outcome = error_outcome(response)
        if outcome.kind is Kind.FAILED:
            # The post exists; a permalink we cannot read must not turn it into a failed job.
            return Outcome.next(permalink=None, permalink_error=outcome.reason)
        return outcome


class ThreadsTarget:
    """Posts one photo to Threads through the container flow."""

    kind = "threads"

    def __init__(self, config: TargetConfig, host: MediaHost, *, max_polls: int = DEFAULT_MAX_POLLS) -> None:
        self.config = config
        self.name = config.name
        self.host = host
        self._steps: tuple[Step, ...] = (
            HostImage(host, PLATFORM, max_children=CAROUSEL_MAX),
            CreateContainer(config),
            WaitForContainer(config, max_polls),
            Publish(config),
            ReadPermalink(config),
            Unhost(host),
        )
        self.reconciler = ThreadsReconciler(config)
        self.quota_check = PublishingLimitCheck(config)

    def steps(self) -> Sequence[Step]:
        return self._steps

    def discard(self, data: Mapping[str, Any]) -> str | None:
        return discard_hosted(self.host, data)


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


class ThreadsReconciler:
    """The container's status says whether ``threads_publish`` took effect (PUBLISHED); the post itself
    is then found among the account's recent threads by text and time (Meta's troubleshooting page)."""

    def __init__(self, config: TargetConfig) -> None:
        self.config = config
        self._not_before: dict[int, float] = {}

    def build(self, ctx: JobContext, step: str, intent_at: float) -> httpx.Request | None:
        container_id = ctx.data.get("container_id")
        if step != "publish" or not container_id:
            return None
        if ctx.data.get("reconcile_container") == "PUBLISHED":
            since = int(intent_at) - RECONCILE_LOOKBACK_SECONDS
            self._not_before[ctx.job_id] = float(since)
            return build_recent_threads_request(self.config, ctx.account_id, ctx.access_token, since)
        return build_container_status_request(self.config, str(container_id), ctx.access_token)

    def parse(self, ctx: JobContext, step: str, response: httpx.Response) -> Finding:
        not_before = self._not_before.pop(ctx.job_id, 0.0)
        if not response.is_success:
            return Finding(Verdict.UNKNOWN, reason=error_outcome(response).reason)
        if ctx.data.get("reconcile_container") == "PUBLISHED":
            return self._find_thread(ctx, response, not_before)
        status = parse_container_status(response)
        if status is None:
            return Finding(Verdict.UNKNOWN, reason="Threads sent no container status")
        if status.status == "PUBLISHED":
            return Finding(Verdict.ASK_AGAIN, data={"reconcile_container": "PUBLISHED"})
        return Finding(Verdict.ABSENT, reason=f"the container is {status.status}, not published")

    def _find_thread(self, ctx: JobContext, response: httpx.Response, not_before: float) -> Finding:
        found = find_thread_by_text(response, ctx.caption.text, not_before)
        if found is None:
            return Finding(Verdict.POSTED, data={"media_id": None},
                           reason="the container is published; its thread was not found by text")
        media_id = found["id"]
        return Finding(Verdict.POSTED, remote_id=media_id, permalink=found["permalink"],
                       data={"media_id": media_id, "permalink": found["permalink"]})


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
