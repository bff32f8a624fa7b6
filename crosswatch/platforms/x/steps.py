"""The X target: upload the image, set its alt text, create the post (sans-I/O).

A post may carry up to 4 images (a bridged Instagram carousel): ``ctx.data["images"]`` then lists
them (``path``, ``format``, ``alt_text``), and the upload and alt-text steps each repeat themselves
(``Kind.AGAIN``) until every image is done, collecting ``media_ids`` for the one post. With a single
image (``ctx.image``) the steps behave exactly as before.

Every step builds an ``httpx.Request`` and parses an ``httpx.Response``; nothing here sends. The only
I/O is reading the prepared image from disk while building the upload request.

Error handling follows X API v2 (see api-notes.md, A3 and A5): errors are RFC 7807 problems whose
``type`` URI may start with either ``https://api.twitter.com/2/problems/`` or
``https://api.x.com/2/problems/``, so types are compared by their last path segment. Rate limits come
from the ``x-rate-limit-*`` headers and, on write endpoints, the 24-hour ``x-user-limit-24hour-*`` and
``x-app-limit-24hour-*`` headers; a 429 may come from any of these windows.
"""

from __future__ import annotations

import html
import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms import base
from crosswatch.platforms.base import (
    DUPLICATE_REFUSED,
    Finding,
    JobContext,
    Kind,
    LinkState,
    Outcome,
    Step,
    Verdict,
)
from crosswatch.platforms.reading import id_string, json_body, text

DEFAULT_API_BASE = "https://api.x.com"
# The scopes crosswatch asks for, no more (api-notes A1: the minimum set for posting a photo).
X_SCOPES: tuple[str, ...] = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
MAX_ALT_TEXT = 1000
# When a 429 carries no usable reset header, wait this long before trying again.
DEFAULT_RATE_LIMIT_WAIT = 15 * 60.0
DUPLICATE_DETAIL = "duplicate content"
# v1.1-era error codes that still appear in some 403 bodies: 187 "Status is a duplicate".
DUPLICATE_LEGACY_CODE = 187
# Reconciliation looks at posts from a little before the intent (clocks differ) and treats a miss as
# certain only once the post would have had time to show up in the timeline.
RECONCILE_LOOKBACK_SECONDS = 300.0
TIMELINE_SETTLE_SECONDS = 20.0
# Tests against the emulator (whose timeline is consistent at once) shorten the settle window with
# this environment variable; platforms/x/__init__.build reads it, the reconciler takes a plain number.
TIMELINE_SETTLE_ENV = "CROSSWATCH_X_TIMELINE_SETTLE_SECONDS"

Clock = Callable[[], float]


# ---------------------------------------------------------------------------------------------------
# Rate-limit headers


@dataclass(frozen=True)
class RateWindow:
    """One rate-limit window as reported by X: ``reset`` is epoch seconds."""

    limit: int | None
    remaining: int | None
    reset: int | None

    def as_json(self) -> dict[str, int | None]:
        return {"limit": self.limit, "remaining": self.remaining, "reset": self.reset}


# Outcome-data key -> header prefix. The 24-hour windows are third-party observations, not always sent.
RATE_HEADER_PREFIXES: Mapping[str, str] = {
    "window": "x-rate-limit-",
    "user_24h": "x-user-limit-24hour-",
    "app_24h": "x-app-limit-24hour-",
}


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def parse_rate_limits(headers: httpx.Headers) -> dict[str, RateWindow]:
    """Every rate-limit window present in ``headers``, keyed as in ``RATE_HEADER_PREFIXES``."""
    windows: dict[str, RateWindow] = {}
    for key, prefix in RATE_HEADER_PREFIXES.items():
        window = RateWindow(
            limit=_int_header(headers, prefix + "limit"),
            remaining=_int_header(headers, prefix + "remaining"),
            reset=_int_header(headers, prefix + "reset"),
        )
        if window != RateWindow(None, None, None):
            windows[key] = window
    return windows


