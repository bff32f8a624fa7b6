"""The upload check: a prepared image is read again just before its bytes leave, and anything private
in it blocks the upload. Real prepared images, private tags written into them with exiftool, the real
runner and journal against the emulator (Mastodon's upload and Instagram's media host)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crosswatch import metadata
from crosswatch.models import Job, JobState, Photo, PreparedImage
from tests.fault_harness import Rig, make_rig
from tests.openapi_check import XOpenAPI

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed")


def exiftool(path: Path, *assignments: str) -> None:
    assert EXIFTOOL is not None
    subprocess.run([EXIFTOOL, "-q", "-overwrite_original", *assignments, str(path)], check=True)


@pytest.fixture
def rig(workspace: dict[str, Path], x_openapi: XOpenAPI) -> Iterator[Rig]:
    made = make_rig(workspace, x_openapi, targets=("mastodon", "instagram"))
    yield made
    made.close()


def prepared_files(rig: Rig) -> list[Path]:
    return sorted(p for p in rig.config.media_cache_dir.rglob("*.jpg"))


@needs_exiftool
@pytest.mark.parametrize(("assignments", "expected"), [
    (("-GPSLatitude=48.8584", "-GPSLatitudeRef=N", "-GPSLongitude=2.2945", "-GPSLongitudeRef=E"),
     "GPS position (EXIF GPS directory)"),
    (("-ExifIFD:SerialNumber=SN123456",), "camera serial number (EXIF BodySerialNumber)"),
    (("-ExifIFD:LensSerialNumber=LS99",), "lens serial number (EXIF LensSerialNumber)"),
    (("-IPTC:City=Lyon",), "location text (IPTC City)"),
    (("-IPTC:Sub-location=Rue Mercière 12",), "location text (IPTC Sub-location)"),
    (("-XMP-photoshop:City=Lyon",), "location text (XMP photoshop:City)"),
    (("-XMP-iptcExt:LocationShownSublocation=Home",), "location text (XMP Iptc4xmpExt:LocationShown)"),
    (("-XMP-aux:SerialNumber=SN1",), "camera serial number (XMP aux:SerialNumber)"),
    (("-XMP-exif:GPSLatitude=45.76",), "GPS position (XMP exif:GPS)"),
])
def test_each_private_tag_written_into_a_prepared_image_is_found(
        rig: Rig, tmp_path: Path, assignments: tuple[str, ...], expected: str) -> None:
    rig.add_photos(1, targets=("mastodon",))
    job = rig.jobs("mastodon")[0]
    image = rig.runner.contexts.build(job).image
    assert image is not None
    assert metadata.private_traces(Path(image.path)) == [], "a freshly prepared image carries nothing private"
    copy = tmp_path / "copy.jpg"
    shutil.copyfile(image.path, copy)
    exiftool(copy, *assignments)
    assert expected in metadata.private_traces(copy)


def test_unreadable_xmp_is_refused_rather_than_trusted(tmp_path: Path) -> None:
    from tests.conftest import jpeg_bytes

    path = tmp_path / "broken.jpg"
    path.write_bytes(jpeg_bytes(3, xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><unclosed"))
    assert metadata.private_traces(path) == ["an XMP packet that cannot be read"]


@needs_exiftool
def test_gps_injected_after_preparation_blocks_the_upload_and_the_platform_receives_nothing(rig: Rig) -> None:
    prepare = rig.runner.contexts.image

    def prepared_then_bug(job: Job, photo: Photo) -> PreparedImage:
        # A bug in preparation, simulated: the prepared file gains a GPS position after it was made.
        prepared = prepare(job, photo)
        exiftool(Path(prepared.path), "-GPSLatitude=48.8584", "-GPSLatitudeRef=N",
                 "-GPSLongitude=2.2945", "-GPSLongitudeRef=E")
        return prepared

    rig.runner.contexts.image = prepared_then_bug  # type: ignore[method-assign]
    received: list[str] = []

    def observe(request: httpx.Request, response: httpx.Response | None, endpoint: str) -> None:
        received.append(endpoint)

    rig.emulator.add_observer(observe)
    rig.add_photos(1)
    rig.drive()

    jobs = {job.target: job for job in rig.jobs()}
    for target in ("mastodon", "instagram"):
        job = jobs[target]
        assert job.state is JobState.FAILED, (target, job.state, job.reason)
        assert job.reason is not None and job.reason.startswith("upload blocked, nothing was sent")
        assert "GPS position" in job.reason and f"`crosswatch retry {job.id}`" in job.reason
        assert "\n" not in job.reason
    # Nothing left for a platform: no upload, no container, no post, no copy on the media host.
    assert not [e for e in received if "media" in e or "status" in e or "container" in e], received
    assert rig.emulator.ig_posts() == []
    assert list(rig.hosted.iterdir()) == []
    assert prepared_files(rig) == [], "the failed jobs' prepared images are discarded"
    counts = rig.journal.upload_check_counts()
    assert counts == {"checked": 2, "failed": 2}
    failures = rig.journal.failed_upload_checks()
    assert {f["target"] for f in failures} == {"mastodon", "instagram"}
    assert {f["step"] for f in failures} == {"upload_media", "host_image"}


def test_clean_prepared_images_are_checked_and_sent(rig: Rig) -> None:
    rig.add_photos(1)
    rig.drive()
    assert {job.target: job.state for job in rig.jobs()} == {"mastodon": JobState.DONE, "instagram": JobState.DONE}
    assert rig.journal.upload_check_counts() == {"checked": 2, "failed": 0}
