"""Instagram Graph endpoints: /me, media lists, the container flow, publishing quota, node reads.

The container flow follows Meta's: ``POST /{ig-user-id}/media`` fetches ``image_url`` right away and
checks it (JPEG only, at most 8 MiB, aspect 4:5..1.91:1), the container is IN_PROGRESS for
``ig_container_processing_seconds`` and then FINISHED (or ERROR/EXPIRED when a fault says so),
``media_publish`` turns it into a media object within the rolling 24 h quota.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from crosswatch.emulator import engagement
from crosswatch.emulator.faults import CONTAINER_ACTIONS
from crosswatch.emulator.httputil import BadRequestBody, form_params, graph_error, json_response, query_params
from crosswatch.emulator.ig_oauth import token_from
from crosswatch.emulator.images import inspect_image
from crosswatch.emulator.routing import Call, Route, route
from crosswatch.emulator.state import EmulatorState, IGContainer, IGMedia, IGToken, IGUser, shortcode_for

PUBLISH_SCOPE = "instagram_business_content_publish"
INSIGHTS_SCOPE = "instagram_business_manage_insights"
# Replaced by views on 21 Apr 2025 (Graph v22+); asking for them is refused.
DEPRECATED_METRICS = frozenset({"impressions", "plays", "clips_replays_count", "ig_reels_aggregated_all_plays_count",
                                "video_views"})
MIN_ASPECT = 4 / 5
MAX_ASPECT = 1.91
HASHTAG = re.compile(r"(?<![\w#])#\w+")
MENTION = re.compile(r"(?<![\w@])@[\w.]+")
STATUS_TEXT = {
    "IN_PROGRESS": "In Progress: Media is still being processed.",
    "FINISHED": "Finished: Media has been uploaded and it is ready to be published.",
    "PUBLISHED": "Published: Media has been successfully published.",
    "ERROR": "Error: Media upload has failed with error code 2207001.",
    "EXPIRED": "Expired: Media has not been published within 24 hours of its creation.",
}


def routes() -> list[Route]:
    return [
        route("GET", "/me", "ig.me", me, "instagram"),
        route("GET", "/{ig_user_id}/media", "ig.media.list", list_media, "instagram"),
        route("POST", "/{ig_user_id}/media", "ig.media.create", create_container, "instagram"),
        route("POST", "/{ig_user_id}/media_publish", "ig.media_publish", publish, "instagram"),
        route(
            "GET",
            "/{ig_user_id}/content_publishing_limit",
            "ig.publishing_limit",
            publishing_limit,
            "instagram",
        ),
        route("GET", "/{id}/insights", "ig.media.insights", media_insights, "instagram"),
        route("GET", "/{id}", "ig.node", read_node, "instagram"),
    ]


# --- shared checks -------------------------------------------------------------------------------------


def _params(call: Call) -> dict[str, str] | httpx.Response:
    """Graph takes parameters from the query string and, on POST, from a form body as well."""
    try:
        return {**query_params(call.request), **form_params(call.request)}
    except BadRequestBody as exc:
        return graph_error(100, f"Invalid parameter: {exc}")


def _authorized_owner(call: Call, params: dict[str, str]) -> tuple[IGToken, IGUser] | httpx.Response:
    token = token_from(call, params)
    if isinstance(token, httpx.Response):
        return token
    user = call.state.ig_users[token.user_id]
    path_id = call.path_params.get("ig_user_id", "me")
    if path_id != "me" and path_id not in (user.user_id, user.app_scoped_id):
        return _unsupported(call, path_id)
    return token, user


def _authorized_request(call: Call) -> tuple[dict[str, str], IGToken, IGUser] | httpx.Response:
    """The request's parameters, token and account, or the Graph error to answer with."""
    params = _params(call)
    if isinstance(params, httpx.Response):
        return params
    owner = _authorized_owner(call, params)
    if isinstance(owner, httpx.Response):
        return owner
    return params, owner[0], owner[1]


def _params_and_token(call: Call) -> tuple[dict[str, str], IGToken] | httpx.Response:
    """The request's parameters and its live token, for reads of any node (not only the account's)."""
    params = _params(call)
    if isinstance(params, httpx.Response):
        return params
    token = token_from(call, params)
    return token if isinstance(token, httpx.Response) else (params, token)