def rate_limit_data(headers: httpx.Headers) -> dict[str, Any]:
    """The rate-limit windows as plain JSON for outcome data (empty when X sent none)."""
    windows = parse_rate_limits(headers)
    return {"rate_limit": {key: w.as_json() for key, w in windows.items()}} if windows else {}


def rate_limited_wait(headers: httpx.Headers, now: float) -> float:
    """Seconds to wait after a 429: until the latest reset among the exhausted windows.

    A 429 can come from the 15-minute window or a 24-hour cap, so an exhausted 24-hour window wins
    over a 15-minute one that still has room. If no window says it is exhausted, the 15-minute reset
    is used; if there is no reset at all, a conservative default.
    """
    windows = parse_rate_limits(headers)
    exhausted = [w.reset for w in windows.values() if w.remaining == 0 and w.reset is not None]
    resets = exhausted or [w.reset for w in windows.values() if w.reset is not None]
    if not resets:
        return DEFAULT_RATE_LIMIT_WAIT
    # One extra second: X's reset is a whole second, and arriving early earns another 429.
    return max(1.0, max(resets) - now + 1.0)


# ---------------------------------------------------------------------------------------------------
# RFC 7807 problems


@dataclass(frozen=True)
class Problem:
    """An X API error. ``kind`` is the type URI's last path segment (``about:blank`` kept whole)."""

    status: int
    title: str | None
    detail: str | None
    type: str | None
    messages: tuple[str, ...] = ()
    legacy_codes: tuple[int, ...] = ()
    # The request parameters the errors[] items name (invalid-request problems).
    parameters: tuple[str, ...] = ()

    @property
    def kind(self) -> str | None:
        if not self.type:
            return None
        if "/problems/" in self.type:
            return self.type.rstrip("/").rsplit("/", 1)[-1]
        return self.type

    @property
    def reason(self) -> str:
        """One line for the journal and the user: the platform's own words."""
        parts = [p for p in (self.title, self.detail) if p]
        if self.detail and self.title and self.detail.startswith(self.title):
            parts = [self.detail]
        extra = [m for m in self.messages if m not in parts]
        text = ": ".join(parts) if parts else f"HTTP {self.status}"
        if extra:
            text += " (" + "; ".join(extra[:3]) + ")"
        return f"X answered {self.status}: {text}"

    @property
    def words(self) -> str:
        """The problem's detail and messages in lower case, for matching X's wording."""
        return " ".join(p for p in (self.detail, *self.messages) if p).lower()

    @property
    def is_duplicate(self) -> bool:
        return DUPLICATE_DETAIL in self.words or DUPLICATE_LEGACY_CODE in self.legacy_codes






def parse_problem(response: httpx.Response) -> Problem:
    """The problem in an error response; never raises, whatever the body holds."""
    body = json_body(response)
    if not isinstance(body, dict):
        return Problem(response.status_code, response.reason_phrase or None, None, None)
    messages: list[str] = []
    codes: list[int] = []
    parameters: list[str] = []
    errors = body.get("errors")
    for item in errors if isinstance(errors, list) else ():
        if not isinstance(item, dict):
            continue
        message = text(item.get("message")) or text(item.get("detail"))
        if message:
            messages.append(message)
        if isinstance(item.get("code"), int):
            codes.append(item["code"])
        named = item.get("parameters")
        if isinstance(named, dict):
            parameters += [str(name) for name in named if str(name) not in parameters]
    status = body.get("status")
    return Problem(
        status=status if isinstance(status, int) else response.status_code,
        title=text(body.get("title")),
        detail=text(body.get("detail")),
        type=text(body.get("type")),
        messages=tuple(messages),
        legacy_codes=tuple(codes),
        parameters=tuple(parameters),
    )


