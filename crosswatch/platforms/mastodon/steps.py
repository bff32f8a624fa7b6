"""The Mastodon target: upload the image with its alt text, wait until it is processed, create the
status (sans-I/O; the runner sends).

A status may carry several images (a bridged carousel, an album: ``base.post_images``, as many as the
server's ``max_media_attachments``, jobs.py keeps to that). The upload step then repeats itself
(``Kind.AGAIN``) once per image, and each answer is recorded before the next image goes: after a crash
the step resumes at the image it stopped at and never uploads again one whose id is kept. The wait
step polls every image still processing; the status carries every ``media_ids[]``, in order.

What Mastodon's own source says, and what the steps rely on (mastodon/mastodon):

- ``POST /api/v2/media`` answers 200 with the attachment when it is processed, 202 (``url: null``)
  when processing goes on; ``GET /api/v1/media/:id`` then answers 206 while processing and 200 when
  done (``app/controllers/api/v1/media_controller.rb``, ``status_code_for_media_attachment``). That
  controller finds the attachment with ``current_account.media_attachments.where(status_id: nil)``:
  once attached to a status it answers 404. The reconciler uses that.
- ``PostStatusService`` keeps ``idempotency:status:<account>:<key>`` in Redis for 3,600 s and returns
  the stored status for a repeated ``Idempotency-Key``. Its ``validate_media!`` takes only the
  account's attachments with ``status_id: nil``: since Mastodon 4.x an id already attached answers
  422 "Media <ids> not found or already attached to another post"; older servers (before that
  check) silently dropped such ids, so a blind resend past the key window posted a text-only
  duplicate. Either way the create step is not sent again past the window before the reconciler
  has looked.
- Errors are ``{"error": "..."}``: 401 "The access token is invalid", 403 "This action is outside the
  authorized scopes", 422 "Validation failed: ..." (Rails' words), 429 "Throttled" with
  ``X-RateLimit-Limit/Remaining/Reset`` (reset an ISO 8601 time; ``rate_limit_headers.rb``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms import base
from crosswatch.platforms.base import Finding, JobContext, Kind, Outcome, Step, Verdict
from crosswatch.platforms.mastodon.limits import InstanceLimits, parse_instance
from crosswatch.platforms.reading import id_string, json_body, text

# The scopes crosswatch asks for (mastodon/documentation api/oauth-scopes.md): upload, post, and
# read the account (verify_credentials, and the account's statuses when reconciling).
MASTODON_SCOPES: tuple[str, ...] = ("write:media", "write:statuses", "read:accounts", "read:statuses")
# PostStatusService keeps an Idempotency-Key this long; resending with it is only trusted while a
# margin of this window remains.
IDEMPOTENCY_WINDOW_SECONDS = 3600.0
IDEMPOTENCY_MARGIN_SECONDS = 600.0
# A media still processing is asked about again after this long.
PROCESSING_POLL_SECONDS = 2.0
DEFAULT_RATE_LIMIT_WAIT = 5 * 60.0  # Mastodon's API windows are 5 minutes
# The statuses read when reconciling: Mastodon's maximum page, and how many pages at most.
STATUSES_PAGE = 40
RECONCILE_PAGES = 5
# The instance's limits are read again after this long.
INSTANCE_INFO_MAX_AGE = 86400.0
# A step that has more images to do comes back at once (the runner's AGAIN waits this long).
NEXT_IMAGE_SECONDS = 0.01

Clock = Callable[[], float]


def api_url(config: TargetConfig, path: str) -> str:
    """``path`` under the instance URL, keeping a path prefix the instance URL may have."""
    return (config.instance or "").rstrip("/") + path


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or ''}"}


# ---------------------------------------------------------------------------------------------------
# Errors and rate limits


def error_words(response: httpx.Response) -> str:
    body = json_body(response)
    words = text(body.get("error")) if isinstance(body, dict) else None
    described = text(body.get("error_description")) if isinstance(body, dict) else None
    said = ": ".join(w for w in (words, described) if w) or response.reason_phrase or "no error text"
    return f"Mastodon answered {response.status_code}: {said}"


def _reset_epoch(value: str | None) -> int | None:
    """``X-RateLimit-Reset``: an ISO 8601 time on Mastodon (``iso8601(6)``); epoch seconds taken too."""
    if not value:
        return None
    value = value.strip()
    try:
        return int(float(value))
    except ValueError:
        pass
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    try:
        return int(headers.get(name, "").strip())
    except ValueError:
        return None


def rate_limit_data(headers: httpx.Headers) -> dict[str, Any]:
    """The runner's convention (``data["rate_limit"]``: window -> limit, remaining, reset epoch)."""
    window = {"limit": _int_header(headers, "x-ratelimit-limit"),
              "remaining": _int_header(headers, "x-ratelimit-remaining"),
              "reset": _reset_epoch(headers.get("x-ratelimit-reset"))}
    if all(v is None for v in window.values()):
        return {}
    return {"rate_limit": {"window": window}}


