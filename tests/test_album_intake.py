"""Album intake with a fake clock (watch[].albums: folder): an album is taken once its whole folder is
quiet, as one photos row with one job per target; private photos are left out and named; late photos
follow watch[].late; album.yaml and the photos give the caption."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crosswatch import views
from crosswatch.config import load_config
from crosswatch.jobs import JobContexts
from crosswatch.journal import Journal
from crosswatch.models import JobState
from crosswatch.watcher import Intake
from tests.conftest import write_config
from tests.test_intake import FakeClock, write_now
from tests.test_schedule_rules import tagged_photo


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def album_setup(workspace: dict[str, Path], clock: FakeClock, **watch: Any) -> tuple[Intake, Journal, Path]:
    folder = {"path": str(workspace["inbox"]), "targets": ["outbox"], "settle_seconds": 1,
              "albums": "folder", "album_settle_seconds": 20, **watch}
    config = load_config(write_config(workspace, watch=[folder], rules={"exclude_keywords": ["private"]}))
    journal = Journal(config.journal_path)
    return Intake(config, journal, clock=clock), journal, workspace["inbox"]


@pytest.fixture
def setup(workspace: dict[str, Path], clock: FakeClock) -> Iterator[tuple[Intake, Journal, Path]]:
    intake, journal, inbox = album_setup(workspace, clock)
    yield intake, journal, inbox
    journal.close()


def offer_all(intake: Intake, folder: Path) -> None:
    for path in sorted(folder.iterdir()):
        intake.offer(str(path))


def test_an_album_being_written_is_not_taken_until_its_folder_is_quiet(
        setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    album = inbox / "shoot"
    album.mkdir()
    for index in range(5):  # a photo every 5 s: each alone has settled long before the next
        write_now(album / f"p{index}.jpg", tagged_photo(index), clock)
        offer_all(intake, album)
        assert intake.process() == []
        clock.now += 5
    clock.now += 14  # 19 s after the last file: not yet
    assert intake.process() == [] and journal.jobs() == []
    clock.now += 2
    [result] = intake.process()
    assert result.outcome == "new"
    [job] = journal.jobs()
    assert job.state is JobState.READY
    members = [Path(m["path"]).name for m in job.data["album"]["members"]]
    assert members == [f"p{i}.jpg" for i in range(5)]
    assert journal.photo(job.photo_id).path == str(album)  # type: ignore[union-attr]
    assert intake.process() == [] and len(journal.jobs()) == 1  # taken once


def test_a_new_file_resets_the_album_wait(setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    album = inbox / "shoot"
    album.mkdir()
    write_now(album / "a.jpg", tagged_photo(1), clock)
    offer_all(intake, album)
    clock.now += 19
    # No event for this one (a missed inotify event): the album's own walk finds it.
    write_now(album / "b.jpg", tagged_photo(2), clock)
    assert intake.process() == []
    clock.now += 19
    assert intake.process() == []
    clock.now += 2
    assert [r.outcome for r in intake.process()] == ["new"]
    assert len(journal.jobs()[0].data["album"]["members"]) == 2


def test_a_private_photo_is_left_out_and_named_in_status(
        setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    album = inbox / "shoot"
    album.mkdir()
    write_now(album / "a.jpg", tagged_photo(1), clock)
    write_now(album / "b.jpg", tagged_photo(2, keywords=("private",)), clock)
    write_now(album / "c.jpg", tagged_photo(3), clock)
    offer_all(intake, album)
    clock.now += 30
    intake.process()
    [job] = journal.jobs()
    assert [Path(m["path"]).name for m in job.data["album"]["members"]] == ["a.jpg", "c.jpg"]
    [shown] = views.album_views(intake.config, journal)
    assert shown["photos"] == 2
    assert [Path(k["file"]).name for k in shown["left_out"]] == ["b.jpg"]
    assert "private" in shown["left_out"][0]["reason"]
    text = "\n".join(views.status_lines(intake.config, journal, clock.now))
    assert "left out: " in text and "b.jpg" in text


def test_an_album_of_only_private_photos_is_rejected_with_the_reason(
        setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    album = inbox / "hidden"
    album.mkdir()
    write_now(album / "a.jpg", tagged_photo(1, keywords=("private",)), clock)
    offer_all(intake, album)
    clock.now += 30
    intake.process()
    [job] = journal.jobs()
    assert job.state is JobState.REJECTED and "private" in (job.reason or "")


@pytest.mark.parametrize("late", ["new_post", "skip"])
def test_a_late_photo_follows_the_late_policy_and_status_says_so(
        workspace: dict[str, Path], clock: FakeClock, late: str) -> None:
    intake, journal, inbox = album_setup(workspace, clock, late=late)
    album = inbox / "shoot"
    album.mkdir()
    write_now(album / "a.jpg", tagged_photo(1), clock)
    offer_all(intake, album)
    clock.now += 30
    intake.process()
    write_now(album / "z-late.jpg", tagged_photo(9), clock)
    intake.offer(str(album / "z-late.jpg"))
    clock.now += 2  # a late photo settles as a single photo does
    intake.process()
    jobs = journal.jobs()
    [shown] = views.album_views(intake.config, journal)
    [entry] = shown["late"]
    assert Path(entry["file"]).name == "z-late.jpg" and entry["posted"] is (late == "new_post")
    assert f"watch[].late: {late}" in entry["reason"]
    if late == "new_post":
        assert len(jobs) == 2 and Path(journal.photo(jobs[1].photo_id).path).name == "z-late.jpg"  # type: ignore[union-attr]
    else:
        assert len(jobs) == 1
    intake.scan()
    clock.now += 5
    assert intake.process() == []  # taken: a rescan does not offer it again
    journal.close()


def test_photos_directly_in_the_folder_are_still_posted_one_by_one(
        setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    write_now(inbox / "single.jpg", tagged_photo(1), clock)
    intake.offer(str(inbox / "single.jpg"))
    clock.now += 2
    assert [r.outcome for r in intake.process()] == ["new"]
    assert "album" not in journal.jobs()[0].data


def test_the_album_caption_comes_from_album_yaml_with_merged_keywords_and_every_creator(
        workspace: dict[str, Path], clock: FakeClock) -> None:
    intake, journal, inbox = album_setup(workspace, clock, album_order="capture_time")
    album = inbox / "shoot"
    album.mkdir()
    write_now(album / "a.jpg", tagged_photo(1, keywords=("harbour",)), clock)
    write_now(album / "b.jpg", tagged_photo(2, keywords=("boats", "Harbour")), clock)
    (album / "album.yaml").write_text("title: Dawn at the harbour\nkeywords: [dawn]\n")
    offer_all(intake, album)
    clock.now += 30
    intake.process()
    [job] = journal.jobs()
    caption = JobContexts(intake.config, journal).caption(job, journal.photo(job.photo_id))  # type: ignore[arg-type]
    assert caption.text.startswith("Dawn at the harbour")
    assert "#dawn" in caption.text and "#harbour" in caption.text and "#boats" in caption.text
    assert caption.text.lower().count("#harbour") == 1
    journal.close()


def test_a_bad_album_yaml_rejects_the_album_with_one_line_naming_the_file(
        setup: tuple[Intake, Journal, Path], clock: FakeClock) -> None:
    intake, journal, inbox = setup
    album = inbox / "shoot"
    album.mkdir()
    write_now(album / "a.jpg", tagged_photo(1), clock)
    (album / "album.yaml").write_text("title: [unclosed\n")
    offer_all(intake, album)
    clock.now += 30
    intake.process()
    [job] = journal.jobs()
    assert job.state is JobState.REJECTED
    assert "album.yaml" in (job.reason or "") and "\n" not in (job.reason or "")


def test_capture_time_orders_the_album(workspace: dict[str, Path], clock: FakeClock) -> None:
    from crosswatch import albums
    from crosswatch.models import Metadata

    paths = ["/a/x.jpg", "/a/y.jpg", "/a/z.jpg"]
    taken = {"/a/x.jpg": Metadata(date_taken="2024-05-03T10:00:00"), "/a/y.jpg": Metadata(),
             "/a/z.jpg": Metadata(date_taken="2024-05-01T10:00:00")}
    assert albums.ordered(paths, taken, "capture_time") == ["/a/z.jpg", "/a/x.jpg", "/a/y.jpg"]
    assert albums.ordered(list(reversed(paths)), taken, "name") == paths
    assert os.path.basename(albums.ordered(paths, {}, "capture_time")[0]) == "x.jpg"


def test_the_credit_names_each_creator_once_and_is_one_line_when_all_agree(workspace: dict[str, Path]) -> None:
    from crosswatch import albums, compose
    from crosswatch.models import Metadata

    config = load_config(write_config(workspace))
    ann = Metadata(creator=("Ann Lee",), date_taken="2024-05-01", copyright="© 2024 Ann Lee")
    bob = Metadata(creator=("Bob Roy",), date_taken="2024-05-01", copyright="© 2024 Bob Roy")
    agreed = albums.album_metadata([ann, ann, ann], albums.AlbumText(title="Shoot"))
    mixed = albums.album_metadata([ann, bob, ann], albums.AlbumText(title="Shoot"))
    one = compose.compose(config, "outbox", agreed, Path("/a"))
    both = compose.compose(config, "outbox", mixed, Path("/a"))
    assert one.text.count("Ann Lee") == 1 and "Bob" not in one.text
    assert both.text.count("Ann Lee") == 1 and both.text.count("Bob Roy") == 1
    assert agreed.creator == ("Ann Lee",) and mixed.creator == ("Ann Lee", "Bob Roy")


def test_approval_holds_the_album_as_a_whole(workspace: dict[str, Path], clock: FakeClock) -> None:
    folder = {"path": str(workspace["inbox"]), "targets": ["outbox"], "albums": "folder",
              "album_settle_seconds": 20}
    config = load_config(write_config(workspace, watch=[folder], approval=True))
    with Journal(config.journal_path) as journal:
        intake = Intake(config, journal, clock=clock)
        album = workspace["inbox"] / "shoot"
        album.mkdir()
        for index in range(3):
            write_now(album / f"p{index}.jpg", tagged_photo(index), clock)
        offer_all(intake, album)
        clock.now += 30
        intake.process()
        [job] = journal.jobs()
        assert job.state is JobState.AWAITING_APPROVAL and len(job.data["album"]["members"]) == 3
