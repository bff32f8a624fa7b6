"""What Meta's two container-and-publish APIs share (pure): Instagram (graph.instagram.com) and Threads
(graph.threads.net) answer errors in the same Graph shape, take the token as a bearer header, and fetch
the image from a public URL, so both put the prepared JPEG on a media host first and remove it after.

Graph errors are ``{"error": {"code", "error_subcode", "message", "error_user_msg", ...}}`` (api-notes B5).

Carousels (an album, or a bridged carousel: ``post_images``) go the same way on both: ``HostImage``
hosts one child per run (``carousel_hosted``), then each platform's container step makes one child
container per run (``carousel_children``), checks each child until FINISHED (``children_finished``),
and only then makes the CAROUSEL container, which is polled and published like a single image's. Each
of those is its own step run with its outcome recorded, so a crash resumes at the child it stopped at.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from crosswatch.platforms.base import Finding, JobContext, Kind, MetricsAnswer, Outcome, Reading, Verdict, post_images
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


# The next carousel child comes back at once (the runner's AGAIN waits this long).
NEXT_CHILD_SECONDS = 0.01


def carousel_images(ctx: JobContext, most: int) -> list[Mapping[str, Any]]:
    """The images of a carousel post, at most ``most``; [] for a single image."""
    return post_images(ctx)[:most]


def _hosted_children(ctx: JobContext) -> list[dict[str, str]]:
    hosted = ctx.data.get("carousel_hosted")
    return [dict(h) for h in hosted if isinstance(h, Mapping)] if isinstance(hosted, list) else []


def carousel_children(ctx: JobContext) -> list[str]:
    children = ctx.data.get("carousel_children")
    return [str(c) for c in children] if isinstance(children, list) else []


@dataclass(frozen=True)
class CarouselMove:
    """What a carousel's container step does next: make child ``index``, check child ``index``, or
    make the CAROUSEL container itself."""

    kind: Literal["child", "check", "carousel"]
    index: int = 0


def carousel_move(ctx: JobContext, most: int) -> CarouselMove | None:
    """None for a single image; else the next thing the container step does."""
    images = carousel_images(ctx, most)
    if not images:
        return None
    children = carousel_children(ctx)
    if len(children) < len(images):
        return CarouselMove("child", len(children))
    finished = int(ctx.data.get("children_finished") or 0)
    if finished < len(children):
        return CarouselMove("check", finished)
    return CarouselMove("carousel")


def child_fields(ctx: JobContext, index: int, most: int, max_alt_text: int) -> dict[str, str]:
    """The fields of carousel child ``index``'s container (its hosted copy and its own alt text)."""
    image = carousel_images(ctx, most)[index]
    hosted = _hosted_children(ctx)
    fields = {"media_type": "IMAGE", "is_carousel_item": "true", "image_url": hosted[index]["url"]}
    alt = image.get("alt_text")
    if isinstance(alt, str) and alt.strip():
        fields["alt_text"] = alt.strip()[:max_alt_text]
    return fields


def carousel_request(ctx: JobContext, node: str, move: CarouselMove, *, status_request: httpx.Request | None,
                     most: int, max_alt_text: int, text_field: str,
                     extra: Mapping[str, str] | None = None) -> httpx.Request:
    """One move of a carousel as a request to the account's media ``node``: a child's container
    (``is_carousel_item``, its own alt text), a check of a child's status (``status_request``, built
    by the platform for ``carousel_children(ctx)[move.index]``), or the CAROUSEL container with the
    children in order and the caption in ``text_field`` (and ``extra``: a reply's parent)."""
    if move.kind == "check":
        assert status_request is not None  # the platform builds it for a check
        return status_request
    if move.kind == "child":
        fields = child_fields(ctx, move.index, most, max_alt_text)
    else:
        fields = {"media_type": "CAROUSEL", "children": ",".join(carousel_children(ctx)),
                  text_field: ctx.caption.text, **(extra or {})}
    return httpx.Request("POST", node, headers=bearer(ctx.access_token), data=fields)


# The status of a container as each platform words it: (status, detail) or None when it said none.
StatusReading = Callable[[httpx.Response], tuple[str, str | None] | None]