def rate_limited_wait(headers: httpx.Headers, now: float) -> float:
    reset = _reset_epoch(headers.get("x-ratelimit-reset"))
    if reset is None:
        retry_after = _int_header(headers, "retry-after")
        return float(retry_after) if retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
    return max(1.0, reset - now + 1.0)


def error_outcome(response: httpx.Response, now: float, *, unsafe: bool = False) -> Outcome:
    """A Mastodon error answer as an outcome; ``unsafe``: a 5xx may have been applied (UNKNOWN)."""
    status = response.status_code
    reason = error_words(response)
    data = {**rate_limit_data(response.headers), "http_status": status}
    if status == 401:
        return Outcome(Kind.AUTH, data=data, reason=reason + " — the access token was refused")
    if status == 403:
        return Outcome(Kind.AUTH, data=data,
                       reason=reason + " — the sign-in lacks a scope crosswatch needs; sign in again")
    if status == 429:
        return Outcome(Kind.RATE_LIMITED, data=data, reason=reason,
                       retry_after=rate_limited_wait(response.headers, now))
    if status == 413:
        return Outcome(Kind.REJECTED, data=data, reason=reason + " — the photo is too large for this server")
    if status >= 500:
        return Outcome(Kind.UNKNOWN if unsafe else Kind.RETRY, data=data, reason=reason)
    return Outcome(Kind.FAILED, data=data, reason=reason)


