"""The X target's steps against hand-written responses in the documented shapes (api-notes A2-A5)."""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from crosswatch.config import TargetConfig
from crosswatch.emulator import (
    DEFAULT_X_USER_ID,
    DEFAULT_X_USERNAME,
    Emulator,
    EmulatorServer,
    EmulatorSettings,
    ManualClock,
    RateLimit,
    sample_jpeg,
)
from crosswatch.models import Caption, PreparedImage
from crosswatch.platforms.base import (
    DUPLICATE_REFUSED,
    HttpStep,
    JobContext,
    Kind,
    Outcome,
    Reconciler,
    Verdict,
    step_applies,
)
from crosswatch.platforms.x.steps import (
    XTarget,
    build_recent_posts_request,
    comparable_text,
    find_post_with_media_key,
    find_post_with_text,
    parse_problem,
    parse_rate_limits,
    post_permalink,
)
from tests.emulator_fixtures import watch_openapi
from tests.openapi_check import XOpenAPI
from tests.target_helpers import drive

NOW = 1_800_000_000.0
CONFIG = TargetConfig(name="x", kind="x", api_base="https://api.x.test")
JPEG = b"\xff\xd8\xff\xe0fake-jpeg-bytes\xff\xd9"


def make_ctx(tmp_path: Path, *, alt_text: str | None = "A heron at dawn",
             data: dict[str, object] | None = None, token: str | None = "tok-123") -> JobContext:
    image = tmp_path / "x.jpg"
    image.write_bytes(JPEG)
    caption = Caption(text="Heron #birds", length=12, limit=280, alt_text=alt_text, hashtags=("#birds",),
                      shortened=())
    prepared = PreparedImage(path=str(image), width=64, height=48, bytes=len(JPEG), format="JPEG",
                             quality=85, fit=None)
    return JobContext(job_id=7, target="x", photo_hash="ab" * 32, photo_path=image, caption=caption,
                      image=prepared, data=data or {}, access_token=token, account_id="42")


def steps() -> list[HttpStep]:
    result = list(XTarget(CONFIG, clock=lambda: NOW).steps())
    assert all(isinstance(s, HttpStep) for s in result)
    return [s for s in result if isinstance(s, HttpStep)]


def problem(status: int, title: str, detail: str, type_: str = "about:blank",
            headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"title": title, "detail": detail, "type": type_, "status": status},
                          headers=headers)


def test_steps_are_upload_alt_text_post_and_only_the_post_is_unsafe() -> None:
    names = [(s.name, s.safe_to_repeat) for s in steps()]
    assert names == [("upload_media", True), ("set_alt_text", True), ("create_post", False)]


def test_upload_is_a_one_shot_multipart_with_the_image_bytes(tmp_path: Path) -> None:
    upload = steps()[0]
    request = upload.build(make_ctx(tmp_path))
    assert request.method == "POST"
    assert str(request.url) == "https://api.x.test/2/media/upload"
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = request.read()
    assert b'name="media_category"\r\n\r\ntweet_image' in body
    assert b'name="media"; filename="x.jpg"' in body
    assert JPEG in body


def test_upload_keeps_the_media_id_and_key(tmp_path: Path) -> None:
    body = {"data": {"id": "1880028106020515840", "media_key": "3_1880028106020515840", "size": 20,
                     "expires_after_secs": 86400}}
    response = httpx.Response(200, json=body,
                              headers={"x-rate-limit-limit": "500", "x-rate-limit-remaining": "499",
                                       "x-rate-limit-reset": str(int(NOW) + 900)})
    outcome = steps()[0].parse(make_ctx(tmp_path), response)
    assert outcome.kind is Kind.NEXT
    assert outcome.data["media_id"] == "1880028106020515840"
    assert outcome.data["media_key"] == "3_1880028106020515840"
    assert outcome.data["rate_limit"]["window"] == {"limit": 500, "remaining": 499, "reset": int(NOW) + 900}


def test_upload_without_an_id_is_retried_not_crashed(tmp_path: Path) -> None:
    outcome = steps()[0].parse(make_ctx(tmp_path), httpx.Response(200, text="<html>oops</html>"))
    assert outcome.kind is Kind.RETRY