def parse_carousel_step(ctx: JobContext, move: CarouselMove, response: httpx.Response, *, platform: str,
                        error_outcome: Callable[[httpx.Response], Outcome], status_of: StatusReading,
                        max_polls: int, first_wait: float) -> Outcome:
    """The outcome of one carousel move: a child made or checked comes back for the next (AGAIN); the
    CAROUSEL container made goes on to be polled and published (NEXT, ``container_id``)."""
    if not response.is_success:
        return error_outcome(response)
    if move.kind == "check":
        return _child_checked(ctx, move.index, response, platform=platform, status_of=status_of,
                              max_polls=max_polls, first_wait=first_wait)
    container_id = id_string(graph_object(response).get("id"))
    if container_id is None:
        return Outcome(Kind.RETRY, reason=f"{platform} created no container id")
    if move.kind == "carousel":
        return Outcome.next(container_id=container_id, poll_count=0)
    children = [*carousel_children(ctx), container_id]
    return Outcome(Kind.AGAIN, data={"carousel_children": children, "child_polls": 0},
                   retry_after=NEXT_CHILD_SECONDS, reason=f"made carousel child {len(children)}")


def _child_checked(ctx: JobContext, index: int, response: httpx.Response, *, platform: str,
                   status_of: StatusReading, max_polls: int, first_wait: float) -> Outcome:
    reading = status_of(response)
    if reading is None:
        return Outcome(Kind.RETRY, reason=f"{platform} sent no status for carousel child {index + 1}")
    status, detail = reading
    polls = int(ctx.data.get("child_polls") or 0)
    said = f" ({detail})" if detail else ""
    if status == "FINISHED":
        return Outcome(Kind.AGAIN, data={"children_finished": index + 1, "child_polls": 0},
                       retry_after=NEXT_CHILD_SECONDS, reason=f"carousel child {index + 1} is ready")
    if status == "IN_PROGRESS":
        if polls + 1 >= max_polls:
            return Outcome(Kind.FAILED, data={"child_polls": polls + 1},
                           reason=f"the {platform} carousel child {index + 1} was still IN_PROGRESS after "
                                  f"{polls + 1} checks")
        return Outcome(Kind.AGAIN, data={"child_polls": polls + 1}, retry_after=poll_wait(polls, first_wait))
    if status == "EXPIRED":
        # Made again from its hosted copy: the children before it stand, this one and after are redone.
        return Outcome(Kind.AGAIN, retry_after=0.0, reason=f"carousel child {index + 1} expired; making it again",
                       data={"carousel_children": carousel_children(ctx)[:index], "child_polls": 0})
    return Outcome(Kind.FAILED, data={"container_status": status},
                   reason=f"{platform} could not process carousel image {index + 1}: {status}{said}")


@dataclass
class HostImage:
    """Put the prepared JPEG where Meta can fetch it (a LocalStep); for a carousel, one child per run
    (``max_children``: the platform's carousel limit)."""

    host: MediaHost
    platform: str = "Instagram"
    max_children: int = 10
    name: str = "host_image"
    safe_to_repeat: bool = True
    # The upload check reads the prepared image again before this step (uploadcheck.py).
    sends_media: bool = True

    def run(self, ctx: JobContext) -> Outcome:
        images = carousel_images(ctx, self.max_children)
        if images:
            return self._host_child(ctx, images)
        if ctx.image is None:
            return Outcome(Kind.REJECTED, reason=f"no prepared image for {self.platform}")
        key = hosted_key(ctx)
        try:
            url = self.host.put(Path(ctx.image.path), key)
        except Exception as exc:  # a host failure is a value here: the runner retries later
            return Outcome(Kind.RETRY, reason=f"could not put the image on the media host: {exc}")
        return Outcome.next(image_url=url, hosted_key=key)

    def _host_child(self, ctx: JobContext, images: list[Mapping[str, Any]]) -> Outcome:
        hosted = _hosted_children(ctx)
        index = len(hosted)
        if index >= len(images):
            return Outcome.next()
        key = hosted_key(ctx).removesuffix(".jpg") + f"-{index + 1}.jpg"
        try:
            url = self.host.put(Path(str(images[index].get("path"))), key)
        except Exception as exc:  # a host failure is a value here: the runner retries later
            return Outcome(Kind.RETRY, reason=f"could not put carousel image {index + 1} on the media host: {exc}")
        hosted.append({"key": key, "url": url})
        if len(hosted) < len(images):
            return Outcome(Kind.AGAIN, data={"carousel_hosted": hosted}, retry_after=NEXT_CHILD_SECONDS,
                           reason=f"hosted carousel image {len(hosted)} of {len(images)}")
        return Outcome.next(carousel_hosted=hosted)


