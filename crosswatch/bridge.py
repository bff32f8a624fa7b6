"""The Instagram bridge: new posts on the user's own Instagram account are re-shared on every target
in ``bridge.targets`` (X, Mastodon, the outbox, ...; ``bridge.target``, one name, is the old spelling).

Every ``bridge.poll_seconds`` the daemon's bridge thread reads ``GET {graph_base}/me/media`` (newest
first, cursor pagination) with the Instagram target's token, and decides per post:

- an IMAGE or a CAROUSEL_ALBUM (its first ``bridge.max_images`` images, at most 4) becomes one job
  per bridge target;
- anything else (VIDEO, REELS) is skipped, and so is every post crosswatch itself published to
  Instagram from the folder flow (the journal knows their media ids: ``Journal.posted_remote_ids``);
- while one of crosswatch's own Instagram jobs is being published (or is in doubt), new posts are left
  for the next poll, because its id may not be in the journal yet.

Where it starts: the first poll on an account records a baseline (the newest post then) and leaves
every post already there alone, except the newest ``bridge.backfill`` posts, which it bridges. Every
post the bridge has looked at is recorded in the journal's ``bridged`` table, so nothing is bridged
twice, across restarts too; paging stops at the baseline or at a page it has seen entirely.

How a bridged post fits the journal: jobs belong to photos, so the post becomes a photo whose
identity is ``ig:<media id>`` (not a content hash: the same picture posted twice on Instagram is two
posts) and whose path is its first image, downloaded from ``media_url`` into
``state_dir/bridge/<media id>/``, and one ready job for each of ``bridge.targets`` with
``data["bridge"] = {source, media_id, permalink, caption, images, alt_texts, media_type, timestamp}``.
The post's mark in the ``bridged`` table and all its jobs are written in one transaction, so a post
becomes exactly one job per target, across restarts too. jobs.py builds each job's caption from the
Instagram caption (``compose.condense``, by that target's own counting rule and limit: first line or
sentence, credit kept, hashtags capped, the permalink with UTM parameters unless ``bridge.link`` is
``none``) and its images from the downloads (as many as the target's platform takes in one post).
The downloads are removed once every target's post is out.

Alt text: the Instagram API returns ``alt_text`` on media where it has one; it is asked for and
carried over when present. Images are downloaded without the token (media_url is a public CDN
address), and the token is never logged.

The request builders and parsers here are sans-I/O (they build ``httpx.Request`` and read
``httpx.Response``); ``Bridge`` does the sending, the downloads and the journal writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import structlog

from crosswatch.config import Config, TargetConfig
from crosswatch.errors import CrosswatchError, JournalError
from crosswatch.journal import Journal
from crosswatch.platforms.base import Kind
from crosswatch.platforms.instagram.steps import bearer, error_outcome, graph_url
from crosswatch.platforms.reading import graph_time, text

log = structlog.get_logger("crosswatch.bridge")

MEDIA_FIELDS = ("id,caption,media_type,media_url,permalink,timestamp,alt_text,"
                "children{id,media_type,media_url,alt_text}")
PAGE_SIZE = 25
# A poll reads at most this many pages: a long outage is caught up over several polls.
MAX_PAGES = 20
# Instagram images are at most 8 MiB; anything far larger is not a photo we should fetch.
MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024
BRIDGEABLE = ("IMAGE", "CAROUSEL_ALBUM")


# ---------------------------------------------------------------------------------------------------
# Reading the account's media (sans-I/O)


@dataclass(frozen=True)
class IGImage:
    id: str
    url: str
    alt_text: str | None


@dataclass(frozen=True)
class IGPost:
    id: str
    media_type: str
    caption: str
    permalink: str | None
    timestamp: float | None
    images: tuple[IGImage, ...]  # in order; empty when nothing in it is a photo


@dataclass(frozen=True)
class MediaPage:
    posts: tuple[IGPost, ...]  # newest first
    after: str | None  # the cursor of the next (older) page; None on the last page


@dataclass(frozen=True)
class ReadFailure:
    reason: str
    auth: bool = False  # the token was refused: sign in again


def build_media_request(config: TargetConfig, token: str | None, *, after: str | None = None,
                        limit: int | None = None) -> httpx.Request:
    """``GET {graph_base}/me/media`` with the fields the bridge needs, one page."""
    params = {"fields": MEDIA_FIELDS, "limit": str(limit or PAGE_SIZE)}
    if after:
        params["after"] = after
    return httpx.Request("GET", graph_url(config, "me/media"), params=params, headers=bearer(token))






def _image(node: Mapping[str, Any]) -> IGImage | None:
    if node.get("media_type", "IMAGE") != "IMAGE":
        return None
    node_id, url = node.get("id"), text(node.get("media_url"))
    if not isinstance(node_id, str | int) or url is None:
        return None
    alt = text(node.get("alt_text"))
    return IGImage(str(node_id), url, alt.strip() if alt and alt.strip() else None)


def parse_post(node: Mapping[str, Any]) -> IGPost | None:
    """One media object; None when it has no id. Its images: itself (IMAGE) or its IMAGE children."""
    node_id = node.get("id")
    if not isinstance(node_id, str | int) or isinstance(node_id, bool):
        return None
    media_type = text(node.get("media_type")) or "UNKNOWN"
    images: list[IGImage] = []
    if media_type == "IMAGE":
        image = _image(node)
        images = [image] if image else []
    elif media_type == "CAROUSEL_ALBUM":
        children = node.get("children")
        items = children.get("data") if isinstance(children, Mapping) else None
        for child in items if isinstance(items, list) else ():
            image = _image(child) if isinstance(child, Mapping) else None
            if image is not None:
                images.append(image)
    return IGPost(
        id=str(node_id),
        media_type=media_type,
        caption=text(node.get("caption")) or "",
        permalink=text(node.get("permalink")),
        timestamp=graph_time(node.get("timestamp")),
        images=tuple(images),
    )


def parse_media_page(response: httpx.Response) -> MediaPage | ReadFailure:
    """A page of ``/me/media``; never raises, whatever the body holds."""
    if not response.is_success:
        outcome = error_outcome(response)
        return ReadFailure(outcome.reason or f"Instagram answered {response.status_code}",
                           auth=outcome.kind is Kind.AUTH)
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return ReadFailure(f"Instagram answered {response.status_code} with a body that is not JSON")
    items = body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return ReadFailure("Instagram's media list had no data")
    posts = tuple(p for p in (parse_post(i) for i in items if isinstance(i, Mapping)) if p is not None)
    paging = body.get("paging")
    after = None
    # A next page exists only when Graph gives a `next` link; the `after` cursor alone is not enough.
    if isinstance(paging, Mapping) and paging.get("next"):
        cursors = paging.get("cursors")
        after = text(cursors.get("after")) if isinstance(cursors, Mapping) else None
    return MediaPage(posts, after)


# ---------------------------------------------------------------------------------------------------
# Deciding (pure)


SKIP_OWN = "published by crosswatch from the folder flow"
SKIP_BEFORE = "on the account before the bridge started"


def skip_reason(post: IGPost, own: set[str]) -> str | None:
    """Why ``post`` is never bridged, or None when it may be."""
    if post.id in own:
        return SKIP_OWN
    if post.media_type not in BRIDGEABLE:
        return f"a {post.media_type} post; only photos (IMAGE, CAROUSEL_ALBUM) are bridged"
    if not post.images:
        return "no photo in it"
    return None


@dataclass(frozen=True)
class FirstRun:
    bridge: tuple[IGPost, ...]  # oldest first, so the re-shares keep Instagram's order
    skipped: dict[str, str]
    baseline: float


def first_run(posts: Sequence[IGPost], backfill: int, own: set[str]) -> FirstRun:
    """The bridge's first look at an account: the newest ``backfill`` bridgeable posts go out, the
    rest stays alone; the baseline is the newest post's time (0 on an empty account)."""
    chosen: list[IGPost] = []
    skipped: dict[str, str] = {}
    for post in posts:
        reason = skip_reason(post, own)
        if reason is None and len(chosen) < backfill:
            chosen.append(post)
        else:
            skipped[post.id] = reason or SKIP_BEFORE
    times = [p.timestamp for p in posts if p.timestamp is not None]
    return FirstRun(tuple(reversed(chosen)), skipped, max(times) if times else 0.0)