def invalid_request(message: str, parameters: dict[str, list[str]], status: int = 400) -> httpx.Response:
    """X's invalid-request problem, as the emulator and X send it."""
    return httpx.Response(status, json={
        "errors": [{"parameters": parameters, "message": message}], "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.x.com/2/problems/invalid-request"})


@pytest.mark.parametrize("response", [
    invalid_request("File size exceeds 5242880 bytes.", {"media": []}),
    invalid_request("media type unrecognized.", {"media": []}),
    invalid_request("Image dimensions must be >= 4x4 and <= 8192x8192.", {"media": []}),
    httpx.Response(413, text="Request Entity Too Large"),
], ids=["too-large", "not-an-image", "dimensions", "413"])
def test_upload_refusing_the_photo_rejects_it(tmp_path: Path, response: httpx.Response) -> None:
    outcome = steps()[0].parse(make_ctx(tmp_path), response)
    assert outcome.kind is Kind.REJECTED


@pytest.mark.parametrize("response", [
    invalid_request("The `media_category` field is required.", {"media_category": []}),
    invalid_request("Unknown fields: shared", {"shared": []}),
    problem(400, "Invalid Request", "One or more parameters to your request was invalid.",
            "https://api.x.com/2/problems/invalid-request"),
], ids=["missing-category", "unknown-field", "no-details"])
def test_upload_refusing_the_request_fails_with_xs_words_not_the_photo(
        tmp_path: Path, response: httpx.Response) -> None:
    outcome = steps()[0].parse(make_ctx(tmp_path), response)
    assert outcome.kind is Kind.FAILED
    assert "One or more parameters" in (outcome.reason or "")
    message = (response.json().get("errors") or [{}])[0].get("message")
    assert message is None or message in (outcome.reason or "")


def test_alt_text_request_shape(tmp_path: Path) -> None:
    alt = steps()[1]
    ctx = make_ctx(tmp_path, data={"media_id": "123"})
    request = alt.build(ctx)
    assert str(request.url) == "https://api.x.test/2/media/metadata"
    assert json.loads(request.read()) == {"id": "123", "metadata": {"alt_text": {"text": "A heron at dawn"}}}
    ok = alt.parse(ctx, httpx.Response(200, json={"data": {"id": "123", "associated_metadata": {}}}))
    assert ok.kind is Kind.NEXT


def test_alt_text_is_cut_to_x_limit(tmp_path: Path) -> None:
    request = steps()[1].build(make_ctx(tmp_path, alt_text="a" * 1500, data={"media_id": "1"}))
    assert len(json.loads(request.read())["metadata"]["alt_text"]["text"]) == 1000


def test_alt_text_step_does_not_apply_without_alt_text(tmp_path: Path) -> None:
    alt = steps()[1]
    assert step_applies(alt, make_ctx(tmp_path)) is True
    assert step_applies(alt, make_ctx(tmp_path, alt_text=None)) is False
    assert step_applies(alt, make_ctx(tmp_path, alt_text="  ")) is False
    assert step_applies(steps()[0], make_ctx(tmp_path, alt_text=None)) is True


def test_create_post_request_carries_text_and_media(tmp_path: Path) -> None:
    request = steps()[2].build(make_ctx(tmp_path, data={"media_id": "99"}))
    assert str(request.url) == "https://api.x.test/2/tweets"
    assert json.loads(request.read()) == {"text": "Heron #birds", "media": {"media_ids": ["99"]}}


def test_create_post_with_an_empty_caption_sends_an_empty_text(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, data={"media_id": "99"})
    ctx = JobContext(**{**ctx.__dict__, "caption": Caption("", 0, 280, None, (), ())})
    assert json.loads(steps()[2].build(ctx).read()) == {"text": "", "media": {"media_ids": ["99"]}}


def test_create_post_done_with_permalink(tmp_path: Path) -> None:
    response = httpx.Response(201, json={"data": {"id": "1445880548472328192", "text": "Heron #birds"}})
    outcome = steps()[2].parse(make_ctx(tmp_path, data={"media_id": "99"}), response)
    assert outcome.kind is Kind.DONE
    assert outcome.remote_id == "1445880548472328192"
    assert outcome.permalink == "https://x.com/i/web/status/1445880548472328192"


