"""Mastodon: the counting rule, the limits learned from the server, the steps, the reconciler and the
link check, against the emulator's handler on httpx.MockTransport."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from crosswatch.config import TargetConfig
from crosswatch.emulator import Emulator, ManualClock, sample_jpeg
from crosswatch.emulator.mastodon_api import DEFAULT_ACCOUNT_ID
from crosswatch.models import Caption, PreparedImage
from crosswatch.platforms import registry
from crosswatch.platforms.base import JobContext, Kind, Verdict
from crosswatch.platforms.mastodon.limits import FALLBACK, learned, parse_instance, status_length
from crosswatch.platforms.mastodon.steps import (
    INSTANCE_INFO,
    LINK_CHECK,
    CreateStatus,
    MastodonTarget,
    idempotency_key,
    rate_limit_data,
)
from tests.target_helpers import drive, perform

NOW = 1_800_000_000.0
ORIGIN = "http://emulator.test"
CONFIG = TargetConfig(name="masto", kind="mastodon", instance=f"{ORIGIN}/mastodon", visibility="unlisted",
                      language="en")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def emulator(clock: ManualClock) -> Emulator:
    return Emulator(clock=clock)


@pytest.fixture
def client(emulator: Emulator) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(emulator.handle))


def make_ctx(tmp_path: Path, emulator: Emulator, *, text: str = "Heron at dawn #birds",
             alt_text: str | None = "A grey heron standing in reeds", image: bytes | None = None,
             job_id: int = 7, scopes: tuple[str, ...] | None = None) -> JobContext:
    path = tmp_path / f"photo-{job_id}.jpg"
    path.write_bytes(image if image is not None else sample_jpeg(320, 240, seed=job_id))
    token = emulator.mint_mastodon_token(scopes=scopes) if scopes else emulator.mint_mastodon_token()
    caption = Caption(text=text, length=len(text), limit=500, alt_text=alt_text, hashtags=(), shortened=())
    prepared = PreparedImage(path=str(path), width=320, height=240, bytes=path.stat().st_size, format="JPEG",
                             quality=85, fit=None)
    return JobContext(job_id=job_id, target="masto", photo_hash="cd" * 32, photo_path=path, caption=caption,
                      image=prepared, access_token=token["access_token"], account_id=DEFAULT_ACCOUNT_ID)


def target(clock: ManualClock) -> MastodonTarget:
    return MastodonTarget(CONFIG, clock=clock)


# --- counting and limits -------------------------------------------------------------------------


def test_status_length_counts_grapheme_clusters_urls_as_reserved_and_remote_mentions_without_domain() -> None:
    assert status_length("👍🏽") == 1  # one grapheme cluster, two code points
    assert status_length("e\u0301") == 1
    assert status_length("see https://example.com/a/very/long/path?x=1") == 4 + 23
    assert status_length("see https://example.com/x", reserved_per_url=30) == 4 + 30
    assert status_length("hi @bob@example.social") == len("hi @bob")
    assert status_length("not a link: example.com") == len("not a link: example.com")  # needs its scheme


def test_the_instance_document_sets_every_limit_and_a_missing_value_keeps_the_fallback() -> None:
    document = {"configuration": {"statuses": {"max_characters": 11000, "characters_reserved_per_url": 30},
                                  "media_attachments": {"image_size_limit": 10_485_760, "description_limit": 420,
                                                        "image_matrix_limit": 16_777_216}}}
    limits = parse_instance(document)
    assert limits is not None
    assert (limits.max_characters, limits.characters_reserved_per_url, limits.image_size_limit,
            limits.description_limit) == (11000, 30, 10_485_760, 420)
    assert limits.max_media_attachments == FALLBACK.max_media_attachments
    assert parse_instance({"title": "not an instance"}) is None
    fitted = learned(limits.as_json())
    assert fitted.caption_limit == 11000
    assert fitted.caption_length("https://example.com") == 30
    assert fitted.image.max_bytes == 10_485_759  # Mastodon takes a file only *less than* its limit
    assert fitted.image.max_pixels == 16_777_215  # width x height below the matrix limit, any aspect
    assert fitted.alt_text_limit == 420


def test_never_read_means_the_documented_fallback(emulator: Emulator) -> None:
    fallback = learned(None)
    assert fallback.caption_limit == 500 == registry.limits("mastodon").caption_limit
    assert fallback.image.max_bytes == FALLBACK.image_size_limit - 1  # less than the limit, as Mastodon checks


def test_the_instance_read_parses_the_emulators_answer(emulator: Emulator, client: httpx.Client) -> None:
    emulator.state.mastodon.settings.max_characters = 1234
    info = INSTANCE_INFO.parse(client.send(INSTANCE_INFO.build(CONFIG)))
    assert info is not None and info["max_characters"] == 1234
    assert INSTANCE_INFO.build(CONFIG).url.path == "/mastodon/api/v2/instance"  # the path prefix is kept


# --- steps ----------------------------------------------------------------------------------------


def test_a_photo_is_posted_with_its_alt_text_visibility_language_and_permalink(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    ctx = make_ctx(tmp_path, emulator)
    outcome, _ctx, performed = drive(target(clock).steps(), ctx, client, wait=clock.advance)
    assert outcome.kind is Kind.DONE, outcome
    assert performed == ["upload_media", "wait_for_media", "create_status"]  # wait skipped: 200 at once
    [status] = emulator.mastodon_statuses()
    assert status["id"] == outcome.remote_id
    assert status["text"] == "Heron at dawn #birds"
    assert (status["visibility"], status["language"]) == ("unlisted", "en")
    assert [m["description"] for m in status["media"]] == ["A grey heron standing in reeds"]
    assert outcome.permalink == f"{ORIGIN}/mastodon/@crosswatch_demo/{status['id']}"
    assert client.get(outcome.permalink).status_code == 200


def test_a_slow_upload_answers_202_then_206_until_processed(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    emulator.state.mastodon.settings.processing_seconds = 5.0
    outcome, _ctx, performed = drive(target(clock).steps(), make_ctx(tmp_path, emulator), client,
                                     wait=clock.advance)
    assert outcome.kind is Kind.DONE, outcome
    assert performed.count("wait_for_media") == 4  # 206 at 0, 2 and 4 s; 200 at 6 s (ready at 5 s)
    codes = [r.status for r in emulator.requests_log("mastodon.media.show")]
    assert codes[-1] == 200 and set(codes[:-1]) == {206}
    assert [r.status for r in emulator.requests_log("mastodon.media.upload")] == [202]


def test_creating_before_processing_is_over_goes_back_to_waiting(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    emulator.state.mastodon.settings.processing_seconds = 5.0
    ctx = make_ctx(tmp_path, emulator)
    upload, _wait, create = target(clock).steps()
    uploaded = perform(upload, ctx, client)
    ctx = dataclasses.replace(ctx, data={**uploaded.data, "media_processing": False})
    outcome = perform(create, ctx, client)
    assert outcome.kind is Kind.AGAIN and outcome.back_to == "wait_for_media"
    assert "not finished processing" in (outcome.reason or "")


def test_the_same_idempotency_key_returns_the_same_status(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    ctx = make_ctx(tmp_path, emulator)
    upload, _wait, create = target(clock).steps()
    ctx = dataclasses.replace(ctx, data=dict(perform(upload, ctx, client).data))
    assert isinstance(create, CreateStatus)
    request = create.build(ctx)
    assert request.headers["Idempotency-Key"] == idempotency_key(ctx)
    first, second = perform(create, ctx, client), perform(create, ctx, client)
    assert first.kind is second.kind is Kind.DONE
    assert first.remote_id == second.remote_id
    assert len(emulator.mastodon_statuses()) == 1
    # Past the hour the key is forgotten, and the media already attached is refused (Mastodon 4.x).
    clock.advance(3601)
    late = perform(create, ctx, client)
    assert late.kind is Kind.UNKNOWN and "already attached" in (late.reason or "")
    assert len(emulator.mastodon_statuses()) == 1


@pytest.mark.parametrize(("text", "words"), [
    ("x" * 501, "Text character limit of 500 exceeded"),
    ("", None),  # media alone is a valid status
])
def test_text_checks_follow_the_servers_limit(tmp_path: Path, emulator: Emulator, client: httpx.Client,
                                              clock: ManualClock, text: str, words: str | None) -> None:
    outcome, _ctx, _ = drive(target(clock).steps(), make_ctx(tmp_path, emulator, text=text), client,
                             wait=clock.advance)
    if words is None:
        assert outcome.kind is Kind.DONE
    else:
        assert outcome.kind is Kind.REJECTED
        assert outcome.reason == f"Mastodon answered 422: Validation failed: {words}"


def test_a_blank_text_without_media_is_refused_in_mastodons_words(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    ctx = make_ctx(tmp_path, emulator, text=" ")
    outcome = perform(CreateStatus(CONFIG, clock), ctx, client)
    assert outcome.kind is Kind.REJECTED
    assert outcome.reason == "Mastodon answered 422: Validation failed: Text can't be blank"


def test_an_image_over_the_servers_size_limit_is_rejected(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    emulator.state.mastodon.settings.image_size_limit = 1000
    outcome, _ctx, _ = drive(target(clock).steps(), make_ctx(tmp_path, emulator), client, wait=clock.advance)
    assert outcome.kind is Kind.REJECTED
    assert "File file size must be less than 1000 Bytes" in (outcome.reason or "")
    emulator.state.mastodon.settings.proxy_body_limit = 500
    outcome, _ctx, _ = drive(target(clock).steps(), make_ctx(tmp_path, emulator, job_id=8), client,
                             wait=clock.advance)
    assert outcome.kind is Kind.REJECTED and "413" in (outcome.reason or "")
    assert emulator.mastodon_statuses() == []


def test_alt_text_over_the_description_limit_is_refused(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    emulator.state.mastodon.settings.description_limit = 10
    outcome, _ctx, _ = drive(target(clock).steps(), make_ctx(tmp_path, emulator), client, wait=clock.advance)
    assert outcome.kind is Kind.REJECTED
    assert "Description is too long (maximum is 10 characters)" in (outcome.reason or "")


def test_a_refused_token_and_a_missing_scope_are_sign_in_problems(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    ctx = dataclasses.replace(make_ctx(tmp_path, emulator), access_token="not-a-token")
    outcome = perform(target(clock).steps()[0], ctx, client)
    assert outcome.kind is Kind.AUTH and "The access token is invalid" in (outcome.reason or "")
    narrow = make_ctx(tmp_path, emulator, scopes=("read:accounts",))
    outcome = perform(target(clock).steps()[0], narrow, client)
    assert outcome.kind is Kind.AUTH and "This action is outside the authorized scopes" in (outcome.reason or "")


def test_a_429_waits_until_the_iso_reset_and_a_5xx_on_create_is_unknown(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    emulator.state.mastodon.settings.api_limit = 1
    ctx = make_ctx(tmp_path, emulator)
    upload = target(clock).steps()[0]
    assert perform(upload, ctx, client).kind is Kind.NEXT
    limited = perform(upload, ctx, client)
    assert limited.kind is Kind.RATE_LIMITED
    window = limited.data["rate_limit"]["window"]
    assert window["remaining"] == 0 and 0 < window["reset"] - NOW <= 300
    assert limited.retry_after == pytest.approx(window["reset"] - NOW + 1.0)
    emulator.state.mastodon.settings.api_limit = 300
    emulator.respond_with("mastodon.statuses.create", 503)
    outcome = perform(CreateStatus(CONFIG, clock), ctx, client)
    assert outcome.kind is Kind.UNKNOWN


def test_rate_limit_headers_take_iso_8601_or_epoch() -> None:
    iso = httpx.Headers({"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset": "2027-01-15T10:30:00.000000Z"})
    assert rate_limit_data(iso)["rate_limit"]["window"]["reset"] == 1_800_009_000
    assert rate_limit_data(httpx.Headers({"X-RateLimit-Reset": "1800000000"}))["rate_limit"]["window"]["reset"] \
        == 1800000000
    assert rate_limit_data(httpx.Headers({})) == {}


# --- reconciliation -------------------------------------------------------------------------------


def ask(tgt: MastodonTarget, ctx: JobContext, client: httpx.Client, intent_at: float) -> tuple[Verdict, JobContext]:
    """What the runner's _ask does: build, send, parse, merge ASK_AGAIN data."""
    for _ in range(8):
        request = tgt.reconciler.build(ctx, "create_status", intent_at)
        assert request is not None
        finding = tgt.reconciler.parse(ctx, "create_status", client.send(request))
        ctx = dataclasses.replace(ctx, data={**ctx.data, **finding.data})
        if finding.verdict is not Verdict.ASK_AGAIN:
            return finding.verdict, dataclasses.replace(ctx, data={**ctx.data, "finding": finding})
    raise AssertionError("no verdict")


