"""Threads API endpoints under ``/threads`` (graph_base ``<url>/threads``, a version segment may follow):
the profile, the container flow, the publishing quota, node reads, the account's threads.

Held to developers.facebook.com/docs/threads: ``POST /{threads-user-id}/threads`` (posts: ``media_type``
required, ``image_url`` required for IMAGE, ``text`` at most 500 characters with emoji counted as their
UTF-8 bytes), ``POST /{threads-user-id}/threads_publish`` (``creation_id``), ``GET /{container-id}``
(troubleshooting: ``status`` IN_PROGRESS, FINISHED, ERROR, EXPIRED, PUBLISHED; ``error_message``),
``GET /{threads-user-id}/threads_publishing_limit`` (overview: 250 per 24 h, ``quota_usage``, ``config``),
``GET /{threads-user-id}/threads`` (``since``, ``until``, ``limit``). Unknown or missing parameters are
refused with Graph's error shape. Instagram owns the unprefixed Graph paths on the same base URL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import regex

from crosswatch.emulator import engagement
from crosswatch.emulator.faults import CONTAINER_ACTIONS
from crosswatch.emulator.httputil import BadRequestBody, form_params, graph_error, json_response, query_params
from crosswatch.emulator.images import inspect_image
from crosswatch.emulator.routing import Call, Route
from crosswatch.emulator.state import shortcode_for
from crosswatch.emulator.threads_oauth import PREFIX, threads_route, token_from
from crosswatch.emulator.threads_state import ThreadsContainer, ThreadsPost, ThreadsState, ThreadsToken, ThreadsUser

PUBLISH_SCOPE = "threads_content_publish"
INSIGHTS_SCOPE = "threads_manage_insights"
CONTAINER_ID_BASE = 18_000_000_000_000_000
MEDIA_ID_BASE = 17_900_000_000_000_000
# POST /{threads-user-id}/threads, Posts page and reference: every parameter Meta documents for it.
CREATE_PARAMS = frozenset({
    "media_type", "image_url", "video_url", "text", "alt_text", "is_carousel_item", "children",
    "reply_to_id", "reply_control", "link_attachment", "quote_post_id", "topic_tag", "location_id",
    "allowlisted_country_codes", "auto_publish_text", "is_spoiler_media", "text_entities", "gif_attachment",
    "access_token",
})
PUBLISH_PARAMS = frozenset({"creation_id", "access_token"})
MEDIA_FIELDS = ("id", "media_product_type", "media_type", "media_url", "permalink", "owner", "username", "text",
                "timestamp", "shortcode", "is_quote_post", "alt_text")
USER_FIELDS = ("id", "username", "name", "threads_profile_picture_url", "threads_biography")
_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}]")


def routes() -> list[Route]:
    return [
        threads_route("GET", "/me", "threads.me", me),
        threads_route("GET", "/{user_id}/threads_publishing_limit", "threads.publishing_limit", publishing_limit),
        threads_route("POST", "/{user_id}/threads_publish", "threads.publish", publish),
        threads_route("GET", "/{user_id}/threads", "threads.list", list_threads),
        threads_route("POST", "/{user_id}/threads", "threads.create", create_container),
        threads_route("GET", "/{id}/insights", "threads.media.insights", media_insights),
        threads_route("GET", "/{id}", "threads.node", read_node),
        Route("GET", re.compile(rf"^{PREFIX}/_media/(?P<id>[0-9]+)\.jpg$"), "threads.media_file", media_file,
              "threads"),
        Route("GET", re.compile(rf"^{PREFIX}/@[^/]+/post/(?P<shortcode>[A-Za-z0-9]+)/?$"), "threads.post_page",
              post_page, "threads"),
    ]


def threads_text_length(text: str) -> int:
    """Meta's count: emoji as their UTF-8 bytes, everything else one per character a person sees."""
    return sum(len(g.encode("utf-8")) if _EMOJI.search(g) else 1 for g in _GRAPHEME.findall(text))


