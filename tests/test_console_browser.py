"""The console in a real browser (headless Chromium through Playwright) against `crosswatch run` as a
subprocess with its console on, posting to the emulator as a real server (issue 13).

One daemon, emulator and browser serve the whole module (tests/console_rig.py); each test acts on
photos of its own. The sign-in revocation runs last among the X tests because it ends X's sign-in for
the rest of the module, and the screenshots come after it so that every page has something to show.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image, ImageStat

from crosswatch.emulator.httputil import x_blank_problem
from crosswatch.journal import Journal
from crosswatch.models import Job, JobState
from tests.conftest import wait_until
from tests.console_rig import (
    PAGES,
    WIDTHS,
    ConsoleRig,
    chromium_args,
    every_image_loaded,
    photo_bytes,
    require_chromium,
    screenshot_dir,
    start_rig,
)
from tests.openapi_check import XOpenAPI

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright

# The module shares one daemon, emulator and browser; together they take over a minute (CI runs it).
pytestmark = pytest.mark.slow

X_LIMIT = 280
# How long a page waits for an element or a state the daemon has to reach first.
WAIT_MS = 30_000


@pytest.fixture(scope="module", autouse=True)
def playwright() -> Iterator[Playwright]:
    """First of the module's fixtures (autouse): without Chromium nothing else is started."""
    require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in the `test` extras")
    driver = sync_api.sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=require_chromium(), headless=True, args=chromium_args())
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, x_openapi: XOpenAPI) -> Iterator[ConsoleRig]:
    yield from start_rig(tmp_path_factory.mktemp("console"), x_openapi)


