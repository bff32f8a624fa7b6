"""The Instagram -> X bridge: reading the account, deciding what is new, and posting it on X.

In-process tests mount the emulator on ``httpx.MockTransport``; the last test runs the daemon as a
subprocess against the emulator served on loopback, restarts it, and checks the emulator's record.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crosswatch import compose
from crosswatch.bridge import (
    SKIP_BEFORE,
    SKIP_OWN,
    Bridge,
    IGImage,
    IGPost,
    MediaPage,
    ReadFailure,
    build_media_request,
    first_run,
    parse_media_page,
    skip_reason,
)
from crosswatch.config import Config, config_from_mapping
from crosswatch.emulator import DEFAULT_IG_CLIENT_ID, DEFAULT_X_CLIENT_ID, Emulator, EmulatorServer
from crosswatch.errors import ConfigError
from crosswatch.jobs import JobContexts
from crosswatch.journal import Journal, NewFile
from crosswatch.models import Job, JobState
from crosswatch.platforms.bluesky import limits as bluesky_limits
from crosswatch.platforms.bluesky.richtext import detect_facets
from crosswatch.platforms.mastodon import limits as mastodon_limits
from crosswatch.platforms.registry import build_target
from crosswatch.runner import Runner
from tests.conftest import DaemonProcess, jpeg_bytes, run_cli, wait_until
from tests.test_platforms_e2e import photo, platform_config, sign_in

BASE = "http://emulator.test"
CREDIT = "📷 © 2026 Ada Lovelace"
CAPTION = ("Fog rolling over the harbour at dawn. We waited two hours for it.\n\n"
           f"{CREDIT}\n\n#fog #harbour #dawn #seascape #photography")


class StaticToken:
    def __init__(self, token: str, account_id: str | None = None) -> None:
        self.token = token
        self.account = account_id

    def access_token(self) -> str:
        return self.token

    def force_refresh(self) -> str:
        return self.token

    def account_id(self) -> str | None:
        return self.account

    def username(self) -> str | None:
        return None


def make_config(tmp_path: Path, url: str = BASE, approval: bool | list[str] = False, outbox: bool = False,
                **bridge: Any) -> Config:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    document = {
        "state_dir": str(tmp_path / "state"),
        "watch": [{"path": str(inbox), "targets": ["instagram", "x"]}],
        "targets": {
            "x": {"client_id": DEFAULT_X_CLIENT_ID, "api_base": url, "web_base": f"{url}/_emulator/x"},
            "instagram": {"client_id": DEFAULT_IG_CLIENT_ID, "graph_base": url, "api_base": url},
            **({"outbox": {"path": str(tmp_path / "outbox")}} if outbox else {}),
        },
        "links": {"utm": {"x": {"source": "x", "medium": "social"}}},
        "bridge": {"enabled": True, "poll_seconds": 1, **bridge},
        "approval": approval,
    }
    return config_from_mapping(document, tmp_path / "config.yaml")


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(emulator.handle)) as http:
        yield http


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "state" / "journal.sqlite3") as opened:
        yield opened


MakeBridge = Callable[..., Bridge]


@pytest.fixture
def make_bridge(tmp_path: Path, emulator: Emulator, client: httpx.Client, journal: Journal) -> MakeBridge:
    token = StaticToken(emulator.mint_ig_token()["access_token"])

    def make(**bridge: Any) -> Bridge:
        return Bridge(make_config(tmp_path, **bridge), journal, client, token)

    return make


def phone_post(emulator: Emulator, seed: int, caption: str = "", **kwargs: Any) -> str:
    kwargs.setdefault("image", jpeg_bytes(seed, size=(320, 320)))
    return emulator.post_from_phone(caption=caption or f"Post number {seed}.", **kwargs).id


def bridged_jobs(journal: Journal) -> list[Job]:
    return [job for job in journal.jobs(target="x") if "bridge" in job.data]


# --- reading the account -------------------------------------------------------------------------


def test_the_media_request_asks_for_images_children_and_alt_text() -> None:
    config = make_config_target()
    request = build_media_request(config, "tok", after="abc", limit=7)
    assert request.url.path == "/v25.0/me/media"
    fields = request.url.params["fields"]
    assert "children{id,media_type,media_url,alt_text}" in fields
    assert {"id", "caption", "media_type", "media_url", "permalink", "timestamp"} <= set(fields.split(","))
    assert request.url.params["after"] == "abc" and request.url.params["limit"] == "7"
    assert request.headers["Authorization"] == "Bearer tok"
    assert "tok" not in str(request.url)


def make_config_target() -> Any:
    from crosswatch.config import TargetConfig

    return TargetConfig(name="instagram", kind="instagram", graph_base=BASE + "/v25.0")


def test_a_carousel_page_from_the_emulator_parses_into_images_with_alt_text(emulator: Emulator,
                                                                          client: httpx.Client) -> None:
    images = tuple(jpeg_bytes(seed, size=(320, 320)) for seed in range(3))
    album = emulator.post_from_phone(caption=CAPTION, images=images, alt_texts=("first", None, "third"))
    single = emulator.post_from_phone(caption="One", image=images[0], alt_text="only one")
    token = emulator.mint_ig_token()["access_token"]
    page = parse_media_page(client.send(build_media_request(make_config_target(), token)))
    assert isinstance(page, MediaPage)
    newest, oldest = page.posts
    assert newest.id == single.id and newest.media_type == "IMAGE"
    assert [i.alt_text for i in newest.images] == ["only one"]
    assert oldest.id == album.id and oldest.media_type == "CAROUSEL_ALBUM"
    assert [i.alt_text for i in oldest.images] == ["first", None, "third"]
    assert oldest.caption == CAPTION and oldest.permalink and oldest.permalink.endswith(f"/p/{album.shortcode}/")
    assert oldest.timestamp is not None and abs(oldest.timestamp - time.time()) < 60
    downloaded = [client.get(i.url).content for i in oldest.images]
    assert downloaded == list(images)


def test_the_admin_api_posts_carousels_and_deletes_posts(emulator: Emulator, client: httpx.Client) -> None:
    encoded = [base64.b64encode(jpeg_bytes(seed, size=(320, 320))).decode() for seed in range(2)]
    made = client.post(f"{BASE}/_emulator/instagram/posts",
                       json={"caption": "Two", "images_base64": encoded, "alt_texts": ["one", "two"]})
    assert made.status_code == 201
    media_id = made.json()["id"]
    (album,) = emulator.ig_posts()
    assert album.media_type == "CAROUSEL_ALBUM" and [c.alt_text for c in album.children] == ["one", "two"]
    assert client.post(f"{BASE}/_emulator/instagram/posts", json={"images_base64": ["bm90IGEganBlZw=="]}
                       ).status_code == 400
    assert client.delete(f"{BASE}/_emulator/instagram/posts/{media_id}").json() == {"deleted": True}
    assert client.delete(f"{BASE}/_emulator/instagram/posts/{media_id}").status_code == 404
    assert emulator.ig_posts() == []
    assert client.delete(f"{BASE}/_emulator/x/posts/1860000000000000001").status_code == 404


def test_paging_follows_the_next_link_only(emulator: Emulator, client: httpx.Client) -> None:
    for seed in range(3):
        phone_post(emulator, seed)
    token = emulator.mint_ig_token()["access_token"]
    first = parse_media_page(client.send(build_media_request(make_config_target(), token, limit=2)))
    assert isinstance(first, MediaPage) and len(first.posts) == 2 and first.after
    second = parse_media_page(client.send(build_media_request(make_config_target(), token, after=first.after,
                                                              limit=2)))
    assert isinstance(second, MediaPage) and len(second.posts) == 1 and second.after is None


def test_errors_and_garbage_are_failures_not_exceptions() -> None:
    refused = httpx.Response(400, json={"error": {"code": 190, "error_subcode": 463, "message": "expired"}})
    failure = parse_media_page(refused)
    assert isinstance(failure, ReadFailure) and failure.auth
    for response in (httpx.Response(200, content=b"<html>"), httpx.Response(200, json=[1]),
                     httpx.Response(200, json={"data": [{"no": "id"}, 5, {"id": 7, "media_type": "IMAGE"}]})):
        page = parse_media_page(response)
        assert isinstance(page, MediaPage | ReadFailure)


# --- deciding ------------------------------------------------------------------------------------


def post(post_id: str, media_type: str = "IMAGE", timestamp: float = 100.0, images: int = 1) -> IGPost:
    return IGPost(post_id, media_type, "", None, timestamp,
                  tuple(IGImage(f"{post_id}-{i}", f"https://cdn/{i}", None) for i in range(images)))


def test_what_is_never_bridged() -> None:
    assert skip_reason(post("1"), {"1"}) == SKIP_OWN
    assert "VIDEO" in (skip_reason(post("2", "VIDEO", images=0), set()) or "")
    assert skip_reason(post("3", "CAROUSEL_ALBUM", images=0), set()) == "no photo in it"
    assert skip_reason(post("4", "CAROUSEL_ALBUM", images=3), set()) is None


def test_first_run_takes_the_newest_n_photos_oldest_first_and_leaves_the_rest() -> None:
    posts = [post("5", timestamp=50), post("4", "VIDEO", 40, 0), post("3", timestamp=30), post("2", timestamp=20),
             post("1", timestamp=10)]
    start = first_run(posts, 2, own={"3"})
    assert [p.id for p in start.bridge] == ["2", "5"]
    assert start.skipped == {"4": skip_reason(posts[1], set()), "3": SKIP_OWN, "1": SKIP_BEFORE}
    assert start.baseline == 50
    assert first_run([], 3, set()).baseline == 0.0


# --- the bridge against the emulator ---------------------------------------------------------------


def test_it_starts_from_now_then_bridges_each_new_post_once_across_restarts(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, journal: Journal, make_bridge: MakeBridge) -> None:
    old = [phone_post(emulator, seed) for seed in range(3)]
    bridge = make_bridge()
    assert bridge.poll() == 0
    assert journal.bridge_baseline("instagram") is not None
    assert journal.bridge_seen("instagram", old) == set(old)
    new = phone_post(emulator, 10, CAPTION, alt_text="Fog over boats")
    assert bridge.poll() == 1
    assert bridge.poll() == 0
    with Journal(tmp_path / "state" / "journal.sqlite3") as reopened:  # a restart: a new connection
        again = Bridge(make_config(tmp_path), reopened, client, StaticToken(emulator.mint_ig_token()["access_token"]))
        assert again.poll() == 0
    (job,) = bridged_jobs(journal)
    data = job.data["bridge"]
    assert data["media_id"] == new and data["caption"] == CAPTION and data["alt_texts"] == ["Fog over boats"]
    assert data["permalink"].endswith("/")
    photo_row = journal.photo(job.photo_id)
    assert photo_row is not None and photo_row.hash == f"ig:{new}"
    assert Path(photo_row.path).read_bytes() == emulator.ig_posts()[-1].image
    assert job.state is JobState.READY


def test_backfill_takes_the_last_n_across_pages(emulator: Emulator, journal: Journal, make_bridge: MakeBridge,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crosswatch.bridge.PAGE_SIZE", 2)
    ids = [phone_post(emulator, seed) for seed in range(6)]
    bridge = make_bridge(backfill=3)
    assert bridge.poll() == 3
    assert [j.data["bridge"]["media_id"] for j in bridged_jobs(journal)] == ids[3:]
    # Older posts, even those never read, stay alone; a new one still goes.
    assert bridge.poll() == 0
    newest = phone_post(emulator, 7)
    assert bridge.poll() == 1
    assert [j.data["bridge"]["media_id"] for j in bridged_jobs(journal)] == [*ids[3:], newest]


def test_a_carousel_is_bridged_with_its_first_images_up_to_max_images(emulator: Emulator, journal: Journal,
                                                                      make_bridge: MakeBridge) -> None:
    bridge = make_bridge(max_images=2)
    bridge.poll()
    images = tuple(jpeg_bytes(seed, size=(320, 320)) for seed in range(3))
    emulator.post_from_phone(caption=CAPTION, images=images, alt_texts=("a", "b", "c"))
    assert bridge.poll() == 1
    (job,) = bridged_jobs(journal)
    assert job.data["bridge"]["alt_texts"] == ["a", "b"]
    assert [Path(p).read_bytes() for p in job.data["bridge"]["images"]] == list(images[:2])


def test_crosswatchs_own_instagram_posts_are_never_bridged(emulator: Emulator, journal: Journal,
                                                          make_bridge: MakeBridge) -> None:
    bridge = make_bridge()
    bridge.poll()
    own = phone_post(emulator, 20)  # stands for the post the folder flow's job published
    journal.add_files([NewFile("/photos/a.jpg", 1, 1, "hash-a", ("instagram",))])
    (ig_job,) = journal.jobs(target="instagram")
    journal.transition(ig_job.id, JobState.IN_FLIGHT, step="publish", step_index=3, intent=True)
    # While our own post is being published, its id may not be journaled yet: nothing is decided.
    assert bridge.poll() == 0
    assert journal.bridge_seen("instagram", [own]) == set()
    journal.transition(ig_job.id, JobState.DONE, remote_id=own, intent=False)
    assert bridge.poll() == 0
    assert journal.bridge_seen("instagram", [own]) == {own}
    assert bridged_jobs(journal) == []
    theirs = phone_post(emulator, 21)
    assert bridge.poll() == 1
    assert [j.data["bridge"]["media_id"] for j in bridged_jobs(journal)] == [theirs]


def test_only_a_sent_publish_or_an_in_doubt_job_holds_the_bridge(emulator: Emulator, journal: Journal,
                                                                  make_bridge: MakeBridge) -> None:
    bridge = make_bridge()
    bridge.poll()
    journal.add_files([NewFile("/photos/b.jpg", 1, 1, "hash-b", ("instagram",))])
    (ig_job,) = journal.jobs(target="instagram")
    journal.transition(ig_job.id, JobState.IN_FLIGHT, step="create_container", step_index=1)
    phone_post(emulator, 40)
    assert bridge.poll() == 1  # a container being made is not a post yet
    journal.transition(ig_job.id, JobState.IN_DOUBT, reason="no answer to publish")
    phone_post(emulator, 41)
    assert bridge.poll() == 0
    assert journal.publishing("instagram") == [ig_job.id]


def test_with_approval_a_bridged_post_waits_and_queue_shows_its_x_caption(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, journal: Journal) -> None:
    config = make_config(tmp_path, approval=True)
    bridge = Bridge(config, journal, client, StaticToken(emulator.mint_ig_token()["access_token"]))
    bridge.poll()
    media = emulator.post_from_phone(caption=CAPTION, image=jpeg_bytes(60, size=(320, 320)))
    assert bridge.poll() == 1
    (job,) = bridged_jobs(journal)
    assert job.state is JobState.AWAITING_APPROVAL
    photo_row = journal.photo(job.photo_id)
    assert photo_row is not None
    caption = JobContexts(config, journal).caption(job, photo_row)  # what `crosswatch queue` prints
    assert caption.text.startswith("Fog rolling over the harbour at dawn.") and CREDIT in caption.text
    assert f"/_emulator/p/{media.shortcode}/?utm_source=x&utm_medium=social" in caption.text


def test_a_failed_download_is_tried_again_at_the_next_poll(tmp_path: Path, emulator: Emulator,
                                                            journal: Journal) -> None:
    failures = {"left": 1}

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/_emulator/media/") and failures["left"]:
            failures["left"] -= 1
            return httpx.Response(503)
        return emulator.handle(request)

    with httpx.Client(transport=httpx.MockTransport(flaky)) as http:
        bridge = Bridge(make_config(tmp_path), journal, http, StaticToken(emulator.mint_ig_token()["access_token"]))
        bridge.poll()
        media_id = phone_post(emulator, 30)
        assert bridge.poll() == 0
        assert journal.bridge_seen("instagram", [media_id]) == set()
        assert bridge.poll() == 1


def test_a_bridged_carousel_goes_out_on_x_with_its_images_alt_texts_permalink_and_credit(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, journal: Journal, make_bridge: MakeBridge) -> None:
    bridge = make_bridge()
    bridge.poll()
    images = tuple(jpeg_bytes(seed, size=(480, 360)) for seed in range(3))
    album = emulator.post_from_phone(caption=CAPTION, images=images, alt_texts=("Boats", None, "Gulls"))
    assert bridge.poll() == 1
    config = make_config(tmp_path)
    x_token = StaticToken(emulator.mint_x_token()["access_token"])
    runner = Runner(config, journal, {"x": build_target(config.targets["x"])}, client=client, tokens={"x": x_token})
    for _ in range(20):
        runner.run_due()
        if journal.jobs(state=JobState.DONE):
            break
        time.sleep(0.02)
    (job,) = journal.jobs(target="x")
    assert job.state is JobState.DONE, job.reason
    (x_post,) = emulator.x_posts()
    assert len(x_post.media_ids) == 3
    assert [emulator.x_alt_text(m) for m in x_post.media_ids] == ["Boats", None, "Gulls"]
    permalink = album_permalink(emulator, album.shortcode)
    assert f"{permalink}?utm_source=x&utm_medium=social" in x_post.text
    assert CREDIT in x_post.text
    assert x_post.text.startswith("Fog rolling over the harbour at dawn.")
    assert "We waited" not in x_post.text  # only the first sentence
    assert compose.weighted_length(x_post.text) <= 280
    assert job.permalink and job.remote_id == x_post.id
    assert not (tmp_path / "state" / "bridge" / album.id).exists(), "downloads are removed once posted"


def test_a_failed_upload_mid_carousel_resumes_without_uploading_the_first_images_again(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, journal: Journal, make_bridge: MakeBridge) -> None:
    bridge = make_bridge()
    bridge.poll()
    emulator.post_from_phone(caption=CAPTION, images=tuple(jpeg_bytes(s, size=(320, 320)) for s in range(3)))
    assert bridge.poll() == 1

    def fail_the_second_upload(request: httpx.Request, response: httpx.Response | None, endpoint: str) -> None:
        if endpoint == "x.media.upload" and len(emulator.requests_log("x.media.upload")) == 1:
            emulator.respond_with("x.media.upload", 503)

    emulator.add_observer(fail_the_second_upload)
    now = [time.time()]
    config = make_config(tmp_path)
    runner = Runner(config, journal, {"x": build_target(config.targets["x"])}, client=client,
                    tokens={"x": StaticToken(emulator.mint_x_token()["access_token"])}, clock=lambda: now[0])
    for _ in range(20):
        runner.run_due()
        now[0] += 30.0  # past any backoff
        if journal.jobs(state=JobState.DONE):
            break
    (x_post,) = emulator.x_posts()
    assert len(x_post.media_ids) == 3
    assert [r.status for r in emulator.requests_log("x.media.upload")] == [200, 503, 200, 200]


def test_one_post_is_one_job_per_target_once_across_restarts_each_fitted_to_its_platform(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, journal: Journal) -> None:
    config = make_config(tmp_path, outbox=True, targets=["x", "outbox"], approval=["outbox"])
    ig_token = StaticToken(emulator.mint_ig_token()["access_token"])
    Bridge(config, journal, client, ig_token).poll()
    album = emulator.post_from_phone(caption=CAPTION, images=tuple(jpeg_bytes(s, size=(480, 360)) for s in range(3)),
                                     alt_texts=("Boats", None, "Gulls"))
    assert Bridge(config, journal, client, ig_token).poll() == 1
    assert Bridge(config, journal, client, ig_token).poll() == 0  # a restart: same journal, a new bridge
    jobs = {job.target: job for job in journal.jobs() if "bridge" in job.data}
    assert sorted(jobs) == ["outbox", "x"] and len({job.photo_id for job in jobs.values()}) == 1
    assert jobs["x"].state is JobState.READY and jobs["outbox"].state is JobState.AWAITING_APPROVAL
    assert journal.bridge_counts("instagram") == {"bridged": 1}

    targets = {name: build_target(config.targets[name]) for name in ("x", "outbox")}
    runner = Runner(config, journal, targets, client=client,
                    tokens={"x": StaticToken(emulator.mint_x_token()["access_token"])})

    def run_until_done(count: int) -> None:
        for _ in range(40):
            runner.run_due()
            if len([j for j in journal.jobs(state=JobState.DONE) if "bridge" in j.data]) == count:
                return
            time.sleep(0.02)
        raise AssertionError([(j.target, j.state, j.reason) for j in journal.jobs()])

    run_until_done(1)
    downloads = tmp_path / "state" / "bridge" / album.id
    assert downloads.is_dir(), "kept while the outbox's re-share is still to go out"
    journal.transition(jobs["outbox"].id, JobState.READY, next_attempt_at=time.time(), detail="approved")
    run_until_done(2)
    assert not downloads.exists(), "removed once every target's post is out"

    (x_post,) = emulator.x_posts()
    assert len(x_post.media_ids) == 3 and compose.weighted_length(x_post.text) <= 280
    assert x_post.text.startswith("Fog rolling over the harbour at dawn.") and CREDIT in x_post.text
    assert "#seascape" not in x_post.text  # hashtags.max.x: 3
    (written,) = (tmp_path / "outbox").glob("*.txt")
    outbox_text = written.read_text()
    permalink = album_permalink(emulator, album.shortcode)
    assert outbox_text.startswith("Fog rolling over the harbour at dawn.") and CREDIT in outbox_text
    assert f"{permalink} " in outbox_text.replace("\n", " ")  # the outbox has no links.utm: the plain permalink
    assert "#seascape" in outbox_text and "Length:" in outbox_text and "of 2200" in outbox_text
    # The outbox writes the carousel whole: its three images in order, each one's alt text named.
    images = sorted(p.name for p in (tmp_path / "outbox").glob("*.jpg"))
    assert [name.rsplit("-", 1)[1] for name in images] == ["01.jpg", "02.jpg", "03.jpg"]
    assert f"{images[0]}: Boats" in outbox_text


def test_bridge_target_the_old_spelling_still_works_and_targets_are_checked(tmp_path: Path) -> None:
    assert make_config(tmp_path, target="x").bridge.targets == ("x",)
    assert make_config(tmp_path, outbox=True, targets="outbox").bridge.targets == ("outbox",)
    for bridge, words in ((dict(target="x", targets=["x"]), "bridge.target: is the old spelling of bridge.targets"),
                          (dict(targets=[]), "bridge.targets: is empty"),
                          (dict(targets=["x", "mastodon"]), "bridge.targets.1: names target 'mastodon', which is not"),
                          (dict(targets=["x", "x"]), "bridge.targets.1: names 'x' twice"),
                          (dict(target="instagram"), "bridge.target: names 'instagram', the bridge's own source"),
                          (dict(target=["x"]), "bridge.target: must be text")):
        with pytest.raises(ConfigError) as refused:
            make_config(tmp_path, **bridge)
        assert words in str(refused.value), str(refused.value)


def album_permalink(emulator: Emulator, shortcode: str) -> str:
    return f"{BASE}/_emulator/p/{shortcode}/"


def test_link_none_leaves_the_permalink_out(tmp_path: Path) -> None:
    config = make_config(tmp_path, link="none")
    caption = compose.condense(config, "x", CAPTION, link=None)
    assert "http" not in caption.text and CREDIT in caption.text


# --- condensing captions -------------------------------------------------------------------------


def test_condensed_caption_keeps_the_credit_caps_hashtags_and_fits_with_the_link(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    link = "https://www.instagram.com/p/" + "A" * 200 + "/"
    long_lead = "A very long first line about the morning " * 20
    caption = compose.condense(config, "x", f"{long_lead}\n{CREDIT}\n#one #two #three #four #five", link=link)
    assert compose.weighted_length(caption.text) <= 280
    assert CREDIT in caption.text and link in caption.text
    short = compose.condense(config, "x", CAPTION, link=link)
    assert short.hashtags == ("#fog", "#harbour", "#dawn")  # hashtags.max.x defaults to 3
    assert "#seascape" not in short.text


# How twitter-text finds an @mention (its valid_mention_preceding_chars and at_signs).
X_MENTION = re.compile(r"(?<![A-Za-z0-9_!#$%&*@＠])[@＠][A-Za-z0-9_]")
LINE = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=120)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(LINE, st.sampled_from(["#tag", "#Fog #sea", "@ada.l", "😀" * 90, "Wait. What?"])),
                      max_size=8),
       credit=st.sampled_from(["", CREDIT, "Photo by Ada", "Credit: @jane_doe", "📷é@ada ＠bob"]),
       link=st.sampled_from([None, "https://www.instagram.com/p/C" + "x" * 120 + "/?utm_source=x"]))
def test_any_instagram_caption_condenses_to_a_valid_x_post(tmp_path: Path, lines: list[str], credit: str,
                                                         link: str | None) -> None:
    config = make_config(tmp_path)
    caption = compose.condense(config, "x", "\n".join([*lines, credit]), link=link)
    assert caption.length == compose.weighted_length(caption.text) <= 280
    assert not X_MENTION.search(caption.text), "nobody on X is mentioned"
    if link:
        assert link in caption.text
    if credit and not any(compose._CREDIT_LINE.search(line) for line in lines):
        shown = compose._instagram_handles_unlinked(credit)
        assert shown in caption.text


def test_the_lead_is_the_first_line_with_words(tmp_path: Path) -> None:
    caption = compose.condense(make_config(tmp_path), "x", "🌅\n.\nSunrise at the lake. Cold!\n#lake")
    assert caption.text == "Sunrise at the lake. #lake"


def test_instagram_handles_do_not_mention_anyone_on_x(tmp_path: Path) -> None:
    caption = compose.condense(make_config(tmp_path), "x", "Portrait of @jane.doe.\n📷 by @ada_l")
    assert caption.text == "Portrait of jane.doe (Instagram). 📷 by ada_l (Instagram)"


# --- end to end: the daemon as a subprocess ----------------------------------------------------------


def test_daemon_bridges_phone_posts_once_with_permalink_and_credit_but_not_its_own_posts(
        workspace: dict[str, Path], start_daemon: Callable[..., DaemonProcess], hosted: Path,
        served: tuple[Emulator, EmulatorServer]) -> None:
    emulator, server = served
    config = platform_config(workspace, server.url, hosted, bridge={"enabled": True, "poll_seconds": 0.3},
                             links={"utm": {"x": {"source": "crosswatch"}}})
    sign_in(config, emulator)
    before = phone_post(emulator, 1, "Posted before the bridge was switched on.")
    daemon = start_daemon(config)
    daemon.wait_for_log("bridge started")
    album = emulator.post_from_phone(caption=CAPTION, images=(photo(2), photo(3)), alt_texts=("Boats", "Gulls"))
    single = emulator.post_from_phone(caption="Night market.\n\nCredit: Ada Lovelace\n#night", image=photo(4))
    (workspace["inbox"] / "folder.jpg").write_bytes(photo(5))  # goes to X and Instagram by the folder flow
    wait_until(lambda: len(emulator.x_posts()) == 3 and len(emulator.ig_posts()) == 4, timeout=60)
    polls = len(emulator.requests_log("ig.media.list"))
    wait_until(lambda: len(emulator.requests_log("ig.media.list")) >= polls + 3, timeout=20)
    assert daemon.stop() == 0
    restarted = start_daemon(config)
    restarted.wait_for_log("watching")
    polls = len(emulator.requests_log("ig.media.list"))
    wait_until(lambda: len(emulator.requests_log("ig.media.list")) >= polls + 3, timeout=20)
    assert restarted.stop() == 0

    x_posts = emulator.x_posts()
    assert len(x_posts) == 3, [p.text for p in x_posts]
    by_text = {p.text.split(" ")[0]: p for p in x_posts}
    album_post, single_post = by_text["Fog"], by_text["Night"]
    album_link = f"{server.url}/_emulator/p/{album.shortcode}/?utm_source=crosswatch"
    assert album_link in album_post.text and CREDIT in album_post.text
    assert [emulator.x_alt_text(m) for m in album_post.media_ids] == ["Boats", "Gulls"]
    assert f"/_emulator/p/{single.shortcode}/" in single_post.text and "Credit: Ada Lovelace" in single_post.text
    folder_post = next(p for p in x_posts if p not in (album_post, single_post))
    assert "/_emulator/p/" not in folder_post.text  # the folder flow's own X post, not a bridged copy
    assert not any(before in p.text for p in x_posts)
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        (own,) = [j for j in journal.jobs(target="instagram") if j.state is JobState.DONE]
        assert journal.bridge_seen("instagram", [own.remote_id or "", before]) == {own.remote_id, before}


def test_run_once_bridges_the_backfill_and_posts_it(workspace: dict[str, Path], hosted: Path,
                                                    served: tuple[Emulator, EmulatorServer]) -> None:
    emulator, server = served
    config = platform_config(workspace, server.url, hosted, bridge={"enabled": True, "backfill": 1})
    sign_in(config, emulator)
    phone_post(emulator, 50, "Older post.")
    newest = emulator.post_from_phone(caption=CAPTION, image=photo(51))
    result = run_cli("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    (x_post,) = emulator.x_posts()
    assert f"/_emulator/p/{newest.shortcode}/" in x_post.text and CREDIT in x_post.text
    assert run_cli("run", "--once", config=config).returncode == 0
    assert len(emulator.x_posts()) == 1
    doctor = run_cli("doctor", config=config)
    assert "ok    bridge instagram -> x: re-shared 1, left alone 1" in doctor.stdout, doctor.stdout


def test_run_once_bridges_to_x_and_the_outbox_once_each(workspace: dict[str, Path], hosted: Path,
                                                        served: tuple[Emulator, EmulatorServer]) -> None:
    emulator, server = served
    config = platform_config(workspace, server.url, hosted,
                             bridge={"enabled": True, "backfill": 1, "targets": ["x", "outbox"]})
    document = yaml.safe_load(config.read_text())
    document["targets"]["outbox"] = {"path": str(workspace["outbox"])}
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    sign_in(config, emulator)
    newest = emulator.post_from_phone(caption=CAPTION, image=photo(52))
    for _ in range(2):  # the second run finds nothing new to bridge
        result = run_cli("run", "--once", config=config)
        assert result.returncode == 0, result.stderr
    (x_post,) = emulator.x_posts()
    (written,) = workspace["outbox"].glob("*.txt")
    for text in (x_post.text, written.read_text()):
        assert f"/_emulator/p/{newest.shortcode}/" in text and CREDIT in text
    assert "#seascape" in written.read_text() and "#seascape" not in x_post.text
    doctor = run_cli("doctor", config=config)
    assert "ok    bridge instagram -> x, outbox: re-shared 1, left alone 0" in doctor.stdout, doctor.stdout


# --- condensing for Mastodon and Bluesky: each target's own limits ----------------------------------


def fediverse_config(tmp_path: Path) -> Config:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return config_from_mapping({
        "state_dir": str(tmp_path / "state"),
        "watch": [{"path": str(inbox), "targets": ["instagram", "mastodon", "bluesky"]}],
        "targets": {"instagram": {"client_id": DEFAULT_IG_CLIENT_ID, "graph_base": BASE, "api_base": BASE},
                    "mastodon": {"instance": "https://photos.example"}, "bluesky": {"handle": "ada.bsky.social"}},
        "bridge": {"enabled": True, "targets": ["mastodon", "bluesky"]},
    }, tmp_path / "config.yaml")


LONG_LINK = "https://www.instagram.com/p/C" + "x" * 150 + "/?utm_source=mastodon"
LONG_CAPTION = ("Morning light over the long harbour wall " * 12).strip() + f".\n{CREDIT}\n#fog #harbour"


def words_of(text: str) -> set[str]:
    return set(text.split())


def test_a_condensed_caption_fits_the_mastodon_servers_own_characters_and_url_weight(tmp_path: Path) -> None:
    config = fediverse_config(tmp_path)
    small = mastodon_limits.learned({"max_characters": 200, "characters_reserved_per_url": 23})
    caption = compose.condense(config, "mastodon", LONG_CAPTION, link=LONG_LINK, limits=small)
    assert caption.limit == 200 and caption.length == mastodon_limits.status_length(caption.text, 23) <= 200
    assert len(caption.text) > 200, "the link counts 23, not its length"
    assert LONG_LINK in caption.text and CREDIT in caption.text
    assert {w.rstrip("…") for w in words_of(caption.text)} <= words_of(LONG_CAPTION) | {LONG_LINK, ""}
    roomy = compose.condense(config, "mastodon", LONG_CAPTION, link=LONG_LINK)  # stock 500
    assert roomy.limit == 500 and len(roomy.text) > len(caption.text)


WORD = st.sampled_from(["harbour", "fog", "Morning", "light.", "東京", "😀", "👩‍👩‍👧‍👦", "wall!", "#fog", "#東京",
                        "naïve", "Ωmega"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.lists(WORD, min_size=1, max_size=80).map(" ".join), min_size=1, max_size=4),
       link=st.sampled_from([None, LONG_LINK]))
def test_any_caption_condenses_to_a_bluesky_post_within_300_graphemes_with_whole_words_and_facets(
        tmp_path: Path, lines: list[str], link: str | None) -> None:
    caption = compose.condense(fediverse_config(tmp_path), "bluesky", "\n".join([*lines, CREDIT]), link=link)
    assert bluesky_limits.fits(caption.text) and caption.limit == 300
    source = words_of("\n".join([*lines, CREDIT])) | ({link} if link else set()) | {""}
    assert {w.rstrip("…") for w in words_of(caption.text)} <= source, "a word was cut"
    data = caption.text.encode("utf-8")
    facets = detect_facets(caption.text)
    for facet in facets:
        covered = data[facet["index"]["byteStart"]:facet["index"]["byteEnd"]].decode()
        feature = facet["features"][0]
        assert covered == feature.get("uri", "#" + str(feature.get("tag"))), (covered, feature)
    if link:
        assert link in caption.text
        assert [f["features"][0]["uri"] for f in facets if "uri" in f["features"][0]] == [link]
