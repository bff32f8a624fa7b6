"""Files that are not photo files at all (FIFO, socket, device), HEIC and decompression bombs, met the
way a user meets them: dropped into a folder watched by the real daemon, or given to the CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import PHOTOS, DaemonProcess, jpeg_bytes, run_cli, wait_until, write_config
from tests.test_daemon import StartDaemon, journal_counts, outbox_images
from tests.test_media import _png_header_only as png_header_only

GPS_IFD = 0x8825


def status_json(config: Path) -> dict[str, Any]:
    result = run_cli("status", "--json", config=config, timeout=60)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def rejected_reasons(config: Path) -> dict[str, str]:
    return {Path(p["path"]).name: p["reason"] for p in status_json(config)["photos"] if p["status"] == "rejected"}


def done_names(config: Path) -> set[str]:
    return {Path(j["photo"]).name for j in status_json(config)["jobs"] if j["state"] == "done"}


def drop_special_files(inbox: Path, suffix: str = "") -> list[str]:
    """A FIFO, a socket and a link to /dev/zero, named like photos; returns their names."""
    names = [f"pipe{suffix}.jpg", f"sock{suffix}.jpg", f"zero{suffix}.jpg"]
    os.mkfifo(inbox / names[0])
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(inbox / names[1]))  # the socket file stays after the socket is closed
    (inbox / names[2]).symlink_to("/dev/zero")
    return names


def assert_special_rejections(reasons: dict[str, str], names: list[str]) -> None:
    pipe, sock, zero = names
    assert "not a regular file but a named pipe (FIFO)" in reasons[pipe]
    assert "not a regular file but a socket" in reasons[sock]
    assert "outside the watched folder" in reasons[zero]


def stop_promptly(daemon: DaemonProcess, within: float = 5.0) -> None:
    started = time.monotonic()
    assert daemon.stop(timeout=30) == 0, daemon.log_path.read_text()[-3000:]
    assert time.monotonic() - started < within, "SIGTERM took too long"


def test_a_fifo_a_socket_and_dev_zero_do_not_stop_the_daemon(workspace: dict[str, Path],
                                                               start_daemon: StartDaemon) -> None:
    config = write_config(workspace)
    inbox = workspace["inbox"]
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    names = drop_special_files(inbox)
    (inbox / "after.jpg").write_bytes(jpeg_bytes(21))
    wait_until(lambda: "after.jpg" in done_names(config), timeout=30)
    reasons = rejected_reasons(config)
    assert_special_rejections(reasons, names)
    rejected_jobs = [j for j in status_json(config)["jobs"] if j["state"] == "rejected"]
    assert sorted(Path(j["photo"]).name for j in rejected_jobs) == sorted(names)
    assert all(j["reason"] for j in rejected_jobs)
    # One log line for each, as for any bad file, however many rescans (every 2 s) pass over them.
    time.sleep(2.5)
    rejected_lines = [line for line in daemon.log_lines() if line.get("event") == "photo rejected"]
    assert sorted(Path(line["path"]).name for line in rejected_lines) == sorted(names)
    (inbox / "later.jpg").write_bytes(jpeg_bytes(22))
    wait_until(lambda: "later.jpg" in done_names(config), timeout=30)
    stop_promptly(daemon)

    # A restart with them (and a new FIFO) in the folder does not hang in the start-up scan.
    new_names = drop_special_files(inbox, suffix="-2")
    (inbox / "while-stopped.jpg").write_bytes(jpeg_bytes(23))
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    wait_until(lambda: "while-stopped.jpg" in done_names(config), timeout=30)
    assert_special_rejections(rejected_reasons(config), new_names)
    stop_promptly(daemon)


def test_run_once_ends_with_special_files_in_the_folder(workspace: dict[str, Path]) -> None:
    inbox = workspace["inbox"]
    names = drop_special_files(inbox)
    (inbox / "photo.jpg").write_bytes(jpeg_bytes(24))
    config = write_config(workspace)
    started = time.monotonic()
    result = run_cli("run", "--once", config=config, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert len(outbox_images(workspace["outbox"])) == 1
    assert_special_rejections(rejected_reasons(config), names)


def test_sigterm_is_prompt_while_a_fifo_waits_in_the_folder(workspace: dict[str, Path],
                                                             start_daemon: StartDaemon) -> None:
    # Before, intake sat in open() on the FIFO: SIGTERM waited out the 60 s thread join.
    os.mkfifo(workspace["inbox"] / "a.jpg")
    config = write_config(workspace)
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    wait_until(lambda: "a.jpg" in rejected_reasons(config), timeout=30)
    stop_promptly(daemon)
    assert any(line.get("event") == "stopped" for line in daemon.log_lines())


def test_retry_of_a_job_whose_photo_is_now_a_fifo_is_rejected_again(workspace: dict[str, Path],
                                                                    start_daemon: StartDaemon) -> None:
    # The runner reads the photo again (metadata, preparation): it must refuse the FIFO, not wait on it.
    inbox = workspace["inbox"]
    shutil.copy(PHOTOS / "pil-truncated_jpeg.jpg", inbox / "broken.jpg")
    config = write_config(workspace)
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    wait_until(lambda: "broken.jpg" in rejected_reasons(config), timeout=30)
    [job] = status_json(config)["jobs"]
    (inbox / "broken.jpg").unlink()
    os.mkfifo(inbox / "broken.jpg")
    result = run_cli("retry", str(job["id"]), config=config)
    assert result.returncode == 0, result.stderr

    def rejected_as_fifo() -> bool:
        [again] = [j for j in status_json(config)["jobs"] if j["id"] == job["id"]]
        return again["state"] == "rejected" and "named pipe" in (again["reason"] or "")

    wait_until(rejected_as_fifo, timeout=30)
    (inbox / "next.jpg").write_bytes(jpeg_bytes(25))
    wait_until(lambda: "next.jpg" in done_names(config), timeout=30)
    stop_promptly(daemon)


@pytest.mark.parametrize("command", ["metadata", "preview"])
def test_the_cli_refuses_a_fifo_in_one_line(command: str, workspace: dict[str, Path]) -> None:
    fifo = workspace["inbox"] / "a.jpg"
    os.mkfifo(fifo)
    result = run_cli(command, str(fifo), config=write_config(workspace), timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"crosswatch: {fifo} is a named pipe (FIFO), not a photo file; give the path of a regular file"]
    assert result.stdout == ""


def test_the_cli_refuses_a_device(workspace: dict[str, Path]) -> None:
    result = run_cli("metadata", "/dev/zero", timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == ("crosswatch: /dev/zero is a character device, not a photo file; "
                                     "give the path of a regular file")


# -- HEIC through the daemon ---------------------------------------------------------------------------


def heic_with_gps(path: Path) -> None:
    """A small HEIC carrying GPS coordinates (the sample HEIC has none)."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    with Image.open(io.BytesIO(jpeg_bytes(26, size=(320, 240)))) as image:
        image.save(path, "HEIF", exif=exif.tobytes(), quality=80)