@pytest.fixture(scope="module")
def signed_in(browser: Browser, rig: ConsoleRig) -> Iterator[BrowserContext]:
    """A browser that followed the printed sign-in address once: its session cookie opens every page."""
    context = browser.new_context(viewport={"width": WIDTHS["desktop"], "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(rig.signin_url)
    assert page.url == f"{rig.base_url}/queue", page.url
    page.close()
    yield context
    context.close()


@pytest.fixture
def page(signed_in: BrowserContext) -> Iterator[Page]:
    opened = signed_in.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    opened.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_page(page: Page, rig: ConsoleRig, name: str) -> None:
    response = page.goto(f"{rig.base_url}/{name}")
    assert response is not None and response.status == 200, (name, response and response.status)


def card(page: Page, job_id: int) -> Locator:
    return page.locator(f'[data-job-card="{job_id}"]')


def field(page: Page, job_id: int, name: str) -> Locator:
    return card(page, job_id).locator(f"[data-field={name}]")


def button(page: Page, job_id: int, action: str) -> Locator:
    return page.locator(f'button[data-action="{action}"][data-job="{job_id}"]')


def edit_form(page: Page, job_id: int) -> Locator:
    """The job's edit form, opened when it is folded away."""
    form = page.locator(f'form[data-action="edit"][data-job="{job_id}"]')
    if not form.is_visible():
        card(page, job_id).locator("summary").click()
    return form


def edit(page: Page, job_id: int, caption: str, alt_text: str | None = None) -> None:
    """Fill in the job's edit form and save."""
    form = edit_form(page, job_id)
    form.locator("textarea[name=caption]").fill(caption)
    if alt_text is not None:
        form.locator("textarea[name=alt_text]").fill(alt_text)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def click(page: Page, job_id: int, action: str) -> None:
    """Press one of the job's buttons; each is a form POST, answered with a page."""
    with page.expect_navigation():
        button(page, job_id, action).click()


def loaded_images(locator: Locator) -> list[int]:
    """naturalWidth of every <img> in the locator, once each has finished loading (0: it failed)."""
    locator.locator("img").first.wait_for()
    return loaded_widths(locator.locator("img").all())


def loaded_widths(images: list[Locator]) -> list[int]:
    """naturalWidth of each of these <img> elements, once it has finished loading (0: it failed)."""
    for img in images:
        img.scroll_into_view_if_needed()  # thumbnails load lazily, as they come into view
    return [int(img.evaluate("i => i.complete ? i.naturalWidth : new Promise(ok => "
                             "{ i.onload = () => ok(i.naturalWidth); i.onerror = () => ok(0); })"))
            for img in images]


def needs_you_count(page: Page) -> int:
    text = page.locator("[data-needs-you-count]").first.inner_text()
    found = re.search(r"\d+", text)
    assert found, f"no number in the needs-you count: {text!r}"
    return int(found.group(0))


def approved_for_later(rig: ConsoleRig, page: Page, title: str) -> Job:
    """A new photo's x_later job, approved in the console and waiting for its posting window (the
    runner moves it there on its next pass)."""
    photo = rig.drop_photo("later", title=title)
    job = rig.wait_for_job(photo, "x_later", JobState.AWAITING_APPROVAL)
    open_page(page, rig, "queue")
    click(page, job.id, "approve")
    wait_until(lambda: (rig.job(job.id).reason or "").startswith("scheduled:"), timeout=15, interval=0.1)
    assert rig.job(job.id).state is JobState.READY
    return job


# ---------------------------------------------------------------------------------------------------


def test_photos_dropped_in_appear_in_the_queue_with_thumbnails(rig: ConsoleRig, page: Page) -> None:
    # Two of the bundled samples, a tall photo and a 2400x700 panorama, with their own metadata.
    shown_as = {"harbour-morning.jpg": ("Harbour, 6:40 a.m.", "A tall view of a calm harbour in pale morning light"),
                "salt-flats-panorama.jpg": ("Salt flats panorama", "A wide, flat white plain under a clear blue sky")}
    photos = {name: rig.drop_sample(name) for name in shown_as}
    jobs = {name: rig.wait_for_job(photo, "x", JobState.AWAITING_APPROVAL) for name, photo in photos.items()}
    open_page(page, rig, "queue")
    for name, job in jobs.items():
        title, alt_text = shown_as[name]
        shown = card(page, job.id)
        shown.wait_for()
        assert title in field(page, job.id, "caption").inner_text()
        assert field(page, job.id, "alt-text").inner_text().startswith(alt_text)
        assert field(page, job.id, "state").inner_text().strip() == "awaiting approval"
        assert re.fullmatch(r"\d+ / 280", field(page, job.id, "length").inner_text().strip())
        # The photo's thumbnail, and the image as it will be uploaded to X.
        group = page.locator(f'[data-photo="{job.photo_id}"]')
        thumb = group.locator("img.thumb")
        assert thumb.get_attribute("src") == f"/images/photo/{job.photo_id}/thumb"
        assert shown.locator("img").get_attribute("src") == f"/images/job/{job.id}"
        # Only these two: the Instagram card beside it needs no approval, so it may post (and its
        # prepared image be discarded) between the page's rendering and the browser asking for it.
        widths = loaded_widths([thumb, shown.locator("img")])
        assert all(width > 0 for width in widths), f"{name}: an image did not load: {widths}"
    assert needs_you_count(page) >= 2  # both wait for approval


def mean_colour(data: bytes) -> tuple[float, ...]:
    with Image.open(io.BytesIO(data)) as image:
        return tuple(ImageStat.Stat(image.convert("RGB")).mean)


def test_an_album_dropped_in_shows_every_image_in_order_with_its_alt_text_in_its_queue_card(
        rig: ConsoleRig, page: Page) -> None:
    folder, seeds = rig.drop_album("harbour-set", 6)
    job = rig.wait_for_job(folder, "x", JobState.AWAITING_APPROVAL)  # X: a thread of 4 + 2, one job
    open_page(page, rig, "queue")
    shown = card(page, job.id)
    shown.wait_for()
    group = page.locator(f'[data-photo="{job.photo_id}"]')
    assert group.locator("[data-field=album]").inner_text() == "harbour-set"
    strip = shown.locator("img.album-image")
    assert strip.count() == len(seeds)
    assert [strip.nth(i).get_attribute("src") for i in range(len(seeds))] == [
        f"/images/job/{job.id}/{i}" for i in range(len(seeds))]
    widths = loaded_widths([group.locator("img.thumb"), *(strip.nth(i) for i in range(len(seeds)))])
    assert all(width > 0 for width in widths), f"an image of the album did not load: {widths}"
    assert field(page, job.id, "image-alt").all_inner_texts() == [
        f"{i + 1}. A flat test card, number {seed}." for i, seed in enumerate(seeds)]
    # Each image is its own photo, prepared for X, in the album's order (the seeds' colours differ).
    for number, seed in enumerate(seeds):
        answer = page.request.get(f"{rig.base_url}/images/job/{job.id}/{number}")
        assert answer.status == 200 and answer.headers["content-type"] == "image/jpeg"
        source = mean_colour(photo_bytes(seed, "any title"))
        assert all(abs(a - b) < 8 for a, b in zip(mean_colour(answer.body()), source, strict=True)), number
    assert page.request.get(f"{rig.base_url}/images/job/{job.id}/{len(seeds)}").status == 404


def test_an_x_caption_edited_past_280_shows_the_error_and_saves_nothing(rig: ConsoleRig, page: Page) -> None:
    photo = rig.drop_photo(title="Too long for X")
    job = rig.wait_for_job(photo, "x", JobState.AWAITING_APPROVAL)
    open_page(page, rig, "queue")
    before = field(page, job.id, "caption").inner_text()
    # As it is typed, the page asks the server, which counts by X's own rule.
    form = edit_form(page, job.id)
    form.locator("textarea[name=caption]").fill("a" * X_LIMIT)
    live = form.locator("[data-field=live-check]")
    page.wait_for_function("el => el.textContent.startsWith('280 / 280')", arg=live.element_handle())
    assert "over" not in (live.get_attribute("class") or "")
    form.locator("textarea[name=caption]").fill("a" * (X_LIMIT + 1))
    page.wait_for_function("el => el.textContent.startsWith('281 / 280')", arg=live.element_handle())
    assert "over" in (live.get_attribute("class") or "")
    edit(page, job.id, "a" * (X_LIMIT + 1))
    error = field(page, job.id, "error")
    error.wait_for()
    assert error.inner_text().strip(), "the refusal must say what is wrong"
    assert str(X_LIMIT) in error.inner_text()
    open_page(page, rig, "queue")  # what the journal holds, not what the form kept
    assert field(page, job.id, "caption").inner_text() == before
    assert rig.job(job.id).state is JobState.AWAITING_APPROVAL


def test_a_valid_edit_is_saved_and_sends_an_approved_job_back_to_approval(rig: ConsoleRig, page: Page) -> None:
    job = approved_for_later(rig, page, "Waiting for its window")
    caption = "Fog lifting over the harbour — edited in the console"
    alt_text = "Grey water, a pier, and fog thinning in the morning light."
    open_page(page, rig, "queue")
    edit(page, job.id, caption, alt_text)
    assert field(page, job.id, "error").count() == 0
    rig.wait_for_state(job.id, JobState.AWAITING_APPROVAL, timeout=5)
    open_page(page, rig, "queue")
    assert field(page, job.id, "caption").inner_text().strip() == caption
    assert field(page, job.id, "alt-text").inner_text().strip() == alt_text
    assert str(len(caption)) in field(page, job.id, "length").inner_text()
    assert button(page, job.id, "approve").count() == 1


def test_approve_and_the_emulator_receives_exactly_that_caption(rig: ConsoleRig, page: Page) -> None:
    photo = rig.drop_photo(title="Approved as edited")
    job = rig.wait_for_job(photo, "x", JobState.AWAITING_APPROVAL)
    caption = "Café terrace at noon ☕ — a caption with an emoji and an accent, as typed"
    open_page(page, rig, "queue")
    edit(page, job.id, caption)
    click(page, job.id, "approve")
    done = rig.wait_for_state(job.id, JobState.DONE)
    [post] = [p for p in rig.emulator.x_posts() if p.id == done.remote_id]
    assert post.text == caption
    assert rig.x_texts().count(caption) == 1
    open_page(page, rig, "posted")
    posted = page.locator(f"[data-posted-job='{job.id}']")
    assert posted.locator("[data-field=permalink]").get_attribute("href") == done.permalink
    assert done.permalink and done.permalink.endswith(f"/status/{post.id}")
    widths = loaded_images(posted)
    assert widths and all(width > 0 for width in widths), widths


def test_post_now_sends_a_job_outside_its_posting_window_once(rig: ConsoleRig, page: Page) -> None:
    job = approved_for_later(rig, page, "Posted now, outside its window")
    open_page(page, rig, "queue")
    assert "planned:" in field(page, job.id, "planned").inner_text()
    click(page, job.id, "post-now")
    done = rig.wait_for_state(job.id, JobState.DONE)
    assert [p.id for p in rig.emulator.x_posts() if "Posted now, outside its window" in p.text] == [done.remote_id]


def test_a_caption_with_markup_shows_as_text_in_the_browser(rig: ConsoleRig, page: Page) -> None:
    photo = rig.drop_photo("later", title="Markup in the caption")
    job = rig.wait_for_job(photo, "x_later", JobState.AWAITING_APPROVAL)
    markup = '<script>window.captionRan = 1</script><b>bold</b> <img src=x onerror="window.captionRan = 2">'
    open_page(page, rig, "queue")
    edit(page, job.id, markup, alt_text='<i>alt</i> "quoted" & more')
    open_page(page, rig, "queue")
    caption = field(page, job.id, "caption")
    assert caption.inner_text() == markup
    assert caption.locator("script, b, img").count() == 0
    assert field(page, job.id, "alt-text").inner_text() == '<i>alt</i> "quoted" & more'
    assert page.evaluate("window.captionRan") is None
    # The edit form shows the same text for the next edit, as text.
    assert edit_form(page, job.id).locator("textarea[name=caption]").input_value() == markup


def test_reject_and_nothing_is_ever_posted(rig: ConsoleRig, page: Page) -> None:
    photo = rig.drop_photo(title="Rejected in the console")
    job = rig.wait_for_job(photo, "x", JobState.AWAITING_APPROVAL)
    sent_before = len(rig.emulator.requests_log("x.tweets.create"))
    open_page(page, rig, "queue")
    click(page, job.id, "reject")
    rig.wait_for_state(job.id, JobState.REJECTED, timeout=5)
    # A later photo goes out through the same daemon, so the runner has looked at the queue since.
    later = rig.drop_photo(title="Approved after the rejected one")
    later_job = rig.wait_for_job(later, "x", JobState.AWAITING_APPROVAL)
    open_page(page, rig, "queue")
    click(page, later_job.id, "approve")
    rig.wait_for_state(later_job.id, JobState.DONE)
    assert rig.job(job.id).state is JobState.REJECTED
    assert not [t for t in rig.x_texts() if "Rejected in the console" in t]
    assert len(rig.emulator.requests_log("x.tweets.create")) == sent_before + 1
    open_page(page, rig, "queue")
    assert card(page, job.id).count() == 0, "a rejected job leaves the queue"
    # Posted's state filter finds it, with the reason and a Retry button (not pressed: it stays rejected).
    open_page(page, rig, "posted")
    page.select_option("select[name=state]", "rejected")
    with page.expect_navigation():
        page.locator(".filters button[type=submit]").click()
    rejected = page.locator(f"[data-posted-job='{job.id}']")
    assert "rejected by hand (console)" in rejected.locator("[data-field=reason]").inner_text()
    assert button(page, job.id, "retry").count() == 1


def test_a_failed_job_is_retried_from_the_console(rig: ConsoleRig, page: Page) -> None:
    photo = rig.drop_photo(title="Fails once, then goes out")
    job = rig.wait_for_job(photo, "x", JobState.AWAITING_APPROVAL)
    sent_before = len(rig.emulator.requests_log("x.tweets.create"))
    # X refuses the post once with a 403 that retrying by itself cannot fix: the job fails.
    rig.emulator.respond_with("x.tweets.create", 403,
                              x_blank_problem(403, "You are not permitted to perform this action."))
    open_page(page, rig, "queue")
    click(page, job.id, "approve")
    failed = rig.wait_for_state(job.id, JobState.FAILED)
    open_page(page, rig, "queue")
    assert "not permitted" in field(page, job.id, "reason").inner_text()
    # Retried from the "needs you" list, which the browser comes back to.
    open_page(page, rig, "needs-you")
    assert page.locator(f'[data-need="failed"][data-job="{job.id}"]').count() == 1
    click(page, job.id, "retry")
    assert page.url == f"{rig.base_url}/needs-you"
    done = rig.wait_for_state(job.id, JobState.DONE)
    assert failed.remote_id is None and done.remote_id
    assert [p.id for p in rig.emulator.x_posts() if "Fails once, then goes out" in p.text] == [done.remote_id]
    assert len(rig.emulator.requests_log("x.tweets.create")) == sent_before + 2  # refused once, then posted


def test_an_in_doubt_job_is_resolved_from_the_console(rig: ConsoleRig, page: Page) -> None:
    photo = rig.drop_photo(title="Lost answer")
    job = rig.wait_for_job(photo, "x", JobState.AWAITING_APPROVAL)
    sent_before = len(rig.emulator.requests_log("x.tweets.create"))
    # X makes the post but the answer is lost; the timeline read that would tell is refused with a
    # 400, so the daemon cannot settle it and leaves it to a person.
    rig.emulator.drop_connection("x.tweets.create", after_applying=True)
    rig.emulator.respond_with("x.users.tweets", 400,
                              {"errors": [{"message": "The query is not valid for this endpoint."}],
                               "title": "Invalid Request", "detail": "One or more parameters to your request "
                               "was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"})
    open_page(page, rig, "queue")
    click(page, job.id, "approve")
    wait_for_person(rig, job.id)
    open_page(page, rig, "needs-you")
    assert page.locator(f'[data-need="in doubt"][data-job="{job.id}"]').count() == 1
    open_page(page, rig, "queue")
    # What X said, for the person who must look.
    assert "X refused the timeline read" in field(page, job.id, "platform-said").inner_text()
    with page.expect_navigation():
        page.locator(f'button[data-action=resolve][data-job="{job.id}"][name=posted][value=yes]').click()
    rig.wait_for_state(job.id, JobState.DONE, timeout=10)
    # It had gone out once; resolving it as posted says so and sends nothing again.
    assert len([t for t in rig.x_texts() if "Lost answer" in t]) == 1
    assert len(rig.emulator.requests_log("x.tweets.create")) == sent_before + 1


def wait_for_person(rig: ConsoleRig, job_id: int) -> None:
    """The job is in doubt and the daemon has stopped asking X (a person must decide)."""
    def given_up() -> bool:
        job = rig.job(job_id)
        return job.state is JobState.IN_DOUBT and "resolve" in (job.reason or "")

    try:
        wait_until(given_up, timeout=30, interval=0.1)
    except AssertionError:
        raise AssertionError(f"job {job_id} is not left to a person: {rig.job(job_id)}") from None


def test_the_mastodon_sign_in_button_runs_the_oauth_flow_of_auth_login(rig: ConsoleRig, page: Page) -> None:
    """The accounts page's button: the emulator's Mastodon authorize page (the app registered for the
    loopback redirect, PKCE S256), the code back to the listener `auth login` runs, tokens in the keyring."""
    open_page(page, rig, "accounts")
    mastodon = page.locator('[data-account="mastodon"]')
    assert mastodon.locator("[data-field=sign-in]").inner_text().strip() == "sign-in needed"
    visited: list[str] = []
    page.on("request", lambda request: visited.append(request.url) if request.is_navigation_request() else None)
    page.locator('button[data-action="sign-in"][data-target="mastodon"]').click()
    page.wait_for_function("document.body && document.body.innerText.includes('Signed in to crosswatch')")
    [authorize] = [url for url in visited if "/mastodon/oauth/authorize?" in url]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["response_type"] == ["code"] and query["state"][0]
    callback = query["redirect_uri"][0]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", callback), callback
    assert page.url.startswith(callback), "the browser came back to the loopback listener"
    # The emulator gives the token only for the verifier of that challenge (Mastodon checks PKCE).
    [exchange] = [r for r in rig.emulator.requests_log("mastodon.token") if r.status == 200]
    assert exchange.method == "POST"

    def signed_in() -> bool:
        # The tokens are stored before the account is looked up (auth.commands._store_and_identify, so a
        # refresh token is never lost): for a moment the page says "signed in" with no account name yet.
        open_page(page, rig, "accounts")
        return (mastodon.locator("[data-field=sign-in]").inner_text().strip() == "signed in"
                and mastodon.locator("[data-field=account]").inner_text().strip() not in ("", "—"))

    wait_until(signed_in, timeout=15, interval=0.3)
    assert "signed in as" in mastodon.locator("[data-field=sign-in-result]").inner_text()


def test_a_token_revoked_on_the_platform_shows_sign_in_needed(rig: ConsoleRig, page: Page) -> None:
    open_page(page, rig, "accounts")
    for name in ("x", "x_later", "instagram"):
        assert page.locator(f'[data-account="{name}"] [data-field=sign-in]').inner_text().strip() == "signed in"
    rig.revoke_x("x")
    # The daemon finds out when it next uses the token: X answers 401 and the refresh is refused.
    photo = rig.drop_photo(title="After the revocation")
    job = rig.wait_for_job(photo, "x", JobState.AWAITING_APPROVAL)
    open_page(page, rig, "queue")
    click(page, job.id, "approve")
    sign_in_needed = page.locator('[data-account="x"] [data-field=sign-in]')

    def says_so() -> bool:
        open_page(page, rig, "accounts")
        return sign_in_needed.inner_text().strip() == "sign-in needed"

    wait_until(says_so, timeout=30, interval=0.5)
    assert page.locator('[data-account="instagram"] [data-field=sign-in]').inner_text().strip() == "signed in"
    assert page.locator('[data-account="x_later"] [data-field=sign-in]').inner_text().strip() == "signed in"
    open_page(page, rig, "needs-you")
    assert "x" in [t.strip() for t in page.locator('[data-need="sign-in needed"] .target').all_inner_texts()]
    assert needs_you_count(page) >= 1
    assert rig.job(job.id).state is not JobState.DONE
    assert not [t for t in rig.x_texts() if "After the revocation" in t]


def fits(page: Page, width: int) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"{page.url} is {wide}px wide in a {width}px window"


# Holds the platforms set (the runner writes them the same way), for the queue's screenshot.
HELD = {"instagram": ("quota", "Instagram's 100 posts in 24 hours are used up"),
        "threads": ("quota", "Threads' 250 posts in 24 hours are used up"),
        "mastodon": ("rate_limit", "the server asked to slow down (429)"),
        "bluesky": ("rate_limit", "the PDS asked to slow down (429)")}


def hold_targets(rig: ConsoleRig) -> None:
    with Journal(rig.journal_path) as journal:
        for target, (kind, reason) in HELD.items():
            journal.set_hold(target, time.time() + 3 * 3600, kind, reason)


def test_every_page_at_desktop_and_phone_width(rig: ConsoleRig, page: Page, browser: Browser,
                                               tmp_path: Path) -> None:
    """Screenshots of each page at 1280 and 390 px (every image loaded); none wider than the window."""
    folder = screenshot_dir(tmp_path)
    # All five platforms, as in the demo: a real picture posted to the four that need no approval (X's
    # waits for it) ...
    posted = rig.drop_sample("blue-hour-ridge.jpg", "five")
    rig.wait_for_job(posted, "x", JobState.AWAITING_APPROVAL)
    for other in HELD:
        rig.wait_for_job(posted, other, JobState.DONE, timeout=60)
    # ... and one on top of the queue with a card for each, the four held as the platforms hold them.
    hold_targets(rig)
    queued = rig.drop_sample("autumn-canopy.jpg", "five")
    rig.wait_for_job(queued, "x", JobState.AWAITING_APPROVAL)
    held = {other: rig.wait_for_job(queued, other, JobState.READY) for other in HELD}
    open_page(page, rig, "queue")
    for target, job in held.items():
        kind, reason = HELD[target]
        shown = field(page, job.id, "hold").inner_text()
        assert shown.startswith(kind.replace("_", " ") + " hold until ") and shown.endswith(reason), shown
    five = {"x", "instagram", "mastodon", "bluesky", "threads"}
    top = page.locator("section.photo").first
    assert {t.strip() for t in top.locator(".card .target").all_inner_texts()} == five
    open_page(page, rig, "posted")
    assert five <= {t.strip() for t in page.locator("[data-posted-job] .row-head strong").all_inner_texts()}
    open_page(page, rig, "accounts")
    assert five <= {t.strip() for t in page.locator(".account h2 .kind").all_inner_texts()}
    for width in WIDTHS.values():
        page.set_viewport_size({"width": width, "height": 900})
        for name in PAGES:
            open_page(page, rig, name)
            every_image_loaded(page)
            fits(page, width)
            page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        stranger = browser.new_context(viewport={"width": width, "height": 900})
        try:
            signin = stranger.new_page()
            response = signin.goto(f"{rig.base_url}/queue")
            assert response is not None
            # Without the session: the sign-in page and nothing else.
            assert signin.locator("[data-job-card], [data-needs-you-count], img").count() == 0
            fits(signin, width)
            signin.screenshot(path=str(folder / f"signin-{width}.png"), full_page=True)
        finally:
            stranger.close()
    # The README's picture: the queue as the window shows it, not the whole long page.
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 800})
    open_page(page, rig, "queue")
    every_image_loaded(page)
    page.screenshot(path=str(folder / "console.png"))
    assert len(list(folder.glob("*.png"))) >= 2 * (len(PAGES) + 1) + 1
