"""What each post costs on X: the price table, no URL unless asked, costs shown before they are
spent, and a monthly budget that holds (issue 10).

The budget runs the real Runner, SQLite journal and emulator on a fake clock across month turns
(tests/fault_harness.py); previews, queue and status go through the CLI as a user meets them.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from crosswatch import pricing
from crosswatch.config import config_from_mapping
from crosswatch.errors import ConfigError
from crosswatch.journal import BUDGET_HOLD, Spend
from crosswatch.linkcheck import check_links
from crosswatch.models import JobState
from crosswatch.preview import build_preview
from crosswatch.twitter_counting import twitter_text as load_twitter_text
from tests.conftest import REPO, run_cli
from tests.fault_harness import Rig, make_rig
from tests.openapi_check import XOpenAPI

twitter_text = load_twitter_text()  # without pkg_resources (setuptools 81+ has none)

ZONE = "Pacific/Auckland"  # UTC+13 in December: the month turns there half a day before it does in UTC
ONLY_POSTS_COST = {"post": 0.015, "post_with_url": 0.2, "read": 0.0, "media_metadata": 0.0, "media_upload": 0.0}
SAMPLES = REPO / "crosswatch" / "samples"
PHOTOS = REPO / "tests" / "data" / "photos"


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(ZONE)).timestamp()


def month_starts(count: int) -> list[float]:
    """The starts of ``count`` months in ZONE, from next month on: the fake clock runs ahead of the real
    one, so the holds it sets are still in force when the CLI looks at them with the real time."""
    today = dt.datetime.now(ZoneInfo(ZONE))
    months = [(today.year + (today.month + k - 1) // 12, (today.month + k - 1) % 12 + 1) for k in range(1, count + 1)]
    return [local(year, month, 1) for year, month in months]


def month_of(at: float) -> str:
    return dt.datetime.fromtimestamp(at, ZoneInfo(ZONE)).strftime("%Y-%m")


# ---------------------------------------------------------------------------------------------------
# The table and its rules


def test_the_table_holds_xs_prices_and_a_url_is_what_twitter_text_would_link() -> None:
    assert pricing.X_PRICES["post"] == 0.015 and pricing.X_PRICES["post_with_url"] == 0.2
    assert pricing.X_PRICES["read"] == 0.005
    for text in ("see example.com", "https://x.com/a", "www.foo.org", "mañana.com", "📷 Ada · foto.de"):
        assert pricing.contains_url(text) and pricing.post_item(text) == "post_with_url", text
    for text in ("CC BY 4.0", "Harbour, 6:40 a.m.", "photo.jpg", "#example", "© 2026 Ada Lumen"):
        assert not pricing.contains_url(text) and pricing.post_item(text) == "post", text
    cost = pricing.job_cost(pricing.X_PRICES, "A heron", [True, False])
    assert cost.usd == pytest.approx(0.015 + 0.005)
    assert cost.describe() == "$0.020 (post $0.015, alt text $0.005)"
    assert pricing.job_cost(pricing.X_PRICES, "A heron", [True], steps=["create_post"]).usd == 0.015


def test_the_budget_month_is_the_users_calendar_month() -> None:
    zone = ZoneInfo(ZONE)
    start, end = pricing.month_bounds(local(2026, 12, 31, 23, 59), zone)
    assert (start, end) == (local(2026, 12, 1), local(2027, 1, 1))
    assert pricing.month_name(local(2027, 1, 1), zone) == "2027-01"
    assert pricing.month_bounds(local(2027, 2, 10), zone)[1] == local(2027, 3, 1)


def test_reads_are_counted_per_resource_returned() -> None:
    body = {"data": [{"id": "1"}, {"id": "2"}], "includes": {"media": [{"media_key": "3_9"}]}, "meta": {}}
    assert pricing.billed_resources(body) == ["post:1", "post:2", "media:3_9"]
    assert pricing.billed_resources({"data": {"id": "7"}}) == ["post:7"]
    assert pricing.billed_resources({"errors": [{"detail": "not found"}]}) == []


@pytest.mark.parametrize(("target", "key", "value"), [
    ("instagram", "monthly_budget_usd", 5.0), ("instagram", "prices", {"post": 0.1}),
    ("x", "prices", {"tweet": 0.1}), ("x", "prices", {"post": -1}), ("x", "monthly_budget_usd", -2),
])
def test_prices_and_budgets_are_checked_at_load(tmp_path: Path, target: str, key: str, value: Any) -> None:
    document: dict[str, Any] = {"watch": [{"path": str(tmp_path), "targets": ["x"]}],
                                "targets": {"x": {}, "instagram": {}}}
    document["targets"][target][key] = value
    with pytest.raises(ConfigError) as error:
        config_from_mapping(document, tmp_path / "config.yaml")
    assert f"targets.{target}.{key}" in str(error.value)


# ---------------------------------------------------------------------------------------------------
# Cost shown before it is spent


def preview_config(tmp_path: Path, **extra: Any) -> Path:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    document = {"state_dir": str(tmp_path / "state"), "watch": [{"path": str(tmp_path / "inbox"), "targets": ["x"]}],
                "targets": {"x": {"client_id": "c"}, "instagram": {"client_id": "i"}}, **extra}
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("photo", [SAMPLES / "harbour-morning.jpg", PHOTOS / "dn-Issue 600 (1).jpg"])
def test_the_default_x_caption_names_the_licence_and_costs_a_plain_post(tmp_path: Path, photo: Path) -> None:
    result = run_cli("preview", "--json", str(photo), config=preview_config(tmp_path))
    assert result.returncode == 0, result.stderr
    targets = json.loads(result.stdout)["targets"]
    x, instagram = targets["x"], targets["instagram"]
    assert "CC BY 4.0" in x["text"] and twitter_text.extract_urls(x["text"]) == []
    # The post is priced as a post, not a post with a URL; the alt text is X's media metadata call.
    assert x["cost"] == "$0.020 (post $0.015, alt text $0.005)"
    assert x["cost_usd"] == pytest.approx(0.015 + 0.005)
    assert instagram["cost_usd"] is None
    # Instagram links nothing and charges nothing: its credit line still carries the licence URL.
    assert "https://creativecommons.org/licenses/by/4.0/" in instagram["text"]
    text = run_cli("preview", str(photo), config=preview_config(tmp_path))
    assert "-- cost: $0.020 (post $0.015, alt text $0.005)" in text.stdout


def test_allow_urls_gives_the_licence_its_url_back_at_the_price_of_a_url(tmp_path: Path) -> None:
    config = preview_config(tmp_path, targets={"x": {"client_id": "c", "allow_urls": True,
                                                     "prices": {"media_metadata": 0}}})
    result = run_cli("preview", "--json", str(SAMPLES / "harbour-morning.jpg"), config=config)
    x = json.loads(result.stdout)["targets"]["x"]
    assert "CC BY 4.0 https://creativecommons.org/licenses/by/4.0/" in x["text"]
    assert x["cost_usd"] == 0.2


def test_a_cross_promoting_x_post_is_priced_with_the_link_it_will_carry(tmp_path: Path) -> None:
    for link, cost in (("permalink", 0.2), ("none", 0.015)):
        config = preview_config(tmp_path, targets={"x": {"client_id": "c", "link_to": "instagram", "link": link,
                                                         "prices": {"media_metadata": 0}},
                                                   "instagram": {"client_id": "i"}})
        result = run_cli("preview", "--json", str(SAMPLES / "autumn-canopy.jpg"), config=config)
        assert json.loads(result.stdout)["targets"]["x"]["cost_usd"] == cost, link


# ---------------------------------------------------------------------------------------------------
# A budget that holds


def budget_rig(workspace: dict[str, Path], spec: XOpenAPI, start: float, **x_options: Any) -> Rig:
    return make_rig(workspace, spec, targets=("x",), clock_start=start, config_extra={"schedule": {"timezone": ZONE}},
                    per_target={"x": {"monthly_budget_usd": 0.2, "prices": ONLY_POSTS_COST, **x_options}})


def held_by_budget(rig: Rig) -> bool:
    hold = rig.journal.holds(rig.clock()).get("x")
    return hold is not None and hold.kind == BUDGET_HOLD


def test_thirty_photos_on_a_twenty_cent_budget_go_out_thirteen_a_month_and_none_is_dropped(
        workspace: dict[str, Path], x_openapi: XOpenAPI) -> None:
    first, second, third, fourth = month_starts(4)
    rig = budget_rig(workspace, x_openapi, first + 19.5 * 86400)  # the 20th, at noon
    try:
        rig.add_photos(30)
        rig.drive(until=lambda: held_by_budget(rig))
        # 13 x $0.015 = $0.195; a 14th would make $0.210.
        assert rig.states() == {"done": 13, "ready": 17}
        assert len(rig.emulator.x_posts()) == 13
        hold = rig.journal.holds(rig.clock())["x"]
        assert hold.until == second  # the month turns in the user's time zone, not UTC
        assert hold.reason == (f"monthly budget: $0.195 of $0.200 spent in {month_of(first)}, the next post "
                               "costs $0.015 (post $0.015); targets.x.monthly_budget_usd")
        spend = rig.journal.spend("x", first, second)
        assert (spend.usd, spend.posts) == (0.195, 13)
        status = run_cli("status", "--json", config=rig.config.source)
        waiting = [job for job in json.loads(status.stdout)["jobs"] if job["state"] == "ready"]
        assert len(waiting) == 17
        assert all(job["reason"] == hold.reason and job["next_attempt_at"] == hold.until for job in waiting)
        doctor = run_cli("doctor", config=rig.config.source).stdout
        assert "target x: waiting until" in doctor and hold.reason in doctor

        rig.drive()  # the clock moves on: each month 13 more, until every photo is out
        assert rig.states() == {"done": 30}
        times = sorted(post.created_at for post in rig.emulator.x_posts())
        assert len(times) == 30
        per_month = [sum(1 for t in times if start <= t < end)
                     for start, end in ((first, second), (second, third), (third, fourth))]
        assert per_month == [13, 13, 4]
        assert all(job.attempts == 1 for job in rig.jobs())  # waiting for the budget is not a failed attempt
        rig.recorder.assert_clean()
    finally:
        rig.close()


def test_the_same_photos_with_a_link_are_priced_at_twenty_cents_before_anything_is_spent(
        workspace: dict[str, Path], x_openapi: XOpenAPI) -> None:
    rig = budget_rig(workspace, x_openapi, month_starts(1)[0])
    try:
        rig.add_photos(30)
    finally:
        rig.close()
    config_path = workspace["config"]
    document = yaml.safe_load(config_path.read_text())
    document["captions"] = {"x": "{title} {link}"}
    document["links"] = {"url": "https://pics.example.com/series"}
    config_path.write_text(json.dumps(document))
    photos = sorted(workspace["inbox"].glob("*.jpg"))
    assert len(photos) == 30
    for photo in photos[:3]:
        result = run_cli("preview", "--json", str(photo), config=config_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["targets"]["x"]["cost_usd"] == 0.2
    config = config_from_mapping(document, config_path)
    assert {build_preview(config, photo)["targets"]["x"]["cost_usd"] for photo in photos} == {0.2}
    queue = run_cli("queue", config=config_path)
    lines = [line for line in queue.stdout.splitlines() if line.startswith("#")]
    assert len(lines) == 30 and all("$0.200 (post with a URL $0.200)" in line for line in lines)


def test_a_held_budget_never_keeps_an_in_doubt_post_from_being_checked(
        workspace: dict[str, Path], x_openapi: XOpenAPI) -> None:
    first, second = month_starts(2)
    rig = budget_rig(workspace, x_openapi, first + 86400, monthly_budget_usd=0.015)
    try:
        # The first post is made but its answer is lost: in doubt, and not yet counted as spent.
        rig.emulator.drop_connection("x.tweets.create", after_applying=True)
        rig.add_photos(3)
        rig.drive(until=lambda: held_by_budget(rig))
        assert rig.jobs()[0].state is JobState.IN_DOUBT
        rig.drive(until=lambda: rig.jobs()[0].state is JobState.DONE)
        assert held_by_budget(rig)
        assert rig.jobs()[0].data.get("reconciled") == "posted"
        assert [job.state for job in rig.jobs()] == [JobState.DONE, JobState.DONE, JobState.READY]
        assert len(rig.emulator.x_posts()) == 2
        # Both posts are counted: the one found by the check too.
        assert rig.journal.spend("x", first, second).posts == 2
    finally:
        rig.close()


def test_a_post_resolved_by_hand_as_made_counts_in_the_spend(workspace: dict[str, Path],
                                                             x_openapi: XOpenAPI) -> None:
    first, second = month_starts(2)
    rig = budget_rig(workspace, x_openapi, first + 86400)
    try:
        rig.emulator.drop_connection("x.tweets.create", after_applying=True)
        unreadable = rig.emulator.respond_with("x.users.tweets", 503, times=None)  # the check cannot tell
        rig.add_photos(1)
        rig.drive()
        assert rig.jobs()[0].state is JobState.IN_DOUBT
        assert rig.journal.spend("x", first, second).posts == 0
        rig.emulator.faults.remove(unreadable.id)
        resolved = run_cli("resolve", str(rig.jobs()[0].id), "--posted", config=rig.config.source)
        assert resolved.returncode == 0, resolved.stderr
        assert rig.journal.spend("x", first, second) == Spend(0.015, 1, 0)
    finally:
        rig.close()


# ---------------------------------------------------------------------------------------------------
# The month's spend, from the journal


def test_status_shows_the_months_spend_of_posts_and_reads_made(workspace: dict[str, Path],
                                                                x_openapi: XOpenAPI) -> None:
    rig = make_rig(workspace, x_openapi, targets=("x",), timeline_settle_seconds=0.0)
    answers: list[tuple[float, dict[str, Any]]] = []

    def read_answers(request: httpx.Request, response: httpx.Response | None, endpoint: str) -> None:
        if endpoint in ("x.users.tweets", "x.tweets.get") and response is not None and response.is_success:
            answers.append((rig.clock(), json.loads(response.content)))

    rig.emulator.add_observer(read_answers)
    try:
        rig.emulator.drop_connection("x.tweets.create", after_applying=True)
        rig.add_photos(3)
        rig.drive()
        assert rig.states() == {"done": 3}
        results = check_links(rig.config, rig.journal, rig.client, rig.tokens)
        assert [r.state for r in results] == ["ok"] * 3
    finally:
        rig.close()
    # What X would bill: every post made, every alt text set, every resource read (once a UTC day).
    posts = len(rig.emulator.x_posts())
    alt_texts = sum(1 for r in rig.emulator.requests_log("x.media.metadata") if r.status == 200)
    read: set[tuple[str, str]] = set()
    for at, body in answers:
        day = dt.datetime.fromtimestamp(at, dt.UTC).date().isoformat()
        items = body["data"] if isinstance(body.get("data"), list) else [body["data"]]
        read |= {(day, f"post:{item['id']}") for item in items}
        read |= {(day, f"media:{item['media_key']}") for item in body.get("includes", {}).get("media", [])}
    assert posts == 3 and alt_texts == 3 and len(answers) >= 4  # a reconciliation and three link checks
    status = run_cli("status", "--json", config=rig.config.source)
    assert status.returncode == 0, status.stderr
    spend = json.loads(status.stdout)["spend"]
    assert set(spend) == {"x"}
    assert spend["x"]["month"] == dt.datetime.now().astimezone().strftime("%Y-%m")
    assert spend["x"]["budget_usd"] is None
    assert (spend["x"]["posts"], spend["x"]["reads"]) == (posts, len(read))
    assert spend["x"]["usd"] == pytest.approx(0.015 * posts + 0.005 * alt_texts + 0.005 * len(read))
    text = run_cli("status", config=rig.config.source).stdout
    assert f"spent {pricing.usd_text(spend['x']['usd'])} in {spend['x']['month']}" in text
    doctor = run_cli("doctor", config=rig.config.source).stdout
    assert f"target x: spent {pricing.usd_text(spend['x']['usd'])}" in doctor


# ---------------------------------------------------------------------------------------------------
# The demo


DEMO_SCRIPT = """
import json, sys
from crosswatch.demo import run_demo
texts = []
code = run_demo(keep_serving=False, out=lambda line: None, x_options=json.loads(sys.argv[1]),
                inspect=lambda emulator: texts.extend(p.text for p in emulator.x_posts()))
print(json.dumps({"code": code, "texts": texts}))
"""


@pytest.mark.parametrize("x_options", [{}, {"allow_urls": True}])
def test_the_demos_x_posts_carry_no_url_unless_its_config_asks(x_options: dict[str, Any]) -> None:
    result = subprocess.run([sys.executable, "-c", DEMO_SCRIPT, json.dumps(x_options)], capture_output=True,
                            text=True, timeout=240, cwd=REPO)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["code"] == 0 and len(outcome["texts"]) == 4
    urls = [twitter_text.extract_urls(text) for text in outcome["texts"]]
    if x_options:
        assert all(found == ["https://creativecommons.org/licenses/by/4.0/"] for found in urls)
    else:
        assert urls == [[]] * 4
        assert all("CC BY 4.0" in text for text in outcome["texts"])
