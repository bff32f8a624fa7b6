"""X API v2 resource endpoints: users/me, a user's posts, one-shot media upload, alt text, create post.

Every endpoint checks the bearer token (401), counts the per-user rate-limit window (429, with the
x-rate-limit-* headers on every answer), the OAuth scopes the OpenAPI document lists (403) and the
query parameters: any the document does not list for the endpoint is refused (400), as X does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from crosswatch.emulator import engagement, openapi_params, x_oauth
from crosswatch.emulator.httputil import (
    BadRequestBody,
    b64decode_strict,
    json_body,
    json_response,
    media_type,
    multipart_fields,
    problem_response,
    query_params,
    x_blank_problem,
    x_invalid_request,
)
from crosswatch.emulator.images import ImageFacts, inspect_image
from crosswatch.emulator.routing import Call, Route, route
from crosswatch.emulator.state import EmulatorState, XGrant, XMedia, XPost, XUser
from crosswatch.twitter_counting import twitter_text

ID_PATTERN = re.compile(r"^[0-9]{1,19}$")
ONE_SHOT_CATEGORIES = ("tweet_image", "dm_image")
UPLOAD_IMAGE_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "WEBP")
IMAGE_DIMENSIONS = (4, 8192)
UNRECOGNIZED_MEDIA = "media type unrecognized."
MEDIA_REQUIRED = "The `media` field is required."
MEDIA_CATEGORY_REQUIRED = "The `media_category` field is required."
CREATE_POST_FIELDS = frozenset(
    {
        "card_uri", "community_id", "direct_message_deep_link", "edit_options", "for_super_followers_only",
        "geo", "made_with_ai", "media", "nullcast", "paid_partnership", "poll", "quote_tweet_id", "reply",
        "reply_settings", "share_with_followers", "text",
    }
)  # fmt: skip
EXCLUSIVE_POST_FIELDS = ("poll", "quote_tweet_id", "direct_message_deep_link", "media", "card_uri")
EXCLUSIVE_MESSAGE = (
    "You can only provide one of poll or quote_tweet_id or direct_message_deep_link or media or card_uri."
)
TEXT_ABSENT = "The `text` field is required; send an empty string for a post with media and no text."
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
TOO_LONG_DETAIL = (
    "Your Tweet text is too long. For more information on how Twitter determines text length see "
    "https://github.com/twitter/twitter-text."
)

Authed = Callable[[Call, XGrant, XUser], httpx.Response]

ME_SCOPES = ("tweet.read", "users.read")
# non_public_metrics (and organic/promoted) cover the last 30 days only (docs.x.com, fundamentals/metrics).
PRIVATE_METRICS_DAYS = 30
LOOKUP_MAX_IDS = 100
POST_SCOPES = ("tweet.read", "tweet.write", "users.read")


def _endpoint_table() -> list[tuple[str, str, str, tuple[str, ...], Authed]]:
    """(method, path template, endpoint name, OAuth scopes, handler) of every X endpoint served."""
    return [
        ("GET", "/2/users/me", "x.users.me", ME_SCOPES, users_me),
        ("GET", "/2/users/{id}/tweets", "x.users.tweets", ME_SCOPES, user_posts),
        ("POST", "/2/media/upload", "x.media.upload", ("media.write",), upload),
        ("POST", "/2/media/metadata", "x.media.metadata", ("media.write",), metadata),
        ("POST", "/2/tweets", "x.tweets.create", POST_SCOPES, create_post),
        ("GET", "/2/tweets/{id}", "x.tweets.get", ME_SCOPES, get_post),
        ("GET", "/2/tweets", "x.tweets.lookup", ME_SCOPES, lookup_posts),
    ]


def served_operations() -> list[tuple[str, str]]:
    """(METHOD, path template) of the X endpoints served: what the OpenAPI extract must cover."""
    return [(method, template) for method, template, *_ in _endpoint_table()]


def routes() -> list[Route]:
    return [
        route(method, template, name, _endpoint(name, scopes, method, template, handler), "x")
        for method, template, name, scopes, handler in _endpoint_table()
    ]


def _endpoint(
    name: str, scopes: tuple[str, ...], method: str, template: str, handler: Authed
) -> Callable[[Call], httpx.Response]:
    """Wrap a handler in X's checks: token (401), rate windows (429), scopes (403), parameters (400).

    The query parameters an endpoint takes come from X's OpenAPI document (``openapi_params``), read
    when the routes are built, so an endpoint the extract does not cover fails at start-up.
    """
    allowed = openapi_params.query_names(method, template)
    listed = openapi_params.listed_names(method, template)

    def run(call: Call) -> httpx.Response:
        authed = x_oauth.authenticate(call)
        if isinstance(authed, httpx.Response):
            return authed
        grant, user = authed
        headers: dict[str, str] = {}
        refusal = _spend_rate_limits(call.state, name, user.id, headers)
        if refusal is None and any(scope not in grant.scopes for scope in scopes):
            refusal = problem_response(403, x_blank_problem(403))
        if refusal is None:
            refusal = _unknown_query_problem(call, allowed, listed)
        response = refusal or handler(call, grant, user)
        response.headers.update(headers)
        return response

    return run


def _spend_rate_limits(
    state: EmulatorState, name: str, user_id: str, headers: dict[str, str]
) -> httpx.Response | None:
    """Count the request in the 15-minute window and the optional 24-hour cap; 429 when either is spent."""
    now = state.now()
    refused = False
    window = state.settings.x_rate_limits.get(name)
    if window is not None:
        decision = state.rate_limiter.hit(name, user_id, window, now)
        headers.update(decision.headers())
        refused = not decision.allowed
    daily = state.settings.x_daily_limits.get(name)
    if daily is not None and not refused:
        decision = state.rate_limiter.hit(name + "/24h", user_id, daily, now)
        headers.update(decision.headers(prefix="x-user-limit-24hour"))
        refused = not decision.allowed
    return problem_response(429, x_blank_problem(429)) if refused else None


def _unknown_query_problem(call: Call, allowed: frozenset[str], listed: tuple[str, ...]) -> httpx.Response | None:
    """X's 400 for the first query parameter the endpoint does not list (api-notes.md item 16)."""
    params = query_params(call.request)
    unknown = [name for name in params if name not in allowed]
    if not unknown:
        return None
    name = unknown[0]
    return _invalid(
        call.state, f"The query parameter [{name}] is not one of [{','.join(listed)}]", {name: [params[name]]}
    )