def iso_graph(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


# --- shared checks -------------------------------------------------------------------------------------


def _authorized(call: Call) -> tuple[dict[str, str], ThreadsToken, ThreadsUser] | httpx.Response:
    try:
        params = {**query_params(call.request), **form_params(call.request)}
    except BadRequestBody as exc:
        return graph_error(100, f"Invalid parameter: {exc}")
    token = token_from(call, params)
    if isinstance(token, httpx.Response):
        return token
    user = call.state.threads.users[token.user_id]
    path_id = call.path_params.get("user_id", "me")
    if path_id not in ("me", user.user_id):
        return _unsupported(call, path_id)
    return params, token, user


def _unsupported(call: Call, object_id: str) -> httpx.Response:
    return graph_error(
        100,
        f"Unsupported {call.request.method.lower()} request. Object with ID '{object_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        subcode=33, error_type="GraphMethodException",
    )  # fmt: skip


def _fields(params: dict[str, str], known: tuple[str, ...]) -> list[str] | httpx.Response:
    fields = [f.strip() for f in params.get("fields", "").split(",") if f.strip()]
    unknown = [f for f in fields if f not in known]
    if unknown:
        return graph_error(100, f"Tried accessing nonexisting field ({unknown[0]})")
    return fields


def _no_publish_scope(token: ThreadsToken) -> httpx.Response | None:
    if PUBLISH_SCOPE in token.scopes:
        return None
    return graph_error(10, "Application does not have permission for this action", error_type="OAuthException")


# --- profile and reads ----------------------------------------------------------------------------------


def me(call: Call) -> httpx.Response:
    request = _authorized(call)
    if isinstance(request, httpx.Response):
        return request
    params, _token, user = request
    fields = _fields(params, USER_FIELDS)
    if isinstance(fields, httpx.Response):
        return fields
    return json_response(200, user_json(user, fields))


def user_json(user: ThreadsUser, fields: list[str]) -> dict[str, Any]:
    available = {"id": user.user_id, "username": user.username, "name": user.name,
                 "threads_profile_picture_url": "", "threads_biography": ""}
    data = {key: available[key] for key in fields if key in available}
    data["id"] = user.user_id
    return data


def permalink(call: Call, threads: ThreadsState, post: ThreadsPost) -> str:
    user = threads.users.get(post.user_id)
    return f"{call.origin}{PREFIX}/@{user.username if user else post.user_id}/post/{post.shortcode}"


def post_json(call: Call, post: ThreadsPost, fields: list[str]) -> dict[str, Any]:
    threads = call.state.threads
    user = threads.users.get(post.user_id)
    available: dict[str, Any] = {
        "id": post.id, "media_product_type": "THREADS", "media_type": "IMAGE",
        "media_url": f"{call.origin}{PREFIX}/_media/{post.id}.jpg", "permalink": permalink(call, threads, post),
        "owner": {"id": post.user_id}, "username": user.username if user else "", "text": post.text,
        "timestamp": iso_graph(post.timestamp), "shortcode": post.shortcode, "is_quote_post": False,
    }
    if post.alt_text is not None:
        available["alt_text"] = post.alt_text
    data = {key: available[key] for key in fields if key in available}
    data["id"] = post.id
    return data


def media_insights(call: Call) -> httpx.Response:
    """``GET /{threads-media-id}/insights?metric=views,likes,replies,reposts,quotes,shares``; needs
    threads_manage_insights (Threads Insights API)."""
    params = {**query_params(call.request)}
    token = token_from(call, params)
    if isinstance(token, httpx.Response):
        return token
    state = call.state
    post = state.threads.post_by_id(call.path_params["id"])
    if post is None or post.user_id != token.user_id:
        return _unsupported(call, call.path_params["id"])
    if INSIGHTS_SCOPE not in token.scopes:
        return graph_error(10, "Application does not have permission for this action", error_type="OAuthException")
    seen = engagement.counts(state.engagement, post.id, post.text, post.timestamp, state.now())
    available = engagement.threads_metric_values(seen)
    asked = [m.strip() for m in params.get("metric", "").split(",") if m.strip()]
    refused = next((m for m in asked if m not in available), None) if asked else "metric"
    if refused is not None:
        return graph_error(100, f"(#100) metric must be one of the following values: {', '.join(available)}")
    return json_response(200, engagement.graph_insights(post.id, {m: available[m] for m in asked}))


def read_node(call: Call) -> httpx.Response:
    """``GET /{id}``: a container's status, a thread, or the account itself."""
    try:
        params = {**query_params(call.request)}
    except BadRequestBody as exc:
        return graph_error(100, f"Invalid parameter: {exc}")
    token = token_from(call, params)
    if isinstance(token, httpx.Response):
        return token
    threads = call.state.threads
    node_id = call.path_params["id"]
    if node_id in ("me", token.user_id):
        fields = _fields(params, USER_FIELDS)
        return fields if isinstance(fields, httpx.Response) else json_response(
            200, user_json(threads.users[token.user_id], fields))
    container = threads.containers.get(node_id)
    if container is not None and container.user_id == token.user_id:
        fields = _fields(params, ("id", "status", "error_message"))
        if isinstance(fields, httpx.Response):
            return fields
        return json_response(200, container_json(threads, container, call.state.now(), fields))
    post = threads.post_by_id(node_id)
    if post is not None and post.user_id == token.user_id:
        fields = _fields(params, MEDIA_FIELDS)
        return fields if isinstance(fields, httpx.Response) else json_response(200, post_json(call, post, fields))
    return _unsupported(call, node_id)


def container_json(threads: ThreadsState, container: ThreadsContainer, now: float,
                   fields: list[str]) -> dict[str, Any]:
    status = threads.container_status(container, now)
    data: dict[str, Any] = {}
    if "status" in fields:
        data["status"] = status
    if "error_message" in fields and status == "ERROR":
        data["error_message"] = container.error_message or "UNKNOWN"
    data["id"] = container.id
    return data


def list_threads(call: Call) -> httpx.Response:
    request = _authorized(call)
    if isinstance(request, httpx.Response):
        return request
    params, _token, user = request
    fields = _fields(params, MEDIA_FIELDS)
    if isinstance(fields, httpx.Response):
        return fields
    try:
        limit = max(1, min(100, int(params.get("limit", "25"))))
        since = float(params["since"]) if "since" in params else None
        until = float(params["until"]) if "until" in params else None
    except ValueError:
        return graph_error(100, "Invalid parameter: limit, since and until must be numbers")
    posts = [p for p in reversed(call.state.threads.posts) if p.user_id == user.user_id
             and (since is None or p.timestamp >= since) and (until is None or p.timestamp <= until)]
    return json_response(200, {"data": [post_json(call, p, fields) for p in posts[:limit]]})


def media_file(call: Call) -> httpx.Response:
    post = call.state.threads.post_by_id(call.path_params["id"])
    if post is None:
        return graph_error(100, "Unsupported get request.", subcode=33, status=404)
    return httpx.Response(200, content=post.image, headers={"content-type": "image/jpeg"})


# --- the container flow ---------------------------------------------------------------------------------


def create_container(call: Call) -> httpx.Response:
    request = _authorized(call)
    if isinstance(request, httpx.Response):
        return request
    params, token, user = request
    refused = _no_publish_scope(token) or _create_params_problem(call.state.threads, params)
    if refused is not None:
        return refused
    state = call.state
    threads = state.threads
    refused = _reply_problem(threads, params)
    if refused is not None:
        return refused
    if params["media_type"] == "CAROUSEL":
        return _create_carousel(threads, params, user.user_id, state.now())
    fetch = state.fetch_image
    if fetch is None:
        raise RuntimeError("the emulator was built without an image fetcher")
    with state.unlocked():
        data = fetch(params["image_url"], call.origin, threads.settings.image_max_bytes)
    now = state.now()
    container = ThreadsContainer(
        id=threads.next_id(CONTAINER_ID_BASE), user_id=user.user_id, image_url=params["image_url"],
        text=params.get("text", ""), alt_text=params.get("alt_text"), image=data or b"", created_at=now,
        ready_at=now + threads.settings.processing_seconds,
        is_carousel_item=params.get("is_carousel_item") == "true", reply_to=params.get("reply_to_id"),
    )
    # Meta fetches and checks the media while the container processes: a bad image ends in ERROR.
    problem = _image_problem(threads, data)
    if problem is not None:
        container.forced, container.error_message = "ERROR", problem
    fault = state.faults.take(call.endpoint, CONTAINER_ACTIONS)
    if fault is not None:
        container.forced = "ERROR" if fault.action == "container_error" else "EXPIRED"
        container.error_message = "UNKNOWN" if container.forced == "ERROR" else None
    threads.containers[container.id] = container
    return json_response(200, {"id": container.id})


def _create_params_problem(threads: ThreadsState, params: dict[str, str]) -> httpx.Response | None:
    unknown = sorted(set(params) - CREATE_PARAMS)
    if unknown:
        return graph_error(100, f"(#100) Param {unknown[0]} is not a valid parameter")
    media_type = params.get("media_type")
    if not media_type:
        return graph_error(100, "The parameter media_type is required.")
    if media_type not in ("IMAGE", "CAROUSEL"):
        return graph_error(100, "The emulator supports images and carousels only (media_type IMAGE or CAROUSEL).")
    if params.get("is_carousel_item") not in (None, "true", "false"):
        return graph_error(100, "Param is_carousel_item must be a boolean.")
    if media_type == "CAROUSEL":
        if params.get("image_url") or params.get("is_carousel_item") == "true":
            return graph_error(100, "A CAROUSEL container takes children, not image_url or is_carousel_item.")
        if not params.get("children"):
            return graph_error(100, "The parameter children is required for media_type=CAROUSEL.")
    elif params.get("children"):
        return graph_error(100, "Param children is only for media_type=CAROUSEL.")
    elif not params.get("image_url"):
        return graph_error(100, "The parameter image_url is required for media_type=IMAGE.")
    length = threads_text_length(params.get("text", ""))
    if length > threads.settings.text_max:
        return graph_error(100, f"Param text must be at most {threads.settings.text_max} characters long "
                           f"(it counts {length}; emoji count as their UTF-8 bytes).")
    if len(params.get("alt_text", "")) > threads.settings.alt_text_max:
        return graph_error(100, f"Param alt_text must be at most {threads.settings.alt_text_max} characters long.")
    return None


# A carousel holds 2 to 20 items (api-notes C: Ayrshare's figure, Meta's page unconfirmed).
CAROUSEL_MIN_CHILDREN = 2
CAROUSEL_MAX_CHILDREN = 20


def _reply_problem(threads: ThreadsState, params: dict[str, str]) -> httpx.Response | None:
    parent = params.get("reply_to_id")
    if parent is None:
        return None
    if params.get("is_carousel_item") == "true":
        return graph_error(100, "A carousel item cannot be a reply; give reply_to_id to the CAROUSEL container.")
    if not any(p.id == parent for p in threads.posts):
        return graph_error(100, f"Object with ID '{parent}' does not exist, cannot be loaded due to missing "
                           "permissions, or does not support this operation", subcode=33)
    return None


def _create_carousel(threads: ThreadsState, params: dict[str, str], user_id: str, now: float) -> httpx.Response:
    ids = [part.strip() for part in params["children"].split(",") if part.strip()]
    if not CAROUSEL_MIN_CHILDREN <= len(ids) <= CAROUSEL_MAX_CHILDREN:
        return graph_error(100, f"A carousel must have between {CAROUSEL_MIN_CHILDREN} and "
                           f"{CAROUSEL_MAX_CHILDREN} children; {len(ids)} were given.")
    for child_id in ids:
        child = threads.containers.get(child_id)
        if child is None or child.user_id != user_id or not child.is_carousel_item:
            return graph_error(100, f"The child {child_id} is not a carousel item container of this account.")
        if threads.container_status(child, now) != "FINISHED":
            return graph_error(9007, "Media ID is not available", subcode=2207027, user_title="Media not ready",
                               user_msg=f"The carousel item {child_id} is not ready; wait until it is FINISHED.")
    first = threads.containers[ids[0]]
    container = ThreadsContainer(
        id=threads.next_id(CONTAINER_ID_BASE), user_id=user_id, image_url="", text=params.get("text", ""),
        alt_text=None, image=first.image, created_at=now, ready_at=now + threads.settings.processing_seconds,
        children=tuple(ids), reply_to=params.get("reply_to_id"))
    threads.containers[container.id] = container
    return json_response(200, {"id": container.id})


def _image_problem(threads: ThreadsState, data: bytes | None) -> str | None:
    """What Meta's container would say (its ``error_message``), or None when the image is fine."""
    if data is None or len(data) > threads.settings.image_max_bytes:
        return "UNKNOWN"
    facts = inspect_image(data)
    if facts is None or facts.format not in ("JPEG", "PNG"):
        return "UNKNOWN"
    aspect = facts.aspect
    if aspect > threads.settings.max_aspect or aspect < 1 / threads.settings.max_aspect:
        return "INVALID_ASPEC_RATIO"  # sic: Meta's troubleshooting page spells it so
    return None


def publish(call: Call) -> httpx.Response:
    request = _authorized(call)
    if isinstance(request, httpx.Response):
        return request
    params, token, user = request
    refused = _no_publish_scope(token)
    if refused is not None:
        return refused
    unknown = sorted(set(params) - PUBLISH_PARAMS)
    if unknown:
        return graph_error(100, f"(#100) Param {unknown[0]} is not a valid parameter")
    if not params.get("creation_id"):
        return graph_error(100, "The parameter creation_id is required.")
    state = call.state
    threads = state.threads
    container = threads.containers.get(params["creation_id"])
    if container is None or container.user_id != user.user_id:
        return graph_error(24, "The media container does not exist.", subcode=2207008,
                           user_title="Media not found", user_msg="The container does not exist or has expired.")
    problem = _publish_problem(threads, container, state.now())
    if problem is not None:
        return problem
    if container.is_carousel_item:
        return graph_error(100, "A carousel item cannot be published on its own; publish its CAROUSEL container.")
    media_id = threads.next_id(MEDIA_ID_BASE)
    items = tuple((threads.containers[c].image, threads.containers[c].alt_text) for c in container.children)
    threads.posts.append(ThreadsPost(media_id, user.user_id, container.text, container.alt_text, container.image,
                                     state.now(), shortcode_for(media_id), container.id, items,
                                     container.reply_to))
    container.media_id = media_id
    return json_response(200, {"id": media_id})


def _publish_problem(threads: ThreadsState, container: ThreadsContainer, now: float) -> httpx.Response | None:
    status = threads.container_status(container, now)
    if status == "IN_PROGRESS":
        return graph_error(9007, "Media ID is not available", subcode=2207027, user_title="Media not ready",
                           user_msg="The media is not ready for publishing, please wait for a moment")
    if status == "EXPIRED":
        return graph_error(-2, "The media has expired.", subcode=2207020, user_title="Media expired",
                           user_msg="The container was not published within 24 hours; create a new one.")
    if status == "ERROR":
        return graph_error(-1, "Create media has failed.", subcode=2207032, user_title="Media upload failed",
                           user_msg="The container failed; create a new one.")
    if status == "PUBLISHED":
        return graph_error(24, "The media container has already been published.", subcode=2207008,
                           user_title="Already published", user_msg="This container has been published already.")
    if quota_usage(threads, container.user_id, now) >= threads.settings.publish_quota:
        # The words and codes are Instagram's (UNCONFIRMED for Threads, whose pages name no code).
        return graph_error(9, "Application request limit reached", subcode=2207042, user_title="Max posts reached",
                           user_msg="The maximum number of posts that can be published through the API in "
                           "24 hours has been reached.")
    return None


def quota_usage(threads: ThreadsState, user_id: str, now: float) -> int:
    start = now - threads.settings.publish_window
    return sum(1 for p in threads.posts if p.user_id == user_id and p.timestamp > start)


def publishing_limit(call: Call) -> httpx.Response:
    request = _authorized(call)
    if isinstance(request, httpx.Response):
        return request
    params, _token, user = request
    fields = _fields(params, ("quota_usage", "config", "reply_quota_usage", "reply_config"))
    if isinstance(fields, httpx.Response):
        return fields
    threads = call.state.threads
    entry: dict[str, Any] = {}
    if "quota_usage" in fields:
        entry["quota_usage"] = quota_usage(threads, user.user_id, call.state.now())
    if "config" in fields:
        entry["config"] = {"quota_total": threads.settings.publish_quota,
                           "quota_duration": int(threads.settings.publish_window)}
    return json_response(200, {"data": [entry]})


def post_page(call: Call) -> httpx.Response:
    """The permalink: ``/threads/@{username}/post/{shortcode}`` shows the thread as the page does."""
    from crosswatch.emulator.httputil import html_response
    from crosswatch.emulator.page import single_page, threads_card  # the page imports the state modules

    threads = call.state.threads
    post = next((p for p in threads.posts if p.shortcode == call.path_params["shortcode"]), None)
    if post is None:
        return html_response(404, single_page("Post not found", "<p>This post does not exist.</p>"))
    return html_response(200, single_page("Threads post", threads_card(call.state, post)))