def error_outcome(response: httpx.Response, now: float, *, applied_if_5xx: bool = False) -> Outcome:
    """Map an X error response to an outcome.

    ``applied_if_5xx``: for a step that is not safe to repeat, a 5xx does not prove the request was
    not applied (a gateway can time out after the post was made), so the answer is UNKNOWN and the
    runner reconciles against the timeline instead of retrying blindly.
    """
    problem = parse_problem(response)
    status = response.status_code
    data = rate_limit_data(response.headers) | {"http_status": status, "problem_type": problem.kind}
    if status == 401:
        return Outcome(Kind.AUTH, data=data, reason=problem.reason + " — the access token was refused")
    if status == 429 or problem.kind == "rate-limit-exceeded":
        return Outcome(Kind.RATE_LIMITED, data=data, reason=problem.reason,
                       retry_after=rate_limited_wait(response.headers, now))
    if status == 403 and problem.is_duplicate:
        return Outcome(Kind.DUPLICATE, data=data, reason=problem.reason)
    if problem.kind == "usage-capped":
        # Pay-per-use credits or a usage cap ran out: nothing for this target will go through.
        return Outcome(Kind.PAUSED, data=data, reason=problem.reason + " — check the X developer console")
    if status >= 500:
        kind = Kind.UNKNOWN if applied_if_5xx else Kind.RETRY
        return Outcome(kind, data=data, reason=problem.reason)
    return Outcome(Kind.FAILED, data=data, reason=problem.reason)


# ---------------------------------------------------------------------------------------------------
# Helpers shared by the steps


def api_url(config: TargetConfig, path: str) -> str:
    return (config.api_base or DEFAULT_API_BASE).rstrip("/") + path


def bearer(token: str | None) -> dict[str, str]:
    # A missing token still builds a request: X answers 401 and the runner treats it as AUTH.
    return {"Authorization": f"Bearer {token or ''}"}


def _data_object(response: httpx.Response) -> dict[str, Any] | None:
    body = json_body(response)
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        data: dict[str, Any] = body["data"]
        return data
    return None




DEFAULT_WEB_BASE = "https://x.com"


def post_permalink(post_id: str, username: str | None = None, web_base: str | None = None) -> str:
    base = (web_base or DEFAULT_WEB_BASE).rstrip("/")
    if username:
        return f"{base}/{username}/status/{post_id}"
    return f"{base}/i/web/status/{post_id}"


# ---------------------------------------------------------------------------------------------------
# Steps

MAX_IMAGES = 4
# A step that has more images to do comes back at once (the runner's AGAIN waits this long).
NEXT_IMAGE_SECONDS = 0.01


def post_images(ctx: JobContext) -> list[Mapping[str, Any]]:
    """The images of a several-image post (``ctx.data["images"]``), at most 4; [] for one image."""
    return base.post_images(ctx)[:MAX_IMAGES]


def _media_ids(ctx: JobContext) -> list[str]:
    ids = ctx.data.get("media_ids")
    return [str(i) for i in ids] if isinstance(ids, list) else []


@dataclass
class UploadMedia:
    """One-shot ``POST /2/media/upload`` (multipart), for a prepared image of at most 5 MB."""

    config: TargetConfig
    clock: Clock = time.time
    name: str = "upload_media"
    safe_to_repeat: bool = True
    # The upload check reads the prepared image again before this step (uploadcheck.py).
    sends_media: bool = True

    def build(self, ctx: JobContext) -> httpx.Request:
        images = post_images(ctx)
        if images:
            image = images[min(len(_media_ids(ctx)), len(images) - 1)]
            path, image_format = Path(str(image.get("path"))), str(image.get("format") or "JPEG")
        elif ctx.image is not None:
            path, image_format = Path(ctx.image.path), ctx.image.format
        else:
            raise ValueError("the X upload step needs a prepared image")  # a runner bug, not user input
        content_type = "image/png" if image_format.upper() == "PNG" else "image/jpeg"
        return httpx.Request(
            "POST",
            api_url(self.config, "/2/media/upload"),
            headers=bearer(ctx.access_token),
            data={"media_category": "tweet_image"},
            files={"media": (path.name, path.read_bytes(), content_type)},
        )

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if not response.is_success:
            outcome = error_outcome(response, self.clock())
            if outcome.kind is Kind.FAILED and photo_refused(response):
                # The image itself was refused (size, type, dimensions): it cannot be posted as it is.
                return Outcome(Kind.REJECTED, data=outcome.data, reason=outcome.reason)
            # Anything else is the request's fault (a field missing, a bug here or a change at X):
            # a failed job with X's own words, which `crosswatch retry` sends again once fixed.
            return outcome
        data = _data_object(response) or {}
        media_id = id_string(data.get("id"))
        if media_id is None:
            return Outcome(Kind.RETRY, data=rate_limit_data(response.headers),
                           reason="X accepted the upload but sent no media id")
        media_key = text(data.get("media_key"))
        images = post_images(ctx)
        if not images:
            return Outcome.next(media_id=media_id, media_key=media_key, **rate_limit_data(response.headers))
        ids = [*_media_ids(ctx), media_id]
        keys = [*(ctx.data.get("media_keys") or []), media_key or f"3_{media_id}"]
        # The first image's id and key stay the job's media_id/media_key: reconciliation looks for them.
        data = {"media_ids": ids, "media_keys": keys, "media_id": ids[0], "media_key": keys[0],
                **rate_limit_data(response.headers)}
        if len(ids) < len(images):
            return Outcome(Kind.AGAIN, data=data, retry_after=NEXT_IMAGE_SECONDS,
                           reason=f"uploaded image {len(ids)} of {len(images)}")
        return Outcome(Kind.NEXT, data=data)


