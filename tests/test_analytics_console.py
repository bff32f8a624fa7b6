"""The console's analytics page in headless Chromium with 200 posts (100 photos on X and Instagram, real
JPEGs with keywords and lenses, real SQLite), at 1280 and 390 px: the sortable table with thumbnails,
the charts drawn by the vendored Chart.js, the weekday x hour heat maps, the best keywords and lenses,
and the suggestion's schedule snippet. Screenshots go to $CROSSWATCH_SCREENSHOTS (else a tmp dir)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from crosswatch.journal import Journal
from crosswatch.models import JobState
from tests.conftest import jpeg_bytes, write_config
from tests.console_helpers import UNUSED_URL, Console, make_console, take_in
from tests.console_rig import WIDTHS, chromium_args, require_chromium, screenshot_dir
from tests.test_analytics_e2e import photo_xmp

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

PHOTOS = 100
HOURS = (8, 12, 18, 21)


def seed_history(config_path: Path, workspace: dict[str, Path]) -> None:
    """100 photos taken in for X and Instagram, every job done, each post read twice (a time series)
    with 18:00 posts doing three times as well."""
    from crosswatch.config import load_config

    for index in range(PHOTOS):
        (workspace["inbox"] / f"harbour-{index:03d}.jpg").write_bytes(
            jpeg_bytes(index, size=(320, 240), xmp=photo_xmp(index)))
    config = load_config(config_path)
    take_in(config)
    day = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with Journal(config.journal_path) as journal:
        rows = []
        for job in journal.jobs():
            journal.transition(job.id, JobState.IN_FLIGHT, step="post")
            journal.transition(job.id, JobState.DONE, remote_id=str(1000 + job.id))
            at = (day + dt.timedelta(days=job.photo_id % 28, hours=HOURS[job.photo_id % len(HOURS)])).timestamp()
            boost = 3 if HOURS[job.photo_id % len(HOURS)] == 18 else 1
            seen = 500 + 7 * (job.photo_id % 11)
            metrics = ({"impression_count": seen, "like_count": 12 * boost, "reply_count": 2 * boost}
                       if job.target == "x" else
                       {"views": seen, "reach": seen - 50, "total_interactions": 20 * boost, "likes": 15 * boost})
            rows.append((job.id, at, metrics))
        journal.record_readings([(job_id, "ok", {k: v // 2 for k, v in m.items()}, None, at) for job_id, at, m in rows],
                                at=day.timestamp() + 40 * 86400)
        journal.record_readings([(job_id, "ok", m, None, None) for job_id, _at, m in rows],
                                at=day.timestamp() + 50 * 86400)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("analytics-console")
    workspace = {"inbox": root / "inbox", "outbox": root / "outbox", "state": root / "state",
                 "config": root / "config.yaml"}
    workspace["inbox"].mkdir()
    targets = {"x": {"client_id": "c", "api_base": UNUSED_URL, "redirect_port": 0},
               "instagram": {"client_id": "c", "graph_base": UNUSED_URL, "redirect_port": 0,
                             "media_host": {"type": "directory", "path": str(root),
                                            "public_url": "https://example.com/"}}}
    watch = [{"path": str(workspace["inbox"]), "targets": ["x", "instagram"], "settle_seconds": 0}]
    config_path = write_config(workspace, targets=targets, watch=watch, schedule={"timezone": "UTC"},
                               analytics={"enabled": True})
    seed_history(config_path, workspace)
    served = make_console(config_path)
    yield served
    served.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in the `test` extras")
    driver = sync_api.sync_playwright().start()
    launched = driver.chromium.launch(executable_path=executable, headless=True, args=chromium_args())
    yield launched
    launched.close()
    driver.stop()


def open_page(browser: Browser, console: Console, width: int) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{console.base}/signin?token={console.state.sessions.new_token()}")
    page.goto(f"{console.base}/analytics")
    return page


def test_the_page_shows_200_posts_charts_heat_maps_and_the_suggestion(browser: Browser, console: Console,
                                                                      tmp_path: Path) -> None:
    page = open_page(browser, console, WIDTHS["desktop"])
    rows = page.locator("tr[data-post-job]")
    assert rows.count() == 2 * PHOTOS
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-over-time') && Chart.getChart('chart-lenses')")
    assert page.locator("[data-heat-map]").count() == 2  # one per platform
    assert page.locator("[data-heat-map=instagram] td.heat-5").count() >= 1
    assert page.locator("tr[data-lens]").count() == 2 and page.locator("tr[data-keyword=harbour]").count() == 1
    for target in ("x", "instagram"):
        snippet = page.locator(f"[data-suggestion={target}] [data-field=snippet]").inner_text()
        assert 'windows: ["daily 18:00-19:00"' in snippet
    header = page.locator("table[data-sortable] th", has_text="interactions")
    header.click()
    header.click()  # descending: the 18:00 posts first
    first = page.locator("tr[data-post-job]").first.locator("td").nth(2).inner_text()
    assert " 18:00:00 " in first, first  # when they were posted, as the console shows every time (views.when)
    assert page.locator("tr[data-post-job] img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    folder = screenshot_dir(tmp_path)
    page.screenshot(path=str(folder / "analytics-1280.png"), full_page=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(folder / "analytics-1280-top.png"))
    page.context.close()


def test_the_page_fits_a_phone(browser: Browser, console: Console, tmp_path: Path) -> None:
    page = open_page(browser, console, WIDTHS["phone"])
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-keywords')")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= WIDTHS["phone"], f"the page is {width} px wide on a {WIDTHS['phone']} px phone"
    page.screenshot(path=str(screenshot_dir(tmp_path) / "analytics-390.png"), full_page=True)
    page.screenshot(path=str(screenshot_dir(tmp_path) / "analytics-390-top.png"))
    assert re.search(r"Analytics", page.locator("nav [aria-current=page]").inner_text())
    page.context.close()