def _object(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    return body if isinstance(body, dict) else {}


# ---------------------------------------------------------------------------------------------------
# Steps


# Every image of the status, in order (``ctx.data["images"]`` for several, else the prepared one).
post_images = base.every_image


def media_ids(ctx: JobContext) -> list[str]:
    """The ids of the images uploaded so far (one image: its ``media_id``)."""
    ids = ctx.data.get("media_ids")
    if isinstance(ids, list):
        return [str(i) for i in ids]
    one = id_string(ctx.data.get("media_id"))
    return [one] if one else []


def _pending(ctx: JobContext) -> list[str]:
    """The uploaded images the server is still processing."""
    pending = ctx.data.get("media_pending")
    if isinstance(pending, list):
        return [str(i) for i in pending]
    one = id_string(ctx.data.get("media_id"))
    return [one] if one and ctx.data.get("media_processing") else []


@dataclass
class UploadMedia:
    """``POST /api/v2/media`` (multipart ``file``, the alt text as ``description``), once per image.
    Safe to repeat: an attachment not used by a status is cleaned up by the server."""

    config: TargetConfig
    clock: Clock = time.time
    name: str = "upload_media"
    safe_to_repeat: bool = True
    # The upload check reads the prepared image again before this step (uploadcheck.py).
    sends_media: bool = True

    def build(self, ctx: JobContext) -> httpx.Request:
        images = post_images(ctx)
        if not images:
            raise ValueError("the Mastodon upload step needs a prepared image")  # a runner bug
        image = images[min(len(media_ids(ctx)) if len(images) > 1 else 0, len(images) - 1)]
        content_type = "image/png" if image.format.upper() == "PNG" else "image/jpeg"
        form = {"description": image.alt_text.strip()} if image.alt_text and image.alt_text.strip() else {}
        return httpx.Request("POST", api_url(self.config, "/api/v2/media"), headers=bearer(ctx.access_token),
                             data=form, files={"file": (image.path.name, image.path.read_bytes(), content_type)})

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if response.status_code == 422:
            # The file or its description was refused (not an image, alt text too long): as it is, the
            # photo cannot go to this server.
            return Outcome(Kind.REJECTED, data=rate_limit_data(response.headers), reason=error_words(response))
        if response.status_code not in (200, 202):
            return error_outcome(response, self.clock())
        media_id = id_string(_object(response).get("id"))
        if media_id is None:
            return Outcome(Kind.RETRY, data=rate_limit_data(response.headers),
                           reason="Mastodon accepted the upload but sent no media id")
        processing = response.status_code == 202
        count = len(post_images(ctx))
        if count < 2:
            return Outcome.next(media_id=media_id, media_processing=processing, **rate_limit_data(response.headers))
        ids = [*media_ids(ctx), media_id]
        pending = [*(_pending(ctx) if ctx.data.get("media_ids") else []), *([media_id] if processing else [])]
        # The first image's id stays the job's media_id: the reconciler looks for it.
        data = {"media_ids": ids, "media_id": ids[0], "media_pending": pending, "media_processing": bool(pending),
                **rate_limit_data(response.headers)}
        if len(ids) < count:
            return Outcome(Kind.AGAIN, data=data, retry_after=NEXT_IMAGE_SECONDS,
                           reason=f"uploaded image {len(ids)} of {count}")
        return Outcome(Kind.NEXT, data=data)


@dataclass
class WaitForMedia:
    """``GET /api/v1/media/:id`` until it answers 200 (206 while processing); only after a 202."""

    config: TargetConfig
    clock: Clock = time.time
    name: str = "wait_for_media"
    safe_to_repeat: bool = True

    def applies(self, ctx: JobContext) -> bool:
        return bool(ctx.data.get("media_processing")) and bool(_pending(ctx))

    def build(self, ctx: JobContext) -> httpx.Request:
        pending = _pending(ctx)
        media_id = pending[0] if pending else str(ctx.data.get("media_id", ""))
        return httpx.Request("GET", api_url(self.config, f"/api/v1/media/{media_id}"),
                             headers=bearer(ctx.access_token))

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        limits = rate_limit_data(response.headers)
        if response.status_code == 206:
            return Outcome(Kind.AGAIN, data=limits, retry_after=PROCESSING_POLL_SECONDS,
                           reason="Mastodon is still processing the image")
        if response.status_code == 200:
            rest = _pending(ctx)[1:]
            if rest:
                return Outcome(Kind.AGAIN, data={**limits, "media_pending": rest}, retry_after=NEXT_IMAGE_SECONDS,
                               reason=f"{len(rest)} more image(s) still to be processed")
            return Outcome.next(media_processing=False, media_pending=[], **limits)
        if response.status_code == 422:
            return Outcome(Kind.REJECTED, data=limits, reason=error_words(response))
        if response.status_code == 404:
            # Unattached media is cleaned up after a day: upload again (every image: their ids go together).
            return Outcome(Kind.AGAIN, data={**limits, "media_id": None, "media_ids": None, "media_pending": None,
                                             "media_processing": False},
                           back_to="upload_media", retry_after=PROCESSING_POLL_SECONDS,
                           reason="the uploaded image is gone from the server; uploading it again")
        return error_outcome(response, self.clock())


def idempotency_key(ctx: JobContext) -> str:
    """Derived from the job alone, so a repeat after a crash or a restart carries the same key; an
    album's later posts (its thread's replies, ``album_part``) each have their own."""
    part = ctx.data.get("album_part")
    suffix = f"-{part}" if isinstance(part, int) and part > 0 else ""
    return f"crosswatch-{ctx.target}-{ctx.job_id}-{ctx.photo_hash[:32]}{suffix}"


def reply_to_id(ctx: JobContext) -> str | None:
    """An album's next post answers its previous one (``in_reply_to_id``); see runner._album_thread."""
    reply_to = ctx.data.get("reply_to")
    return id_string(reply_to.get("remote_id")) if isinstance(reply_to, Mapping) else None


# Mastodon's words for a status refused for its text (the input itself cannot be posted as it is).
_TEXT_REFUSALS = ("character limit", "can't be blank", "too long")
_MEDIA_TAKEN = "already attached"
_MEDIA_NOT_READY = "not finished processing"


def status_permalink(status: Mapping[str, Any]) -> str | None:
    return text(status.get("url")) or text(status.get("uri"))


@dataclass
class CreateStatus:
    """``POST /api/v1/statuses`` with an ``Idempotency-Key``. Not safe to repeat blindly: Mastodon
    keeps the key for an hour only, so the intent is committed and the reconciler asks first."""

    config: TargetConfig
    clock: Clock = time.time
    name: str = "create_status"
    safe_to_repeat: bool = False

    def build(self, ctx: JobContext) -> httpx.Request:
        body: dict[str, Any] = {"status": ctx.caption.text}
        ids = media_ids(ctx)
        if ids:
            body["media_ids"] = ids
        if self.config.visibility:
            body["visibility"] = self.config.visibility
        if self.config.language:
            body["language"] = self.config.language
        if reply_to_id(ctx):
            body["in_reply_to_id"] = reply_to_id(ctx)
        headers = {**bearer(ctx.access_token), "Idempotency-Key": idempotency_key(ctx)}
        return httpx.Request("POST", api_url(self.config, "/api/v1/statuses"), headers=headers, json=body)

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        limits = rate_limit_data(response.headers)
        if response.status_code == 422:
            return self._refused(ctx, response, limits)
        if not response.is_success:
            return error_outcome(response, self.clock(), unsafe=True)
        status = _object(response)
        status_id = id_string(status.get("id"))
        if status_id is None:
            return Outcome(Kind.UNKNOWN, data=limits,
                           reason=f"Mastodon answered {response.status_code} without a status id")
        return Outcome(Kind.DONE, data={"status_id": status_id, **limits}, remote_id=status_id,
                       permalink=status_permalink(status))

    @staticmethod
    def _refused(ctx: JobContext, response: httpx.Response, limits: Mapping[str, Any]) -> Outcome:
        reason = error_words(response)
        words = reason.lower()
        if _MEDIA_TAKEN in words:
            # Our image is on a status already: an earlier attempt went out. Ask, never resend.
            return Outcome(Kind.UNKNOWN, data=limits, reason=reason)
        if _MEDIA_NOT_READY in words:
            return Outcome(Kind.AGAIN, data={**limits, "media_processing": True, "media_pending": media_ids(ctx)},
                           back_to="wait_for_media", retry_after=PROCESSING_POLL_SECONDS, reason=reason)
        if any(marker in words for marker in _TEXT_REFUSALS):
            return Outcome(Kind.REJECTED, data=limits, reason=reason)
        return Outcome(Kind.FAILED, data=limits, reason=reason)


# ---------------------------------------------------------------------------------------------------
# Reconciliation: did our status get made?


class MastodonReconciler:
    """After a lost or ambiguous answer to ``create_status``:

    1. ``GET /api/v1/media/:id``: 200/206 means the image is attached to no status, and Mastodon
       attaches it in the same transaction that makes the status, so the status was not made
       (ABSENT, whatever the time). 404 means it is attached (or gone): step 2.
    2. The account's statuses (``GET /api/v1/accounts/:id/statuses``), newest first, for the one
       carrying our media id: POSTED. Not found: within the Idempotency-Key window (less a margin)
       a resend with the same key returns the status if there is one (ABSENT, said so); past it the
       platform cannot tell and a person decides.
    """

    def __init__(self, config: TargetConfig, *, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self._intent_at: dict[int, float] = {}

    def build(self, ctx: JobContext, step: str, intent_at: float) -> httpx.Request | None:
        media_id = id_string(ctx.data.get("media_id"))
        if step != "create_status" or media_id is None:
            return None
        self._intent_at[ctx.job_id] = intent_at
        if not ctx.data.get("reconcile_statuses"):
            return httpx.Request("GET", api_url(self.config, f"/api/v1/media/{media_id}"),
                                 headers=bearer(ctx.access_token))
        if not ctx.account_id:
            return None
        params = {"limit": str(STATUSES_PAGE)}
        max_id = text(ctx.data.get("reconcile_max_id"))
        if max_id:
            params["max_id"] = max_id
        return httpx.Request("GET", api_url(self.config, f"/api/v1/accounts/{ctx.account_id}/statuses"),
                             headers=bearer(ctx.access_token), params=params)

    def parse(self, ctx: JobContext, step: str, response: httpx.Response) -> Finding:
        intent_at = self._intent_at.pop(ctx.job_id, self.clock())
        media_id = id_string(ctx.data.get("media_id")) or ""
        if not ctx.data.get("reconcile_statuses"):
            return self._media_answer(response, media_id)
        if not response.is_success:
            return Finding(Verdict.UNKNOWN, reason=error_words(response))
        statuses = json_body(response)
        statuses = statuses if isinstance(statuses, list) else []
        for status in statuses:
            if isinstance(status, dict) and _carries(status, media_id):
                status_id = id_string(status.get("id"))
                return Finding(Verdict.POSTED, remote_id=status_id, permalink=status_permalink(status),
                               data={"status_id": status_id, "reconcile_statuses": False})
        pages = int(ctx.data.get("reconcile_pages") or 0) + 1
        oldest = id_string(statuses[-1].get("id")) if statuses and isinstance(statuses[-1], dict) else None
        if len(statuses) >= STATUSES_PAGE and oldest and pages < RECONCILE_PAGES:
            return Finding(Verdict.ASK_AGAIN, data={"reconcile_max_id": oldest, "reconcile_pages": pages})
        reset = {"reconcile_statuses": False, "reconcile_max_id": None, "reconcile_pages": 0}
        age = self.clock() - intent_at
        if age < IDEMPOTENCY_WINDOW_SECONDS - IDEMPOTENCY_MARGIN_SECONDS:
            return Finding(Verdict.ABSENT, data=reset, reason=(
                f"no status of the account carries media {media_id}; sent {age:.0f} s ago, within "
                "Mastodon's 1-hour Idempotency-Key window, so sending again with the same key returns "
                "the status if it was made"))
        return Finding(Verdict.UNKNOWN, data=reset, final=True, reason=(
            f"media {media_id} is attached to no status of the account's recent ones and the "
            "Idempotency-Key window has passed"))

    @staticmethod
    def _media_answer(response: httpx.Response, media_id: str) -> Finding:
        if response.status_code in (200, 206):
            return Finding(Verdict.ABSENT, reason=(
                f"media {media_id} is attached to no status (Mastodon attaches it when it makes the "
                "status), so the status was not made"))
        if response.status_code == 404:
            return Finding(Verdict.ASK_AGAIN, data={"reconcile_statuses": True, "reconcile_pages": 0,
                                                    "reconcile_max_id": None})
        return Finding(Verdict.UNKNOWN, reason=error_words(response))


def _carries(status: Mapping[str, Any], media_id: str) -> bool:
    attachments = status.get("media_attachments")
    return isinstance(attachments, list) and any(
        isinstance(a, dict) and id_string(a.get("id")) == media_id for a in attachments)


class MastodonTarget:
    """Posts one photo to a Mastodon server: upload (safe), wait for processing (read), create the
    status (not safe; Idempotency-Key plus the reconciler)."""

    kind = "mastodon"

    def __init__(self, config: TargetConfig, *, clock: Clock = time.time) -> None:
        self.config = config
        self.name = config.name
        self._steps: tuple[Step, ...] = (
            UploadMedia(config, clock), WaitForMedia(config, clock), CreateStatus(config, clock))
        self.reconciler = MastodonReconciler(config, clock=clock)
        self.info_read = INSTANCE_INFO

    def steps(self) -> Sequence[Step]:
        return self._steps


# ---------------------------------------------------------------------------------------------------
# The instance's limits (read at sign-in and at most daily by the daemon) and the link check


class InstanceInfoRead:
    """``GET /api/v2/instance`` (no sign-in needed): the server's limits, as ``InstanceLimits.as_json``."""

    max_age = INSTANCE_INFO_MAX_AGE

    def build(self, cfg: TargetConfig) -> httpx.Request:
        return httpx.Request("GET", api_url(cfg, "/api/v2/instance"))

    def parse(self, response: httpx.Response) -> dict[str, Any] | None:
        limits: InstanceLimits | None = parse_instance(json_body(response)) if response.is_success else None
        return None if limits is None else limits.as_json()


INSTANCE_INFO = InstanceInfoRead()


class StatusLinkCheck:
    """``GET /api/v1/statuses/:id``: 200 the status is there, 404 it is gone."""

    def build(self, cfg: TargetConfig, remote_id: str, token: str | None) -> httpx.Request:
        headers = bearer(token) if token else {}
        return httpx.Request("GET", api_url(cfg, f"/api/v1/statuses/{remote_id}"), headers=headers)

    def parse(self, response: httpx.Response) -> tuple[Literal["ok", "broken", "unknown"], str]:
        if response.status_code == 200:
            return "ok", status_permalink(_object(response)) or "the status is there"
        if response.status_code == 404:
            return "broken", error_words(response)
        return "unknown", error_words(response)


LINK_CHECK = StatusLinkCheck()
