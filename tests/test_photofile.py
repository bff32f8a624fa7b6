"""photofile.open_photo: only regular files, never blocking, races caught; one HEIF registration;
every reader (metadata, preparation) refuses what is not a photo file; bomb messages in config terms."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from crosswatch import media_source, photofile
from crosswatch.config import MediaConfig
from crosswatch.errors import BadPhoto
from crosswatch.metadata import read_metadata
from crosswatch.photofile import NotRegularFile, open_photo
from tests.conftest import jpeg_bytes
from tests.test_media import _png_header_only as png_header_only


def test_a_regular_file_opens_in_blocking_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(1))
    with open_photo(path) as handle:
        assert os.get_blocking(handle.fileno())
        assert handle.read() == path.read_bytes()


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "a.jpg"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(NotRegularFile) as caught:
        open_photo(fifo)
    assert time.monotonic() - started < 1
    assert caught.value.kind == "a named pipe (FIFO)"
    assert stat.S_ISFIFO(caught.value.mode)


def swap_after_stat(monkeypatch: pytest.MonkeyPatch, path: Path, swap: Callable[[], None]) -> None:
    """The race: ``path`` passes its type check (``os.stat``), then ``swap`` replaces it, before the open."""
    real_stat = os.stat

    def stat_then_swap(target: object, *args: object, **kwargs: object) -> os.stat_result:
        result = real_stat(target, *args, **kwargs)  # type: ignore[arg-type]
        if str(target) == str(path) and stat.S_ISREG(result.st_mode):
            path.unlink()
            swap()
        return result

    monkeypatch.setattr(os, "stat", stat_then_swap)


def test_a_fifo_swapped_in_after_the_type_check_is_refused_by_fstat(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(2))
    swap_after_stat(monkeypatch, path, lambda: os.mkfifo(path))
    with pytest.raises(NotRegularFile, match="named pipe"):
        open_photo(path)  # the open is non-blocking: without it this would wait for a writer forever


def test_a_link_swapped_in_is_refused_when_links_are_not_followed(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(3))
    elsewhere = tmp_path / "elsewhere.jpg"
    elsewhere.write_bytes(jpeg_bytes(4))
    swap_after_stat(monkeypatch, path, lambda: path.symlink_to(elsewhere))
    with pytest.raises(OSError) as caught:
        open_photo(path, follow_symlinks=False)
    assert caught.value.errno == errno.ELOOP  # O_NOFOLLOW


def test_links_are_followed_unless_told_not_to(tmp_path: Path) -> None:
    real = tmp_path / "real.jpg"
    real.write_bytes(jpeg_bytes(5))
    link = tmp_path / "link.jpg"
    link.symlink_to(real)
    with open_photo(link) as handle:
        assert handle.read() == real.read_bytes()
    with pytest.raises(NotRegularFile, match="a symbolic link"):
        open_photo(link, follow_symlinks=False)


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/", "a folder")])
def test_devices_and_folders_are_named_for_what_they_are(path: str, kind: str) -> None:
    with pytest.raises(NotRegularFile) as caught:
        open_photo(path)
    assert caught.value.reason == f"not a regular file but {kind}; only ordinary photo files are read"


def test_every_reader_refuses_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "a.jpg"
    os.mkfifo(fifo)
    with pytest.raises(BadPhoto, match=r"named pipe \(FIFO\)"):
        read_metadata(fifo)
    with pytest.raises(BadPhoto, match=r"^a\.jpg: not a regular file but a named pipe \(FIFO\)"):
        media_source.open_source(fifo, MediaConfig())


def test_the_heif_plugin_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    calls: list[int] = []
    real_register = pillow_heif.register_heif_opener

    def counting_register() -> None:
        calls.append(1)
        real_register()

    monkeypatch.setattr(pillow_heif, "register_heif_opener", counting_register)
    photofile.heif_support.cache_clear()
    try:
        assert photofile.heif_support() and photofile.heif_support()
        assert calls == [1]
    finally:
        photofile.heif_support.cache_clear()


def test_a_bomb_over_pillows_ceiling_but_under_a_raised_limit_says_raising_cannot_help(tmp_path: Path) -> None:
    # 225 M pixels: past what Pillow opens at all (2 x its 89.5 M warning limit), under a 300 M limit.
    path = tmp_path / "wide.png"
    png_header_only(path, 15_000, 15_000)
    with pytest.raises(BadPhoto) as caught:
        media_source.open_source(path, MediaConfig(max_pixels=300_000_000))
    assert str(caught.value) == ("wide.png: the image is 225,000,000 pixels; media.max_pixels (300,000,000) "
                                 "allows it, but no photo of more than 178,956,970 pixels can be opened here "
                                 "(a decompression bomb?)")


def test_threads_take_turns_collecting_pillow_warnings() -> None:
    # catch_warnings swaps process-wide state: the runner (decoding) and intake (checking a new
    # file) inside it at once could leave in the wrong order and leave one's filters installed.
    filters_before, show_before = list(warnings.filters), warnings.showwarning
    runner_inside, runner_may_leave, intake_inside = threading.Event(), threading.Event(), threading.Event()

    def runner() -> None:
        with media_source.collected_warnings([]):
            runner_inside.set()
            runner_may_leave.wait(10)

    def intake() -> None:
        runner_inside.wait(10)
        with media_source.collected_warnings([]):
            intake_inside.set()

    threads = [threading.Thread(target=runner), threading.Thread(target=intake)]
    for thread in threads:
        thread.start()
    assert runner_inside.wait(10)
    assert not intake_inside.wait(0.3)  # waits its turn
    runner_may_leave.set()
    assert intake_inside.wait(10)
    for thread in threads:
        thread.join(10)
    assert warnings.filters == filters_before and warnings.showwarning is show_before
