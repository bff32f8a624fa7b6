"""The Bluesky target: upload the image as a blob, create the post record (sans-I/O).

A post may carry up to 4 images (``app.bsky.embed.images``; a bridged carousel or an album, listed by
``base.post_images``): the upload step then repeats itself (``Kind.AGAIN``) once per image, each blob
recorded before the next image goes, so after a crash it resumes at the image it stopped at and never
uploads again one whose blob is kept. The record embeds every blob, in order, each with its alt text
and aspect ratio.

Both steps are XRPC calls to the account's own PDS (its DID document's ``#atproto_pds`` endpoint,
handed to the steps by the runner as ``ctx.api_base``; ``service`` until sign-in has found it).

The post record goes under a record key chosen here: a TID derived from the job and the moment its
blob upload was recorded (``tid.py``), so the same job always asks for the same key. A second create
on an existing key cannot make a second post; the reference PDS (bluesky-social/atproto at d6296a1c)
refuses it with a **500 InternalServerError**: ``createRecord.ts`` hands the write to the repo, whose
MST throws a plain ``Error("There is already a value at key: ...")`` (packages/repo/src/mst/mst.ts),
which xrpc-server turns into a 500. A 500 therefore cannot tell "already there" from "failed"; the
create step counts as not safe to repeat, so that after any failed or unanswered create the runner
asks the reconciler, which reads the record back by its key (``com.atproto.repo.getRecord``; a missing
record is 400 ``RecordNotFound``, getRecord.ts): found means posted, absent means send it again.

Errors are XRPC's ``{"error": NAME, "message": TEXT}``. An expired or bogus access token is a 400
``ExpiredToken``/``InvalidToken`` (auth-verifier.ts), not a 401; no token at all is 401 ``AuthMissing``.
Rate limits come in ``ratelimit-limit/-remaining/-reset/-policy`` headers (reset in Unix seconds) and a
429 ``RateLimitExceeded``.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms import base
from crosswatch.platforms.base import Finding, JobContext, Kind, Outcome, Step, Verdict
from crosswatch.platforms.bluesky.limits import MAX_IMAGE_BYTES, MAX_IMAGES
from crosswatch.platforms.bluesky.richtext import detect_facets
from crosswatch.platforms.bluesky.tid import tid_for_job
from crosswatch.platforms.reading import integer, json_body, text

DEFAULT_SERVICE = "https://bsky.social"
DEFAULT_WEB_BASE = "https://bsky.app"
POST_COLLECTION = "app.bsky.feed.post"
# When a 429 carries no usable reset, wait this long (the general limit's window is 5 minutes).
DEFAULT_RATE_LIMIT_WAIT = 300.0
# A step that has more images to do comes back at once (the runner's AGAIN waits this long).
NEXT_IMAGE_SECONDS = 0.01
# The XRPC error names that mean "this access token will not do": refresh the session.
AUTH_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthMissing", "AuthRequired"})
# The account cannot post at all until a person acts.
ACCOUNT_ERRORS = frozenset({"AccountTakedown", "AccountDeactivated", "RepoTakendown", "RepoDeactivated"})

Clock = Callable[[], float]


# ---------------------------------------------------------------------------------------------------
# Addresses


def pds_base(config: TargetConfig, ctx: JobContext | None = None) -> str:
    """The account's PDS when sign-in found it, else the configured service."""
    found = ctx.api_base if ctx is not None else None
    return (found or config.service or DEFAULT_SERVICE).rstrip("/")


def xrpc_url(base: str, nsid: str) -> str:
    return f"{base.rstrip('/')}/xrpc/{nsid}"


def bearer(token: str | None) -> dict[str, str]:
    # A missing token still builds a request: the PDS answers 401 AuthMissing, the runner treats it as AUTH.
    return {"Authorization": f"Bearer {token}"} if token else {}


def post_permalink(config: TargetConfig, handle: str | None, rkey: str, did: str | None = None) -> str:
    base = (config.web_base or DEFAULT_WEB_BASE).rstrip("/")
    return f"{base}/profile/{handle or did or config.handle}/post/{rkey}"


