"""`crosswatch demo` as a newcomer meets it: a real subprocess (no --exit), its console opened in headless
Chromium from the printed address, the waiting sample approved there, and the post on the emulator's page
once, with its caption; then Ctrl-C (SIGINT) stops the demo with exit 0. Also takes the README's
screenshot of the demo's console (demo-console.png) into $CROSSWATCH_SCREENSHOTS, else pytest's tmp dir: a
test run leaves the checkout as it was (`CROSSWATCH_SCREENSHOTS=docs/screenshots` retakes the README's).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, cli_env, wait_until
from tests.console_rig import CONSOLE_LINE, chromium_args, every_image_loaded, require_chromium, screenshot_dir

pytestmark = pytest.mark.slow

EMULATOR_LINE = re.compile(r"running at (?P<url>http://127\.0\.0\.1:\d+)$", re.M)
WAITING_LINE = re.compile(r"^\s+mastodon\s+(?P<photo>\S+)\s+waits for your approval: .*`crosswatch approve "
                          r"(?P<job>\d+)`$", re.M)
SCREENSHOT = "demo-console.png"  # docs/screenshots/ holds the one README shows


class DemoProcess:
    """`crosswatch demo` with its output collected line by line as it comes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "crosswatch.cli", "demo"], cwd=REPO, env=cli_env(),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 120.0) -> re.Match[str]:
        wait_until(lambda: pattern.search(self.output) is not None or self.process.poll() is not None, timeout)
        found = pattern.search(self.output)
        assert found is not None, self.output
        return found

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=5)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    running = DemoProcess()
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait(timeout=10)
    running._reader.join(timeout=5)
    for pipe in (running.process.stdout, running.process.stderr):
        if pipe is not None:
            pipe.close()


def mastodon_texts(emulator_url: str) -> list[str]:
    state = httpx.get(f"{emulator_url}/_emulator/state", timeout=10).json()
    return [status["text"] for status in state["mastodon"]["statuses"]]


def test_the_demo_console_approves_the_waiting_sample_and_it_appears_on_the_emulator_once(
        demo: DemoProcess, tmp_path: Path) -> None:
    require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in the `test` extras")
    signin = demo.wait_for(CONSOLE_LINE)
    emulator_url = demo.wait_for(EMULATOR_LINE).group("url")
    waiting = demo.wait_for(WAITING_LINE)
    job_id = waiting.group("job")
    assert "23 of 24 posts made, 1 waiting for your approval" in demo.output
    before = mastodon_texts(emulator_url)
    assert len(before) == 3

    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=require_chromium(), headless=True, args=chromium_args())
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(f"{signin.group('url')}/signin?token={signin.group('token')}")
        assert page.url.endswith("/queue"), page.url
        card = page.locator(f'[data-job-card="{job_id}"]')
        caption = card.locator("[data-field=caption]").inner_text().strip()
        assert caption and card.locator("[data-field=state]").get_attribute("data-state") == "awaiting_approval"
        page.screenshot(path=str(tmp_path / "queue.png"), full_page=True)
        with page.expect_navigation():
            page.locator(f'button[data-action="approve"][data-job="{job_id}"]').click()

        wait_until(lambda: len(mastodon_texts(emulator_url)) == 4, timeout=60)
        texts = mastodon_texts(emulator_url)
        assert texts.count(caption) == 1, (caption, texts)
        assert set(before) < set(texts)

        # The emulator's page, as the newcomer would look: the approved post is on the Mastodon timeline, once.
        page.goto(f"{emulator_url}/_emulator/")
        shown = page.locator("article[id^=mastodon-] p.text").all_inner_texts()
        assert [text.strip() for text in shown].count(caption) == 1, shown

        # The README's screenshot: the console's Posted page, every network with its permalinks.
        page.goto(f"{signin.group('url')}/posted")
        wait_until(lambda: page.locator("[data-posted-job]").count() == 24, timeout=30, interval=0.5)
        permalinks = page.locator("[data-field=permalink]").count()
        assert permalinks == 24
        every_image_loaded(page)  # thumbnails are made on their first request
        page.screenshot(path=str(screenshot_dir(tmp_path) / SCREENSHOT))
        browser.close()

    started = time.monotonic()
    code, stderr = demo.interrupt()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert time.monotonic() - started < 30
    assert demo.lines[-1] == "stopped"