# How X words a refusal of the image itself (not of the request): v1.1's size and dimension messages,
# still seen from v2, and "media type unrecognized." (sferik/x-ruby#54); matched in lower case.
PHOTO_PROBLEM_WORDS = (
    "file size", "too large", "media type unrecognized", "unsupported media", "unsupported image",
    "image dimensions", "dimensions must", "invalid image", "image is corrupt", "could not be processed",
)  # fmt: skip


def photo_refused(response: httpx.Response) -> bool:
    """Whether an upload's 4xx refuses the photo (too large, not a supported image, bad dimensions)
    rather than the request: a 413, or X's words about the image, with no request field other than
    ``media`` named in the problem's ``parameters``."""
    if response.status_code == 413:
        return True
    if response.status_code != 400:
        return False
    problem = parse_problem(response)
    if any(name != "media" for name in problem.parameters):
        return False
    return any(marker in problem.words for marker in PHOTO_PROBLEM_WORDS)


@dataclass
class SetAltText:
    """``POST /2/media/metadata``; does not apply when the caption has no alt text."""

    config: TargetConfig
    clock: Clock = time.time
    name: str = "set_alt_text"
    safe_to_repeat: bool = True

    def applies(self, ctx: JobContext) -> bool:
        if post_images(ctx):
            return bool(self._pending(ctx))
        return bool(ctx.caption.alt_text and ctx.caption.alt_text.strip())

    @staticmethod
    def _pending(ctx: JobContext) -> list[tuple[str, str]]:
        """(media id, alt text) of the images of a several-image post still without their alt text."""
        done = int(ctx.data.get("alt_texts_set") or 0)
        pairs = zip(_media_ids(ctx), post_images(ctx), strict=False)
        return [(media_id, str(image.get("alt_text")).strip()) for index, (media_id, image) in enumerate(pairs)
                if index >= done and isinstance(image.get("alt_text"), str) and str(image.get("alt_text")).strip()]

    def build(self, ctx: JobContext) -> httpx.Request:
        pending = self._pending(ctx) if post_images(ctx) else []
        if pending:
            media_id, alt_text = pending[0]
        else:
            media_id, alt_text = str(ctx.data.get("media_id", "")), (ctx.caption.alt_text or "").strip()
        body = {"id": media_id, "metadata": {"alt_text": {"text": alt_text[:MAX_ALT_TEXT]}}}
        return httpx.Request("POST", api_url(self.config, "/2/media/metadata"),
                             headers=bearer(ctx.access_token), json=body)

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if not response.is_success:
            return error_outcome(response, self.clock())
        pending = self._pending(ctx) if post_images(ctx) else []
        if len(pending) > 1:
            done = _media_ids(ctx).index(pending[0][0]) + 1
            return Outcome(Kind.AGAIN, data={"alt_texts_set": done, **rate_limit_data(response.headers)},
                           retry_after=NEXT_IMAGE_SECONDS, reason="setting the next image's alt text")
        return Outcome.next(alt_text_set=True, **rate_limit_data(response.headers))