def test_create_post_permalink_uses_the_username_when_known(tmp_path: Path) -> None:
    target = XTarget(CONFIG, username="heronwatch")
    create = target.steps()[2]
    assert isinstance(create, HttpStep)
    outcome = create.parse(make_ctx(tmp_path), httpx.Response(201, json={"data": {"id": "5", "text": "t"}}))
    assert outcome.permalink == "https://x.com/heronwatch/status/5"
    assert post_permalink("5") == "https://x.com/i/web/status/5"


def test_create_post_2xx_without_id_is_unknown(tmp_path: Path) -> None:
    outcome = steps()[2].parse(make_ctx(tmp_path), httpx.Response(201, content=b""))
    assert outcome.kind is Kind.UNKNOWN


@pytest.mark.parametrize("prefix", ["https://api.twitter.com/2/problems/", "https://api.x.com/2/problems/"])
def test_problem_type_matched_by_suffix(prefix: str) -> None:
    parsed = parse_problem(problem(403, "Forbidden", "capped", prefix + "usage-capped"))
    assert parsed.kind == "usage-capped"


def test_duplicate_403_is_its_own_outcome(tmp_path: Path) -> None:
    response = problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
    outcome = steps()[2].parse(make_ctx(tmp_path), response)
    assert outcome.kind is Kind.DUPLICATE
    assert "duplicate content" in (outcome.reason or "")


def test_legacy_duplicate_code_is_recognised(tmp_path: Path) -> None:
    response = httpx.Response(403, json={"errors": [{"code": 187, "message": "Status is a duplicate."}]})
    assert steps()[2].parse(make_ctx(tmp_path), response).kind is Kind.DUPLICATE


def test_other_403_fails_with_the_platform_reason(tmp_path: Path) -> None:
    response = problem(403, "Forbidden", "You are not permitted to perform this action.")
    outcome = steps()[2].parse(make_ctx(tmp_path), response)
    assert outcome.kind is Kind.FAILED
    assert outcome.reason == "X answered 403: Forbidden: You are not permitted to perform this action."


def test_401_is_auth(tmp_path: Path) -> None:
    outcome = steps()[0].parse(make_ctx(tmp_path), problem(401, "Unauthorized", "Unauthorized"))
    assert outcome.kind is Kind.AUTH


def test_429_waits_until_the_window_resets(tmp_path: Path) -> None:
    headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
               "x-rate-limit-reset": str(int(NOW) + 120)}
    outcome = steps()[2].parse(make_ctx(tmp_path), problem(429, "Too Many Requests", "Too Many Requests",
                                                           headers=headers))
    assert outcome.kind is Kind.RATE_LIMITED
    assert outcome.retry_after == pytest.approx(121)


def test_429_from_the_24_hour_cap_waits_for_that_cap(tmp_path: Path) -> None:
    headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "57",
               "x-rate-limit-reset": str(int(NOW) + 300),
               "x-user-limit-24hour-limit": "17", "x-user-limit-24hour-remaining": "0",
               "x-user-limit-24hour-reset": str(int(NOW) + 40_000)}
    outcome = steps()[2].parse(make_ctx(tmp_path), problem(429, "Too Many Requests", "Too Many Requests",
                                                           headers=headers))
    assert outcome.retry_after == pytest.approx(40_001)
    assert outcome.data["rate_limit"]["user_24h"]["remaining"] == 0


def test_429_without_headers_has_a_default_wait(tmp_path: Path) -> None:
    outcome = steps()[0].parse(make_ctx(tmp_path), problem(429, "Too Many Requests", "Too Many Requests"))
    assert outcome.kind is Kind.RATE_LIMITED
    assert outcome.retry_after == 900


def test_5xx_is_retried_on_safe_steps_and_unknown_on_the_post(tmp_path: Path) -> None:
    response = problem(503, "Service Unavailable", "Service Unavailable")
    assert steps()[0].parse(make_ctx(tmp_path), response).kind is Kind.RETRY
    assert steps()[1].parse(make_ctx(tmp_path), response).kind is Kind.RETRY
    # A 5xx after POST /2/tweets may come after the post was made: the runner reconciles.
    assert steps()[2].parse(make_ctx(tmp_path), response).kind is Kind.UNKNOWN


