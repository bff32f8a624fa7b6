"""What a job needs before its first step: the photo's metadata, the fitted caption, the prepared image.

Metadata is read once per photo and images are prepared for all of the photo's targets at once
(media.py caches them in state_dir), so a photo bound for two targets is decoded once.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from crosswatch import compose, media, metadata
from crosswatch.config import Config
from crosswatch.errors import BadPhoto
from crosswatch.journal import Journal
from crosswatch.models import TERMINAL_STATES, Caption, Job, Metadata, Photo, PreparedImage
from crosswatch.targets.base import JobContext

_METADATA_CACHE_SIZE = 64


class JobContexts:
    def __init__(self, config: Config, journal: Journal) -> None:
        self.config = config
        self.journal = journal
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
        return compose.compose(self.config, job.target, self.metadata(photo), Path(photo.path), link=link)

    def image(self, job: Job, photo: Photo) -> PreparedImage:
        # Only targets still to be served: a finished job's image was discarded and must not be
        # prepared (and cached) again.
        targets = [self.config.targets[t.target] for t in self.journal.jobs_for_photo(photo.id)
                   if t.target in self.config.targets and (t.id == job.id or t.state not in TERMINAL_STATES)]
        prepared = media.prepare_all(Path(photo.path), photo.hash, targets, self.config,
                                     metadata=self.metadata(photo))
        result = prepared.get(job.target)
        if isinstance(result, BadPhoto):
            raise result
        if result is None:
            raise BadPhoto(f"no image could be prepared for target {job.target}")
        return result

    def build(self, job: Job, *, access_token: str | None = None, account_id: str | None = None,
              username: str | None = None, need_image: bool = True) -> JobContext:
        """Raises BadPhoto when the photo cannot be posted to this target."""
        photo = self.photo(job)
        if not Path(photo.path).exists():
            raise BadPhoto(f"the photo is gone from {photo.path}; it was moved or deleted before posting")
        link = job.data.get("link") if isinstance(job.data.get("link"), str) else None
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
        photo = self.journal.photo(job.photo_id)
        if photo is not None:
            media.discard_prepared(self.config, photo.hash, job.target)
