"""What a job needs before its first step: the photo's metadata, the fitted caption, the prepared image.

Metadata is read once per photo and images are prepared for all of the photo's targets at once
(media.py caches them in state_dir), so a photo bound for two targets is decoded once.

Two kinds of job are built differently:

- A bridged job (``data["bridge"]``, made by bridge.py from an Instagram post, one per bridge target)
  takes its caption from the Instagram caption, condensed for its target (``compose.condense``), with
  the post's permalink (and UTM parameters) as its link, and its images from the files the bridge
  downloaded (the photo's path is the first; ``bridge["images"]`` lists all), as many as the target's
  platform takes in one post (``max_images``). With more than one image, ``ctx.data["images"]`` lists
  the prepared images and their alt texts for the target's upload and alt-text steps.
- An album's job (``data["album"]``, made by intake from a sub-folder under ``watch[].albums:
  folder``) takes its caption from the album (album.yaml over the first photo, keywords and creators
  merged; albums.py) and its images from its members, each with its own alt text, as many per post as
  the target's platform takes (Mastodon: the server's limit). An album longer than that is split by
  ``albums.split``: ``data["album_part"]`` says which post of the thread this is (the runner moves it
  on after each post, with ``reply_to``); Instagram's children are fitted to the first image's aspect
  ratio, as one carousel must be.
- A job whose target has ``link_to`` (cross-promotion) waits for the same photo's job on that
  target: ``build`` raises ``NotYet`` until it is done, then the caption carries its permalink. If
  that job failed or was rejected, this one goes out without the link (and the log says so).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from crosswatch import albums, compose, metadata, platform_info
from crosswatch.config import Config, TargetConfig, WatchFolder
from crosswatch.errors import BadPhoto
from crosswatch.journal import Journal
from crosswatch.logs import LazyLogger
from crosswatch.models import TERMINAL_STATES, Caption, Job, JobState, Metadata, Photo, PreparedImage
from crosswatch.platforms import registry
from crosswatch.platforms.base import JobContext
from crosswatch.platforms.limits import PlatformLimits, TargetSpec

# media (Pillow) and structlog are imported when an image is prepared or a line logged: `queue` and the
# console's queue page compose captions with this module and need neither.
log = LazyLogger("crosswatch.jobs")

_METADATA_CACHE_SIZE = 64
# How long a cross-promoting job waits before looking again, by the state of the job it waits for.
_WAIT_WHILE_SENDING = 2.0
_WAIT_FOR_A_PERSON = 60.0
_WAIT_MAX = 600.0


class NotYet(Exception):
    """The job may not start yet: the runner puts it back to ready for ``retry_after`` seconds, with
    ``reason`` shown in status. Nothing is attempted or counted."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class JobContexts:
    def __init__(self, config: Config, journal: Journal, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.journal = journal
        self.clock = clock
        self._metadata: OrderedDict[str, Metadata] = OrderedDict()

    def photo(self, job: Job) -> Photo:
        photo = self.journal.photo(job.photo_id)
        if photo is None:  # the schema's foreign key makes this impossible; say so plainly if not
            raise BadPhoto(f"job {job.id} names photo {job.photo_id}, which the journal does not have")
        return photo

    def metadata(self, photo: Photo) -> Metadata:
        cached = self._metadata.get(photo.hash)
        if cached is not None:
            self._metadata.move_to_end(photo.hash)
            return cached
        read = metadata.read_metadata(Path(photo.path))
        self._metadata[photo.hash] = read
        if len(self._metadata) > _METADATA_CACHE_SIZE:
            self._metadata.popitem(last=False)
        return read

    def caption(self, job: Job, photo: Photo, link: str | None = None) -> Caption:
        """The caption as it will be posted: composed, or as edited by hand (``data["edit"]``)."""
        bridge = job.data.get("bridge")
        target_cfg = self.config.targets.get(job.target)
        # A server's own limits (Mastodon's instance) where the platform reports them.
        limits = platform_info.learned_limits(self.journal, target_cfg) if target_cfg is not None else None
        album = job.data.get("album")
        if isinstance(bridge, Mapping):
            composed = self._bridged_caption(job, bridge)
        elif isinstance(album, Mapping):
            composed = self._album_caption(job, album, link, limits)
        else:
            composed = compose.compose(self.config, job.target, self.metadata(photo), Path(photo.path),
                                       link=link, limits=limits)
        edit = job.data.get("edit")
        if not isinstance(edit, Mapping):
            return composed
        try:
            return compose.edited_caption(self.config, job.target, composed, edit, limits=limits)
        except compose.CaptionRefused as exc:
            # Checked when it was saved; only a changed config (a lower hashtag cap) can get here.
            raise BadPhoto(f"the edited caption no longer fits: {exc}; `crosswatch edit {job.id}`") from None

    def image(self, job: Job, photo: Photo) -> PreparedImage:
        from crosswatch import media

        album = job.data.get("album")
        if isinstance(album, Mapping):
            members = _members(album)
            if not members:
                raise BadPhoto(f"the album {photo.path} has no photo for target {job.target}")
            return self._album_image(job, members[0], None)  # the album's first image stands for it
        # Only targets still to be served: a finished job's image was discarded and must not be
        # prepared (and cached) again.
        targets = [self.config.targets[t.target] for t in self.journal.jobs_for_photo(photo.id)
                   if t.target in self.config.targets and (t.id == job.id or t.state not in TERMINAL_STATES)]
        prepared = media.prepare_all(Path(photo.path), photo.hash, targets, self.config,
                                     metadata=self.metadata(photo),
                                     specs=platform_info.learned_specs(self.journal, targets))
        result = prepared.get(job.target)
        if isinstance(result, BadPhoto):
            raise result
        if result is None:
            raise BadPhoto(f"no image could be prepared for target {job.target}")
        return result

    def build(self, job: Job, *, access_token: str | None = None, account_id: str | None = None,
              username: str | None = None, need_image: bool = True) -> JobContext:
        """Raises BadPhoto when the photo cannot be posted to this target, NotYet when the job must
        wait for another one."""
        photo = self.photo(job)
        if not Path(photo.path).exists():
            raise BadPhoto(f"the photo is gone from {photo.path}; it was moved or deleted before posting")
        bridge = job.data.get("bridge")
        if isinstance(bridge, Mapping):
            return self._bridged(job, photo, bridge, access_token=access_token, account_id=account_id,
                                 username=username, need_image=need_image)
        link = job.data.get("link") if isinstance(job.data.get("link"), str) else None
        if link is None:
            link = self.cross_link(job)
        album = job.data.get("album")
        if isinstance(album, Mapping):
            return self._album(job, photo, album, link, access_token=access_token, account_id=account_id,
                               username=username, need_image=need_image)
        return JobContext(
            job_id=job.id,
            target=job.target,
            photo_hash=photo.hash,
            photo_path=Path(photo.path),
            caption=self.caption(job, photo, link),
            image=self.image(job, photo) if need_image else None,
            data={**({"username": username} if username else {}), **job.data},
            access_token=access_token,
            account_id=account_id,
        )

    def discard(self, job: Job) -> None:
        """The job is finished: its prepared image is no longer needed."""
        from crosswatch import media

        photo = self.journal.photo(job.photo_id)
        if photo is not None:
            media.discard_prepared(self.config, photo.hash, job.target)
            album = job.data.get("album")
            if isinstance(album, Mapping):
                for member in _members(album):
                    media.discard_prepared(self.config, member["hash"], job.target)
            bridge = job.data.get("bridge")
            if isinstance(bridge, Mapping):
                for index in range(1, len(bridge.get("images") or ())):
                    media.discard_prepared(self.config, f"{photo.hash}-{index}", job.target)
                folder = Path(photo.path).parent
                # The downloads are kept until every target's post is out (a failed job can be
                # retried), and only the bridge's own folder is ever removed.
                every_done = all(j.state is JobState.DONE for j in self.journal.jobs_for_photo(photo.id))
                if job.state is JobState.DONE and every_done and folder.parent == self.config.state_dir / "bridge":
                    with contextlib.suppress(OSError):
                        shutil.rmtree(folder)

    # -- cross-promotion ---------------------------------------------------------------------------

    def cross_link(self, job: Job) -> str | None:
        """The permalink of the post this job links to (``targets.<name>.link_to``), or None.

        Raises NotYet while that post is still to come. A job that has begun its steps is never held
        back (its caption must not change half-way)."""
        target = self.config.targets.get(job.target)
        if target is None or not target.link_to:
            return None
        other = next((j for j in self.journal.jobs_for_photo(job.photo_id) if j.target == target.link_to), None)
        if other is None:
            return None  # this photo does not go to that target: nothing to wait for
        if other.state is JobState.DONE:
            if other.permalink is None:
                log.warning("posting without the link: the linked post has no permalink", job=job.id,
                            linked_job=other.id)
            return other.permalink if target.link == "permalink" else None
        if other.state in (JobState.FAILED, JobState.REJECTED):
            log.warning("posting without the link: the linked post did not go out", job=job.id,
                        linked_job=other.id, linked_state=other.state.value)
            return None
        if job.step is not None:
            log.warning("posting without the link: this job had begun before", job=job.id, linked_job=other.id)
            return None
        raise NotYet(f"waiting for the {target.link_to} post of this photo (job {other.id}, "
                     f"{other.state.value}) to link to it; targets.{job.target}.link_to",
                     self._wait_for(other))

    def _wait_for(self, other: Job) -> float:
        if other.state is JobState.READY:
            # Until the other job's next attempt, or its target's hold (a quota, a rate limit) ends.
            hold = self.journal.holds(self.clock()).get(other.target)
            starts = max(other.next_attempt_at, hold.until if hold else 0.0)
            return max(_WAIT_WHILE_SENDING, min(_WAIT_MAX, starts - self.clock() + 0.5))
        if other.state is JobState.IN_FLIGHT:
            return _WAIT_WHILE_SENDING
        return _WAIT_FOR_A_PERSON  # awaiting approval, pending, in doubt

    # -- albums ------------------------------------------------------------------------------------

    def album_plan(self, job: Job, album: Mapping[str, Any]) -> albums.Split:
        """How this album's members go out on the job's target (posts of a thread, those not posted)."""
        target = self._target(job)
        return albums.split(len(_members(album)), self.per_post(target), overflow=self._album_folder(album).overflow,
                            kind=target.kind, replies=registry.limits(target.kind).replies)

    def per_post(self, target: TargetConfig) -> int:
        """How many images one post of ``target`` takes: its platform's ``max_images``, or its
        server's own where the platform reports one (platform_info: a Mastodon instance)."""
        return max(1, platform_info.learned_limits(self.journal, target).max_images)

    def _target(self, job: Job) -> TargetConfig:
        target = self.config.targets.get(job.target)
        if target is None:
            raise BadPhoto(f"target {job.target} is not configured")
        return target

    def _album_folder(self, album: Mapping[str, Any]) -> WatchFolder:
        folder = Path(str(album.get("folder") or ""))
        for watched in self.config.watch:
            if folder.parent in (watched.path, watched.path.resolve()):
                return watched
        return WatchFolder(path=folder.parent, targets=(), albums="folder")  # defaults: no longer watched

    def _album(self, job: Job, photo: Photo, album: Mapping[str, Any], link: str | None, *,
               access_token: str | None, account_id: str | None, username: str | None,
               need_image: bool) -> JobContext:
        members = _members(album)
        plan = self.album_plan(job, album)
        part = min(int(job.data.get("album_part") or 0), len(plan.posts) - 1)
        data: dict[str, Any] = {**({"username": username} if username else {}),
                                **{k: v for k, v in job.data.items() if v is not None},
                                "album_part": part, "album_parts": len(plan.posts)}
        prepared: list[PreparedImage] = []
        if need_image:
            alts = [self._member_caption(job, member).alt_text for member in members]
            prepared = [self._post_image(job, members, plan.posts[part], at, first_post=part == 0)
                        for at in range(len(plan.posts[part]))]
            if len(prepared) > 1:
                data["images"] = [{"path": image.path, "format": image.format, "alt_text": alts[index]}
                                  for image, index in zip(prepared, plan.posts[part], strict=True)]
        caption = self.caption(job, photo, link)
        if part > 0:
            first_alt = self._member_caption(job, members[plan.posts[part][0]]).alt_text
            caption = albums.reply_caption(caption, part, len(plan.posts), first_alt)
        elif len(plan.posts[0]) == 1:
            caption = Caption(text=caption.text, length=caption.length, limit=caption.limit,
                              alt_text=self._member_caption(job, members[plan.posts[0][0]]).alt_text,
                              hashtags=caption.hashtags, shortened=caption.shortened)
        return _context(job, photo, caption, prepared, data, access_token, account_id)

    def _post_image(self, job: Job, members: Sequence[Mapping[str, str]], post: Sequence[int], at: int, *,
                    first_post: bool) -> PreparedImage:
        """The prepared image ``at`` of one post of the album (``post``: its members' indexes)."""
        fitted_to: float | None = None
        if at > 0 and first_post and self._target(job).kind == "instagram":
            # One carousel, one aspect ratio: every child is fitted to the first image's.
            first = self._album_image(job, members[post[0]], None)
            fitted_to = first.width / first.height
        return self._album_image(job, members[post[at]], fitted_to)

    def album_plan_posts(self, job: Job) -> tuple[tuple[int, ...], ...]:
        album = job.data.get("album")
        return self.album_plan(job, album).posts if isinstance(album, Mapping) else ()

    def album_alt_texts(self, job: Job) -> list[str]:
        """The alt text of every image an album job sends, in the order they go out (all its posts);
        [] for a job that is not an album's."""
        album = job.data.get("album")
        if not isinstance(album, Mapping):
            return []
        members = _members(album)
        return [self._member_caption(job, members[index]).alt_text or ""
                for post in self.album_plan_posts(job) for index in post]

    def album_image(self, job: Job, number: int) -> PreparedImage:
        """The ``number``-th image (from 0, over all its posts) an album job sends, prepared as it
        will be uploaded; BadPhoto when the job has no such image."""
        album = job.data.get("album")
        members = _members(album) if isinstance(album, Mapping) else []
        left = number
        for part, post in enumerate(self.album_plan_posts(job)):
            if 0 <= left < len(post):
                return self._post_image(job, members, post, left, first_post=part == 0)
            left -= len(post)
        raise BadPhoto(f"job {job.id} has no album image {number}")

    def _member_metadata(self, member: Mapping[str, str]) -> Metadata:
        path = Path(member["path"])
        if not path.exists():
            raise BadPhoto(f"the album's photo {path} is gone; it was moved or deleted before posting")
        return self.metadata(Photo(id=0, hash=member["hash"], path=str(path), size=0, mtime=0.0, first_seen=0.0))

    def _member_caption(self, job: Job, member: Mapping[str, str]) -> Caption:
        return compose.compose(self.config, job.target, self._member_metadata(member), Path(member["path"]))

    def _album_caption(self, job: Job, album: Mapping[str, Any], link: str | None,
                       limits: Any) -> Caption:
        members = _members(album)
        folder = Path(str(album.get("folder") or ""))
        merged = albums.album_metadata([self._member_metadata(m) for m in members], albums.read_album_text(folder))
        return compose.compose(self.config, job.target, merged, folder, link=link, limits=limits)

    def _album_image(self, job: Job, member: Mapping[str, str], aspect: float | None) -> PreparedImage:
        from crosswatch import media

        target = self._target(job)
        specs = platform_info.learned_specs(self.journal, [target])
        if aspect is not None:
            spec = specs.get(target.name) or media.spec_for(target)
            specs = {target.name: _fixed_aspect(spec, aspect)}
        result = media.prepare_all(Path(member["path"]), member["hash"], [target], self.config,
                                   metadata=self._member_metadata(member), specs=specs).get(job.target)
        if isinstance(result, BadPhoto):
            raise result
        if result is None:
            raise BadPhoto(f"no image could be prepared for target {job.target}")
        return result

    # -- bridged posts -----------------------------------------------------------------------------

    def _bridged(self, job: Job, photo: Photo, bridge: Mapping[str, Any], *, access_token: str | None,
                 account_id: str | None, username: str | None, need_image: bool) -> JobContext:
        paths = [str(p) for p in bridge.get("images") or () if isinstance(p, str)] or [photo.path]
        paths = paths[: self._max_images(job.target)]
        limits = self.target_limits(job.target)
        alts = [compose.fit_alt_text(self.config, job.target, alt, limits) for alt in _alt_texts(bridge, len(paths))]
        caption = self._bridged_caption(job, bridge)
        data: dict[str, Any] = {**({"username": username} if username else {}), **job.data}
        prepared: list[PreparedImage] = []
        if need_image:
            for index, path in enumerate(paths):
                if not Path(path).exists():
                    raise BadPhoto(f"the downloaded image {path} is gone; the bridged post cannot go out")
                prepared.append(self._bridged_image(job, photo, index, Path(path)))
            if len(prepared) > 1:
                data["images"] = [{"path": image.path, "format": image.format, "alt_text": alt,
                                   "width": image.width, "height": image.height}
                                  for image, alt in zip(prepared, alts, strict=True)]
        return _context(job, photo, caption, prepared, data, access_token, account_id)

    def _bridged_caption(self, job: Job, bridge: Mapping[str, Any]) -> Caption:
        permalink = bridge.get("permalink")
        link = None
        if self.config.bridge.link == "permalink" and isinstance(permalink, str) and permalink:
            utm = self.config.bridge.utm or self.config.links.utm.get(job.target, {})
            link = compose.add_utm(permalink, utm)
        # Fitted to the target's own limits: its server's where it tells them (Mastodon's instance).
        return compose.condense(self.config, job.target, str(bridge.get("caption") or ""), link=link,
                                alt_text=_alt_texts(bridge, 1)[0], limits=self.target_limits(job.target))

    def target_limits(self, target: str) -> PlatformLimits | None:
        """The target's limits: its server's where it tells them (Mastodon's instance), else its
        platform's; None for a target not configured."""
        target_cfg = self.config.targets.get(target)
        return platform_info.learned_limits(self.journal, target_cfg) if target_cfg is not None else None

    def _max_images(self, target: str) -> int:
        """Images one post of this target carries: the platform's, or its server's (Mastodon's
        max_media_attachments, as platform_info last read it)."""
        config = self.config.targets.get(target)
        if config is None or registry.platform(config.kind) is None:
            return 1
        return platform_info.learned_limits(self.journal, config).max_images

    def _bridged_image(self, job: Job, photo: Photo, index: int, path: Path) -> PreparedImage:
        from crosswatch import media

        target = self.config.targets.get(job.target)
        if target is None:
            raise BadPhoto(f"target {job.target} is not configured")
        key = photo.hash if index == 0 else f"{photo.hash}-{index}"
        result = media.prepare_all(path, key, [target], self.config).get(job.target)
        if isinstance(result, BadPhoto):
            raise result
        if result is None:
            raise BadPhoto(f"no image could be prepared for target {job.target}")
        return result


def _context(job: Job, photo: Photo, caption: Caption, prepared: list[PreparedImage], data: dict[str, Any],
             access_token: str | None, account_id: str | None) -> JobContext:
    """A several-image job's context (an album's, a bridged post's): its first image is ``image``."""
    return JobContext(job_id=job.id, target=job.target, photo_hash=photo.hash, photo_path=Path(photo.path),
                      caption=caption, image=prepared[0] if prepared else None, data=data,
                      access_token=access_token, account_id=account_id)


def _members(album: Mapping[str, Any]) -> list[dict[str, str]]:
    """The album's photos for this job, in order: ``{"path", "hash"}`` each."""
    return [{"path": str(m["path"]), "hash": str(m["hash"])} for m in album.get("members") or ()
            if isinstance(m, Mapping) and isinstance(m.get("path"), str) and isinstance(m.get("hash"), str)]


def _fixed_aspect(spec: TargetSpec, aspect: float) -> TargetSpec:
    """``spec`` narrowed to one aspect ratio (a carousel child fitted to the first image's)."""
    return dataclasses.replace(spec, min_aspect=aspect, max_aspect=aspect)


def _alt_texts(bridge: Mapping[str, Any], count: int) -> list[str | None]:
    """The first ``count`` bridged images' alt texts (None where Instagram had none)."""
    alts: list[str | None] = [a if isinstance(a, str) and a.strip() else None for a in bridge.get("alt_texts") or ()]
    return (alts + [None] * count)[:count]