def hosted_keys(data: Mapping[str, Any]) -> list[str]:
    """Every hosted copy a job made: its single image's, or each carousel child's."""
    keys = [str(data["hosted_key"])] if data.get("hosted_key") else []
    hosted = data.get("carousel_hosted")
    if isinstance(hosted, list):
        keys += [str(h["key"]) for h in hosted if isinstance(h, Mapping) and h.get("key")]
    return keys


@dataclass
class Unhost:
    """Remove the hosted copy, then report the job DONE. A failed removal never fails the post."""

    host: MediaHost
    name: str = "unhost_image"
    safe_to_repeat: bool = True

    def run(self, ctx: JobContext) -> Outcome:
        data: dict[str, Any] = {}
        for key in hosted_keys(ctx.data):
            try:
                self.host.delete(key)
            except Exception as exc:  # keep the post; report the leftover copy
                data["unhost_error"] = f"could not remove the hosted copy {key}: {exc}"
        media_id = id_string(ctx.data.get("media_id"))
        return Outcome(Kind.DONE, data=data, remote_id=media_id, permalink=text(ctx.data.get("permalink")))


def discard_hosted(host: MediaHost, data: Any) -> str | None:
    """Remove the hosted copy of a job that ended without reaching its last step (failed, rejected):
    the photo must not stay public. Returns what went wrong, or None."""
    problems = []
    for key in hosted_keys(data):
        try:
            host.delete(key)
        except Exception as exc:  # reported to the caller, who logs it; the job's end stands
            problems.append(f"could not remove the hosted copy {key}: {exc}")
    return "; ".join(problems) or None


# ---------------------------------------------------------------------------------------------------
# The container steps both platforms share: make the container (or a carousel's children and then
# the carousel), check it until FINISHED, publish it, read the permalink. ``ContainerFlow`` holds
# what tells the two apart; each platform's steps module gives its own and names the steps.


@dataclass(frozen=True)
class ContainerFlow:
    platform: str             # "Instagram", "Threads": in every reason the steps give
    publish_path: str         # under the account's node: "media_publish", "threads_publish"
    first_wait: float         # before the first check of a new container; checks then back off
    status_field: str         # what the platform calls the status, for "sent no container ..."
    carousel_max: int
    max_recreations: int      # an EXPIRED container is made again this many times
    max_stale: int            # a container that expired while its job waited is made again this often
    error_outcome: Callable[..., Outcome]
    create_request: Callable[[Any, JobContext], httpx.Request]          # (config, ctx): image or carousel
    carousel_request: Callable[[Any, JobContext, CarouselMove], httpx.Request]
    status_request: Callable[[Any, str, str | None], httpx.Request]     # (config, container id, token)
    read_status: StatusReading
    account_url: Callable[[Any, JobContext, str], httpx.URL | str]      # (config, ctx, path under the node)
    permalink_request: Callable[[Any, str, str | None], httpx.Request]  # (config, media id, token)


def parse_created_container(response: httpx.Response, flow: ContainerFlow) -> Outcome:
    if not response.is_success:
        return flow.error_outcome(response)
    container_id = id_string(graph_object(response).get("id"))
    if container_id is None:
        return Outcome(Kind.RETRY, reason=f"{flow.platform} created no container id")
    return Outcome.next(container_id=container_id, poll_count=0)


@dataclass
class CreateContainerStep:
    config: Any
    flow: ContainerFlow
    max_polls: int
    name: str = "create_container"
    safe_to_repeat: bool = True

    def build(self, ctx: JobContext) -> httpx.Request:
        move = carousel_move(ctx, self.flow.carousel_max)
        if move is not None:
            return self.flow.carousel_request(self.config, ctx, move)
        return self.flow.create_request(self.config, ctx)

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        move = carousel_move(ctx, self.flow.carousel_max)
        if move is not None:
            # Children are checked as a carousel is (Threads: Meta advises about 30 s before a look).
            return parse_carousel_step(ctx, move, response, platform=self.flow.platform,
                                       error_outcome=self.flow.error_outcome, status_of=self.flow.read_status,
                                       max_polls=self.max_polls, first_wait=self.flow.first_wait)
        return parse_created_container(response, self.flow)