def _invalid(state: EmulatorState, message: str, parameters: dict[str, list[str]]) -> httpx.Response:
    return problem_response(400, x_invalid_request(state.settings.x_problem_prefix, message, parameters))


# --- users ------------------------------------------------------------------------------------------------


def users_me(call: Call, grant: XGrant, user: XUser) -> httpx.Response:
    fields = _csv(query_params(call.request).get("user.fields"))
    return json_response(200, {"data": user_json(user, fields)})


def user_json(user: XUser, fields: set[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
    extra: dict[str, Any] = {
        "created_at": iso_x(user.created_at),
        "description": "",
        "protected": False,
        "verified": False,
        "profile_image_url": "",
    }
    data.update({key: value for key, value in extra.items() if key in fields})
    return data


def user_posts(call: Call, grant: XGrant, user: XUser) -> httpx.Response:
    state = call.state
    params = query_params(call.request)
    target_id = call.path_params["id"]
    if not ID_PATTERN.match(target_id):
        return _invalid(
            state, f"The `id` query parameter value [{target_id}] is not valid", {"id": [target_id]}
        )
    target = state.x_users.get(target_id)
    if target is None:
        return json_response(200, {"errors": [_user_not_found(state, target_id)]})
    query = _timeline_query(state, params)
    if isinstance(query, httpx.Response):
        return query
    posts = sorted(
        (p for p in state.x_posts if p.user_id == target_id and query.admits(p)),
        key=lambda p: int(p.id),
        reverse=True,
    )
    page = posts[query.offset : query.offset + query.max_results]
    has_more = query.offset + query.max_results < len(posts)
    return json_response(200, _timeline_json(call, page, params, query, has_more))


class _TimelineQuery:
    def __init__(self, max_results: int, offset: int) -> None:
        self.max_results = max_results
        self.offset = offset
        self.since_id: int | None = None
        self.until_id: int | None = None
        self.start_time: float | None = None
        self.end_time: float | None = None

    def admits(self, post: XPost) -> bool:
        post_id = int(post.id)
        return not (
            (self.since_id is not None and post_id <= self.since_id)
            or (self.until_id is not None and post_id >= self.until_id)
            or (self.start_time is not None and post.created_at < self.start_time)
            or (self.end_time is not None and post.created_at >= self.end_time)
        )


def _timeline_query(state: EmulatorState, params: dict[str, str]) -> _TimelineQuery | httpx.Response:
    try:
        max_results = int(params.get("max_results", "10"))
    except ValueError:
        max_results = -1
    if not 5 <= max_results <= 100:
        return _invalid(
            state,
            "The `max_results` query parameter value is not between 5 and 100",
            {"max_results": [params.get("max_results", "")]},
        )
    offset = _decode_page_token(params.get("pagination_token"))
    if offset is None:
        return _invalid(state, "The `pagination_token` query parameter value is invalid", {})
    query = _TimelineQuery(max_results, offset)
    for key in ("since_id", "until_id"):
        if key in params:
            if not ID_PATTERN.match(params[key]):
                return _invalid(state, f"The `{key}` query parameter value is invalid", {key: [params[key]]})
            setattr(query, key, int(params[key]))
    for key in ("start_time", "end_time"):
        if key in params:
            moment = parse_iso(params[key])
            if moment is None:
                return _invalid(state, f"The `{key}` query parameter value is invalid", {key: [params[key]]})
            setattr(query, key, moment)
    return query


def _timeline_json(
    call: Call, page: list[XPost], params: dict[str, str], query: _TimelineQuery, has_more: bool
) -> dict[str, Any]:
    state = call.state
    expansions = _csv(params.get("expansions"))
    post_fields = _post_fields(params, expansions)
    media_fields = _csv(params.get("media.fields"))
    meta: dict[str, Any] = {"result_count": len(page)}
    if not page:
        return {"meta": meta}
    payload: dict[str, Any] = {"data": [post_json(state, post, post_fields) for post in page]}
    includes: dict[str, Any] = {}
    if "attachments.media_keys" in expansions:
        media = [state.x_media[mid] for post in page for mid in post.media_ids if mid in state.x_media]
        if media:
            includes["media"] = [media_json(call.origin, item, media_fields) for item in media]
    if "author_id" in expansions:
        authors = {post.user_id for post in page}
        includes["users"] = [user_json(state.x_users[uid], set()) for uid in sorted(authors)]
    if includes:
        payload["includes"] = includes
    meta.update({"newest_id": page[0].id, "oldest_id": page[-1].id})
    if has_more:
        meta["next_token"] = _encode_page_token(query.offset + query.max_results)
    if query.offset > 0:
        meta["previous_token"] = _encode_page_token(max(0, query.offset - query.max_results))
    payload["meta"] = meta
    return payload


def _post_fields(params: dict[str, str], expansions: set[str]) -> set[str]:
    """The post fields asked for (``post.fields``; the document lists no other name for them). An
    expansion brings the field it expands along: ``attachments.media_keys`` shows each post's
    ``attachments.media_keys``, which the expanded media objects are matched by."""
    fields = _csv(params.get("post.fields"))
    if "attachments.media_keys" in expansions:
        fields.add("attachments")
    if "author_id" in expansions:
        fields.add("author_id")
    return fields


def post_json(state: EmulatorState, post: XPost, fields: set[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}
    if "created_at" in fields:
        data["created_at"] = iso_x(post.created_at)
    if "author_id" in fields:
        data["author_id"] = post.user_id
    if "attachments" in fields and post.media_ids:
        keys = [state.x_media[mid].media_key for mid in post.media_ids if mid in state.x_media]
        data["attachments"] = {"media_keys": keys}
    if "public_metrics" in fields or "non_public_metrics" in fields:
        seen = engagement.counts(state.engagement, post.id, post.text, post.created_at, state.now())
        if "public_metrics" in fields:
            # Both names of the repost count: the 2025 document's retweet_count, the 2026 one's
            # repost_count (api-notes item on public_metrics: the rename is UNCONFIRMED).
            data["public_metrics"] = {
                "retweet_count": seen.shares, "repost_count": seen.shares, "reply_count": seen.comments,
                "like_count": seen.likes, "quote_count": seen.quotes, "bookmark_count": seen.saves,
                "impression_count": seen.views,
            }
        if "non_public_metrics" in fields and _private_metrics_allowed(state, post):
            data["non_public_metrics"] = {"impression_count": seen.views, "url_link_clicks": seen.link_clicks,
                                          "user_profile_clicks": seen.profile_clicks}
    return data


def _private_metrics_allowed(state: EmulatorState, post: XPost, user_id: str | None = None) -> bool:
    """Non-public metrics exist only for posts made in the last 30 days (docs.x.com, fundamentals/metrics);
    ``user_id``: also only for the post's own author."""
    young = state.now() - post.created_at < PRIVATE_METRICS_DAYS * 86400.0
    return young and (user_id is None or post.user_id == user_id)


def media_json(origin: str, media: XMedia, fields: set[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"media_key": media.media_key, "type": "photo"}
    optional: dict[str, Any] = {
        "url": f"{origin}/_emulator/media/x/{media.id}",
        "width": media.width,
        "height": media.height,
    }
    if media.alt_text is not None:
        optional["alt_text"] = media.alt_text
    data.update({key: value for key, value in optional.items() if key in fields})
    return data


def _user_not_found(state: EmulatorState, user_id: str) -> dict[str, Any]:
    return {
        "value": user_id,
        "detail": f"Could not find user with id: [{user_id}].",
        "title": "Not Found Error",
        "resource_type": "user",
        "parameter": "id",
        "resource_id": user_id,
        "type": state.settings.x_problem_prefix + "resource-not-found",
    }


def _encode_page_token(offset: int) -> str:
    return base64.b32hexencode(f"page:{offset}".encode()).decode().rstrip("=").lower()


def _decode_page_token(token: str | None) -> int | None:
    if token is None:
        return 0
    padded = token.upper() + "=" * (-len(token) % 8)
    try:
        text = base64.b32hexdecode(padded).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "page" and number.isdigit() else None


# --- media ------------------------------------------------------------------------------------------------


def upload(call: Call, grant: XGrant, user: XUser) -> httpx.Response:
    """One-shot ``POST /2/media/upload``. Two kinds of 400, as X gives them: a malformed request (a
    field missing or unknown: the client's bug) and a photo X will not take (too large, not an image
    of a supported type, dimensions out of range), whose ``parameters`` name the ``media`` field."""
    state = call.state
    parsed = _upload_fields(call.request)
    if isinstance(parsed, UploadRefusal):
        return _invalid(state, parsed.message, parsed.parameters)
    data, category = parsed
    if category not in ONE_SHOT_CATEGORIES:
        return _invalid(
            state,
            "The emulator's one-shot upload takes images only (media_category tweet_image or dm_image).",
            {"media_category": [category]},
        )
    facts = inspect_image(data)
    photo_problem = upload_photo_problem(state, data, facts)
    if photo_problem is not None or facts is None:
        return _invalid(state, photo_problem or UNRECOGNIZED_MEDIA, {"media": []})
    now = state.now()
    media_id = state.next_x_media_id()
    media = XMedia(
        id=media_id,
        media_key=f"3_{media_id}",
        user_id=user.id,
        data=data,
        mime=facts.mime,
        width=facts.width,
        height=facts.height,
        category=category,
        uploaded_at=now,
        expires_at=now + state.settings.x_media_expires_after,
    )
    state.x_media[media_id] = media
    return json_response(
        200,
        {
            "data": {
                "id": media.id,
                "media_key": media.media_key,
                "size": len(data),
                "expires_after_secs": state.settings.x_media_expires_after,
                "image": {"image_type": media.mime, "w": media.width, "h": media.height},
            }
        },
    )


def upload_photo_problem(state: EmulatorState, data: bytes, facts: ImageFacts | None) -> str | None:
    """What X says about an image it will not take, or None. The size message is v1.1's (still
    seen from v2); "media type unrecognized." is X's own (sferik/x-ruby#54); the dimension bounds
    are v1.1's documented ones (UNCONFIRMED for v2)."""
    if len(data) > state.settings.x_image_max_bytes:
        return f"File size exceeds {state.settings.x_image_max_bytes} bytes."
    if facts is None or facts.format not in UPLOAD_IMAGE_FORMATS:
        return UNRECOGNIZED_MEDIA
    low, high = IMAGE_DIMENSIONS
    if not (low <= facts.width <= high and low <= facts.height <= high):
        return f"Image dimensions must be >= {low}x{low} and <= {high}x{high}."
    return None


@dataclass(frozen=True)
class UploadRefusal:
    """What is wrong with an upload request, and the request parameters it concerns."""

    message: str
    parameters: dict[str, list[str]]


def _upload_fields(request: httpx.Request) -> tuple[bytes, str] | UploadRefusal:
    """(bytes, media_category) from a multipart or a JSON (base64) body, or what is wrong with it."""
    allowed = {"media", "media_category", "additional_owners"}
    try:
        if media_type(request) == "application/json":
            body = json_body(request)
            if not isinstance(body, dict):
                return UploadRefusal("The request body must be a JSON object.", {})
            fields = {k: v for k, v in body.items()}
            if not isinstance(fields.get("media", ""), str):
                return UploadRefusal("media must be a base64 string", {"media": []})
            raw = b64decode_strict(fields["media"]) if "media" in fields else None
        else:
            parts = multipart_fields(request)
            fields = {k: v.decode("utf-8", "replace") for k, v in parts.items() if k != "media"}
            raw = parts.get("media")
            if raw is not None:
                fields["media"] = ""
    except BadRequestBody as exc:
        return UploadRefusal(str(exc), {})
    unknown = sorted(set(fields) - allowed)
    if unknown:
        return UploadRefusal(f"Unknown fields: {', '.join(unknown)}", {name: [] for name in unknown})
    if raw is None:
        return UploadRefusal(MEDIA_REQUIRED, {"media": []})
    category = fields.get("media_category")
    if not isinstance(category, str) or not category:
        return UploadRefusal(MEDIA_CATEGORY_REQUIRED, {"media_category": []})
    return raw, category


def _json_object(call: Call) -> dict[str, Any] | httpx.Response:
    """The request's JSON object body, or the 400 problem to answer with."""
    try:
        body = json_body(call.request)
    except BadRequestBody as exc:
        return _invalid(call.state, str(exc), {})
    if not isinstance(body, dict):
        return _invalid(call.state, "The request body must be a JSON object.", {})
    return body


def metadata(call: Call, grant: XGrant, user: XUser) -> httpx.Response:
    state = call.state
    body = _json_object(call)
    if isinstance(body, httpx.Response):
        return body
    media_id = body.get("id")
    media = state.x_media.get(media_id) if isinstance(media_id, str) else None
    if media is None or media.user_id != user.id or state.now() >= media.expires_at:
        return _invalid(state, "Your media IDs are invalid.", {"id": [str(media_id)]})
    alt = ((body.get("metadata") or {}).get("alt_text") or {}).get("text")
    if alt is not None:
        if not isinstance(alt, str) or len(alt) > state.settings.x_alt_text_max_chars:
            limit = state.settings.x_alt_text_max_chars
            return _invalid(state, f"alt_text.text must be at most {limit} characters.", {"metadata": []})
        media.alt_text = alt
    associated = {"alt_text": {"text": media.alt_text}} if media.alt_text is not None else {}
    return json_response(200, {"data": {"id": media.id, "associated_metadata": associated}})


# --- posts -------------------------------------------------------------------------------------------------


def get_post(call: Call, grant: XGrant, user: XUser) -> httpx.Response:
    """``GET /2/tweets/{id}``: the post, or (200) a resource-not-found error when it does not exist."""
    state = call.state
    post_id = call.path_params["id"]
    if not ID_PATTERN.match(post_id):
        return _invalid(state, f"The `id` query parameter value [{post_id}] is not valid", {"id": [post_id]})
    post = state.x_post_by_id(post_id)
    if post is None:
        return json_response(200, {"errors": [{
            "value": post_id,
            "detail": f"Could not find tweet with id: [{post_id}].",
            "title": "Not Found Error",
            "resource_type": "tweet",
            "parameter": "id",
            "resource_id": post_id,
            "type": state.settings.x_problem_prefix + "resource-not-found",
        }]})  # fmt: skip
    params = query_params(call.request)
    expansions = _csv(params.get("expansions"))
    payload: dict[str, Any] = {"data": post_json(state, post, _post_fields(params, expansions))}
    if "attachments.media_keys" in expansions:
        media = [state.x_media[mid] for mid in post.media_ids if mid in state.x_media]
        if media:
            media_fields = _csv(params.get("media.fields"))
            payload["includes"] = {"media": [media_json(call.origin, item, media_fields) for item in media]}
    return json_response(200, payload)


def lookup_posts(call: Call, grant: XGrant, user: XUser) -> httpx.Response:
    """``GET /2/tweets?ids=``: up to 100 posts; a missing one is a resource-not-found entry in ``errors``.

    ``non_public_metrics`` are only for the signed-in user's own posts of the last 30 days; for any other
    post the post comes back without them and ``errors`` carries a field-unauthorized problem (X's
    documented 30-day limit; the exact shape of its refusal is UNCONFIRMED)."""
    state = call.state
    params = query_params(call.request)
    ids = [item for item in params.get("ids", "").split(",")] if params.get("ids") else []
    if not ids:
        return _invalid(state, "The `ids` query parameter can not be empty", {"ids": [""]})
    bad = next((item for item in ids if not ID_PATTERN.match(item)), None)
    if bad is not None:
        return _invalid(state, f"The `ids` query parameter value [{bad}] is not valid", {"ids": [params["ids"]]})
    if len(ids) > LOOKUP_MAX_IDS:
        return _invalid(state, f"The number of values in the `ids` query parameter list [{len(ids)}] is not "
                        f"between 1 and {LOOKUP_MAX_IDS}", {"ids": [params["ids"]]})
    fields = _post_fields(params, _csv(params.get("expansions")))
    found: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for post_id in dict.fromkeys(ids):
        post = state.x_post_by_id(post_id)
        if post is None:
            errors.append(_post_not_found(state, post_id))
            continue
        private = "non_public_metrics" in fields and _private_metrics_allowed(state, post, user.id)
        shown = fields if private else fields - {"non_public_metrics"}
        found.append(post_json(state, post, shown))
        if "non_public_metrics" in fields and not private:
            errors.append({"type": state.settings.x_problem_prefix + "field-unauthorized",
                           "title": "Field Authorization Error", "resource_type": "tweet",
                           "field": "non_public_metrics", "section": "data",
                           "detail": f"Sorry, you are not authorized to access 'non_public_metrics' on the "
                                     f"Tweet with id {post_id}: it is not yours or older than 30 days."})
    payload: dict[str, Any] = {}
    if found:
        payload["data"] = found
    if errors:
        payload["errors"] = errors
    return json_response(200, payload)


def _post_not_found(state: EmulatorState, post_id: str) -> dict[str, Any]:
    return {"value": post_id, "detail": f"Could not find tweet with id: [{post_id}].", "title": "Not Found Error",
            "resource_type": "tweet", "parameter": "ids", "resource_id": post_id,
            "type": state.settings.x_problem_prefix + "resource-not-found"}


def create_post(call: Call, grant: XGrant, user: XUser) -> httpx.Response:
    state = call.state
    body = _json_object(call)
    if isinstance(body, httpx.Response):
        return body
    problem = _create_post_problem(state, body, user)
    if problem is not None:
        return problem
    text = body["text"]
    media_ids = tuple((body.get("media") or {}).get("media_ids") or ())
    if _is_duplicate(state, user.id, text, media_ids):
        return problem_response(403, x_blank_problem(403, DUPLICATE_DETAIL))
    reply = body.get("reply")
    in_reply_to = str(reply["in_reply_to_tweet_id"]) if isinstance(reply, dict) else None
    post = XPost(state.next_x_post_id(), user.id, grant.client_id, text, media_ids, state.now(), in_reply_to)
    state.x_posts.append(post)
    return json_response(
        201, {"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}}
    )


def _create_post_problem(state: EmulatorState, body: dict[str, Any], user: XUser) -> httpx.Response | None:
    unknown = sorted(set(body) - CREATE_POST_FIELDS)
    if unknown:
        return _invalid(state, f"`{unknown[0]}` is not defined in the schema", {unknown[0]: []})
    present = [key for key in EXCLUSIVE_POST_FIELDS if key in body]
    if len(present) > 1:
        return _invalid(
            state,
            EXCLUSIVE_MESSAGE,
            {key: [] for key in present},
        )
    if "text" not in body:
        # The document: text is "Defaulted to an empty string so it is always sent: the backend's
        # `tweet_text` variable is non-null and rejects an absent value" (api-notes.md item 16a).
        return _invalid(state, TEXT_ABSENT, {"text": []})
    text = body["text"]
    if not isinstance(text, str):
        return _invalid(state, "`text` must be a string", {"text": []})
    media = body.get("media")
    media_ids = media.get("media_ids") if isinstance(media, dict) else None
    if media is not None and not _media_ids_usable(state, media_ids, user):
        return _invalid(state, "Your media IDs are invalid.", {"media.media_ids": [str(media_ids)]})
    if not text.strip() and media is None:
        return _invalid(state, "Post text is required unless media is attached.", {"text": []})
    reply = body.get("reply")
    if reply is not None:
        refused = _reply_problem(state, reply, user)
        if refused is not None:
            return refused
    if text and twitter_text().parse_tweet(text).weightedLength > 280:
        payload = x_invalid_request(state.settings.x_problem_prefix, TOO_LONG_DETAIL, {"text": []})
        payload["detail"] = TOO_LONG_DETAIL
        return problem_response(400, payload)
    return None


# X's words for a reply the self-serve tier does not allow (changelog 23 Feb 2026; api-notes A3).
REPLY_NOT_SUMMONED = ("Reply to this conversation is not allowed because you have not been mentioned or "
                      "otherwise engaged by the author of the post you are replying to.")


def _reply_problem(state: EmulatorState, reply: object, user: XUser) -> httpx.Response | None:
    """A reply must name an existing post; since 23 Feb 2026 an API reply is allowed only where the
    replier was "summoned" (mentioned or quoted by the author). A reply to one's own post (a thread)
    is allowed: api-notes calls the self-thread case unconfirmed, and this is the reading X's own
    thread-making clients depend on."""
    target = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
    if not isinstance(target, str) or not ID_PATTERN.match(target):
        return _invalid(state, "`reply.in_reply_to_tweet_id` must be a post id", {"reply.in_reply_to_tweet_id": []})
    parent = next((p for p in state.x_posts if p.id == target), None)
    if parent is None:
        return _invalid(state, f"The post you are replying to [{target}] does not exist or was deleted.",
                        {"reply.in_reply_to_tweet_id": [target]})
    if parent.user_id != user.id and f"@{user.username}".casefold() not in parent.text.casefold():
        return problem_response(403, x_blank_problem(403, REPLY_NOT_SUMMONED))
    return None


def _media_ids_usable(state: EmulatorState, media_ids: object, user: XUser) -> bool:
    if not isinstance(media_ids, list) or not 1 <= len(media_ids) <= 4:
        return False
    now = state.now()
    for media_id in media_ids:
        media = state.x_media.get(media_id) if isinstance(media_id, str) else None
        if media is None or media.user_id != user.id or now >= media.expires_at:
            return False
    return True


def _is_duplicate(state: EmulatorState, user_id: str, text: str, media_ids: tuple[str, ...]) -> bool:
    """Same author, same text and the same image bytes (new uploads of one file get new ids)."""
    wanted = Counter(state.x_media[mid].sha256 for mid in media_ids)
    return any(
        post.user_id == user_id
        and post.text == text
        and Counter(state.x_media[mid].sha256 for mid in post.media_ids if mid in state.x_media) == wanted
        for post in state.x_posts
    )


# --- small helpers ------------------------------------------------------------------------------------


def _csv(value: str | None) -> set[str]:
    return {item.strip() for item in (value or "").split(",") if item.strip()}


def iso_x(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
