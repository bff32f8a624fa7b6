"""The reserved ``/_emulator/`` prefix: inspection, faults, seeding, tokens, clock, pages and images.

Requests here are never subject to faults or rate limits.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from crosswatch.emulator import accounts, engagement
from crosswatch.emulator.faults import fault_from_json
from crosswatch.emulator.httputil import (
    BadRequestBody,
    b64decode_strict,
    bytes_response,
    html_response,
    json_body,
    json_response,
    query_params,
    text_response,
)
from crosswatch.emulator.images import inspect_image
from crosswatch.emulator.page import ig_card, single_page, timelines_page, x_card
from crosswatch.emulator.routing import Call, Route, route
from crosswatch.emulator.snapshot import ig_media_json, snapshot, x_post_json
from crosswatch.emulator.state import EmulatorState

CONTAINER_STATUSES = ("IN_PROGRESS", "FINISHED", "ERROR", "EXPIRED")


class AdminError(ValueError):
    """A bad admin request: answered 400 with the message."""


def routes(endpoint_names: Callable[[], list[str]], advance_clock: Callable[[float], None]) -> list[Route]:
    def endpoints(call: Call) -> httpx.Response:
        return json_response(200, {"endpoints": endpoint_names()})

    def clock(call: Call) -> httpx.Response:
        body = _object_body(call)
        seconds = body.get("advance")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise AdminError("send {'advance': seconds} with seconds >= 0")
        advance_clock(float(seconds))
        return json_response(200, {"now": call.state.now()})

    def add_fault(call: Call) -> httpx.Response:
        fault = fault_from_json(_object_body(call))
        if fault.endpoint != "*" and fault.endpoint not in endpoint_names():
            raise AdminError(f"unknown endpoint {fault.endpoint!r}; see /_emulator/endpoints")
        call.state.faults.add(fault)
        return json_response(201, fault.to_json())

    table: list[tuple[str, str, str, Callable[[Call], httpx.Response]]] = [
        ("GET", "/", "admin.home", home),
        ("GET", "/_emulator", "admin.home", home),
        ("GET", "/_emulator/state", "admin.state", state_json),
        ("GET", "/_emulator/endpoints", "admin.endpoints", endpoints),
        ("GET", "/_emulator/faults", "admin.faults", list_faults),
        ("POST", "/_emulator/faults", "admin.faults", add_fault),
        ("DELETE", "/_emulator/faults", "admin.faults", clear_faults),
        ("DELETE", "/_emulator/faults/{fault_id}", "admin.faults", remove_fault),
        ("POST", "/_emulator/seed", "admin.seed", seed),
        ("POST", "/_emulator/tokens/x", "admin.tokens", mint_x),
        ("POST", "/_emulator/tokens/instagram", "admin.tokens", mint_ig),
        ("POST", "/_emulator/consent", "admin.consent", consent),
        ("POST", "/_emulator/clock", "admin.clock", clock),
        ("GET", "/_emulator/engagement", "admin.engagement", engagement_model),
        ("POST", "/_emulator/engagement", "admin.engagement", set_engagement),
        ("POST", "/_emulator/age", "admin.age", age_posts),
        ("POST", "/_emulator/instagram/posts", "admin.instagram_posts", phone_post),
        ("DELETE", "/_emulator/instagram/posts/{media_id}", "admin.instagram_posts", delete_ig_post),
        ("DELETE", "/_emulator/x/posts/{post_id}", "admin.x_posts", delete_x_post),
        ("POST", "/_emulator/containers/{container_id}", "admin.containers", set_container),
        ("GET", "/_emulator/x/posts", "admin.x_posts", list_x_posts),
        ("GET", "/_emulator/instagram/posts", "admin.instagram_posts", list_ig_posts),
        ("GET", "/_emulator/media/x/{media_id}", "admin.media", x_media_bytes),
        ("GET", "/_emulator/media/ig/{media_file}", "admin.media", ig_media_bytes),
        ("GET", "/_emulator/p/{shortcode}", "admin.permalink", ig_permalink),
        ("GET", "/_emulator/x/{username}/status/{post_id}", "admin.permalink", x_permalink),
        ("GET", "/_emulator/hosted/{name}", "admin.hosted", hosted_file),
    ]
    return [route(method, path, name, _guarded(handler), "admin") for method, path, name, handler in table]


def _guarded(handler: Callable[[Call], httpx.Response]) -> Callable[[Call], httpx.Response]:
    def run(call: Call) -> httpx.Response:
        try:
            return handler(call)
        except (AdminError, BadRequestBody, KeyError, ValueError, TypeError) as exc:
            return json_response(400, {"error": str(exc) or type(exc).__name__})

    return run


def _object_body(call: Call) -> dict[str, Any]:
    if not call.request.content:
        return {}
    body = json_body(call.request)
    if not isinstance(body, dict):
        raise AdminError("the body must be a JSON object")
    return body


# --- inspection ---------------------------------------------------------------------------------------


def home(call: Call) -> httpx.Response:
    return html_response(200, timelines_page(call.state))


def state_json(call: Call) -> httpx.Response:
    include = query_params(call.request).get("bytes", "") in ("1", "true", "yes")
    return json_response(200, snapshot(call.state, include_bytes=include))


def list_x_posts(call: Call) -> httpx.Response:
    include = query_params(call.request).get("bytes", "") in ("1", "true", "yes")
    state = call.state
    return json_response(200, {"posts": [x_post_json(state, p, include) for p in state.x_posts]})


def list_ig_posts(call: Call) -> httpx.Response:
    include = query_params(call.request).get("bytes", "") in ("1", "true", "yes")
    state = call.state
    return json_response(200, {"posts": [ig_media_json(state, m, include) for m in state.ig_media]})


def x_media_bytes(call: Call) -> httpx.Response:
    media = call.state.x_media.get(call.path_params["media_id"])
    if media is None:
        return text_response(404, "no such media")
    return bytes_response(media.data, media.mime)


def ig_media_bytes(call: Call) -> httpx.Response:
    media_id = call.path_params["media_file"].removesuffix(".jpg")
    media = call.state.ig_media_by_id(media_id)
    if media is None:
        return text_response(404, "no such media")
    return bytes_response(media.image, "image/jpeg")


def ig_permalink(call: Call) -> httpx.Response:
    state = call.state
    media = state.ig_media_by_shortcode(call.path_params["shortcode"])
    if media is None:
        return html_response(404, single_page("Post not found", "<p>This post does not exist.</p>"))
    return html_response(200, single_page("Instagram post", ig_card(state, media)))


def x_permalink(call: Call) -> httpx.Response:
    state = call.state
    post = state.x_post_by_id(call.path_params["post_id"])
    if post is None:
        return html_response(404, single_page("Post not found", "<p>This post does not exist.</p>"))
    return html_response(200, single_page("X post", x_card(state, post)))


def hosted_file(call: Call) -> httpx.Response:
    root = call.state.hosted_dir
    name = call.path_params["name"]
    if root is None or "/" in name or name.startswith("."):
        return text_response(404, "not found")
    path = Path(root) / name
    if not path.is_file():
        return text_response(404, "not found")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return bytes_response(path.read_bytes(), content_type)


# --- faults ---------------------------------------------------------------------------------------------


def list_faults(call: Call) -> httpx.Response:
    return json_response(200, {"faults": [f.to_json() for f in call.state.faults.armed()]})


def clear_faults(call: Call) -> httpx.Response:
    call.state.faults.clear()
    return json_response(200, {"faults": []})


def remove_fault(call: Call) -> httpx.Response:
    removed = call.state.faults.remove(int(call.path_params["fault_id"]))
    return json_response(200 if removed else 404, {"removed": removed})


# --- seeding and tokens ---------------------------------------------------------------------------------


def seed(call: Call) -> httpx.Response:
    """``{"x_clients": [...], "x_users": [...], "ig_apps": [...], "ig_users": [...]}``.

    Items carry the keyword arguments of the matching ``Emulator.add_*`` method.
    """
    body = _object_body(call)
    state = call.state
    allowed = {"x_clients", "x_users", "ig_apps", "ig_users"}
    if set(body) - allowed:
        raise AdminError(f"unknown seed keys: {sorted(set(body) - allowed)}")
    for item in body.get("x_clients", []):
        accounts.add_x_client(
            state, item["client_id"], item.get("client_secret"), tuple(item.get("redirect_uris", ()))
        )
    for item in body.get("x_users", []):
        accounts.add_x_user(state, str(item["id"]), item["username"], item.get("name"))
    for item in body.get("ig_apps", []):
        accounts.add_ig_app(
            state, str(item["client_id"]), item["client_secret"], tuple(item.get("redirect_uris", ()))
        )
    for item in body.get("ig_users", []):
        accounts.add_ig_user(state, str(item["user_id"]), item["username"], item.get("id"), item.get("name"))
    return json_response(200, {"ok": True})


def mint_x(call: Call) -> httpx.Response:
    body = _object_body(call)
    scopes = tuple(body.get("scopes", accounts.X_DAEMON_SCOPES))
    return json_response(
        200, accounts.mint_x_token(call.state, body.get("user_id"), body.get("client_id"), scopes)
    )


def mint_ig(call: Call) -> httpx.Response:
    body = _object_body(call)
    scopes = tuple(body.get("scopes", accounts.IG_DAEMON_SCOPES))
    payload = accounts.mint_ig_token(
        call.state,
        body.get("user_id"),
        body.get("client_id"),
        scopes,
        long_lived=bool(body.get("long_lived", True)),
    )
    return json_response(200, payload)


def consent(call: Call) -> httpx.Response:
    """``{"platform": "x"|"instagram", "approve": bool, "user_id": ...}``.

    Who the authorize page signs in as, and whether they agree.
    """
    body = _object_body(call)
    platform = body.get("platform")
    if platform not in ("x", "instagram"):
        raise AdminError("platform must be 'x' or 'instagram'")
    set_consent(call.state, platform, bool(body.get("approve", True)), body.get("user_id"))
    return json_response(200, {"ok": True})


def set_consent(state: EmulatorState, platform: str, approve: bool, user_id: str | None) -> None:
    if platform == "x":
        if user_id is not None and user_id not in state.x_users:
            raise AdminError("unknown X user")
        state.x_consent, state.x_signed_in_user = approve, user_id or state.x_signed_in_user
    else:
        if user_id is not None and user_id not in state.ig_users:
            raise AdminError("unknown Instagram user")
        state.ig_consent, state.ig_signed_in_user = approve, user_id or state.ig_signed_in_user


def phone_post(call: Call) -> httpx.Response:
    """``{"user_id"?, "caption"?, "alt_text"?, "image_base64"?, "timestamp"?, "images_base64"?: [...],
    "alt_texts"?: [...]}`` -> the new media; two or more ``images_base64`` make a carousel."""
    body = _object_body(call)
    image = _jpeg(body["image_base64"], "image_base64") if "image_base64" in body else None
    images = tuple(_jpeg(item, "images_base64") for item in body.get("images_base64") or ())
    alt_texts = tuple(a if isinstance(a, str) else None for a in body.get("alt_texts") or ())
    media = accounts.post_from_phone(
        call.state,
        body.get("user_id"),
        caption=str(body.get("caption", "")),
        image=image,
        alt_text=body.get("alt_text"),
        timestamp=body.get("timestamp"),
        images=images,
        alt_texts=alt_texts,
    )
    return json_response(201, ig_media_json(call.state, media, include_bytes=False))


def _jpeg(encoded: object, key: str) -> bytes:
    if not isinstance(encoded, str):
        raise AdminError(f"{key} must hold base64 text")
    image = b64decode_strict(encoded)
    facts = inspect_image(image)
    if facts is None or facts.format != "JPEG":
        raise AdminError(f"{key} must be a JPEG")
    return image


def delete_ig_post(call: Call) -> httpx.Response:
    """Delete an Instagram post, as its owner would in the app."""
    removed = accounts.delete_ig_media(call.state, call.path_params["media_id"])
    return json_response(200 if removed else 404, {"deleted": removed})


def delete_x_post(call: Call) -> httpx.Response:
    """Delete an X post, as its author would."""
    removed = accounts.delete_x_post(call.state, call.path_params["post_id"])
    return json_response(200 if removed else 404, {"deleted": removed})


def set_container(call: Call) -> httpx.Response:
    """``{"status": "ERROR"|"EXPIRED"|"FINISHED"|"IN_PROGRESS"}`` forces a container's status."""
    state = call.state
    container = state.ig_containers.get(call.path_params["container_id"])
    if container is None:
        return json_response(404, {"error": "no such container"})
    status = _object_body(call).get("status")
    if status not in CONTAINER_STATUSES:
        raise AdminError(f"status must be one of {CONTAINER_STATUSES}")
    if container.media_id is not None:
        raise AdminError("the container is published already")
    container.status_override = status
    return json_response(200, {"id": container.id, "status_code": state.container_status(container)})