@dataclass
class WaitForContainerStep:
    """Check the container until FINISHED (``first_wait``, then backing off, at most ``max_polls``
    times); an EXPIRED one is made again (``max_recreations``): the step clears ``container_id``, its
    next build makes a new container (the same request as the create step) and checking starts over."""

    config: Any
    flow: ContainerFlow
    max_polls: int
    name: str = "wait_for_container"
    safe_to_repeat: bool = True

    def build(self, ctx: JobContext) -> httpx.Request:
        container_id = ctx.data.get("container_id")
        if not container_id:
            if carousel_move(ctx, self.flow.carousel_max) is not None:  # its children stand: the carousel again
                return self.flow.carousel_request(self.config, ctx, CarouselMove("carousel"))
            return self.flow.create_request(self.config, ctx)
        return self.flow.status_request(self.config, str(container_id), ctx.access_token)

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if not ctx.data.get("container_id"):
            created = parse_created_container(response, self.flow)
            if created.kind is Kind.NEXT:
                return Outcome(Kind.AGAIN, data=created.data, retry_after=poll_wait(0, self.flow.first_wait))
            return created
        if not response.is_success:
            return self.flow.error_outcome(response)
        reading = self.flow.read_status(response)
        if reading is None:
            return Outcome(Kind.RETRY, reason=f"{self.flow.platform} sent no container {self.flow.status_field}")
        return self._on_status(ctx, *reading)

    def _on_status(self, ctx: JobContext, status: str, said: str | None) -> Outcome:
        platform = self.flow.platform
        polls = int(ctx.data.get("poll_count", 0) or 0)
        detail = f" ({said})" if said else ""
        match status:
            case "FINISHED":
                return Outcome.next(container_status="FINISHED")
            case "IN_PROGRESS":
                if polls + 1 >= self.max_polls:
                    reason = f"the {platform} container was still IN_PROGRESS after {polls + 1} checks"
                    return Outcome(Kind.FAILED, data={"poll_count": polls + 1}, reason=reason)
                return Outcome(Kind.AGAIN, data={"poll_count": polls + 1},
                               retry_after=poll_wait(polls, self.flow.first_wait))
            case "EXPIRED":
                recreated = int(ctx.data.get("containers_recreated", 0) or 0)
                if recreated >= self.flow.max_recreations:
                    return Outcome(Kind.FAILED, reason=f"the {platform} container expired again" + detail)
                return Outcome(Kind.AGAIN, retry_after=0.0, data={
                    "container_id": None, "poll_count": 0, "containers_recreated": recreated + 1})
            case "PUBLISHED":
                # Only a reconciliation mix-up gets here; the post exists, so never publish again.
                return Outcome(Kind.UNKNOWN, data={"container_status": "PUBLISHED"},
                               reason=f"the {platform} container is already published")
            case _:
                return Outcome(Kind.FAILED, data={"container_status": status},
                               reason=f"{platform} could not process the image: {status}{detail}")


# Publish refused because the container outlived its 24 hours (api-notes B5).
MEDIA_EXPIRED_PAIR = (-2, 2207020)


@dataclass
class PublishStep:
    """``POST /{user-id}/{publish_path}``. Not safe to repeat; the container's status can tell."""

    config: Any
    flow: ContainerFlow
    name: str = "publish"
    safe_to_repeat: bool = False

    def build(self, ctx: JobContext) -> httpx.Request:
        return httpx.Request("POST", self.flow.account_url(self.config, ctx, self.flow.publish_path),
                             headers=bearer(ctx.access_token),
                             data={"creation_id": str(ctx.data.get("container_id", ""))})

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if not response.is_success:
            stale = int(ctx.data.get("stale_containers", 0) or 0)
            expired = parse_graph_error(response, self.flow.platform).pair == MEDIA_EXPIRED_PAIR
            if expired and stale < self.flow.max_stale:
                # Refused, so certainly not published: the container outlived its 24 hours while the
                # job waited (a quota, a pause). Make a new one rather than fail the photo.
                return Outcome(Kind.AGAIN, back_to="wait_for_container", retry_after=0.0, data={
                    "container_id": None, "poll_count": 0, "container_status": None,
                    "stale_containers": stale + 1})
            return self.flow.error_outcome(response, applied_if_transient=True)
        media_id = id_string(graph_object(response).get("id"))
        if media_id is None:
            return Outcome(Kind.UNKNOWN, reason=f"{self.flow.platform} answered {response.status_code} "
                                                "without a media id")
        return Outcome.next(media_id=media_id)


@dataclass
class ReadPermalinkStep:
    config: Any
    flow: ContainerFlow
    name: str = "read_permalink"
    safe_to_repeat: bool = True

    def applies(self, ctx: JobContext) -> bool:
        # A post found by reconciliation without its media id has no node to read.
        return bool(ctx.data.get("media_id"))

    def build(self, ctx: JobContext) -> httpx.Request:
        return self.flow.permalink_request(self.config, str(ctx.data.get("media_id", "")), ctx.access_token)

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if response.is_success:
            return Outcome.next(permalink=text(graph_object(response).get("permalink")))
        outcome = self.flow.error_outcome(response)
        if outcome.kind is Kind.FAILED:
            # The post exists; a permalink we cannot read must not turn it into a failed job.
            return Outcome.next(permalink=None, permalink_error=outcome.reason)
        return outcome