def at_uri(did: str, rkey: str, collection: str = POST_COLLECTION) -> str:
    return f"at://{did}/{collection}/{rkey}"


def split_at_uri(uri: str) -> tuple[str, str, str] | None:
    """(repo, collection, rkey) of ``at://repo/collection/rkey``, else None."""
    if not uri.startswith("at://"):
        return None
    parts = uri[len("at://"):].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


# ---------------------------------------------------------------------------------------------------
# Errors and rate limits


@dataclass(frozen=True)
class XrpcError:
    status: int
    error: str | None
    message: str | None

    @property
    def reason(self) -> str:
        words = ": ".join(p for p in (self.error, self.message) if p) or f"HTTP {self.status}"
        return f"Bluesky answered {self.status} {words}"


def parse_error(response: httpx.Response) -> XrpcError:
    body = json_body(response)
    if not isinstance(body, dict):
        return XrpcError(response.status_code, None, response.reason_phrase or None)
    return XrpcError(response.status_code, text(body.get("error")), text(body.get("message")))


def rate_limit_data(headers: httpx.Headers) -> dict[str, Any]:
    """The ``ratelimit-*`` window as the runner's convention wants it (``data["rate_limit"]``)."""
    window = {"limit": integer(headers.get("ratelimit-limit")),
              "remaining": integer(headers.get("ratelimit-remaining")),
              "reset": integer(headers.get("ratelimit-reset"))}
    if all(value is None for value in window.values()):
        return {}
    return {"rate_limit": {"window": window}}


def rate_limited_wait(headers: httpx.Headers, now: float) -> float:
    reset = integer(headers.get("ratelimit-reset"))
    if reset is not None:
        return max(1.0, reset - now + 1.0)
    retry_after = integer(headers.get("retry-after"))
    return float(retry_after) if retry_after is not None and retry_after > 0 else DEFAULT_RATE_LIMIT_WAIT


def is_auth_refusal(response: httpx.Response) -> bool:
    error = parse_error(response)
    return response.status_code == 401 or (response.status_code == 400 and error.error in AUTH_ERRORS)


def error_outcome(response: httpx.Response, now: float, *, applied_if_5xx: bool = False) -> Outcome:
    error = parse_error(response)
    status = response.status_code
    data = {**rate_limit_data(response.headers), "http_status": status, "xrpc_error": error.error}
    if is_auth_refusal(response):
        return Outcome(Kind.AUTH, data=data, reason=error.reason + " — the session was refused")
    if status == 429 or error.error == "RateLimitExceeded":
        return Outcome(Kind.RATE_LIMITED, data=data, reason=error.reason,
                       retry_after=rate_limited_wait(response.headers, now))
    if error.error in ACCOUNT_ERRORS:
        return Outcome(Kind.PAUSED, data=data, reason=error.reason + " — check the account in Bluesky")
    if status >= 500:
        return Outcome(Kind.UNKNOWN if applied_if_5xx else Kind.RETRY, data=data, reason=error.reason)
    return Outcome(Kind.FAILED, data=data, reason=error.reason)


def photo_refused(response: httpx.Response) -> bool:
    """Whether a 4xx refuses the image itself: too large for the upload (413), or, when the post
    references it, over the lexicon's maxSize or not an accepted type (the lexicon validator's words)."""
    if response.status_code == 413:
        return True
    words = (parse_error(response).message or "").lower()
    return response.status_code == 400 and any(
        marker in words for marker in ("blob too big", "mime type", "not an accepted", "invalid image"))


# ---------------------------------------------------------------------------------------------------
# Steps