@dataclass
class CreatePost:
    """``POST /2/tweets`` with the caption and the uploaded media. Not safe to repeat."""

    config: TargetConfig
    clock: Clock = time.time
    username: str | None = None
    name: str = "create_post"
    safe_to_repeat: bool = False

    def build(self, ctx: JobContext) -> httpx.Request:
        media_id = ctx.data.get("media_id")
        media_ids = _media_ids(ctx)[:MAX_IMAGES] if post_images(ctx) else ([str(media_id)] if media_id else [])
        # Always sent, "" for a photo without a caption: X's backend refuses an absent text even with
        # media attached (the OpenAPI document's description of `text`; api-notes.md item 16a).
        body: dict[str, Any] = {"text": ctx.caption.text}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        reply_to = ctx.data.get("reply_to")
        if isinstance(reply_to, Mapping) and reply_to.get("remote_id"):
            # An album's next post, a reply in our own thread: X's self-serve tier allows API replies
            # only where the replier was "summoned" (api-notes.md item 14 and A3); a thread of one's
            # own posts is what the emulator allows, and X's 403 otherwise fails the job in its words.
            body["reply"] = {"in_reply_to_tweet_id": str(reply_to["remote_id"])}
        return httpx.Request("POST", api_url(self.config, "/2/tweets"),
                             headers=bearer(ctx.access_token), json=body)

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if not response.is_success:
            return error_outcome(response, self.clock(), applied_if_5xx=True)
        post_id = id_string((_data_object(response) or {}).get("id"))
        if post_id is None:
            # A 2xx without an id: the post probably exists, but only the timeline can say.
            return Outcome(Kind.UNKNOWN, data=rate_limit_data(response.headers),
                           reason=f"X answered {response.status_code} without a post id")
        username = self.username or text(ctx.data.get("username"))
        return Outcome(Kind.DONE, data={"post_id": post_id, **rate_limit_data(response.headers)},
                       remote_id=post_id, permalink=post_permalink(post_id, username, self.config.web_base))


class XTarget:
    """Posts one photo to X: upload (safe), alt text (safe), create post (not safe)."""

    kind = "x"

    def __init__(self, config: TargetConfig, *, username: str | None = None,
                 clock: Clock = time.time, timeline_settle_seconds: float = TIMELINE_SETTLE_SECONDS) -> None:
        self.config = config
        self.name = config.name
        self._steps: tuple[Step, ...] = (
            UploadMedia(config, clock),
            SetAltText(config, clock),
            CreatePost(config, clock, username),
        )
        self.reconciler = XReconciler(config, username=username, clock=clock,
                                      timeline_settle_seconds=timeline_settle_seconds)

    def steps(self) -> Sequence[Step]:
        return self._steps


# ---------------------------------------------------------------------------------------------------
# Reconciliation: did a post carrying our media get made?