def test_heic_photos_are_posted_by_the_daemon_without_gps(workspace: dict[str, Path],
                                                          start_daemon: StartDaemon) -> None:
    from crosswatch.metadata import read_metadata

    inbox = workspace["inbox"]
    heic_with_gps(inbox / "located.heic")
    assert read_metadata(inbox / "located.heic").has_gps
    config = write_config(workspace)
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    shutil.copy(PHOTOS / "dn-IMG_2927.HEIC", inbox / "IMG_2927.HEIC")
    wait_until(lambda: done_names(config) == {"located.heic", "IMG_2927.HEIC"}, timeout=120)
    assert rejected_reasons(config) == {}
    images = outbox_images(workspace["outbox"])
    assert len(images) == 2
    sizes = []
    for prepared in images:
        with Image.open(prepared) as image:
            assert image.format == "JPEG"
            exif = image.getexif()
            assert GPS_IFD not in exif and not exif.get_ifd(GPS_IFD)
            sizes.append(image.size)
        assert not read_metadata(prepared).has_gps
    assert sorted(sizes) == [(320, 240), (3024, 4032)]
    stop_promptly(daemon, within=10)


def test_without_pillow_heif_a_heic_is_rejected_with_the_hint(workspace: dict[str, Path], tmp_path: Path,
                                                              start_daemon: StartDaemon) -> None:
    hidden = tmp_path / "no-heif"
    (hidden / "pillow_heif").mkdir(parents=True)
    (hidden / "pillow_heif" / "__init__.py").write_text('raise ImportError("hidden for this test")\n')
    shutil.copy(PHOTOS / "dn-IMG_2927.HEIC", workspace["inbox"] / "IMG_2927.HEIC")
    config = write_config(workspace)
    daemon = start_daemon(config, env={"PYTHONPATH": str(hidden)})
    daemon.wait_for_log("watching")
    wait_until(lambda: "IMG_2927.HEIC" in rejected_reasons(config), timeout=30)
    assert "pip install 'crosswatch[heic]'" in rejected_reasons(config)["IMG_2927.HEIC"]
    stop_promptly(daemon)


# -- decompression bombs -------------------------------------------------------------------------------


def test_a_decompression_bomb_is_rejected_quoting_media_max_pixels(workspace: dict[str, Path]) -> None:
    inbox = workspace["inbox"]
    png_header_only(inbox / "huge.png", 100_000, 100_000)  # past Pillow's own hard limit
    png_header_only(inbox / "big.png", 12_000, 12_000)  # under it (Pillow only warns), over ours
    Image.new("RGB", (1200, 1000), "red").save(inbox / "real.png")  # under 120 M, over 1 M below
    (inbox / "fine.jpg").write_bytes(jpeg_bytes(27))
    config = write_config(workspace)
    result = run_cli("run", "--once", config=config, timeout=60)
    assert result.returncode == 0, result.stderr
    reasons = rejected_reasons(config)
    assert reasons["huge.png"] == ("the image is 10,000,000,000 pixels, more than media.max_pixels (120,000,000); "
                                   "a decompression bomb? If the photo is real, raise the limit")
    assert reasons["big.png"] == ("the image is 12000x12000 = 144,000,000 pixels, more than media.max_pixels "
                                  "(120,000,000); a decompression bomb? If the photo is real, raise the limit")
    assert set(reasons) == {"huge.png", "big.png"}
    assert "Pillow" not in result.stderr and "DOS attack" not in json.dumps(reasons)

    # The limit is the config's: lowered, the 1.2 M pixel photo is refused with the configured value.
    Image.new("RGB", (1200, 1000), "blue").save(inbox / "real-again.png")
    lowered = write_config(workspace, media={"max_pixels": 1_000_000})
    result = run_cli("run", "--once", config=lowered, timeout=60)
    assert result.returncode == 0, result.stderr
    assert rejected_reasons(lowered)["real-again.png"] == (
        "the image is 1200x1000 = 1,200,000 pixels, more than media.max_pixels (1,000,000); "
        "a decompression bomb? If the photo is real, raise the limit")
    assert journal_counts(workspace["state"])[1].get("done", 0) == 2
