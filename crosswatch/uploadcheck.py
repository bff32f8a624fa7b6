"""The upload check: every prepared image is read again just before its bytes leave crosswatch.

media.py writes a prepared image's metadata from scratch, so it never carries GPS, serial numbers,
the owner's name or location text. This check does not trust that: right before a step that sends
image bytes (``sends_media`` on the step: an upload to a platform, the copy to a media host for Meta,
the outbox), the runner hands it the files the step will send, each is read again
(``metadata.private_traces``), and the result is journaled (migration 9, ``upload_checks``). A file
that still carries anything private blocks the upload: the step is not performed and the job fails
with one line saying what was found and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crosswatch import metadata
from crosswatch.errors import BadPhoto
from crosswatch.journal import Journal
from crosswatch.platforms.base import JobContext, Step, post_images


@dataclass(frozen=True)
class Blocked:
    """An upload the check stopped: the file and what it carried."""

    file: str
    traces: tuple[str, ...]

    def reason(self, job_id: int) -> str:
        return (f"upload blocked, nothing was sent: the prepared image {self.file} still carries "
                f"{', '.join(self.traces)}; this is a crosswatch bug (please report it), then "
                f"`crosswatch retry {job_id}` prepares the image again")


def sends_media(step: Step) -> bool:
    """Whether the step sends image bytes somewhere (it says so with ``sends_media = True``)."""
    return bool(getattr(step, "sends_media", False))


def files_to_send(ctx: JobContext) -> list[Path]:
    """The prepared files of the job's post: every image of a several-image post, else the one."""
    images = post_images(ctx)
    if images:
        return [Path(str(image.get("path"))) for image in images if image.get("path")]
    return [Path(ctx.image.path)] if ctx.image is not None else []


def traces_of(path: Path) -> list[str]:
    """What private metadata the file carries; a file that cannot be read is refused as well."""
    try:
        return metadata.private_traces(path)
    except BadPhoto as exc:
        return [f"nothing that can be checked ({exc})"]


def check_before_sending(journal: Journal, ctx: JobContext, step_name: str,
                         files: Sequence[Path] | None = None) -> Blocked | None:
    """Read each file the step will send, journal the result, and say what blocks the upload."""
    blocked: Blocked | None = None
    for path in files if files is not None else files_to_send(ctx):
        traces = traces_of(path)
        journal.record_upload_check(ctx.job_id, ctx.target, step_name, path.name, traces)
        if traces and blocked is None:
            blocked = Blocked(path.name, tuple(traces))
    return blocked