def test_usage_capped_pauses_the_target(tmp_path: Path) -> None:
    response = problem(403, "Usage capped", "Credits exhausted",
                       "https://api.twitter.com/2/problems/usage-capped")
    assert steps()[2].parse(make_ctx(tmp_path), response).kind is Kind.PAUSED


def test_garbage_error_bodies_never_raise(tmp_path: Path) -> None:
    for response in (httpx.Response(400, content=b"\xff\xfe"), httpx.Response(404, json=[1, 2]),
                     httpx.Response(502, text="Bad Gateway"), httpx.Response(400, json={"errors": "x"})):
        for step in steps():
            assert isinstance(step.parse(make_ctx(tmp_path), response), Outcome)


def test_rate_limit_headers_parse_all_windows() -> None:
    headers = httpx.Headers({"x-rate-limit-limit": "100", "x-rate-limit-remaining": "nope",
                             "x-app-limit-24hour-limit": "10000", "x-app-limit-24hour-remaining": "9999",
                             "x-app-limit-24hour-reset": "1800003600"})
    windows = parse_rate_limits(headers)
    assert set(windows) == {"window", "app_24h"}
    assert windows["window"].remaining is None
    assert windows["app_24h"].reset == 1800003600


def test_recent_posts_request_asks_only_for_the_media_keys_expansion() -> None:
    request = build_recent_posts_request(CONFIG, "42", "tok", since=datetime(2026, 11, 1, 8, 0, tzinfo=UTC))
    assert request.url.path == "/2/users/42/tweets"
    params = request.url.params
    assert dict(params) == {"max_results": "20", "expansions": "attachments.media_keys",
                            "start_time": "2026-11-01T08:00:00Z"}
    assert request.headers["Authorization"] == "Bearer tok"
    assert build_recent_posts_request(CONFIG, "42", "tok", since="1000").url.params["since_id"] == "1000"


def test_find_post_with_media_key() -> None:
    response = httpx.Response(200, json={
        "data": [{"id": "11", "text": "a", "attachments": {"media_keys": ["3_1"]}},
                 {"id": "12", "text": "b"},
                 {"id": "13", "text": "c", "attachments": {"media_keys": ["3_2", "3_9"]}}],
        "includes": {"media": [{"media_key": "3_1"}, {"media_key": "3_2"}, {"media_key": "3_9"}]},
        "meta": {"result_count": 3}})
    assert find_post_with_media_key(response, "3_9") == "13"
    assert find_post_with_media_key(response, "3_1") == "11"
    assert find_post_with_media_key(response, "3_404") is None
    assert find_post_with_media_key(httpx.Response(200, json={"meta": {"result_count": 0}}), "3_1") is None
    assert find_post_with_media_key(httpx.Response(401, json={"data": []}), "3_1") is None


def timeline(*posts: dict[str, object], next_token: str | None = None) -> httpx.Response:
    meta: dict[str, object] = {"result_count": len(posts)}
    if next_token:
        meta["next_token"] = next_token
    return httpx.Response(200, json={"data": list(posts), "meta": meta})


def test_post_text_is_compared_as_x_stores_it() -> None:
    # X escapes &, < and >, shortens every URL to t.co, and appends the attached photo's own link.
    assert comparable_text("Heron &amp; egret https://t.co/abc") == comparable_text("Heron & egret")
    assert comparable_text("See https://t.co/x1 now https://t.co/y2") == comparable_text(
        "See https://example.com/a/long/path now")
    assert comparable_text("Cafe\u0301  at   dawn") == comparable_text("Caf\u00e9 at dawn")
    assert comparable_text("heron") != comparable_text("Heron")
    assert comparable_text("https://t.co/only") == ""


def test_find_post_with_text_needs_media_and_a_caption() -> None:
    response = timeline({"id": "31", "text": "Heron #birds"},
                        {"id": "30", "text": "Heron #birds https://t.co/p", "attachments": {"media_keys": ["3_1"]}})
    assert find_post_with_text(response, "Heron #birds") == "30"
    assert find_post_with_text(response, "Egret") is None
    assert find_post_with_text(response, "") is None