# --- engagement (metrics and insights) -----------------------------------------------------------------

AGE_PLATFORMS = ("x", "instagram", "mastodon", "bluesky", "threads")


def engagement_model(call: Call) -> httpx.Response:
    return json_response(200, engagement.model_json(call.state.engagement))


def set_engagement(call: Call) -> httpx.Response:
    """``{"base_views", "hour_factors": {"18": 3.0}, "keyword_factors": {"fog": 2.0}, "growth_hours",
    "min_viewers", "insights_delay_seconds"}`` (any of them) -> the whole model."""
    engagement.configure(call.state.engagement, _object_body(call))
    return json_response(200, engagement.model_json(call.state.engagement))


def age_posts(call: Call) -> httpx.Response:
    """``{"platform"?, "id"?, "posted_at"? | "by_seconds"?}``: posts made earlier than they were, as if
    time had passed (``by_seconds``: moved back that long) or they had been made at ``posted_at``
    (epoch seconds). Without ``id``: every post of the platform (without ``platform``: of all)."""
    body = _object_body(call)
    platform = body.get("platform")
    if platform is not None and platform not in AGE_PLATFORMS:
        raise AdminError(f"platform must be one of {AGE_PLATFORMS}")
    posted_at, by_seconds = body.get("posted_at"), body.get("by_seconds")
    if (posted_at is None) == (by_seconds is None):
        raise AdminError("send exactly one of posted_at (epoch seconds) or by_seconds")
    for value, key in ((posted_at, "posted_at"), (by_seconds, "by_seconds")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise AdminError(f"{key} must be a number >= 0")
    wanted = body.get("id")
    now = call.state.now()
    aged: list[str] = []
    for name, post_id, holder, attribute in _dated_posts(call.state):
        if (platform is not None and name != platform) or (wanted is not None and post_id != str(wanted)):
            continue
        moment = float(posted_at) if posted_at is not None else getattr(holder, attribute) - float(by_seconds or 0)
        if moment > now:
            raise AdminError("a post cannot be made later than now")
        setattr(holder, attribute, moment)
        aged.append(post_id)
    if wanted is not None and not aged:
        return json_response(404, {"error": f"no such post {wanted}"})
    return json_response(200, {"aged": aged})


def _dated_posts(state: EmulatorState) -> list[tuple[str, str, object, str]]:
    """(platform, post id, the object holding its creation time, that attribute's name)."""
    found: list[tuple[str, str, object, str]] = []
    found += [("x", p.id, p, "created_at") for p in state.x_posts]
    found += [("instagram", m.id, m, "timestamp") for m in state.ig_media]
    found += [("mastodon", s.id, s, "created_at") for s in state.mastodon.statuses]
    found += [("bluesky", r.uri, r, "indexed_at") for r in state.bluesky.posts()]
    found += [("threads", p.id, p, "timestamp") for p in state.threads.posts]
    return found