def test_unattached_media_proves_the_status_was_not_made_whatever_the_time(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    tgt = target(clock)
    ctx = make_ctx(tmp_path, emulator)
    ctx = dataclasses.replace(ctx, data=dict(perform(tgt.steps()[0], ctx, client).data))
    clock.advance(5 * 3600)
    verdict, _ = ask(tgt, ctx, client, NOW)
    assert verdict is Verdict.ABSENT


def test_a_status_made_is_found_on_the_account_past_the_key_window(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    tgt = target(clock)
    ctx = make_ctx(tmp_path, emulator)
    ctx = dataclasses.replace(ctx, data=dict(perform(tgt.steps()[0], ctx, client).data))
    made = perform(tgt.steps()[2], ctx, client)
    # Other statuses made since push ours off the first page.
    for index in range(45):
        other = make_ctx(tmp_path, emulator, job_id=100 + index, text=f"other {index}")
        other = dataclasses.replace(other, data=dict(perform(tgt.steps()[0], other, client).data))
        assert perform(tgt.steps()[2], other, client).kind is Kind.DONE
    clock.advance(2 * 3600)
    verdict, found = ask(tgt, ctx, client, NOW)
    assert verdict is Verdict.POSTED
    assert found.data["finding"].remote_id == made.remote_id
    assert found.data["finding"].permalink == made.permalink


def test_attached_media_not_found_on_the_account_is_for_a_person_past_the_window(
        tmp_path: Path, emulator: Emulator, client: httpx.Client, clock: ManualClock) -> None:
    tgt = target(clock)
    ctx = make_ctx(tmp_path, emulator)
    ctx = dataclasses.replace(ctx, data=dict(perform(tgt.steps()[0], ctx, client).data))
    media_id = str(ctx.data["media_id"])
    emulator.state.mastodon.media[media_id].status_id = "1"  # attached to a status we cannot see
    verdict, found = ask(tgt, ctx, client, NOW)
    assert verdict is Verdict.ABSENT and "Idempotency-Key" in (found.data["finding"].reason or "")
    clock.advance(3600)
    verdict, found = ask(tgt, ctx, client, NOW)
    assert verdict is Verdict.UNKNOWN and found.data["finding"].final


# --- the link check ---------------------------------------------------------------------------------


def test_the_link_check_reads_the_status_back(tmp_path: Path, emulator: Emulator, client: httpx.Client,
                                              clock: ManualClock) -> None:
    outcome, ctx, _ = drive(target(clock).steps(), make_ctx(tmp_path, emulator), client, wait=clock.advance)
    assert outcome.remote_id
    state, detail = LINK_CHECK.parse(client.send(LINK_CHECK.build(CONFIG, outcome.remote_id, ctx.access_token)))
    assert (state, detail) == ("ok", outcome.permalink)
    emulator.state.mastodon.statuses.clear()
    state, detail = LINK_CHECK.parse(client.send(LINK_CHECK.build(CONFIG, outcome.remote_id, None)))
    assert (state, detail) == ("broken", "Mastodon answered 404: Record not found")
    emulator.respond_with("mastodon.statuses.show", 503)
    assert LINK_CHECK.parse(client.send(LINK_CHECK.build(CONFIG, "1", None)))[0] == "unknown"


def test_preview_uses_the_limits_the_server_told(workspace: dict[str, Path]) -> None:
    from crosswatch.config import load_config
    from crosswatch.journal import Journal
    from crosswatch.preview import build_preview
    from tests.conftest import jpeg_bytes, write_config, xmp_packet

    path = write_config(workspace, targets={"mastodon": {"instance": f"{ORIGIN}/mastodon"}},
                        watch=[{"path": str(workspace["inbox"]), "targets": ["mastodon"]}],
                        captions={"mastodon": "{title} {description}"})
    config = load_config(path)
    photo = workspace["inbox"] / "long.jpg"
    photo.write_bytes(jpeg_bytes(3, size=(1600, 1200), xmp=xmp_packet("A title " * 20, "An alt text " * 40)))
    never_read = build_preview(config, photo)["targets"]["mastodon"]
    assert never_read["limit"] == 500
    with Journal(config.journal_path) as journal:
        journal.set_platform_info("mastodon", {"max_characters": 60, "image_matrix_limit": 400 * 400,
                                               "description_limit": 100})
    told = build_preview(config, photo)["targets"]["mastodon"]
    assert told["limit"] == 60 and told["length"] <= 60 < never_read["length"]
    assert len(told["alt_text"]) <= 100 < len(never_read["alt_text"])
    assert told["image"]["width"] * told["image"]["height"] < 400 * 400


def test_the_emulated_oauth_refuses_what_mastodon_refuses(emulator: Emulator, client: httpx.Client) -> None:
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    base = f"{ORIGIN}/mastodon"
    app = client.post(f"{base}/api/v1/apps", data={"client_name": "crosswatch", "redirect_uris": "http://127.0.0.1:9/cb",
                                                  "scopes": "write:media write:statuses read:accounts"}).json()
    assert client.post(f"{base}/api/v1/apps", data={"client_name": "x", "redirect_uris": "http://a/b",
                                                    "scopes": "write:everything"}).status_code == 422
    verifier = "v" * 64
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": "http://127.0.0.1:9/cb",
             "scope": "write:media read:accounts", "state": "s1",
             "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
    assert client.get(f"{base}/oauth/authorize", params={**query, "redirect_uri": "http://evil/cb"}).status_code == 400
    too_wide = client.get(f"{base}/oauth/authorize", params={**query, "scope": "admin:write"})
    assert "error=invalid_scope" in too_wide.headers["location"]
    code = httpx.URL(client.get(f"{base}/oauth/authorize", params=query).headers["location"]).params["code"]
    form = {"grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
            "client_secret": app["client_secret"], "redirect_uri": "http://127.0.0.1:9/cb"}
    wrong = client.post(f"{base}/oauth/token", data={**form, "code_verifier": "w" * 64})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    issued = client.post(f"{base}/oauth/token", data={**form, "code_verifier": verifier})
    assert issued.status_code == 200 and set(issued.json()) == {"access_token", "token_type", "scope", "created_at"}
    again = client.post(f"{base}/oauth/token", data={**form, "code_verifier": verifier})
    assert again.status_code == 400  # a code is used once
    refused = client.post(f"{base}/oauth/revoke", data={"client_id": app["client_id"], "client_secret": "nope",
                                                         "token": issued.json()["access_token"]})
    assert refused.status_code == 403
