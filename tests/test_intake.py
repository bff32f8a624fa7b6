"""Intake with a fake clock: settle detection, globs, temporary names, bad files, symlinks, odd names."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from crosswatch.config import load_config
from crosswatch.journal import Journal
from crosswatch.models import JobState
from crosswatch.watcher import Intake, is_wanted
from tests.conftest import PHOTOS, jpeg_bytes, write_config
from tests.test_photofile import swap_after_stat


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def setup(workspace: dict[str, Path], clock: FakeClock) -> Iterator[tuple[Intake, Journal, Path]]:
    config = load_config(write_config(workspace))
    journal = Journal(config.journal_path)
    intake = Intake(config, journal, clock=clock)
    yield intake, journal, workspace["inbox"]
    journal.close()


def write_now(path: Path, data: bytes, clock: FakeClock) -> None:
    """Write a file whose mtime is the fake clock's now (as a file being written would have)."""
    path.write_bytes(data)
    os.utime(path, ns=(int(clock.now * 1e9), int(clock.now * 1e9)))


def rejection_reasons(journal: Journal) -> dict[str, str | None]:
    return {Path(photo.path).name: reason for photo, status, reason in journal.photos() if status != "ok"}


def test_a_file_is_taken_only_after_it_settles(setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    photo = inbox / "a.jpg"
    data = jpeg_bytes(1)
    write_now(photo, data[:100], clock)
    intake.offer(str(photo))
    assert intake.process() == []
    clock.now += 0.3
    write_now(photo, data, clock)  # still being written: size and mtime change
    assert intake.process() == []
    clock.now += 0.3
    assert intake.process() == []  # not yet still for settle_seconds (0.5)
    clock.now += 0.3
    [result] = intake.process()
    assert result.outcome == "new"
    assert intake.process() == []
    assert journal.count_photos() == 1


def test_files_present_before_start_are_caught_up_without_waiting(workspace: dict[str, Path],
                                                                   clock: FakeClock) -> None:
    (workspace["inbox"] / "sub").mkdir()
    for index, name in enumerate(["a.jpg", "sub/b.JPG", "c.png.part", ".hidden.jpg", "notes.txt"]):
        path = workspace["inbox"] / name
        path.write_bytes(jpeg_bytes(index))
        os.utime(path, (clock.now - 60, clock.now - 60))
    config = load_config(write_config(workspace))
    with Journal(config.journal_path) as journal:
        intake = Intake(config, journal, clock=clock)
        assert intake.scan() == 2
        assert [r.outcome for r in intake.process()] == ["new", "new"]
        # A second scan reads nothing: size and mtime match what was taken.
        assert Intake(config, journal, clock=clock).scan() == 0


def test_a_lost_event_is_found_by_the_scan(setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, _journal, inbox = setup
    write_now(inbox / "missed.jpg", jpeg_bytes(7), clock)  # no offer(): the event never arrived
    clock.now += 1
    assert intake.process() == []
    assert intake.scan() == 1
    clock.now += 1
    assert [r.outcome for r in intake.process()] == ["new"]


@pytest.mark.parametrize(("name", "wanted"), [
    ("photo.jpg", True), ("PHOTO.JPEG", True), ("p.heic", True), ("p.jpg.part", False), ("p.jpg~", False),
    (".p.jpg", False), ("~$p.jpg", False), ("p.tmp", False), ("p.crdownload", False), ("p.txt", False),
])
def test_globs_and_temporary_names(name: str, wanted: bool, workspace: dict[str, Path]) -> None:
    config = load_config(write_config(workspace))
    assert is_wanted(name, config.watch[0]) is wanted


def test_bad_files_are_rejected_with_reasons(setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    write_now(inbox / "zero.jpg", b"", clock)
    write_now(inbox / "text.jpg", b"this is not a photo\n" * 10, clock)
    truncated = (PHOTOS / "pil-truncated_jpeg.jpg").read_bytes()
    write_now(inbox / "truncated.jpg", truncated, clock)
    (inbox / "folder.jpg").mkdir()
    write_now(inbox / "folder.jpg" / "inside.jpg", jpeg_bytes(3), clock)
    intake.scan()
    clock.now += 1
    intake.process()
    reasons = rejection_reasons(journal)
    assert reasons["zero.jpg"] == "empty file (0 bytes)"
    assert "not an image" in (reasons["text.jpg"] or "")
    assert "damaged or incomplete" in (reasons["truncated.jpg"] or "")
    # The directory named like a photo is a folder: its contents are photos, it is not.
    good = [Path(p.path).name for p, status, _ in journal.photos() if status == "ok"]
    assert good == ["inside.jpg"]
    for photo, status, _reason in journal.photos():
        states = {j.state for j in journal.jobs_for_photo(photo.id)}
        assert states == ({JobState.READY} if status == "ok" else {JobState.REJECTED})


def test_an_unreadable_file_is_rejected(setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    locked = inbox / "locked.jpg"
    write_now(locked, jpeg_bytes(5), clock)
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        # root reads every file; take read permission away the only way root cannot ignore.
        pytest.skip("running as root: file permissions cannot make a file unreadable")
    intake.scan()
    clock.now += 1
    intake.process()
    assert rejection_reasons(journal)["locked.jpg"] == "cannot be read: permission denied"


def test_an_unreadable_file_is_rejected_even_as_root(setup: tuple[Intake, Journal, Path], clock: FakeClock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # As root no permission bit stops a read, so the refusal the kernel would give is made here.
    intake, journal, inbox = setup
    locked = inbox / "locked.jpg"
    write_now(locked, jpeg_bytes(5), clock)
    real_open = open

    def refusing_open(file: object, *args: object, **kwargs: object) -> object:
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", refusing_open)
    intake.scan()
    clock.now += 1
    intake.process()
    assert rejection_reasons(journal)["locked.jpg"] == "cannot be read: permission denied"


def test_symlinks_outside_the_folder_are_not_followed(setup: tuple[Intake, Journal, Path], clock: FakeClock,
                                                      tmp_path: Path) -> None:
    intake, journal, inbox = setup
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(jpeg_bytes(9))
    (inbox / "link.jpg").symlink_to(outside)
    write_now(inbox / "real.jpg", jpeg_bytes(10), clock)
    (inbox / "inner-link.jpg").symlink_to(inbox / "real.jpg")
    intake.scan()
    clock.now += 1
    intake.process()
    assert "outside the watched folder" in (rejection_reasons(journal)["link.jpg"] or "")
    assert journal.count_photos() == 2  # real.jpg (its inner link is the same content) and the rejection


def test_names_with_newlines_and_non_utf8_bytes(setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    odd = os.path.join(os.fsencode(inbox), b"line\nbreak-caf\xe9.jpg")
    with open(odd, "wb") as handle:
        handle.write(jpeg_bytes(11))
    os.utime(odd, (clock.now, clock.now))
    intake.scan()
    clock.now += 1
    [result] = intake.process()
    assert result.outcome == "new"
    [(photo, status, _)] = journal.photos()
    assert os.fsencode(photo.path) == odd
    assert status == "ok"


# -- files that are not regular files: intake must never block on them ------------------------------


def process_within(intake: Intake, seconds: float = 10.0) -> None:
    """``intake.process()`` in a thread: a FIFO opened the blocking way would hang it forever."""
    done = threading.Event()

    def work() -> None:
        intake.process()
        done.set()

    threading.Thread(target=work, daemon=True).start()
    assert done.wait(seconds), "intake blocked"


def test_a_fifo_a_socket_and_device_links_are_rejected_without_blocking(
        setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    os.mkfifo(inbox / "pipe.jpg")
    (inbox / "pipe-link.jpg").symlink_to(inbox / "pipe.jpg")  # leads inside: followed, then refused
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(inbox / "sock.jpg"))
    (inbox / "zero.jpg").symlink_to("/dev/zero")
    write_now(inbox / "good.jpg", jpeg_bytes(12), clock)
    intake.scan()
    clock.now += 1
    process_within(intake)
    reasons = rejection_reasons(journal)
    assert reasons["pipe.jpg"] == "not a regular file but a named pipe (FIFO); only ordinary photo files are read"
    assert "named pipe" in (reasons["pipe-link.jpg"] or "")
    assert "a socket" in (reasons["sock.jpg"] or "")
    assert "outside the watched folder" in (reasons["zero.jpg"] or "")
    assert [Path(p.path).name for p, status, _ in journal.photos() if status == "ok"] == ["good.jpg"]
    assert intake.pending() == 0
    # Nothing left to look at: a rescan skips them all (they are journaled as they are).
    assert intake.scan() == 0


def test_a_device_node_in_the_folder_is_rejected(setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    try:
        os.mknod(inbox / "null.jpg", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    (inbox / "null-link.jpg").symlink_to(inbox / "null.jpg")
    intake.scan()
    clock.now += 1
    process_within(intake)
    reasons = rejection_reasons(journal)
    assert "a character device" in (reasons["null.jpg"] or "")
    assert "a character device" in (reasons["null-link.jpg"] or "")


def test_a_file_swapped_for_a_fifo_after_the_check_is_refused_by_fstat(
        setup: tuple[Intake, Journal, Path], clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    intake, journal, inbox = setup
    racing = inbox / "racing.jpg"
    write_now(racing, jpeg_bytes(13), clock)
    intake.scan()
    clock.now += 1
    # The file passes the type check, then is replaced by a FIFO before it is opened.
    swap_after_stat(monkeypatch, racing, lambda: os.mkfifo(racing))
    process_within(intake)
    assert "named pipe" in (rejection_reasons(journal)["racing.jpg"] or "")


def test_a_link_to_a_photo_inside_the_folder_is_taken(setup: tuple[Intake, Journal, Path],
                                                       clock: FakeClock) -> None:
    # A link is judged by its target's size and mtime (what is read), not its own: it is taken
    # once and then left alone (it used to stay a candidate forever, so `run --once` never ended).
    intake, _journal, inbox = setup
    (inbox / "sub").mkdir()
    write_now(inbox / "sub" / "real.jpg", jpeg_bytes(14), clock)
    (inbox / "link.jpg").symlink_to(inbox / "sub" / "real.jpg")
    intake.scan()
    clock.now += 1
    results = intake.process()
    assert sorted(r.outcome for r in results) == ["duplicate", "new"]
    assert intake.pending() == 0
    assert intake.scan() == 0