# ---------------------------------------------------------------------------------------------------
# The bridge (I/O)


class InstagramToken(Protocol):
    def access_token(self) -> str: ...


class Bridge:
    """One source account, its targets: ``poll`` reads new posts and creates their jobs."""

    def __init__(self, config: Config, journal: Journal, client: httpx.Client, token: InstagramToken | None
                 ) -> None:
        self.config = config
        self.settings = config.bridge
        self.source = config.targets[config.bridge.source]
        self.journal = journal
        self.client = client
        self.token = token
        self.folder = config.state_dir / "bridge"

    def poll(self) -> int:
        """Look at the account once; returns how many posts were bridged (each one job per target).
        Problems (no token, the platform unreachable, a failed download) are logged and left for the
        next poll."""
        if self.token is None:
            log.warning("the bridge has no Instagram sign-in", target=self.source.name,
                        fix=f"crosswatch auth login {self.source.name}")
            return 0
        try:
            token = self.token.access_token()
            return self._poll(token)
        except JournalError as exc:
            # Nothing was decided without being recorded: the next poll sees the same posts again.
            log.error("the bridge cannot write the journal; will try again", error=str(exc))
        except CrosswatchError as exc:
            log.warning("the bridge could not read Instagram; will try again", error=str(exc))
        except httpx.HTTPError as exc:
            log.warning("the bridge could not reach Instagram; will try again", error=type(exc).__name__)
        return 0

    def _poll(self, token: str) -> int:
        name = self.source.name
        baseline = self.journal.bridge_baseline(name)
        own = self.journal.posted_remote_ids(name)
        busy = self.journal.publishing(name)
        if busy:
            # Our own folder-flow post may be on the account already, its id not yet journaled: the
            # bridge decides nothing until those jobs are settled (an in-doubt one by the platform's
            # answer, or by `crosswatch resolve`).
            log.info("bridge waits for crosswatch's own Instagram posts to settle", jobs=busy)
            return 0
        if baseline is None:
            return self._start(token, own)
        posts = self._read(token, baseline=baseline)
        if posts is None:
            return 0
        known = self.journal.bridge_seen(name, [p.id for p in posts])
        fresh = [p for p in posts if p.id not in known and (p.timestamp is None or p.timestamp >= baseline)]
        created = 0
        for post in reversed(fresh):  # oldest first: the targets get them in Instagram's order
            reason = skip_reason(post, own)
            if reason is not None:
                self.journal.skip_bridged(name, post.id, reason)
                log.info("not bridged", media_id=post.id, reason=reason)
                continue
            created += self._bridge(post)
        return created

    def _start(self, token: str, own: set[str]) -> int:
        """The first poll on this account: bridge the backfill, leave the rest, record the baseline."""
        name = self.source.name
        posts = self._read(token, backfill=self.settings.backfill, own=own)
        if posts is None:
            return 0
        start = first_run(posts, self.settings.backfill, own)
        failed = [post for post in start.bridge if not self._bridge(post)]
        # A backfilled post whose download failed must stay after the baseline, so that the next
        # poll takes it as new.
        baseline = min([start.baseline, *(p.timestamp for p in failed if p.timestamp is not None)])
        self.journal.start_bridge(name, baseline, start.skipped)
        log.info("bridge started", source=name, backfilled=len(start.bridge) - len(failed),
                 left_alone=len(start.skipped))
        return len(start.bridge) - len(failed)

    def _read(self, token: str, *, backfill: int | None = None, own: set[str] | None = None,
              baseline: float | None = None) -> list[IGPost] | None:
        """Newest first. First poll (``backfill`` given): pages until that many photo posts, the first
        page at least. Later: pages until the baseline, or a page the bridge has seen entirely."""
        posts: list[IGPost] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            response = self.client.send(build_media_request(self.source, token, after=after))
            response.read()
            page = parse_media_page(response)
            if isinstance(page, ReadFailure):
                log.warning("the bridge could not read Instagram; will try again", reason=page.reason,
                            **({"fix": f"crosswatch auth login {self.source.name}"} if page.auth else {}))
                return None
            posts.extend(page.posts)
            if page.after is None or not page.posts:
                break
            if backfill is not None:
                if sum(1 for p in posts if skip_reason(p, own or set()) is None) >= backfill:
                    break
                after = page.after
                continue
            older = baseline is not None and any(p.timestamp is not None and p.timestamp < baseline
                                                 for p in page.posts)
            if older or len(self.journal.bridge_seen(self.source.name, [p.id for p in page.posts])) == len(page.posts):
                break
            after = page.after
        return posts

    def _bridge(self, post: IGPost) -> int:
        """Download the post's images and create its job; 0 (and nothing recorded) if a download fails."""
        images = post.images[: self.settings.max_images]
        try:
            paths = self._download(post.id, images)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.warning("could not download an Instagram image; will try again", media_id=post.id,
                        error=str(exc) if isinstance(exc, ValueError) else type(exc).__name__)
            return 0
        data = {"bridge": {
            "source": self.source.name,
            "media_id": post.id,
            "media_type": post.media_type,
            "permalink": post.permalink,
            "caption": post.caption,
            "timestamp": post.timestamp,
            "images": [str(p) for p in paths],
            "alt_texts": [image.alt_text for image in images],
        }}  # fmt: skip
        targets = self.settings.targets
        job_ids = self.journal.add_bridged_post(
            self.source.name, post.id, content_hash=f"ig:{post.id}", path=str(paths[0]),
            size=paths[0].stat().st_size, targets=targets, data=data,
            approval={name for name in targets if self.config.needs_approval(name)})
        log.info("bridged", media_id=post.id, jobs=job_ids, targets=list(targets), images=len(paths))
        return 1

    def _download(self, media_id: str, images: Sequence[IGImage]) -> list[Path]:
        folder = self.folder / _safe(media_id)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, image in enumerate(images, start=1):
            path = folder / f"{index}.jpg"
            if not path.exists():
                _fetch_to(self.client, image.url, path)
            paths.append(path)
        return paths


def _safe(media_id: str) -> str:
    return "".join(ch for ch in media_id if ch.isalnum() or ch in "-_") or "media"


def _fetch_to(client: httpx.Client, url: str, path: Path) -> None:
    """Download ``url`` (no token: it is a public CDN address) to ``path`` atomically."""
    with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise ValueError(f"the image address answered {response.status_code}")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".download-")
        try:
            written = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in response.iter_bytes():
                    written += len(chunk)
                    if written > MAX_DOWNLOAD_BYTES:
                        raise ValueError(f"the image is larger than {MAX_DOWNLOAD_BYTES} bytes")
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
