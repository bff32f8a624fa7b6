"""The outbox target: writes what it would post into a folder.

It is the dry run of the real platforms and a feature of its own for people who post by hand: per
photo, the prepared image and a text file with the caption and alt text; per album, every prepared
image in the album's order (``name-01.jpg``, ``name-02.jpg``, ...) and one text file with the caption
and each image's alt text. Names are derived from the photo's content hash and every file is written
atomically (temporary name, then rename), so writing the same job twice leaves exactly one copy: the
step is safe to repeat after a crash.

Unlike the platform targets this one does local I/O in its step; the runner still decides when.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from crosswatch.config import TargetConfig
from crosswatch.crashpoints import crashpoint
from crosswatch.platforms.base import JobContext, Kind, Outcome, PostImage, Step, every_image


def outbox_name(ctx: JobContext) -> str:
    stem = Path(os.fsencode(ctx.photo_path).decode("utf-8", "replace")).stem
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:60] or "photo"
    return f"{safe}-{ctx.photo_hash[:12]}"


def image_file_name(base: str, image: PostImage, number: int, count: int) -> str:
    """``base.jpg`` for one image; ``base-01.jpg``, ``base-02.jpg``, ... for an album's, so that
    their names sort in the album's order."""
    suffix = ".png" if image.format.upper() == "PNG" else ".jpg"
    if count < 2:
        return base + suffix
    return f"{base}-{number:0{max(2, len(str(count)))}d}{suffix}"


def caption_file_text(ctx: JobContext, images: Sequence[PostImage] = ()) -> str:
    lines = [ctx.caption.text, ""]
    if len(images) > 1:
        lines.append("Alt text, image by image:")
        base = outbox_name(ctx)
        for number, image in enumerate(images, start=1):
            lines.append(f"{image_file_name(base, image, number, len(images))}: {image.alt_text or '(none)'}")
        lines.append("")
    elif ctx.caption.alt_text:
        lines += ["Alt text:", ctx.caption.alt_text, ""]
    lines.append(f"Length: {ctx.caption.length} of {ctx.caption.limit}")
    if ctx.caption.shortened:
        lines.append("Shortened: " + ", ".join(ctx.caption.shortened))
    return "\n".join(lines) + "\n"


def _write_atomically(destination: Path, write: object) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".crosswatch-", suffix=".tmp", dir=destination.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(write, bytes):
                handle.write(write)
            else:
                with open(str(write), "rb") as source:
                    shutil.copyfileobj(source, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class WriteToOutbox:
    name = "write"
    safe_to_repeat = True
    # The upload check reads the prepared image again before this step (uploadcheck.py).
    sends_media = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, ctx: JobContext) -> Outcome:
        base = outbox_name(ctx)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            images = every_image(ctx)
            for number, image in enumerate(images, start=1):
                _write_atomically(self.folder / image_file_name(base, image, number, len(images)), image.path)
                crashpoint("outbox:between-files")
            _write_atomically(self.folder / (base + ".txt"), caption_file_text(ctx, images).encode("utf-8"))
        except OSError as exc:
            # A full disk or a vanished folder is worth another try later, not a lost photo.
            return Outcome(Kind.RETRY, reason=f"cannot write the outbox {self.folder}: {exc.strerror or exc}")
        text_path = self.folder / (base + ".txt")
        return Outcome(Kind.DONE, remote_id=base, permalink=text_path.as_uri())


class OutboxTarget:
    kind = "outbox"

    def __init__(self, config: TargetConfig) -> None:
        assert config.path is not None  # config validation requires it
        self.name = config.name
        self._steps: Sequence[Step] = (WriteToOutbox(config.path),)

    def steps(self) -> Sequence[Step]:
        return self._steps
