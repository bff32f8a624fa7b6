"""The pictures the console shows, found by id in the journal, never by a path from a request.

- A photo's thumbnail is made once (from the photo, turned upright, no metadata at all) and kept in
  state_dir/console/thumbs/<content hash>.jpg; later requests read that file.
- A job's image is the prepared image as it will be uploaded (media.py's cache in state_dir, the
  same file the runner sends: padding or crop as the platform gets it); an album job has one for
  each image it sends, by number.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from crosswatch.config import Config
from crosswatch.errors import CrosswatchError
from crosswatch.journal import Journal
from crosswatch.models import JobState
from crosswatch.photofile import open_photo

THUMB_EDGE = 480
THUMB_QUALITY = 80


def thumbs_dir(config: Config) -> Path:
    return config.state_dir / "console" / "thumbs"


def photo_thumbnail(config: Config, journal: Journal, photo_id: int) -> Path | None:
    """The photo's cached thumbnail, made now if this is its first request; None when the journal
    has no such photo or the photo can no longer be read."""
    photo = journal.photo(photo_id)
    if photo is None:
        return None
    cached = thumbs_dir(config) / f"{photo.hash}.jpg"
    if cached.exists():
        return cached
    try:
        with open_photo(photo.path) as handle, Image.open(handle) as image:
            image.draft("RGB", (THUMB_EDGE * 2, THUMB_EDGE * 2))  # JPEG: decode at a fraction of the size
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((THUMB_EDGE, THUMB_EDGE))
            rgb = upright.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    cached.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, scratch = tempfile.mkstemp(dir=cached.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            rgb.save(out, "JPEG", quality=THUMB_QUALITY)  # no exif= given: nothing of the original's metadata
        os.replace(scratch, cached)
    except OSError:
        Path(scratch).unlink(missing_ok=True)
        return None
    return cached


def job_image(config: Config, journal: Journal, job_id: int, number: int = 0) -> Path | None:
    """The prepared image of a job still to go out, as it will be uploaded (an album job's
    ``number``-th, from 0, over all its posts); None when there is no such job or image, it is done
    (its image was discarded), or the image cannot be prepared."""
    from crosswatch.jobs import JobContexts

    job = journal.job(job_id)
    if job is None or job.state is JobState.DONE or job.target not in config.targets:
        return None
    contexts = JobContexts(config, journal)
    try:
        if isinstance(job.data.get("album"), dict):
            prepared = contexts.album_image(job, number)
        elif number == 0:
            prepared = contexts.image(job, contexts.photo(job))
        else:
            return None  # a single photo's job has one image
    except CrosswatchError:
        return None
    path = Path(prepared.path)
    return path if path.is_file() else None