def container_steps(config: Any, host: MediaHost, flow: ContainerFlow, max_polls: int) -> tuple[Any, ...]:
    """The steps of a post through the container flow, in order (the journal records the index)."""
    return (
        HostImage(host, flow.platform, max_children=flow.carousel_max),
        CreateContainerStep(config, flow, max_polls),
        WaitForContainerStep(config, flow, max_polls),
        PublishStep(config, flow),
        ReadPermalinkStep(config, flow),
        Unhost(host),
    )


class ContainerTarget:
    """A target posting through the container flow; each platform adds its reconciler and quota."""

    kind = ""

    def __init__(self, config: Any, host: MediaHost, flow: ContainerFlow, max_polls: int) -> None:
        self.config = config
        self.name = config.name
        self.host = host
        self._steps = container_steps(config, host, flow, max_polls)

    def steps(self) -> tuple[Any, ...]:
        return self._steps

    def discard(self, data: Mapping[str, Any]) -> str | None:
        """Remove the hosted copies of a job that ended without reaching its last step (failed,
        rejected): the photo must not stay public. Returns what went wrong, or None."""
        return discard_hosted(self.host, data)


# ---------------------------------------------------------------------------------------------------
# Reconciliation: did the publish step go out? The container's status says (PUBLISHED); the post
# itself is then found among the account's recent posts by its caption and time.

# Finds ``{"id", "permalink"}`` of the newest post with this caption at or after ``not_before``.
PostFinder = Callable[[httpx.Response, str, float], Mapping[str, str | None] | None]


@dataclass(frozen=True)
class RecentPosts:
    """How a platform lists the account's recent posts and finds the published one among them."""

    request: Callable[[Any, str | None, str | None, int], httpx.Request]  # (config, account, token, since)
    find: PostFinder
    not_found: str  # the reason when the container is published but its post is not found
    lookback_seconds: int


class ContainerReconciler:
    def __init__(self, config: Any, flow: ContainerFlow, recent: RecentPosts) -> None:
        self.config = config
        self.flow = flow
        self.recent = recent
        # parse() is not told when the intent was; remember it per job from build().
        self._not_before: dict[int, float] = {}

    def build(self, ctx: JobContext, step: str, intent_at: float) -> httpx.Request | None:
        container_id = ctx.data.get("container_id")
        if step != "publish" or not container_id:
            return None
        if ctx.data.get("reconcile_container") == "PUBLISHED":
            since = int(intent_at) - self.recent.lookback_seconds
            self._not_before[ctx.job_id] = float(since)
            return self.recent.request(self.config, ctx.account_id, ctx.access_token, since)
        return self.flow.status_request(self.config, str(container_id), ctx.access_token)

    def parse(self, ctx: JobContext, step: str, response: httpx.Response) -> Finding:
        not_before = self._not_before.pop(ctx.job_id, 0.0)
        if not response.is_success:
            return Finding(Verdict.UNKNOWN, reason=self.flow.error_outcome(response).reason)
        if ctx.data.get("reconcile_container") == "PUBLISHED":
            return self._find_post(ctx, response, not_before)
        reading = self.flow.read_status(response)
        if reading is None:
            return Finding(Verdict.UNKNOWN,
                           reason=f"{self.flow.platform} sent no container {self.flow.status_field}")
        if reading[0] == "PUBLISHED":
            return Finding(Verdict.ASK_AGAIN, data={"reconcile_container": "PUBLISHED"})
        # FINISHED (or IN_PROGRESS, ERROR, EXPIRED): nothing was published from this container.
        return Finding(Verdict.ABSENT, reason=f"the container is {reading[0]}, not published")

    def _find_post(self, ctx: JobContext, response: httpx.Response, not_before: float) -> Finding:
        found = self.recent.find(response, ctx.caption.text, not_before)
        if found is None:
            # Published for certain, but the post is not identifiable: never publish again.
            return Finding(Verdict.POSTED, data={"media_id": None}, reason=self.recent.not_found)
        media_id = found["id"]
        return Finding(Verdict.POSTED, remote_id=media_id, permalink=found["permalink"],
                       data={"media_id": media_id, "permalink": found["permalink"]})


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
