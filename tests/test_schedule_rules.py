"""Schedule (windows, gap, daily max, stagger), rules and approval: what goes where, and when."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crosswatch.config import load_config
from crosswatch.journal import Journal
from crosswatch.models import JobState, Metadata
from crosswatch.platforms.registry import build_targets
from crosswatch.rules import refusal
from crosswatch.runner import Runner
from crosswatch.schedule import Planner, parse_window
from crosswatch.watcher import Intake
from tests.conftest import jpeg_bytes, run_cli, write_config

ZONE = ZoneInfo("Europe/Berlin")


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


def local(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, ZONE)


def tagged_photo(seed: int, *, rating: int = 0, keywords: tuple[str, ...] = ()) -> bytes:
    subjects = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="{rating}">'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Photo {seed}</rdf:li></rdf:Alt></dc:title>'
        f"<dc:subject><rdf:Bag>{subjects}</rdf:Bag></dc:subject>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    return jpeg_bytes(seed, xmp=xmp)


# -- windows and the planner -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "days", "start", "end"), [
    ("mon-fri 08:00-10:00", {0, 1, 2, 3, 4}, 480, 600),
    ("sat,sun 09:30-12:00", {5, 6}, 570, 720),
    ("daily 22:00-01:00", set(range(7)), 1320, 60),
    ("18:00-21:00", set(range(7)), 1080, 1260),
    ("fri-mon 07:00-08:00", {4, 5, 6, 0}, 420, 480),
])
def test_windows_parse(text: str, days: set[int], start: int, end: int) -> None:
    window = parse_window(text)
    assert (set(window.days), window.start, window.end) == (days, start, end)


@pytest.mark.parametrize("text", ["weekdays 08:00-10:00", "mon-fri 8-10", "mon 10:00-10:00", "mon 25:00-26:00"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window(text)


def test_a_bad_window_in_the_config_is_exit_2_naming_it(workspace: dict[str, Path]) -> None:
    config = write_config(workspace, schedule={"targets": {"outbox": {"windows": ["weekdays 9-5"]}}})
    result = run_cli("status", config=config)
    assert result.returncode == 2
    assert "schedule.targets.outbox.windows.0" in result.stderr
    assert "mon-fri 08:00-10:00" in result.stderr


def planner(workspace: dict[str, Path], **schedule: object) -> Planner:
    return Planner(load_config(write_config(workspace, schedule={"timezone": "Europe/Berlin", **schedule})))


def test_the_planner_waits_for_the_next_window_gap_and_day(workspace: dict[str, Path]) -> None:
    plan = planner(workspace, targets={"outbox": {"windows": ["mon-fri 08:00-10:00"], "min_gap_minutes": 45,
                                                  "daily_max": 2}})
    # Friday 2026-11-27 07:00 is before the window; Saturday and Sunday have none.
    when, why = plan.earliest("outbox", at("2026-11-27T07:00"), [])
    assert local(when) == dt.datetime(2026, 11, 27, 8, 0, tzinfo=ZONE)
    assert "posting windows" in (why or "")
    when, why = plan.earliest("outbox", at("2026-11-27T08:10"), [at("2026-11-27T08:00")])
    assert local(when) == dt.datetime(2026, 11, 27, 8, 45, tzinfo=ZONE)
    assert "min_gap" in (why or "")
    two_today = [at("2026-11-27T08:00"), at("2026-11-27T08:50")]
    when, why = plan.earliest("outbox", at("2026-11-27T09:40"), two_today)
    assert local(when) == dt.datetime(2026, 11, 30, 8, 0, tzinfo=ZONE)  # the next Monday's window


def test_the_stagger_follows_the_other_targets_start(workspace: dict[str, Path]) -> None:
    plan = planner(workspace, stagger_minutes=30)
    when, why = plan.earliest("outbox", at("2026-11-27T12:00"), [], sibling_starts=[at("2026-11-27T11:50")])
    assert local(when) == dt.datetime(2026, 11, 27, 12, 20, tzinfo=ZONE)
    assert "stagger" in (why or "")


# -- the runner with a fake clock ----------------------------------------------------------------------


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_with_a_fake_clock_windows_gaps_stagger_and_daily_caps_hold_and_nothing_is_dropped(
        workspace: dict[str, Path], tmp_path: Path) -> None:
    schedule = {
        "timezone": "Europe/Berlin",
        "stagger_minutes": 20,
        "targets": {
            "feed": {"windows": ["mon-fri 09:00-11:00"], "min_gap_minutes": 30, "daily_max": 3},
            "micro": {"windows": ["daily 18:00-22:00"], "min_gap_minutes": 10},
        },
    }
    targets = {"feed": {"type": "outbox", "path": str(tmp_path / "feed")},
               "micro": {"type": "outbox", "path": str(tmp_path / "micro")}}
    watch = [{"path": str(workspace["inbox"]), "targets": ["feed", "micro"], "settle_seconds": 0}]
    config = load_config(write_config(workspace, schedule=schedule, targets=targets, watch=watch))
    for index in range(8):
        (workspace["inbox"] / f"p{index}.jpg").write_bytes(jpeg_bytes(index))
    clock = Clock(at("2026-11-27T08:00"))  # a Friday
    with Journal(config.journal_path, clock=clock) as journal:
        intake = Intake(config, journal, clock=clock)
        intake.scan()
        intake.process()
        runner = Runner(config, journal, build_targets(config), clock=clock)
        for _step in range(500):
            runner.run_due()
            next_due = journal.next_due_at()
            if next_due is None:
                break
            clock.now = max(clock.now + 1, next_due)
        jobs = journal.jobs()
        assert len(jobs) == 16
        assert {j.state for j in jobs} == {JobState.DONE}
        done_at = {j.id: next(e["at"] for e in journal.events(j.id) if e["to_state"] == "done") for j in jobs}
        started_at = {j.id: next(e["at"] for e in journal.events(j.id) if e["to_state"] == "in_flight")
                      for j in jobs}
    for target, window, gap in (("feed", (9, 11), 30), ("micro", (18, 22), 10)):
        times = sorted(done_at[j.id] for j in jobs if j.target == target)
        for moment in times:
            assert window[0] <= local(moment).hour < window[1], (target, local(moment))
            if target == "feed":
                assert local(moment).weekday() < 5
        assert all(b - a >= gap * 60 for a, b in itertools.pairwise(times))
        if target == "feed":
            assert max(Counter(local(t).date() for t in times).values()) <= 3
    for photo_id in {j.photo_id for j in jobs}:
        first, second = sorted(started_at[j.id] for j in jobs if j.photo_id == photo_id)
        assert second - first >= 20 * 60


# -- rules and approval ---------------------------------------------------------------------------------


def test_rules_read_rating_keywords_hierarchy_and_label(workspace: dict[str, Path]) -> None:
    rules = load_config(write_config(workspace, rules={"min_rating": 3, "require_keywords": ["publish"],
                                                       "exclude_keywords": ["private"]})).rules.for_target("x")
    assert refusal(rules, Metadata(rating=2, keywords=("publish",))) is not None
    assert refusal(rules, Metadata(rating=4, keywords=("publish", "Private"))) is not None
    assert refusal(rules, Metadata(rating=4, keywords=("other",))) is not None
    assert refusal(rules, Metadata(rating=4, hierarchical_subject=("Workflow|Publish",))) is None
    assert refusal(rules, Metadata(rating=5, label="publish")) is None


def test_rules_and_approval_route_photos_and_a_rejected_photo_never_goes_out(
        workspace: dict[str, Path], tmp_path: Path) -> None:
    targets = {"feed": {"type": "outbox", "path": str(tmp_path / "feed")},
               "micro": {"type": "outbox", "path": str(tmp_path / "micro")}}
    watch = [{"path": str(workspace["inbox"]), "targets": ["feed", "micro"], "settle_seconds": 0}]
    config = write_config(workspace, targets=targets, watch=watch, approval=["micro"],
                          rules={"exclude_keywords": ["private"], "targets": {"feed": {"min_rating": 4}}})
    inbox = workspace["inbox"]
    (inbox / "five-stars.jpg").write_bytes(tagged_photo(1, rating=5))
    (inbox / "two-stars.jpg").write_bytes(tagged_photo(2, rating=2))
    (inbox / "private.jpg").write_bytes(tagged_photo(3, rating=5, keywords=("private",)))
    assert run_cli("run", "--once", config=config).returncode == 0
    status = json.loads(run_cli("status", "--json", config=config).stdout)
    states = {(Path(j["photo"]).name, j["target"]): (j["state"], j["reason"]) for j in status["jobs"]}
    assert states[("five-stars.jpg", "feed")][0] == "done"
    assert states[("two-stars.jpg", "feed")][0] == "rejected"
    assert "below min_rating 4" in states[("two-stars.jpg", "feed")][1]
    # `micro` has no rules of its own: the top-level ones apply; `feed` overrides only the rating, so
    # it still keeps private photos back.
    assert states[("two-stars.jpg", "micro")][0] == "awaiting_approval"
    assert states[("five-stars.jpg", "micro")][0] == "awaiting_approval"
    assert states[("private.jpg", "micro")][0] == "rejected"
    assert states[("private.jpg", "feed")][0] == "rejected"

    queue = run_cli("queue", config=config).stdout
    assert "awaiting approval" in queue and "Photo 1" in queue  # captions are shown
    ids = {(Path(j["photo"]).name, j["target"]): j["id"] for j in status["jobs"]}
    assert run_cli("approve", str(ids[("five-stars.jpg", "micro")]), config=config).returncode == 0
    assert run_cli("reject", str(ids[("two-stars.jpg", "micro")]), config=config).returncode == 0
    again = run_cli("approve", str(ids[("two-stars.jpg", "micro")]), config=config)
    assert again.returncode == 2 and "not awaiting approval" in again.stderr
    assert run_cli("run", "--once", config=config).returncode == 0
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        final = {j.id: j.state for j in journal.jobs()}
    assert final[ids[("five-stars.jpg", "micro")]] is JobState.DONE
    assert final[ids[("two-stars.jpg", "micro")]] is JobState.REJECTED
    written = sorted(p.name.split("-")[0] for p in (tmp_path / "micro").glob("*.jpg"))
    assert written == ["five"]


def test_a_job_already_under_way_is_finished_outside_its_window(workspace: dict[str, Path]) -> None:
    # Uploaded media and Instagram containers expire: a post begun in its window is not left for the next.
    watch = [{"path": str(workspace["inbox"]), "targets": ["outbox"], "settle_seconds": 0}]
    config = load_config(write_config(workspace, watch=watch, schedule={
        "timezone": "Europe/Berlin", "targets": {"outbox": {"windows": ["daily 09:00-10:00"]}}}))
    (workspace["inbox"] / "a.jpg").write_bytes(jpeg_bytes(1))
    (workspace["inbox"] / "b.jpg").write_bytes(jpeg_bytes(2))
    clock = Clock(at("2026-11-27T10:30"))  # after the window closed
    with Journal(config.journal_path, clock=clock) as journal:
        intake = Intake(config, journal, clock=clock)
        intake.scan()
        intake.process()
        begun, fresh = journal.jobs()
        journal.transition(begun.id, JobState.IN_FLIGHT, step="write")
        journal.transition(begun.id, JobState.READY, detail="came back to poll later")
        Runner(config, journal, build_targets(config), clock=clock).run_due()
        assert journal.job(begun.id).state is JobState.DONE  # type: ignore[union-attr]
        waiting = journal.job(fresh.id)
        assert waiting is not None and waiting.state is JobState.READY
        assert local(waiting.next_attempt_at) == dt.datetime(2026, 11, 28, 9, 0, tzinfo=ZONE)