def _unsupported(call: Call, object_id: str) -> httpx.Response:
    return graph_error(
        100,
        f"Unsupported {call.request.method.lower()} request. Object with ID '{object_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        subcode=33,
        error_type="GraphMethodException",
    )


def _fields(params: dict[str, str]) -> list[str]:
    """``fields``, split at the top-level commas: ``children{id,media_url}`` stays one item."""
    return _split_fields(params.get("fields", ""))


def _split_fields(text: str) -> list[str]:
    items, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += {"{": 1, "}": -1, "(": 1, ")": -1}.get(char, 0)
        current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def _subfields(fields: list[str], name: str) -> list[str] | None:
    """The fields asked for inside ``name{...}``; None when ``name`` was not asked for."""
    for item in fields:
        if item == name:
            return []
        if item.startswith(name + "{") and item.endswith("}"):
            return _split_fields(item[len(name) + 1 : -1])
    return None


def iso_graph(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


# --- profile --------------------------------------------------------------------------------------------


def me(call: Call) -> httpx.Response:
    request = _authorized_request(call)
    if isinstance(request, httpx.Response):
        return request
    params, _token, user = request
    return json_response(200, user_json(call.state, user, _fields(params)))


def user_json(state: EmulatorState, user: IGUser, fields: list[str]) -> dict[str, Any]:
    media_count = sum(1 for m in state.ig_media if m.user_id == user.user_id)
    available: dict[str, Any] = {
        "user_id": user.user_id,
        "username": user.username,
        "name": user.name,
        "account_type": user.account_type,
        "profile_picture_url": "",
        "followers_count": 0,
        "follows_count": 0,
        "media_count": media_count,
    }
    data = {key: available[key] for key in fields if key in available}
    data["id"] = user.app_scoped_id
    return data


# --- media reads ----------------------------------------------------------------------------------------


def media_json(call: Call, media: IGMedia, fields: list[str]) -> dict[str, Any]:
    state = call.state
    owner = state.ig_users.get(media.user_id)
    first = media.children[0] if media.children else media
    available: dict[str, Any] = {
        "caption": media.caption,
        "media_type": media.media_type,
        "media_product_type": "FEED",
        # An album's media_url is its first image's.
        "media_url": f"{call.origin}/_emulator/media/ig/{first.id}.jpg",
        "permalink": f"{call.origin}/_emulator/p/{media.shortcode}/",
        "shortcode": media.shortcode,
        "timestamp": iso_graph(media.timestamp),
        "username": owner.username if owner else "",
        "like_count": 0,
        "comments_count": 0,
        "is_comment_enabled": True,
        "owner": {"id": owner.app_scoped_id if owner else media.user_id},
    }
    if media.alt_text is not None:
        available["alt_text"] = media.alt_text
    data = {key: available[key] for key in fields if key in available}
    child_fields = _subfields(fields, "children")
    if child_fields is not None and media.children:
        # Children have no permalink, caption or owner of their own (IG Media reference).
        wanted = [f for f in child_fields if f in ("media_type", "media_url", "timestamp", "alt_text")]
        data["children"] = {"data": [media_json(call, child, wanted) for child in media.children]}
    data["id"] = media.id
    return data


def list_media(call: Call) -> httpx.Response:
    request = _authorized_request(call)
    if isinstance(request, httpx.Response):
        return request
    params, _token, user = request
    try:
        limit = max(1, min(100, int(params.get("limit", "25"))))
        since = float(params["since"]) if "since" in params else None
        until = float(params["until"]) if "until" in params else None
    except ValueError:
        return graph_error(100, "Invalid parameter: limit, since and until must be numbers")
    items = [
        m
        for m in reversed(call.state.ig_media)  # newest first
        if m.user_id == user.user_id
        and (since is None or m.timestamp >= since)
        and (until is None or m.timestamp <= until)
    ]
    start = _cursor_start(items, params)
    if start is None:
        return graph_error(100, "Invalid parameter: unknown cursor")
    page = items[start : start + limit]
    payload: dict[str, Any] = {"data": [media_json(call, m, _fields(params)) for m in page]}
    if page:
        payload["paging"] = _paging(call, params, page, has_more=start + limit < len(items))
    return json_response(200, payload)


def _cursor(media_id: str) -> str:
    return base64.urlsafe_b64encode(media_id.encode()).decode().rstrip("=")


def _cursor_start(items: list[IGMedia], params: dict[str, str]) -> int | None:
    def position(cursor: str) -> int | None:
        try:
            media_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return next((i for i, m in enumerate(items) if m.id == media_id), None)

    if "after" in params:
        found = position(params["after"])
        return None if found is None else found + 1
    if "before" in params:
        found = position(params["before"])
        limit = max(1, min(100, int(params.get("limit", "25"))))
        return None if found is None else max(0, found - limit)
    return 0


def _paging(call: Call, params: dict[str, str], page: list[IGMedia], *, has_more: bool) -> dict[str, Any]:
    paging: dict[str, Any] = {"cursors": {"before": _cursor(page[0].id), "after": _cursor(page[-1].id)}}
    if has_more:
        next_params = {k: v for k, v in params.items() if k not in ("before", "after")}
        next_params["after"] = _cursor(page[-1].id)
        paging["next"] = f"{call.origin}{call.request.url.path}?{urlencode(next_params)}"
    return paging


def read_node(call: Call) -> httpx.Response:
    """``GET /{id}``: a container's status, a media object, or the account itself."""
    found = _params_and_token(call)
    if isinstance(found, httpx.Response):
        return found
    params, token = found
    state = call.state
    node_id = call.path_params["id"]
    fields = _fields(params)
    if node_id == "me" or node_id in (token.user_id, state.ig_users[token.user_id].app_scoped_id):
        return json_response(200, user_json(state, state.ig_users[token.user_id], fields))
    container = state.ig_containers.get(node_id)
    if container is not None and container.user_id == token.user_id:
        return json_response(200, container_json(state, container, fields))
    media = state.ig_media_by_id(node_id)
    if media is not None and media.user_id == token.user_id:
        data = media_json(call, media, fields)
        expansion = next((f for f in fields if f == "insights" or f.startswith("insights.")), None)
        if expansion is not None:
            # Graph field expansion: insights.metric(views,reach) on the media node, one call for the
            # post's timestamp and its insights (an edge error fails the whole call; UNCONFIRMED).
            metric = re.fullmatch(r"insights\.metric\(([^)]*)\)", expansion)
            asked = [m.strip() for m in metric.group(1).split(",") if m.strip()] if metric else []
            answer = insights_answer(state, token, media, asked, node_id)
            if isinstance(answer, httpx.Response):
                return answer
            data["insights"] = answer
        return json_response(200, data)
    return _unsupported(call, node_id)


def media_insights(call: Call) -> httpx.Response:
    """``GET /{ig-media-id}/insights?metric=...``: needs instagram_business_manage_insights; a post with
    too few viewers answers code 10 "Not enough viewers"; while its data lags, an empty list (api-notes B4)."""
    found = _params_and_token(call)
    if isinstance(found, httpx.Response):
        return found
    params, token = found
    media = call.state.ig_media_by_id(call.path_params["id"])
    if media is None or media.user_id != token.user_id:
        return _unsupported(call, call.path_params["id"])
    asked = [m.strip() for m in params.get("metric", "").split(",") if m.strip()]
    answer = insights_answer(call.state, token, media, asked, call.path_params["id"])
    return answer if isinstance(answer, httpx.Response) else json_response(200, answer)


def insights_answer(state: EmulatorState, token: IGToken, media: IGMedia, asked: list[str],
                    node_id: str) -> dict[str, Any] | httpx.Response:
    """The insights of ``media`` (the edge, or the ``insights.metric(...)`` field expansion of the media
    node), or the Graph error Instagram answers instead."""
    if INSIGHTS_SCOPE not in token.scopes:
        return graph_error(10, "(#10) Application does not have permission for this action")
    seen = engagement.counts(state.engagement, media.id, media.caption, media.timestamp, state.now())
    available = engagement.ig_metric_values(seen)
    if not asked:
        return graph_error(100, "(#100) The parameter metric is required")
    refused = next((m for m in asked if m not in available), None)
    if refused is not None:
        why = (" is no longer supported; use views" if refused in DEPRECATED_METRICS
               else f" must be one of the following values: {', '.join(available)}")
        return graph_error(100, f"(#100) metric[{asked.index(refused)}] {refused}{why}")
    if node_id != media.id:
        return graph_error(100, "(#100) Insights are not available for carousel children")
    if state.now() - media.timestamp < state.engagement.insights_delay_seconds:
        return {"data": []}
    if seen.views < state.engagement.min_viewers:
        return graph_error(10, "(#10) Not enough viewers for the media to show insights",
                           user_title="Media Insights Not Available",
                           user_msg="Not enough viewers for the media to show insights")
    return engagement.graph_insights(media.id, {m: available[m] for m in asked})


def container_json(state: EmulatorState, container: IGContainer, fields: list[str]) -> dict[str, Any]:
    status = state.container_status(container)
    available: dict[str, Any] = {"status_code": status, "status": STATUS_TEXT[status]}
    data = {key: available[key] for key in fields if key in available}
    data["id"] = container.id
    return data


# --- container creation ---------------------------------------------------------------------------------


def create_container(call: Call) -> httpx.Response:
    request = _authorized_request(call)
    if isinstance(request, httpx.Response):
        return request
    params, token, user = request
    if PUBLISH_SCOPE not in token.scopes:
        return graph_error(
            10, "Application does not have permission for this action", error_type="OAuthException"
        )
    problem = _container_params_problem(call.state, params)
    if problem is not None:
        return problem
    state = call.state
    if params.get("media_type") == "CAROUSEL":
        return _create_carousel(state, params, user)
    image_url = params["image_url"]
    limit = state.settings.ig_image_max_bytes
    fetch = state.fetch_image
    if fetch is None:
        raise RuntimeError("the emulator was built without an image fetcher")
    with state.unlocked():
        data = fetch(image_url, call.origin, limit)
    image_problem = _image_problem(state, data)
    if image_problem is not None:
        return image_problem
    assert data is not None  # _image_problem refuses None
    facts = inspect_image(data)
    assert facts is not None
    now = state.now()
    container = IGContainer(
        id=state.next_ig_container_id(),
        user_id=user.user_id,
        image_url=image_url,
        caption=params.get("caption", ""),
        alt_text=params.get("alt_text"),
        image=data,
        width=facts.width,
        height=facts.height,
        created_at=now,
        ready_at=now + state.settings.ig_container_processing_seconds,
        is_carousel_item=params.get("is_carousel_item") == "true",
    )
    fault = state.faults.take(call.endpoint, CONTAINER_ACTIONS)
    if fault is not None:
        container.forced_outcome = "ERROR" if fault.action == "container_error" else "EXPIRED"
    state.ig_containers[container.id] = container
    return json_response(200, {"id": container.id})


# Meta's content publishing guide: a carousel holds up to 10 images or videos; one item is not a carousel.
CAROUSEL_MIN_CHILDREN = 2
CAROUSEL_MAX_CHILDREN = 10
# Children must share one aspect ratio (third parties report Meta crops them to the first's; api-notes
# item 21): refused here beyond a rounding pixel's difference, so a client that does not fit them finds out.
CAROUSEL_ASPECT_TOLERANCE = 0.01


def _create_carousel(state: EmulatorState, params: dict[str, str], user: IGUser) -> httpx.Response:
    """``media_type=CAROUSEL`` with ``children`` (comma-separated container ids, in order)."""
    ids = [part.strip() for part in params.get("children", "").split(",") if part.strip()]
    if not CAROUSEL_MIN_CHILDREN <= len(ids) <= CAROUSEL_MAX_CHILDREN:
        return _meta_media_error(
            100, 2207019, "Invalid parameter", "Carousel size",
            f"A carousel must have between {CAROUSEL_MIN_CHILDREN} and {CAROUSEL_MAX_CHILDREN} children; "
            f"{len(ids)} were given.")  # fmt: skip
    children = [state.ig_containers.get(child_id) for child_id in ids]
    for child_id, child in zip(ids, children, strict=True):
        if child is None or child.user_id != user.user_id or not child.is_carousel_item:
            return graph_error(100, f"The child {child_id} is not a carousel item container of this account.")
        if state.container_status(child) != "FINISHED":
            return _meta_media_error(
                9007, 2207027, "Media ID is not available", "Media not ready",
                f"The carousel child {child_id} is not ready; wait until its status_code is FINISHED.")  # fmt: skip
    first = children[0]
    assert first is not None
    for child in children[1:]:
        assert child is not None
        if abs(child.width / child.height - first.width / first.height) > CAROUSEL_ASPECT_TOLERANCE:
            return _meta_media_error(
                36003, 2207009, "The aspect ratio is not supported.", "Unsupported aspect ratio",
                f"The carousel child {child.id} ({child.width}/{child.height}) does not have the aspect ratio "
                f"of the first ({first.width}/{first.height}).")  # fmt: skip
    now = state.now()
    container = IGContainer(
        id=state.next_ig_container_id(), user_id=user.user_id, image_url="", caption=params.get("caption", ""),
        alt_text=None, image=first.image, width=first.width, height=first.height, created_at=now,
        ready_at=now + state.settings.ig_container_processing_seconds, children=tuple(ids))
    state.ig_containers[container.id] = container
    return json_response(200, {"id": container.id})


def _container_params_problem(state: EmulatorState, params: dict[str, str]) -> httpx.Response | None:
    settings = state.settings
    media_type = params.get("media_type")
    if media_type not in (None, "", "IMAGE", "CAROUSEL"):
        return graph_error(100, "The emulator supports images and carousels only (media_type IMAGE or CAROUSEL).")
    if params.get("is_carousel_item") not in (None, "true", "false"):
        return graph_error(100, "is_carousel_item must be true or false.")
    if media_type == "CAROUSEL":
        if params.get("image_url") or params.get("is_carousel_item") == "true":
            return graph_error(100, "A CAROUSEL container takes children, not image_url or is_carousel_item.")
    elif params.get("children"):
        return graph_error(100, "children is only for media_type=CAROUSEL.")
    elif not params.get("image_url"):
        return graph_error(100, "The parameter image_url is required.")
    caption = params.get("caption", "")
    if (
        len(caption) > settings.ig_caption_max_chars
        or len(HASHTAG.findall(caption)) > settings.ig_max_hashtags
    ):
        return _meta_media_error(
            36004,
            2207010,
            "The caption is too long.",
            "Caption too long",
            f"The caption must be at most {settings.ig_caption_max_chars} characters and "
            f"{settings.ig_max_hashtags} hashtags.",
        )
    if len(MENTION.findall(caption)) > settings.ig_max_mentions:
        return _meta_media_error(
            100, 2207040, "Too many tags.", "Too many tags", "A post can tag at most 20 accounts."
        )
    if len(params.get("alt_text", "")) > settings.ig_alt_text_max_chars:
        return graph_error(100, f"alt_text must be at most {settings.ig_alt_text_max_chars} characters.")
    return None


def _image_problem(state: EmulatorState, data: bytes | None) -> httpx.Response | None:
    if data is None:
        return _meta_media_error(
            9004,
            2207052,
            "Only photo or video can be accepted as media type.",
            "Media download has failed.",
            "The media could not be fetched from this uri.",
        )
    if len(data) > state.settings.ig_image_max_bytes:
        return _meta_media_error(
            36000,
            2207004,
            "The image size is too large.",
            "Image size too large",
            "The image is too large to download. It should be less than 8 MiB.",
        )
    facts = inspect_image(data)
    # MPO (multi-picture JPEG) decodes as a JPEG but Meta refuses it, as it refuses PNG and the rest.
    if facts is None or facts.format != "JPEG":
        return _meta_media_error(
            36001,
            2207005,
            "The image format is not supported.",
            "Unsupported format",
            "The image format is not supported. Supported formats are: JPEG.",
        )
    if not MIN_ASPECT - 1e-9 <= facts.aspect <= MAX_ASPECT + 1e-9:
        return _meta_media_error(
            36003,
            2207009,
            "The aspect ratio is not supported.",
            "Unsupported aspect ratio",
            "The submitted image with aspect ratio "
            f"('{facts.width}/{facts.height}') cannot be published. Please submit an image with a valid "
            "aspect ratio.",
        )
    return None


def _meta_media_error(code: int, subcode: int, message: str, title: str, user_msg: str) -> httpx.Response:
    return graph_error(code, message, subcode=subcode, user_title=title, user_msg=user_msg)


# --- publishing -----------------------------------------------------------------------------------------


def publish(call: Call) -> httpx.Response:
    request = _authorized_request(call)
    if isinstance(request, httpx.Response):
        return request
    params, token, user = request
    if PUBLISH_SCOPE not in token.scopes:
        return graph_error(10, "Application does not have permission for this action")
    state = call.state
    container = state.ig_containers.get(params.get("creation_id", ""))
    if container is None or container.user_id != user.user_id:
        return _meta_media_error(
            24, 2207008, "The media container does not exist.", "Media not found",
            "The container does not exist or has expired.",
        )  # fmt: skip
    problem = _publish_problem(state, container, user)
    if problem is not None:
        return problem
    if container.is_carousel_item:
        return graph_error(100, "A carousel item cannot be published on its own; publish its CAROUSEL container.")
    items = [state.ig_containers[child_id] for child_id in container.children]
    media = publish_media(state, user, container.caption, container.alt_text, container.image, container.id,
                          carousel=tuple((item.image, item.alt_text) for item in items))
    container.media_id = media.id
    return json_response(200, {"id": media.id})


def _publish_problem(state: EmulatorState, container: IGContainer, user: IGUser) -> httpx.Response | None:
    status = state.container_status(container)
    if status == "IN_PROGRESS":
        return _meta_media_error(
            9007, 2207027, "Media ID is not available", "Media not ready",
            "The media is not ready for publishing, please wait for a moment",
        )  # fmt: skip
    if status == "EXPIRED":
        return _meta_media_error(
            -2, 2207020, "The media has expired.", "Media expired",
            "The media you are trying to access has expired. Please try again by generating a new container.",
        )  # fmt: skip
    if status == "ERROR":
        return _meta_media_error(
            -1, 2207032, "Create media has failed.", "Media upload failed",
            "The container failed; create a new one.",
        )  # fmt: skip
    if status == "PUBLISHED":
        # Not documented by Meta; a second publish of one container is refused, never posted twice.
        return _meta_media_error(
            24, 2207008, "The media container has already been published.", "Already published",
            "This container has been published already.",
        )  # fmt: skip
    if quota_usage(state, user) >= state.settings.ig_publish_quota:
        return _meta_media_error(
            9, 2207042, "Application request limit reached", "Max posts reached",
            "The maximum number of posts that were allowed to be published using the Content Publishing API "
            "has been reached.",
        )  # fmt: skip
    return None


def publish_media(
    state: EmulatorState,
    user: IGUser,
    caption: str,
    alt_text: str | None,
    image: bytes,
    container_id: str | None,
    *,
    timestamp: float | None = None,
    carousel: tuple[tuple[bytes, str | None], ...] = (),
) -> IGMedia:
    """Put a media object on the account: through the API (a container) or "from the phone" (none).

    ``carousel``: (image, alt text) of each image of an album (then ``image`` is the first's)."""
    facts = inspect_image(image)
    width, height = (facts.width, facts.height) if facts else (0, 0)
    media_id = state.next_ig_media_id()
    media = IGMedia(
        id=media_id,
        user_id=user.user_id,
        caption=caption,
        alt_text=alt_text,
        image=image,
        width=width,
        height=height,
        timestamp=state.now() if timestamp is None else timestamp,
        shortcode=shortcode_for(media_id),
        container_id=container_id,
        source="api" if container_id is not None else "phone",
    )
    for child_image, child_alt in carousel:
        child_facts = inspect_image(child_image)
        child_id = state.next_ig_media_id()
        media.children.append(IGMedia(
            id=child_id, user_id=user.user_id, caption="", alt_text=child_alt, image=child_image,
            width=child_facts.width if child_facts else 0, height=child_facts.height if child_facts else 0,
            timestamp=media.timestamp, shortcode=shortcode_for(child_id), container_id=None,
            source=media.source,
        ))  # fmt: skip
    state.ig_media.append(media)
    return media


def quota_usage(state: EmulatorState, user: IGUser, since: float | None = None) -> int:
    """Posts published through the API in the rolling window (posts made on the phone do not count)."""
    window_start = state.now() - state.settings.ig_publish_quota_window
    start = window_start if since is None else max(since, window_start)
    return sum(
        1 for m in state.ig_media if m.user_id == user.user_id and m.source == "api" and m.timestamp > start
    )


def publishing_limit(call: Call) -> httpx.Response:
    request = _authorized_request(call)
    if isinstance(request, httpx.Response):
        return request
    params, _token, user = request
    state = call.state
    try:
        since = float(params["since"]) if "since" in params else None
    except ValueError:
        return graph_error(100, "Invalid parameter: since must be a unix timestamp")
    entry: dict[str, Any] = {"quota_usage": quota_usage(state, user, since)}
    if "config" in _fields(params):
        entry["config"] = {
            "quota_total": state.settings.ig_publish_quota,
            "quota_duration": int(state.settings.ig_publish_quota_window),
        }
    return json_response(200, {"data": [entry]})