def _created_at(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PostImage:
    path: Path
    format: str
    alt_text: str | None
    width: int | None
    height: int | None


def post_images(ctx: JobContext) -> list[PostImage]:
    """Every image of the post, in order (at most 4): ``ctx.data["images"]`` for several, else the
    prepared one."""
    several = base.post_images(ctx)[:MAX_IMAGES]
    if several:
        return [PostImage(Path(str(image.get("path"))), str(image.get("format") or "JPEG"),
                          text(image.get("alt_text")), integer(image.get("width")), integer(image.get("height")))
                for image in several]
    if ctx.image is None:
        return []
    return [PostImage(Path(ctx.image.path), ctx.image.format, ctx.caption.alt_text, ctx.image.width,
                      ctx.image.height)]


def _blobs(ctx: JobContext) -> list[Mapping[str, Any]]:
    """The blobs uploaded so far, each with its ``aspect_ratio`` beside it (one image: ``blob``)."""
    blobs = ctx.data.get("blobs")
    if isinstance(blobs, list):
        return [b for b in blobs if isinstance(b, Mapping)]
    blob = ctx.data.get("blob")
    return [{"blob": blob, "aspect_ratio": ctx.data.get("aspect_ratio")}] if isinstance(blob, Mapping) else []


@dataclass
class UploadBlob:
    """``com.atproto.repo.uploadBlob`` with the prepared image's bytes (safe: an unreferenced blob is
    dropped by the PDS after a while). Records the post's record key and time for the next step."""

    config: TargetConfig
    clock: Clock = time.time
    name: str = "upload_blob"
    safe_to_repeat: bool = True
    # The upload check reads the prepared image again before this step (uploadcheck.py).
    sends_media: bool = True

    def build(self, ctx: JobContext) -> httpx.Request:
        images = post_images(ctx)
        if not images:
            raise ValueError("the Bluesky upload step needs a prepared image")  # a runner bug, not input
        image = images[min(len(_blobs(ctx)) if len(images) > 1 else 0, len(images) - 1)]
        content_type = "image/png" if image.format.upper() == "PNG" else "image/jpeg"
        return httpx.Request("POST", xrpc_url(pds_base(self.config, ctx), "com.atproto.repo.uploadBlob"),
                             headers={**bearer(ctx.access_token), "Content-Type": content_type},
                             content=image.path.read_bytes())

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if not response.is_success:
            outcome = error_outcome(response, self.clock())
            if outcome.kind is Kind.FAILED and photo_refused(response):
                return Outcome(Kind.REJECTED, data=outcome.data, reason=outcome.reason)
            return outcome
        body = json_body(response)
        blob = body.get("blob") if isinstance(body, dict) else None
        if not isinstance(blob, dict) or not isinstance(blob.get("ref"), dict):
            return Outcome(Kind.RETRY, data=rate_limit_data(response.headers),
                           reason="Bluesky accepted the upload but sent no blob reference")
        size = integer(blob.get("size"))
        if size is not None and size > MAX_IMAGE_BYTES:
            return Outcome(Kind.REJECTED, reason=f"the image is {size} bytes; Bluesky takes at most "
                                                 f"{MAX_IMAGE_BYTES} bytes per image")
        images = post_images(ctx)
        done = _blobs(ctx) if len(images) > 1 else []
        image = images[min(len(done), len(images) - 1)] if images else None
        aspect = ({"width": image.width, "height": image.height}
                  if image is not None and image.width and image.height else None)
        data: dict[str, Any] = {"blob": blob, "aspect_ratio": aspect, **rate_limit_data(response.headers)}
        if len(images) > 1:
            uploaded = [*done, {"blob": blob, "aspect_ratio": aspect}]
            # The first image's blob stays the job's ``blob`` (as with one image).
            data |= {"blobs": uploaded, "blob": uploaded[0]["blob"], "aspect_ratio": uploaded[0]["aspect_ratio"]}
        if not ctx.data.get("rkey"):
            # The key and time of the post are fixed here, once, and committed with this step's
            # outcome before the create is sent: every later attempt sends the very same record.
            now = self.clock()
            data |= {"rkey": tid_for_job(ctx.job_id, now), "created_at": _created_at(now)}
        if len(images) > 1 and len(data["blobs"]) < len(images):
            return Outcome(Kind.AGAIN, data=data, retry_after=NEXT_IMAGE_SECONDS,
                           reason=f"uploaded image {len(data['blobs'])} of {len(images)}")
        return Outcome(Kind.NEXT, data=data)


def post_record(config: TargetConfig, ctx: JobContext) -> dict[str, Any]:
    """The ``app.bsky.feed.post`` record for this job (lexicons/app/bsky/feed/post.json)."""
    caption = ctx.caption.text
    record: dict[str, Any] = {
        "$type": POST_COLLECTION,
        "text": caption,
        "createdAt": text(ctx.data.get("created_at")) or _created_at(time.time()),
    }
    facets = detect_facets(caption)
    if facets:
        record["facets"] = facets
    if config.language:
        record["langs"] = [config.language]
    images = []
    for uploaded, image in zip(_blobs(ctx), post_images(ctx), strict=False):
        blob = uploaded.get("blob")
        if not isinstance(blob, Mapping):
            continue
        embedded: dict[str, Any] = {"image": dict(blob), "alt": (image.alt_text or "").strip()}
        aspect = uploaded.get("aspect_ratio")
        if isinstance(aspect, Mapping) and integer(aspect.get("width")) and integer(aspect.get("height")):
            embedded["aspectRatio"] = {"width": int(aspect["width"]), "height": int(aspect["height"])}
        images.append(embedded)
    if images:
        record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
    reply = reply_refs(ctx)
    if reply:
        record["reply"] = reply
    return record


def reply_refs(ctx: JobContext) -> dict[str, Any] | None:
    """An album's next post answers its previous one: app.bsky.feed.post#replyRef, the thread's first
    post as ``root`` and the previous as ``parent`` (each a strongRef: uri and cid, as createRecord
    answered them); see runner._album_thread."""
    reply_to = ctx.data.get("reply_to")
    if not isinstance(reply_to, Mapping):
        return None
    parent, root = reply_to.get("data"), reply_to.get("root_data")
    refs = {name: _strong_ref(found) for name, found in (("root", root), ("parent", parent))}
    if refs["root"] is None or refs["parent"] is None:
        return None
    return refs


def _strong_ref(data: object) -> dict[str, str] | None:
    if not isinstance(data, Mapping):
        return None
    uri, cid = text(data.get("uri")), text(data.get("cid"))
    return {"uri": uri, "cid": cid} if uri and cid else None


@dataclass
class CreatePost:
    """``com.atproto.repo.createRecord`` of the post under the job's record key.

    Not safe to repeat *blindly*: the same key makes a repeat harmless, but the PDS answers it with a
    500, so the runner commits the intent and, after any failure or lost answer, asks the reconciler
    (getRecord by the key) instead of guessing."""

    config: TargetConfig
    clock: Clock = time.time
    name: str = "create_post"
    safe_to_repeat: bool = False

    def build(self, ctx: JobContext) -> httpx.Request:
        body: dict[str, Any] = {
            "repo": ctx.account_id or self.config.handle or "",
            "collection": POST_COLLECTION,
            "rkey": str(ctx.data.get("rkey") or ""),
            "record": post_record(self.config, ctx),
        }
        return httpx.Request("POST", xrpc_url(pds_base(self.config, ctx), "com.atproto.repo.createRecord"),
                             headers=bearer(ctx.access_token), json=body)

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome:
        if not response.is_success:
            outcome = error_outcome(response, self.clock(), applied_if_5xx=True)
            error = parse_error(response)
            if response.status_code == 400 and (error.error == "BlobNotFound"
                                                or "could not find blob" in (error.message or "").lower()):
                # The PDS dropped the unreferenced blob while the post waited: upload it again.
                return Outcome(Kind.AGAIN, data={**outcome.data, "blob": None, "blobs": None}, back_to="upload_blob",
                               retry_after=1.0,
                               reason=outcome.reason)
            if outcome.kind is Kind.FAILED and photo_refused(response):
                return Outcome(Kind.REJECTED, data=outcome.data, reason=outcome.reason)
            return outcome
        body = json_body(response)
        uri = text(body.get("uri")) if isinstance(body, dict) else None
        parts = split_at_uri(uri or "")
        if uri is None or parts is None:
            return Outcome(Kind.UNKNOWN, data=rate_limit_data(response.headers),
                           reason=f"Bluesky answered {response.status_code} without a record URI")
        return Outcome(Kind.DONE, data={"uri": uri, "cid": text(body.get("cid")), **rate_limit_data(response.headers)},
                       remote_id=uri, permalink=post_permalink(self.config, _handle(self.config, ctx), parts[2],
                                                               parts[0]))


def _handle(config: TargetConfig, ctx: JobContext) -> str | None:
    return text(ctx.data.get("username")) or config.handle


class BlueskyTarget:
    """Posts one photo to Bluesky: upload the blob (safe), create the record under the job's key."""

    kind = "bluesky"

    def __init__(self, config: TargetConfig, *, clock: Clock = time.time) -> None:
        self.config = config
        self.name = config.name
        self._steps: tuple[Step, ...] = (UploadBlob(config, clock), CreatePost(config, clock))
        self.reconciler = BlueskyReconciler(config)

    def steps(self) -> Sequence[Step]:
        return self._steps


# ---------------------------------------------------------------------------------------------------
# Reading a record back


def get_record_request(base: str, repo: str, rkey: str, collection: str = POST_COLLECTION) -> httpx.Request:
    # getRecord needs no session: a public read, so an expired token cannot stand in the way.
    query = urllib.parse.urlencode({"repo": repo, "collection": collection, "rkey": rkey})
    return httpx.Request("GET", f"{xrpc_url(base, 'com.atproto.repo.getRecord')}?{query}")


def record_missing(response: httpx.Response) -> bool:
    return response.status_code == 400 and parse_error(response).error == "RecordNotFound"


class BlueskyReconciler:
    """Did createRecord go out? Read the record back by the job's key."""

    def __init__(self, config: TargetConfig) -> None:
        self.config = config

    def build(self, ctx: JobContext, step: str, intent_at: float) -> httpx.Request | None:
        rkey = text(ctx.data.get("rkey"))
        repo = ctx.account_id or self.config.handle
        if step != "create_post" or not rkey or not repo:
            return None
        return get_record_request(pds_base(self.config, ctx), repo, rkey)

    def parse(self, ctx: JobContext, step: str, response: httpx.Response) -> Finding:
        rkey = text(ctx.data.get("rkey")) or ""
        if record_missing(response):
            return Finding(Verdict.ABSENT, reason=f"no post under key {rkey}")
        body = json_body(response)
        uri = text(body.get("uri")) if isinstance(body, dict) and response.is_success else None
        parts = split_at_uri(uri or "")
        if uri is None or parts is None:
            reason = parse_error(response).reason
            return Finding(Verdict.UNKNOWN, reason=f"Bluesky could not say whether the post exists ({reason})",
                           final=response.status_code == 400)
        return Finding(Verdict.POSTED, remote_id=uri,
                       permalink=post_permalink(self.config, _handle(self.config, ctx), parts[2], parts[0]),
                       data={"uri": uri, "cid": text(body.get("cid"))})


# ---------------------------------------------------------------------------------------------------
# `crosswatch links check`


class BlueskyLinkCheck:
    """Is the post still there? getRecord by its URI (the job's remote id): RecordNotFound is broken.

    Asked of the configured ``service``: the entryway (bsky.social) answers repo reads for the
    accounts it hosts, and the link check is not handed the PDS the token store knows."""

    def build(self, cfg: TargetConfig, remote_id: str, token: str | None) -> httpx.Request:
        parts = split_at_uri(remote_id)
        repo, collection, rkey = parts if parts else (cfg.handle or "", POST_COLLECTION, remote_id)
        return get_record_request(pds_base(cfg), repo, rkey, collection)

    def parse(self, response: httpx.Response) -> tuple[Literal["ok", "broken", "unknown"], str]:
        if response.is_success and isinstance(json_body(response), dict):
            return "ok", "the post is there"
        if record_missing(response):
            return "broken", parse_error(response).message or "Bluesky cannot find the post; it was deleted"
        return "unknown", parse_error(response).reason


LINK_CHECK = BlueskyLinkCheck()
