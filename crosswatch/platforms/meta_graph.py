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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from crosswatch.platforms.base import JobContext, Kind, Outcome, post_images
from crosswatch.platforms.reading import id_string, integer, json_body, text

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