def duplicate_ctx(tmp_path: Path, **data: object) -> JobContext:
    return make_ctx(tmp_path, data={DUPLICATE_REFUSED: "X answered 403: duplicate content", "media_id": "77",
                                    "media_key": "3_77", **data})


def test_the_duplicate_lookup_reads_the_newest_posts_and_finds_the_caption(tmp_path: Path) -> None:
    reconciler = XTarget(CONFIG, username="heron_cam", clock=lambda: NOW).reconciler
    ctx = duplicate_ctx(tmp_path)
    request = reconciler.build(ctx, "create_post", intent_at=NOW)
    assert request is not None and request.url.path == "/2/users/42/tweets"
    # The post X means may be older than this job: no start_time, only what X lists.
    assert dict(request.url.params) == {"max_results": "100", "expansions": "attachments.media_keys"}
    more = reconciler.parse(ctx, "create_post", timeline(
        {"id": "50", "text": "Another", "attachments": {"media_keys": ["3_5"]}}, next_token="p2"))
    assert (more.verdict, dict(more.data)) == (Verdict.ASK_AGAIN, {"duplicate_next_token": "p2"})
    paged = reconciler.build(duplicate_ctx(tmp_path, duplicate_next_token="p2"), "create_post", intent_at=NOW)
    assert paged is not None and paged.url.params["pagination_token"] == "p2"
    found = reconciler.parse(ctx, "create_post", timeline(
        {"id": "40", "text": "Heron #birds https://t.co/z", "attachments": {"media_keys": ["3_4"]}}))
    assert (found.verdict, found.remote_id) == (Verdict.POSTED, "40")
    assert found.permalink == "https://x.com/heron_cam/status/40"
    absent = reconciler.parse(ctx, "create_post", timeline())
    assert absent.verdict is Verdict.ABSENT and "this caption" in (absent.reason or "")


def test_the_duplicate_lookup_prefers_our_own_media_key(tmp_path: Path) -> None:
    reconciler = XTarget(CONFIG, clock=lambda: NOW).reconciler
    response = timeline({"id": "41", "text": "Heron #birds", "attachments": {"media_keys": ["3_9"]}},
                        {"id": "40", "text": "other words", "attachments": {"media_keys": ["3_77"]}})
    assert reconciler.parse(duplicate_ctx(tmp_path), "create_post", response).remote_id == "40"


def test_a_400_on_a_reconciliation_read_is_final_with_xs_words(tmp_path: Path) -> None:
    reconciler = XTarget(CONFIG, clock=lambda: NOW).reconciler
    refused = invalid_request("The query parameter [tweet.fields] is not one of [id,max_results]",
                              {"tweet.fields": ["created_at"]})
    for ctx in (make_ctx(tmp_path, data={"media_id": "77"}), duplicate_ctx(tmp_path)):
        finding = reconciler.parse(ctx, "create_post", refused)
        assert (finding.verdict, finding.final) == (Verdict.UNKNOWN, True)
        assert "The query parameter [tweet.fields] is not one of" in (finding.reason or "")
    unavailable = reconciler.parse(make_ctx(tmp_path, data={"media_id": "77"}), "create_post",
                                   problem(503, "Service Unavailable", "Service Unavailable"))
    assert (unavailable.verdict, unavailable.final) == (Verdict.UNKNOWN, False)


# ---------------------------------------------------------------------------------------------------
# Against the bundled emulator: in-process (MockTransport) and as a real server


def emulator_ctx(tmp_path: Path, token: str, *, text: str = "Heron at dawn #birds", seed: int = 0,
                 alt_text: str | None = "A grey heron on one leg in the mist", job_id: int = 1) -> JobContext:
    image = tmp_path / f"x-{seed}.jpg"
    image.write_bytes(sample_jpeg(640, 480, seed=seed))
    caption = Caption(text=text, length=len(text), limit=280, alt_text=alt_text, hashtags=(), shortened=())
    prepared = PreparedImage(path=str(image), width=640, height=480, bytes=image.stat().st_size, format="JPEG",
                             quality=85, fit=None)
    return JobContext(job_id=job_id, target="x", photo_hash=f"{seed:064x}", photo_path=image, caption=caption,
                      image=prepared, access_token=token, account_id=DEFAULT_X_USER_ID)