def build_recent_posts_request(config: TargetConfig, account_id: str, token: str,
                               since: datetime | str | None = None, max_results: int = 20) -> httpx.Request:
    """``GET /2/users/{id}/tweets`` with each post's media keys.

    ``since`` is either a post id (``since_id``) or a time (``start_time``). Only parameters X's
    OpenAPI document lists for this endpoint, and only what is needed: X answers 400 to any other
    (api-notes.md item 16), and ``expansions=attachments.media_keys`` alone gives each post its
    ``attachments.media_keys`` (its ``id`` and ``text`` come by default). No ``tweet.fields``/``post.fields``:
    the live API and the 2026 document disagree on that name, and nothing here needs a field it adds.
    """
    params: dict[str, str] = {
        "max_results": str(max(5, min(100, max_results))),
        "expansions": "attachments.media_keys",
    }
    if isinstance(since, datetime):
        moment = since if since.tzinfo else since.replace(tzinfo=UTC)
        params["start_time"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(since, str) and since:
        params["since_id"] = since
    return httpx.Request("GET", api_url(config, f"/2/users/{account_id}/tweets"),
                         headers=bearer(token), params=params)


def find_post_with_media_key(response: httpx.Response, media_key: str) -> str | None:
    """The id of the post in a timeline response that carries ``media_key``, else None."""
    if not response.is_success:
        return None
    body = json_body(response)
    posts = body.get("data") if isinstance(body, dict) else None
    for post in posts if isinstance(posts, list) else ():
        if not isinstance(post, dict):
            continue
        attachments = post.get("attachments")
        keys = attachments.get("media_keys") if isinstance(attachments, dict) else None
        if isinstance(keys, list) and media_key in keys:
            return id_string(post.get("id"))
    return None


def media_key_of(data: Mapping[str, Any]) -> str | None:
    """The uploaded image's media key; X photo keys are ``3_<media id>`` when the upload sent none."""
    key = text(data.get("media_key"))
    media_id = id_string(data.get("media_id"))
    return key or (f"3_{media_id}" if media_id else None)


def comparable_text(text: str) -> str:
    """A post's text as compared with a caption: X stores it HTML-escaped (``&amp;``), NFC-normalised,
    with every URL shortened to a t.co link and the attached media's own link appended, so URLs are
    compared as placeholders and trailing ones dropped."""
    words = URL_PATTERN.sub(" \x00 ", unicodedata.normalize("NFC", html.unescape(text))).split()
    while words and words[-1] == "\x00":
        words.pop()
    return " ".join(words)


URL_PATTERN = re.compile(r"https?://\S+", re.IGNORECASE)


def find_post_with_text(response: httpx.Response, caption: str) -> str | None:
    """The id of the newest post with media in a timeline response whose text is ``caption``."""
    wanted = comparable_text(caption)
    if not wanted or not response.is_success:
        return None  # an empty caption says nothing about which post it is
    body = json_body(response)
    posts = body.get("data") if isinstance(body, dict) else None
    for post in posts if isinstance(posts, list) else ():
        if not isinstance(post, dict) or not isinstance(post.get("text"), str):
            continue
        attachments = post.get("attachments")
        has_media = isinstance(attachments, dict) and bool(attachments.get("media_keys"))
        if has_media and comparable_text(post["text"]) == wanted:
            return id_string(post.get("id"))
    return None


def _next_token(response: httpx.Response) -> str | None:
    body = json_body(response)
    meta = body.get("meta") if isinstance(body, dict) else None
    return text(meta.get("next_token")) if isinstance(meta, dict) else None


def read_refused(response: httpx.Response, now: float) -> Finding:
    """A failed timeline read. A 400 is X refusing the question itself (a parameter it does not list,
    say): asking again cannot help, so it is final, with X's words for the person who must look."""
    reason = error_outcome(response, now).reason or f"X answered {response.status_code}"
    if response.status_code == 400:
        return Finding(Verdict.UNKNOWN, reason=f"X refused the timeline read ({reason})", final=True)
    return Finding(Verdict.UNKNOWN, reason=reason)


class XReconciler:
    """Did ``POST /2/tweets`` go out? Look for a recent post of ours carrying the uploaded media key.

    After X refused a post as duplicate content (``DUPLICATE_REFUSED`` in the context), look instead
    for the post X means: the account's recent post carrying this caption (or our media key).
    """

    finds_duplicates = True

    def __init__(self, config: TargetConfig, *, username: str | None = None, clock: Clock = time.time,
                 timeline_settle_seconds: float = TIMELINE_SETTLE_SECONDS) -> None:
        self.config = config
        self.username = username
        self.clock = clock
        # A miss only proves absence once a post made at the intent would be visible in the timeline.
        self.timeline_settle_seconds = timeline_settle_seconds
        # parse() is not told when the intent was; remember it per job from build().
        self._intent_at: dict[int, float] = {}

    def build(self, ctx: JobContext, step: str, intent_at: float) -> httpx.Request | None:
        if step != "create_post" or not ctx.account_id:
            return None
        if ctx.data.get(DUPLICATE_REFUSED):
            # The earlier post may be older than any intent of this job: the newest posts, page by page.
            request = build_recent_posts_request(self.config, ctx.account_id, ctx.access_token or "",
                                                 max_results=100)
            return _on_page(request, text(ctx.data.get("duplicate_next_token")))
        if not media_key_of(ctx.data):
            return None
        self._intent_at[ctx.job_id] = intent_at
        since = datetime.fromtimestamp(intent_at - RECONCILE_LOOKBACK_SECONDS, UTC)
        request = build_recent_posts_request(self.config, ctx.account_id, ctx.access_token or "", since,
                                             max_results=100)
        return _on_page(request, text(ctx.data.get("reconcile_next_token")))

    def parse(self, ctx: JobContext, step: str, response: httpx.Response) -> Finding:
        if ctx.data.get(DUPLICATE_REFUSED):
            return self._parse_duplicate(ctx, response)
        media_key = media_key_of(ctx.data) or ""
        intent_at = self._intent_at.pop(ctx.job_id, None)
        if not response.is_success:
            return read_refused(response, self.clock())
        post_id = find_post_with_media_key(response, media_key)
        if post_id is not None:
            return self._posted(ctx, post_id)
        next_token = _next_token(response)
        if next_token:
            return Finding(Verdict.ASK_AGAIN, data={"reconcile_next_token": next_token})
        if intent_at is not None and self.clock() - intent_at < self.timeline_settle_seconds:
            return Finding(Verdict.UNKNOWN, reason="no post with the image yet; it may not be visible so soon")
        return Finding(Verdict.ABSENT, data={"reconcile_next_token": None},
                       reason=f"no recent post carries media {media_key}")

    def _parse_duplicate(self, ctx: JobContext, response: httpx.Response) -> Finding:
        if not response.is_success:
            return read_refused(response, self.clock())
        keys = {key for key in (media_key_of(ctx.data), *(ctx.data.get("media_keys") or [])) if key}
        post_id = next((found for key in sorted(keys) if (found := find_post_with_media_key(response, key))), None)
        post_id = post_id or find_post_with_text(response, ctx.caption.text)
        if post_id is not None:
            return self._posted(ctx, post_id)
        next_token = _next_token(response)
        if next_token:
            return Finding(Verdict.ASK_AGAIN, data={"duplicate_next_token": next_token})
        what = "this caption" if comparable_text(ctx.caption.text) else "this image (the caption is empty)"
        return Finding(Verdict.ABSENT, reason=f"no recent post of the account carries {what}")

    def _posted(self, ctx: JobContext, post_id: str) -> Finding:
        username = self.username or text(ctx.data.get("username"))
        return Finding(Verdict.POSTED, remote_id=post_id,
                       permalink=post_permalink(post_id, username, self.config.web_base),
                       data={"post_id": post_id})


def _on_page(request: httpx.Request, page: str | None) -> httpx.Request:
    """``request`` for the timeline page ``page`` (a ``next_token``), or as it is."""
    if not page:
        return request
    return httpx.Request("GET", request.url.copy_merge_params({"pagination_token": page}), headers=request.headers)


# ---------------------------------------------------------------------------------------------------
# `crosswatch links check`: is the post still there? (a read X bills per resource: pricing.py)


class XLinkCheck:
    """``GET /2/tweets/{id}``; a deleted post answers 200 with a resource-not-found error, or 404."""

    def build(self, cfg: TargetConfig, remote_id: str, token: str | None) -> httpx.Request:
        return httpx.Request("GET", api_url(cfg, f"/2/tweets/{remote_id}"), headers=bearer(token))

    def parse(self, response: httpx.Response) -> tuple[LinkState, str]:
        body = json_body(response)
        if response.status_code == 200 and isinstance(body, Mapping):
            if isinstance(body.get("data"), Mapping):
                return "ok", "the post is there"
            errors = body.get("errors")
            for error in errors if isinstance(errors, list) else ():
                if isinstance(error, Mapping) and str(error.get("type", "")).endswith("/resource-not-found"):
                    return "broken", str(error.get("detail") or "X cannot find the post; it was deleted")
        if response.status_code == 404:
            return "broken", "X cannot find the post; it was deleted"
        return "unknown", parse_problem(response).reason


LINK_CHECK = XLinkCheck()
