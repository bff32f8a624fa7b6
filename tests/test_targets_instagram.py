"""The Instagram target's steps against hand-written Graph responses (api-notes B2-B5)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch.config import TargetConfig
from crosswatch.emulator import DEFAULT_IG_USER_ID, Emulator, EmulatorServer, EmulatorSettings, ManualClock, sample_jpeg
from crosswatch.hosting import DirectoryHost
from crosswatch.models import Caption, PreparedImage
from crosswatch.platforms.base import HttpStep, JobContext, Kind, LocalStep, Outcome, Reconciler, Verdict
from crosswatch.platforms.instagram.steps import (
    InstagramTarget,
    build_container_status_request,
    build_publishing_limit_request,
    parse_container_status,
    parse_publishing_limit,
    poll_wait,
)
from tests.target_helpers import drive

CONFIG = TargetConfig(name="instagram", kind="instagram", graph_base="https://graph.ig.test/v25.0")
JPEG = b"\xff\xd8\xff\xe0fake\xff\xd9"


class RecordingHost:
    """A media host that records calls; ``fail`` makes put or delete raise."""

    def __init__(self, fail: str | None = None) -> None:
        self.puts: list[tuple[Path, str]] = []
        self.deletes: list[str] = []
        self.fail = fail

    def put(self, path: Path, key: str) -> str:
        if self.fail == "put":
            raise OSError("disk full")
        self.puts.append((path, key))
        return f"https://cdn.example/{key}"

    def delete(self, key: str) -> None:
        if self.fail == "delete":
            raise OSError("permission denied")
        self.deletes.append(key)


def make_ctx(tmp_path: Path, data: dict[str, Any] | None = None,
             alt_text: str | None = "A heron") -> JobContext:
    image = tmp_path / "ig.jpg"
    image.write_bytes(JPEG)
    caption = Caption(text="Heron\n\n#birds", length=13, limit=2200, alt_text=alt_text, hashtags=("#birds",),
                      shortened=())
    prepared = PreparedImage(path=str(image), width=1080, height=1350, bytes=len(JPEG), format="JPEG",
                             quality=90, fit=None)
    return JobContext(job_id=3, target="instagram", photo_hash="cd" * 32, photo_path=image, caption=caption,
                      image=prepared, data=data or {}, access_token="ig-tok", account_id="17841400000000000")


def target(host: RecordingHost | None = None, max_polls: int = 12) -> InstagramTarget:
    return InstagramTarget(CONFIG, host or RecordingHost(), max_polls=max_polls)


def http_step(index: int, t: InstagramTarget | None = None) -> HttpStep:
    step = (t or target()).steps()[index]
    assert isinstance(step, HttpStep)
    return step


def local_step(index: int, t: InstagramTarget) -> LocalStep:
    step = t.steps()[index]
    assert isinstance(step, LocalStep) and not isinstance(step, HttpStep)
    return step


def graph_error(code: int, subcode: int | None = None, message: str = "An error occurred",
                user_msg: str | None = None, status: int = 400, headers: dict[str, str] | None = None,
                **extra: Any) -> httpx.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Ab1"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_msg:
        error["error_user_title"] = "Problem"
        error["error_user_msg"] = user_msg
    error.update(extra)
    return httpx.Response(status, json={"error": error}, headers=headers)


def test_steps_in_order_and_only_publish_is_unsafe() -> None:
    names = [(s.name, s.safe_to_repeat) for s in target().steps()]
    assert names == [("host_image", True), ("create_container", True), ("wait_for_container", True),
                     ("publish", False), ("read_permalink", True), ("unhost_image", True)]


def test_host_image_puts_the_prepared_file_under_a_stable_key(tmp_path: Path) -> None:
    host = RecordingHost()
    t = target(host)
    ctx = make_ctx(tmp_path)
    first = local_step(0, t).run(ctx)
    second = local_step(0, t).run(ctx)
    assert first.kind is Kind.NEXT
    assert first.data == second.data  # repeating overwrites the same object
    key = first.data["hosted_key"]
    assert ctx.image is not None
    assert host.puts == [(Path(ctx.image.path), key)] * 2
    assert first.data["image_url"] == f"https://cdn.example/{key}"
    assert key == "cd" * 12 + "-3.jpg"  # photo hash and job id: never clashes with another job


def test_host_failure_is_a_retry_not_an_exception(tmp_path: Path) -> None:
    outcome = local_step(0, target(RecordingHost(fail="put"))).run(make_ctx(tmp_path))
    assert outcome.kind is Kind.RETRY
    assert "disk full" in (outcome.reason or "")


def test_create_container_request(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, {"image_url": "https://cdn.example/k.jpg"})
    request = http_step(1).build(ctx)
    assert request.method == "POST"
    assert str(request.url) == "https://graph.ig.test/v25.0/17841400000000000/media"
    assert request.headers["Authorization"] == "Bearer ig-tok"
    assert "ig-tok" not in str(request.url)
    form = httpx.QueryParams(request.read().decode())
    assert dict(form) == {"image_url": "https://cdn.example/k.jpg", "caption": "Heron\n\n#birds",
                          "alt_text": "A heron"}


def test_create_container_without_alt_text_or_account_uses_me(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, {"image_url": "u"}, alt_text=None)
    ctx = JobContext(**{**ctx.__dict__, "account_id": None})
    request = http_step(1).build(ctx)
    assert request.url.path == "/v25.0/me/media"
    assert "alt_text" not in httpx.QueryParams(request.read().decode())


def test_create_container_parses_the_id(tmp_path: Path) -> None:
    outcome = http_step(1).parse(make_ctx(tmp_path), httpx.Response(200, json={"id": "17889455560051444"}))
    assert outcome == Outcome.next(container_id="17889455560051444", poll_count=0)


def test_wait_polls_with_growing_backoff_until_finished(tmp_path: Path) -> None:
    wait = http_step(2)
    data: dict[str, Any] = {"container_id": "c1", "poll_count": 0, "image_url": "u"}
    request = wait.build(make_ctx(tmp_path, data))
    assert request.method == "GET"
    assert request.url.path == "/v25.0/c1"
    assert request.url.params["fields"] == "status_code,status"
    waits = []
    for _ in range(7):
        outcome = wait.parse(make_ctx(tmp_path, data), httpx.Response(200, json={"status_code": "IN_PROGRESS",
                                                                                   "id": "c1"}))
        assert outcome.kind is Kind.AGAIN
        waits.append(outcome.retry_after)
        data.update(outcome.data)
    assert waits == [2, 4, 8, 16, 32, 60, 60]
    assert data["poll_count"] == 7
    finished = httpx.Response(200, json={"status_code": "FINISHED", "id": "c1"})
    done = wait.parse(make_ctx(tmp_path, data), finished)
    assert done.kind is Kind.NEXT


def test_wait_gives_up_after_max_polls(tmp_path: Path) -> None:
    wait = http_step(2, target(max_polls=3))
    outcome = wait.parse(make_ctx(tmp_path, {"container_id": "c1", "poll_count": 2}),
                         httpx.Response(200, json={"status_code": "IN_PROGRESS"}))
    assert outcome.kind is Kind.FAILED
    assert "IN_PROGRESS" in (outcome.reason or "")


def test_container_error_fails_with_the_status_text(tmp_path: Path) -> None:
    response = httpx.Response(200, json={"status_code": "ERROR",
                                         "status": "Error: 2207052 media fetch failed"})
    outcome = http_step(2).parse(make_ctx(tmp_path, {"container_id": "c1"}), response)
    assert outcome.kind is Kind.FAILED
    assert "2207052" in (outcome.reason or "")


def test_expired_container_is_recreated_once(tmp_path: Path) -> None:
    wait = http_step(2)
    data: dict[str, Any] = {"container_id": "c1", "poll_count": 4, "image_url": "https://cdn.example/k.jpg"}
    expired = wait.parse(make_ctx(tmp_path, data), httpx.Response(200, json={"status_code": "EXPIRED"}))
    assert expired.kind is Kind.AGAIN
    data.update(expired.data)
    assert data["container_id"] is None and data["poll_count"] == 0
    # The next round of the same step creates a new container with the same fields.
    request = wait.build(make_ctx(tmp_path, data))
    assert request.method == "POST" and request.url.path.endswith("/media")
    assert httpx.QueryParams(request.read().decode())["image_url"] == "https://cdn.example/k.jpg"
    created = wait.parse(make_ctx(tmp_path, data), httpx.Response(200, json={"id": "c2"}))
    assert created.kind is Kind.AGAIN and created.data["container_id"] == "c2"
    data.update(created.data)
    again = wait.parse(make_ctx(tmp_path, data), httpx.Response(200, json={"status_code": "EXPIRED"}))
    assert again.kind is Kind.FAILED


def test_publish_request_and_result(tmp_path: Path) -> None:
    publish = http_step(3)
    ctx = make_ctx(tmp_path, {"container_id": "c9"})
    request = publish.build(ctx)
    assert request.url.path == "/v25.0/17841400000000000/media_publish"
    assert dict(httpx.QueryParams(request.read().decode())) == {"creation_id": "c9"}
    assert publish.parse(ctx, httpx.Response(200, json={"id": "m1"})) == Outcome.next(media_id="m1")


def test_publish_transient_failure_is_unknown_so_the_runner_checks_the_container(tmp_path: Path) -> None:
    publish = http_step(3)
    ctx = make_ctx(tmp_path, {"container_id": "c9"})
    assert publish.parse(ctx, graph_error(-1, 2207001, status=500)).kind is Kind.UNKNOWN
    assert publish.parse(ctx, httpx.Response(200, json={})).kind is Kind.UNKNOWN
    # The same error on a safe step is simply retried.
    assert http_step(1).parse(ctx, graph_error(-2, 2207003)).kind is Kind.RETRY


@pytest.mark.parametrize(("response", "kind"), [
    (graph_error(190, 463, "Error validating access token: Session has expired"), Kind.AUTH),
    (graph_error(190, 467, status=401), Kind.AUTH),
    (graph_error(10, None, "Application does not have permission for this action", status=403), Kind.AUTH),
    (graph_error(200, None, "Permissions error", status=403), Kind.AUTH),
    (graph_error(4, 2207051, "Action is blocked", user_msg="We restrict certain activity"), Kind.PAUSED),
    (graph_error(9, 2207042, user_msg="You reached the maximum number of posts"), Kind.RATE_LIMITED),
    (graph_error(17, None, "User request limit reached"), Kind.RATE_LIMITED),
    (graph_error(80002, None, "too many calls"), Kind.RATE_LIMITED),
    (graph_error(36001, 2207005, user_msg="The image format is not supported."), Kind.FAILED),
    (graph_error(9004, 2207052, user_msg="Media could not be fetched from this uri"), Kind.FAILED),
    (graph_error(9007, 2207027, user_msg="not ready"), Kind.RETRY),
    (graph_error(1, None, "unknown", is_transient=True), Kind.RETRY),
    (graph_error(100, 2207023, user_msg="unknown media type"), Kind.FAILED),
    (httpx.Response(502, text="<html>bad gateway</html>"), Kind.RETRY),
    (httpx.Response(400, content=b"\x00\xff"), Kind.FAILED),
])
def test_graph_errors_by_code_and_subcode(tmp_path: Path, response: httpx.Response, kind: Kind) -> None:
    outcome = http_step(1).parse(make_ctx(tmp_path), response)
    assert outcome.kind is kind


def test_media_error_reason_is_the_user_message(tmp_path: Path) -> None:
    response = graph_error(36000, 2207004, "The image size is too large.",
                           user_msg="The image is too large to download. It should be less than 8 MiB.")
    outcome = http_step(1).parse(make_ctx(tmp_path), response)
    assert outcome.kind is Kind.FAILED
    assert outcome.reason == ("Instagram answered 400 (code 36000/2207004): Problem: The image is too "
                              "large to download. It should be less than 8 MiB.")


def test_fetch_failure_points_at_the_media_host(tmp_path: Path) -> None:
    outcome = http_step(1).parse(make_ctx(tmp_path), graph_error(9004, 2207052))
    assert "public_url" in (outcome.reason or "")


def test_throttling_uses_the_business_use_case_estimate_in_minutes(tmp_path: Path) -> None:
    usage = {"17841400000000000": [{"type": "instagram", "call_count": 100, "total_cputime": 10,
                                    "total_time": 10, "estimated_time_to_regain_access": 7}]}
    response = graph_error(80002, None, "rate", headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    outcome = http_step(2).parse(make_ctx(tmp_path, {"container_id": "c"}), response)
    assert outcome.kind is Kind.RATE_LIMITED
    assert outcome.retry_after == 7 * 60


def test_spam_block_is_not_a_rate_limit(tmp_path: Path) -> None:
    usage = {"1": [{"type": "instagram", "estimated_time_to_regain_access": 1}]}
    response = graph_error(4, 2207051, headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    outcome = http_step(3).parse(make_ctx(tmp_path), response)
    assert outcome.kind is Kind.PAUSED
    assert outcome.retry_after is None


def test_permalink_step(tmp_path: Path) -> None:
    step = http_step(4)
    ctx = make_ctx(tmp_path, {"media_id": "m1"})
    request = step.build(ctx)
    assert request.url.path == "/v25.0/m1" and request.url.params["fields"] == "permalink"
    body = {"permalink": "https://www.instagram.com/p/Abc/", "id": "m1"}
    ok = step.parse(ctx, httpx.Response(200, json=body))
    assert ok == Outcome.next(permalink="https://www.instagram.com/p/Abc/")
    # A permanent failure to read it does not fail a job whose post exists.
    missing = step.parse(ctx, graph_error(100, None, "Unsupported get request"))
    assert missing.kind is Kind.NEXT and missing.data["permalink"] is None
    assert step.parse(ctx, graph_error(190, 463)).kind is Kind.AUTH


def test_unhost_removes_the_copy_and_reports_done(tmp_path: Path) -> None:
    host = RecordingHost()
    ctx = make_ctx(tmp_path, {"hosted_key": "k.jpg", "media_id": "m1", "permalink": "https://www.instagram.com/p/A/"})
    outcome = local_step(5, target(host)).run(ctx)
    assert host.deletes == ["k.jpg"]
    assert outcome.kind is Kind.DONE
    assert (outcome.remote_id, outcome.permalink) == ("m1", "https://www.instagram.com/p/A/")


def test_unhost_failure_keeps_the_post_done(tmp_path: Path) -> None:
    outcome = local_step(5, target(RecordingHost(fail="delete"))).run(
        make_ctx(tmp_path, {"hosted_key": "k.jpg", "media_id": "m1"}))
    assert outcome.kind is Kind.DONE
    assert "k.jpg" in outcome.data["unhost_error"]


def test_container_status_helpers_for_reconciliation() -> None:
    request = build_container_status_request(CONFIG, "c1", "tok")
    assert request.url.path == "/v25.0/c1" and request.headers["Authorization"] == "Bearer tok"
    published = parse_container_status(httpx.Response(200, json={"status_code": "PUBLISHED", "id": "c1"}))
    assert published is not None and published.published
    finished = parse_container_status(httpx.Response(200, json={"status_code": "FINISHED"}))
    assert finished is not None and not finished.published
    assert parse_container_status(graph_error(24, 2207008)) is None
    assert parse_container_status(httpx.Response(200, json={"id": "c1"})) is None


def test_publishing_limit_helpers() -> None:
    request = build_publishing_limit_request(CONFIG, "1784", "tok", since=1_800_000_000)
    assert request.url.path == "/v25.0/1784/content_publishing_limit"
    assert request.url.params["fields"] == "config,quota_usage"
    assert request.url.params["since"] == "1800000000"
    quota = parse_publishing_limit(httpx.Response(200, json={
        "data": [{"quota_usage": 2, "config": {"quota_total": 50, "quota_duration": 86400}}]}))
    assert quota is not None
    assert (quota.usage, quota.total, quota.duration, quota.remaining) == (2, 50, 86400, 48)
    bare = parse_publishing_limit(httpx.Response(200, json={"data": [{"quota_usage": 7}]}))
    assert bare is not None and bare.remaining is None
    assert parse_publishing_limit(httpx.Response(200, json={"data": []})) is None
    assert parse_publishing_limit(graph_error(190, 463)) is None


def test_poll_wait_schedule() -> None:
    assert [poll_wait(n) for n in range(8)] == [2, 4, 8, 16, 32, 60, 60, 60]


# ---------------------------------------------------------------------------------------------------
# Against the bundled emulator: Meta fetches the image from the media host, containers take time


BASE = "https://emu.test"
NOW = 1_800_000_000.0


@dataclass
class Emulated:
    emulator: Emulator
    clock: ManualClock
    client: httpx.Client
    host: DirectoryHost
    hosted: Path


@pytest.fixture
def emulated(tmp_path: Path) -> Iterator[Emulated]:
    hosted = tmp_path / "hosted"
    hosted.mkdir()
    clock = ManualClock(NOW)
    emulator = Emulator(EmulatorSettings(ig_container_processing_seconds=5.0), clock=clock, hosted_dir=hosted)
    # The emulator serves hosted_dir under /_emulator/hosted/: it stands in for the user's web server.
    host = DirectoryHost(hosted, BASE + "/_emulator/hosted")
    with httpx.Client(transport=httpx.MockTransport(emulator.handle)) as client:
        yield Emulated(emulator, clock, client, host, hosted)


def emulator_ctx(tmp_path: Path, token: str, *, caption: str = "Heron at dawn\n\n#birds", seed: int = 0,
                 job_id: int = 1) -> JobContext:
    image = tmp_path / f"ig-{seed}.jpg"
    image.write_bytes(sample_jpeg(1080, 1350, seed=seed))
    text = Caption(text=caption, length=len(caption), limit=2200, alt_text="A grey heron in the mist",
                   hashtags=("#birds",), shortened=())
    prepared = PreparedImage(path=str(image), width=1080, height=1350, bytes=image.stat().st_size,
                             format="JPEG", quality=90, fit=None)
    return JobContext(job_id=job_id, target="instagram", photo_hash=f"{seed:064x}", photo_path=image,
                      caption=text, image=prepared, access_token=token, account_id=DEFAULT_IG_USER_ID)


def emulator_target(e: Emulated, version: str = "/v25.0") -> InstagramTarget:
    return InstagramTarget(TargetConfig(name="instagram", kind="instagram", graph_base=BASE + version), e.host)


def test_post_through_the_container_flow(tmp_path: Path, emulated: Emulated) -> None:
    token = emulated.emulator.mint_ig_token()["access_token"]
    ctx = emulator_ctx(tmp_path, token)
    outcome, final, performed = drive(emulator_target(emulated).steps(), ctx, emulated.client,
                                      wait=emulated.clock.advance)
    assert outcome.kind is Kind.DONE
    assert performed[:3] == ["host_image", "create_container", "wait_for_container"]
    assert performed.count("wait_for_container") >= 2  # it was IN_PROGRESS at first
    assert performed[-3:] == ["publish", "read_permalink", "unhost_image"]
    [media] = emulated.emulator.ig_posts()
    assert outcome.remote_id == media.id
    assert outcome.permalink is not None and media.shortcode in outcome.permalink
    assert media.caption == "Heron at dawn\n\n#birds" and media.alt_text == "A grey heron in the mist"
    assert media.image == ctx.photo_path.read_bytes()  # fetched from the media host
    assert list(emulated.hosted.iterdir()) == []  # and removed from it afterwards
    assert final.data["poll_count"] >= 1
    # What the runner journals (outcome data) never carries the token.
    assert token not in json.dumps([dict(final.data), outcome.reason])


def test_container_error_fails_the_job_and_discard_unhosts(tmp_path: Path, emulated: Emulated) -> None:
    emulated.emulator.fail_next_containers("ERROR")
    ctx = emulator_ctx(tmp_path, emulated.emulator.mint_ig_token()["access_token"])
    target = emulator_target(emulated)
    outcome, final, performed = drive(target.steps(), ctx, emulated.client, wait=emulated.clock.advance)
    assert outcome.kind is Kind.FAILED and "ERROR" in (outcome.reason or "")
    assert "publish" not in performed
    assert emulated.emulator.ig_posts() == []
    # The job ended early: the copy is still public until the runner discards it.
    assert [p.name for p in emulated.hosted.iterdir()] == [final.data["hosted_key"]]
    assert target.discard(final.data) is None
    assert list(emulated.hosted.iterdir()) == []
    assert target.discard({}) is None
    assert "permission denied" in (InstagramTarget(CONFIG, RecordingHost(fail="delete")).discard(
        {"hosted_key": "k.jpg"}) or "")


def test_expired_container_is_recreated_and_published(tmp_path: Path, emulated: Emulated) -> None:
    emulated.emulator.fail_next_containers("EXPIRED")
    ctx = emulator_ctx(tmp_path, emulated.emulator.mint_ig_token()["access_token"])
    outcome, final, _ = drive(emulator_target(emulated).steps(), ctx, emulated.client, wait=emulated.clock.advance)
    assert outcome.kind is Kind.DONE
    assert final.data["containers_recreated"] == 1
    assert len(emulated.emulator.requests_log("ig.media.create")) == 2
    assert len(emulated.emulator.ig_posts()) == 1


def test_unreachable_image_url_is_a_failure_naming_the_media_host(tmp_path: Path, emulated: Emulated) -> None:
    broken = DirectoryHost(emulated.hosted, BASE + "/_emulator/hosted/nowhere")
    target = InstagramTarget(TargetConfig(name="instagram", kind="instagram", graph_base=BASE), broken)
    ctx = emulator_ctx(tmp_path, emulated.emulator.mint_ig_token()["access_token"])
    outcome, _, _ = drive(target.steps(), ctx, emulated.client, wait=emulated.clock.advance)
    assert outcome.kind is Kind.FAILED
    assert "public_url" in (outcome.reason or "")


def test_publishing_quota_is_a_rate_limit(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    hosted = tmp_path / "hosted"
    hosted.mkdir()
    emulator = Emulator(EmulatorSettings(ig_publish_quota=1, ig_container_processing_seconds=0.0), clock=clock,
                        hosted_dir=hosted)
    target = InstagramTarget(TargetConfig(name="instagram", kind="instagram", graph_base=BASE),
                             DirectoryHost(hosted, BASE + "/_emulator/hosted"))
    with httpx.Client(transport=httpx.MockTransport(emulator.handle)) as client:
        token = emulator.mint_ig_token()["access_token"]
        first, _, _ = drive(target.steps(), emulator_ctx(tmp_path, token, seed=1), client, wait=clock.advance)
        second, _, _ = drive(target.steps(), emulator_ctx(tmp_path, token, seed=2, caption="b", job_id=2), client,
                             wait=clock.advance)
        limit = client.send(build_publishing_limit_request(target.config, DEFAULT_IG_USER_ID, token))
    assert first.kind is Kind.DONE
    assert second.kind is Kind.RATE_LIMITED and second.data["error_code"] == 9
    quota = parse_publishing_limit(limit)
    assert quota is not None and (quota.usage, quota.total, quota.remaining) == (1, 1, 0)


def test_expired_token_is_auth(tmp_path: Path, emulated: Emulated) -> None:
    ctx = emulator_ctx(tmp_path, emulated.emulator.mint_ig_token(long_lived=False)["access_token"])
    emulated.clock.advance(3601)
    outcome, _, performed = drive(emulator_target(emulated).steps(), ctx, emulated.client,
                                  wait=emulated.clock.advance)
    assert (outcome.kind, performed) == (Kind.AUTH, ["host_image", "create_container"])


def test_reconciler_after_publish_finds_the_media(tmp_path: Path, emulated: Emulated) -> None:
    token = emulated.emulator.mint_ig_token()["access_token"]
    emulated.emulator.post_from_phone(caption="something else")
    target = emulator_target(emulated)
    intent_at = emulated.clock()
    done, final, _ = drive(target.steps(), emulator_ctx(tmp_path, token), emulated.client,
                           wait=emulated.clock.advance)
    reconciler = target.reconciler
    assert isinstance(reconciler, Reconciler)
    ctx = final
    for _ in range(3):
        request = reconciler.build(ctx, "publish", intent_at)
        assert request is not None
        finding = reconciler.parse(ctx, "publish", emulated.client.send(request))
        if finding.verdict is not Verdict.ASK_AGAIN:
            break
        ctx = JobContext(**{**ctx.__dict__, "data": {**ctx.data, **finding.data}})
    assert finding.verdict is Verdict.POSTED
    assert (finding.remote_id, finding.permalink) == (done.remote_id, done.permalink)


def test_reconciler_before_publish_says_absent(tmp_path: Path, emulated: Emulated) -> None:
    target = emulator_target(emulated)
    steps = target.steps()
    ctx = emulator_ctx(tmp_path, emulated.emulator.mint_ig_token()["access_token"])
    # Host, create, wait until FINISHED; then "crash" before publishing.
    outcome, ctx, _ = drive(steps[:3], ctx, emulated.client, wait=emulated.clock.advance)
    assert outcome.kind is Kind.DONE
    request = target.reconciler.build(ctx, "publish", emulated.clock())
    assert request is not None
    finding = target.reconciler.parse(ctx, "publish", emulated.client.send(request))
    assert finding.verdict is Verdict.ABSENT
    assert target.reconciler.build(ctx, "create_container", emulated.clock()) is None


def test_post_on_the_real_emulator_server(tmp_path: Path) -> None:
    hosted = tmp_path / "hosted"
    hosted.mkdir()
    emulator = Emulator(EmulatorSettings(ig_container_processing_seconds=0.3), hosted_dir=hosted)
    with EmulatorServer(emulator) as server, httpx.Client() as client:
        # The emulator fetches image_url over real HTTP from its own server, like Meta would.
        target = InstagramTarget(TargetConfig(name="instagram", kind="instagram", graph_base=server.url),
                                 DirectoryHost(hosted, server.url + "/_emulator/hosted"))
        ctx = emulator_ctx(tmp_path, emulator.mint_ig_token()["access_token"])
        outcome, _, _ = drive(target.steps(), ctx, client, wait=lambda seconds: time.sleep(min(seconds, 0.2)))
    assert outcome.kind is Kind.DONE
    assert [m.id for m in emulator.ig_posts()] == [outcome.remote_id]