Emulated = tuple[Emulator, ManualClock, httpx.Client]


def emulator_config(base: str) -> TargetConfig:
    return TargetConfig(name="x", kind="x", api_base=base)


@pytest.fixture(scope="module")
def x_spec() -> XOpenAPI:
    return XOpenAPI()


@pytest.fixture
def emulated(x_spec: XOpenAPI) -> Iterator[Emulated]:
    clock = ManualClock(NOW)
    emulator = Emulator(clock=clock)
    # Every request the steps send, and every answer, is checked against X's OpenAPI document.
    recorder = watch_openapi(emulator, x_spec)
    with httpx.Client(transport=httpx.MockTransport(emulator.handle)) as client:
        yield emulator, clock, client
    assert recorder.checked > 0
    recorder.assert_clean()


def test_post_with_alt_text_on_the_emulator(tmp_path: Path, emulated: Emulated) -> None:
    emulator, clock, client = emulated
    target = XTarget(emulator_config("https://emu.test"), username=DEFAULT_X_USERNAME, clock=clock)
    ctx = emulator_ctx(tmp_path, emulator.mint_x_token()["access_token"])
    outcome, final, performed = drive(target.steps(), ctx, client, wait=clock.advance)
    assert performed == ["upload_media", "set_alt_text", "create_post"]
    assert outcome.kind is Kind.DONE
    [post] = emulator.x_posts()
    assert outcome.remote_id == post.id and post.text == "Heron at dawn #birds"
    assert outcome.permalink == f"https://x.com/{DEFAULT_X_USERNAME}/status/{post.id}"
    assert post.media_ids == (final.data["media_id"],)
    assert emulator.x_media_bytes(post.media_ids[0]) == ctx.photo_path.read_bytes()
    assert emulator.x_alt_text(post.media_ids[0]) == "A grey heron on one leg in the mist"
    # What the runner journals (outcome data) never carries the token.
    assert ctx.access_token and ctx.access_token not in json.dumps([dict(final.data), outcome.reason])


def test_without_alt_text_the_metadata_call_is_skipped(tmp_path: Path,
                                                      emulated: Emulated) -> None:
    emulator, clock, client = emulated
    ctx = emulator_ctx(tmp_path, emulator.mint_x_token()["access_token"], alt_text=None)
    outcome, _final, _ = drive(XTarget(emulator_config("https://emu.test")).steps(), ctx, client,
                               wait=clock.advance)
    assert outcome.kind is Kind.DONE
    assert emulator.requests_log("x.media.metadata") == []


def test_the_same_post_twice_is_a_duplicate(tmp_path: Path,
                                            emulated: Emulated) -> None:
    emulator, clock, client = emulated
    token = emulator.mint_x_token()["access_token"]
    steps = XTarget(emulator_config("https://emu.test"), clock=clock).steps()
    first, _, _ = drive(steps, emulator_ctx(tmp_path, token), client, wait=clock.advance)
    second, _, _ = drive(steps, emulator_ctx(tmp_path, token), client, wait=clock.advance)
    assert (first.kind, second.kind) == (Kind.DONE, Kind.DUPLICATE)


def test_expired_token_is_auth(tmp_path: Path, emulated: Emulated) -> None:
    emulator, clock, client = emulated
    ctx = emulator_ctx(tmp_path, emulator.mint_x_token()["access_token"])
    clock.advance(7201)
    outcome, _, performed = drive(XTarget(emulator_config("https://emu.test")).steps(), ctx, client,
                                  wait=clock.advance)
    assert (outcome.kind, performed) == (Kind.AUTH, ["upload_media"])


def test_rate_limit_429_from_the_emulator(tmp_path: Path, x_spec: XOpenAPI) -> None:
    clock = ManualClock(NOW)
    limits = {**EmulatorSettings().x_rate_limits, "x.tweets.create": RateLimit(1, 900)}
    emulator = Emulator(EmulatorSettings(x_rate_limits=limits), clock=clock)
    recorder = watch_openapi(emulator, x_spec)
    steps = XTarget(emulator_config("https://emu.test"), clock=clock).steps()
    with httpx.Client(transport=httpx.MockTransport(emulator.handle)) as client:
        token = emulator.mint_x_token()["access_token"]
        first, _, _ = drive(steps, emulator_ctx(tmp_path, token, seed=1), client, wait=clock.advance)
        assert first.kind is Kind.DONE
        assert first.data["rate_limit"]["window"]["remaining"] == 0
        second, _, _ = drive(steps, emulator_ctx(tmp_path, token, seed=2, text="another"), client,
                             wait=clock.advance)
    assert second.kind is Kind.RATE_LIMITED
    assert second.retry_after is not None and 1 <= second.retry_after <= 901
    recorder.assert_clean()


def test_reconciler_finds_the_post_by_media_key(tmp_path: Path,
                                                emulated: Emulated) -> None:
    emulator, clock, client = emulated
    token = emulator.mint_x_token()["access_token"]
    target = XTarget(emulator_config("https://emu.test"), clock=clock)
    # Some other post first, so the match is not simply "the only post".
    drive(target.steps(), emulator_ctx(tmp_path, token, seed=5, text="older"), client, wait=clock.advance)
    done, posted_ctx, _ = drive(target.steps(), emulator_ctx(tmp_path, token, seed=6), client, wait=clock.advance)
    reconciler = target.reconciler
    assert isinstance(reconciler, Reconciler)
    request = reconciler.build(posted_ctx, "create_post", intent_at=clock() - 1)
    assert request is not None
    finding = reconciler.parse(posted_ctx, "create_post", client.send(request))
    assert finding.verdict is Verdict.POSTED
    assert finding.remote_id == done.remote_id


def test_reconciler_absent_only_once_the_timeline_has_settled(
        tmp_path: Path, emulated: Emulated) -> None:
    emulator, clock, client = emulated
    token = emulator.mint_x_token()["access_token"]
    target = XTarget(emulator_config("https://emu.test"), clock=clock)
    upload = target.steps()[0]
    assert isinstance(upload, HttpStep)
    ctx = emulator_ctx(tmp_path, token)
    uploaded = upload.parse(ctx, client.send(upload.build(ctx)))
    ctx = JobContext(**{**ctx.__dict__, "data": dict(uploaded.data)})  # the post itself never went out
    reconciler = target.reconciler
    request = reconciler.build(ctx, "create_post", intent_at=clock())
    assert request is not None
    assert reconciler.parse(ctx, "create_post", client.send(request)).verdict is Verdict.UNKNOWN
    clock.advance(60)
    request = reconciler.build(ctx, "create_post", intent_at=clock() - 60)
    assert request is not None
    assert reconciler.parse(ctx, "create_post", client.send(request)).verdict is Verdict.ABSENT
    assert reconciler.build(ctx, "upload_media", intent_at=clock()) is None


def test_post_on_the_real_emulator_server(tmp_path: Path, x_spec: XOpenAPI) -> None:
    emulator = Emulator()
    recorder = watch_openapi(emulator, x_spec)
    with EmulatorServer(emulator) as server, httpx.Client() as client:
        target = XTarget(emulator_config(server.url))
        ctx = emulator_ctx(tmp_path, emulator.mint_x_token()["access_token"])
        outcome, _, _ = drive(target.steps(), ctx, client, wait=time.sleep)
    assert outcome.kind is Kind.DONE
    assert [p.id for p in emulator.x_posts()] == [outcome.remote_id]
    recorder.assert_clean()


# ---------------------------------------------------------------------------------------------------
# The target modules stay sans-I/O


IO_MODULES = {"sqlite3", "socket", "keyring", "watchdog", "subprocess", "urllib.request", "boto3",
              "crosswatch.auth", "crosswatch.secrets", "crosswatch.hosting", "crosswatch.journal"}


@pytest.mark.parametrize("module", ["platforms/x/steps.py", "platforms/instagram/steps.py"])
def test_target_modules_import_no_io_at_run_time(module: str) -> None:
    tree = ast.parse((Path(__file__).resolve().parent.parent / "crosswatch" / module).read_text())
    type_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                 for node in ast.walk(block)}
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) and id(node) not in type_only
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and id(node) not in type_only}
    assert imported, "the check found no imports at all"
    assert not {name for name in imported if name in IO_MODULES or name.split(".")[0] in IO_MODULES}
