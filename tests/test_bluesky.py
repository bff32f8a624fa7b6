"""Bluesky: facets, TIDs, limits, the steps and reconciler against the emulator's PDS on MockTransport,
and the emulator's lexicon checks (the atproto lexicons shipped in crosswatch/emulator/data/lexicons)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosswatch.config import TargetConfig
from crosswatch.emulator import Emulator, sample_jpeg
from crosswatch.emulator.bluesky_lexicon import LexiconError, validate_record
from crosswatch.emulator.bluesky_state import DEFAULT_BSKY_APP_PASSWORD, DEFAULT_BSKY_DID, DEFAULT_BSKY_HANDLE
from crosswatch.models import Caption, PreparedImage
from crosswatch.platforms import registry
from crosswatch.platforms.base import Finding, JobContext, Kind, Verdict
from crosswatch.platforms.bluesky.limits import MAX_GRAPHEMES, fits, graphemes, post_length
from crosswatch.platforms.bluesky.richtext import detect_facets
from crosswatch.platforms.bluesky.signin import create_session, jwt_expiry, pds_endpoint
from crosswatch.platforms.bluesky.steps import (
    LINK_CHECK,
    BlueskyReconciler,
    BlueskyTarget,
    CreatePost,
    UploadBlob,
    post_record,
    rate_limit_data,
)
from crosswatch.platforms.bluesky.tid import is_tid, make_tid, tid_for_job, tid_microseconds
from tests.target_helpers import drive

ORIGIN = "https://pds.test"
CONFIG = TargetConfig(name="bluesky", kind="bluesky", service=ORIGIN, handle=DEFAULT_BSKY_HANDLE, language="en")


@pytest.fixture
def emulator() -> Emulator:
    return Emulator()


@pytest.fixture
def client(emulator: Emulator) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(emulator.handle))


def make_ctx(tmp_path: Path, client: httpx.Client, text: str, *, job_id: int = 1, alt: str | None = "A heron",
             size: tuple[int, int] = (800, 600)) -> JobContext:
    tokens = create_session(CONFIG, client, DEFAULT_BSKY_APP_PASSWORD, time.time())
    path = tmp_path / f"photo-{job_id}.jpg"
    path.write_bytes(sample_jpeg(*size))
    image = PreparedImage(str(path), size[0], size[1], path.stat().st_size, "JPEG", 85, None)
    caption = Caption(text=text, length=post_length(text), limit=300, alt_text=alt, hashtags=(), shortened=())
    return JobContext(job_id=job_id, target="bluesky", photo_hash="h", photo_path=path, caption=caption, image=image,
                      access_token=tokens.access_token, account_id=tokens.account_id, api_base=tokens.api_base,
                      data={"username": tokens.username})


def read_back(ctx: JobContext, client: httpx.Client) -> Finding:
    reconciler = BlueskyReconciler(CONFIG)
    request = reconciler.build(ctx, "create_post", 0.0)
    assert request is not None
    return reconciler.parse(ctx, "create_post", client.send(request))


def covered(text: str, facet: dict[str, object]) -> str:
    index = facet["index"]
    assert isinstance(index, dict)
    return text.encode("utf-8")[index["byteStart"]:index["byteEnd"]].decode("utf-8")


# --- facets ----------------------------------------------------------------------------------------


def test_facets_slice_the_utf8_bytes_of_links_and_tags() -> None:
    text = "Café 🐦‍⬛ at dawn (https://example.com/a?b=1). #birds #東京 #e\u0301t\u00e9! #2024 nope#no"
    facets = detect_facets(text)
    seen = [(covered(text, f), f["features"][0]) for f in facets]
    assert seen == [
        ("https://example.com/a?b=1", {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a?b=1"}),
        ("#birds", {"$type": "app.bsky.richtext.facet#tag", "tag": "birds"}),
        ("#東京", {"$type": "app.bsky.richtext.facet#tag", "tag": "東京"}),
        ("#e\u0301t\u00e9", {"$type": "app.bsky.richtext.facet#tag", "tag": "e\u0301t\u00e9"}),
    ]  # "#2024" is all digits and "nope#no" does not follow white space: no tags, as in the app


WORDS = st.sampled_from(["heron", "東京", "🐦‍⬛", "e\u0301", "café", "naïve", "👩🏽‍🔬", "ÅÄÖ", "(", ")", ".", "!"])
TAGS = st.builds(lambda w: "#" + w, st.sampled_from(["birds", "東京", "café", "e\u0301x", "fotografía", "b2b"]))
URLS = st.builds(lambda p: "https://example.org/" + p, st.sampled_from(["", "a", "ü/ß?q=1", "x_y-z#frag"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(WORDS, TAGS, URLS), min_size=1, max_size=12))
def test_every_facet_covers_exactly_its_tag_or_url(parts: list[str]) -> None:
    text = " ".join(parts)
    facets = detect_facets(text)
    expected = [p for p in parts if p.startswith(("#", "https://"))]
    assert [covered(text, f) for f in facets] == expected
    for facet in facets:
        feature = facet["features"][0]
        if feature["$type"].endswith("#tag"):
            assert feature["tag"] == covered(text, facet)[1:] and "#" not in feature["tag"]
        else:
            assert feature["uri"] == covered(text, facet)


# --- TIDs and limits -------------------------------------------------------------------------------


def test_tids_are_valid_sortable_and_stable_for_a_job() -> None:
    assert make_tid(0, 0) == "2222222222222"
    first, later = tid_for_job(12, 1_800_000_000.0), tid_for_job(12, 1_800_000_001.0)
    assert is_tid(first) and is_tid(later) and first < later
    assert tid_for_job(12, 1_800_000_000.0) == first != tid_for_job(13, 1_800_000_000.0)
    assert tid_microseconds(first) == 1_800_000_000_000_000
    assert not is_tid("3n3n3j4lsgo2") and not is_tid("kn3n3j4lsgo2b")


def test_length_counts_graphemes_and_keeps_within_3000_bytes() -> None:
    assert graphemes("e\u0301👩🏽‍🔬") == 2 and post_length("e\u0301👩🏽‍🔬") == 2
    family = "👨‍👩‍👧‍👦" * 150  # 150 graphemes, 3,750 bytes
    assert graphemes(family) == 150 and post_length(family) == 375 > MAX_GRAPHEMES and not fits(family)
    assert fits("a" * 300) and not fits("a" * 301)
    limits = registry.limits("bluesky")
    assert limits.image.max_bytes == 2_000_000 and limits.caption_limit == 300


def test_the_lexicon_in_the_emulator_says_the_same_limits() -> None:
    folder = Path(__file__).resolve().parent.parent / "crosswatch/emulator/data/lexicons"
    post = json.loads((folder / "app/bsky/feed/post.json").read_text())
    images = json.loads((folder / "app/bsky/embed/images.json").read_text())
    text = post["defs"]["main"]["record"]["properties"]["text"]
    assert (text["maxGraphemes"], text["maxLength"]) == (300, 3000)
    assert images["defs"]["image"]["properties"]["image"]["maxSize"] == registry.limits("bluesky").image.max_bytes
    assert images["defs"]["main"]["properties"]["images"]["maxLength"] == 4
    assert (folder / "LICENSE-MIT.txt").exists() and (folder / "LICENSE-APACHE.txt").exists()


# --- sign-in answers ---------------------------------------------------------------------------------


def test_the_session_carries_a_jwt_expiry_and_the_pds_from_the_did_document(client: httpx.Client) -> None:
    tokens = create_session(CONFIG, client, DEFAULT_BSKY_APP_PASSWORD, time.time())
    assert tokens.account_id == DEFAULT_BSKY_DID and tokens.username == DEFAULT_BSKY_HANDLE
    assert tokens.api_base == ORIGIN and tokens.expires_at is not None
    assert 7000 < tokens.expires_at - time.time() <= 7200
    assert jwt_expiry("not.a.jwt") is None and jwt_expiry("x") is None
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 123}).encode()).decode().rstrip("=")
    assert jwt_expiry(f"e30.{payload}.sig") == 123.0
    assert pds_endpoint({"service": [{"id": "#atproto_pds", "serviceEndpoint": "https://pds.example/"}]}) \
        == "https://pds.example"
    assert pds_endpoint({"service": [{"id": "#other", "serviceEndpoint": "https://x"}]}) is None


# --- steps and reconciler against the emulator ---------------------------------------------------


def test_a_post_goes_out_with_its_image_alt_aspect_ratio_langs_and_facets(
        tmp_path: Path, emulator: Emulator, client: httpx.Client) -> None:
    text = "Heron at dawn 🐦 https://example.com/x. #birds #東京"
    ctx = make_ctx(tmp_path, client, text)
    target = BlueskyTarget(CONFIG)
    outcome, final, performed = drive(target.steps(), ctx, client, wait=lambda _: None)
    assert outcome.kind is Kind.DONE and performed == ["upload_blob", "create_post"]
    rkey = str(final.data["rkey"])
    assert is_tid(rkey)
    assert outcome.remote_id == f"at://{DEFAULT_BSKY_DID}/app.bsky.feed.post/{rkey}"
    assert outcome.permalink == f"https://bsky.app/profile/{DEFAULT_BSKY_HANDLE}/post/{rkey}"
    [post] = emulator.snapshot()["bluesky"]["posts"]
    record = post["record"]
    assert record["text"] == text and record["langs"] == ["en"]
    assert record["embed"]["images"][0]["alt"] == "A heron"
    assert record["embed"]["images"][0]["aspectRatio"] == {"width": 800, "height": 600}
    assert [covered(text, f) for f in record["facets"]] == ["https://example.com/x", "#birds", "#東京"]
    assert post["images"][0]["size"] == Path(ctx.photo_path).stat().st_size


def test_a_second_create_on_the_key_is_a_500_and_the_read_back_finds_the_post(
        tmp_path: Path, emulator: Emulator, client: httpx.Client) -> None:
    upload, create = UploadBlob(CONFIG), CreatePost(CONFIG)
    ctx = make_ctx(tmp_path, client, "Once only #birds")
    _, ctx, _ = drive([upload], ctx, client, wait=lambda _: None)
    assert read_back(ctx, client).verdict is Verdict.ABSENT
    assert client.send(create.build(ctx)).status_code == 200
    again = client.send(create.build(ctx))
    assert again.status_code == 500
    assert again.json() == {"error": "InternalServerError", "message": "Internal Server Error"}
    assert create.parse(ctx, again).kind is Kind.UNKNOWN
    finding = read_back(ctx, client)
    assert finding.verdict is Verdict.POSTED and finding.remote_id and finding.remote_id.endswith(str(ctx.data["rkey"]))
    assert len(emulator.snapshot()["bluesky"]["posts"]) == 1


def test_the_link_check_reads_the_record_and_a_deleted_one_is_broken(
        tmp_path: Path, emulator: Emulator, client: httpx.Client) -> None:
    outcome, _, _ = drive(BlueskyTarget(CONFIG).steps(), make_ctx(tmp_path, client, "Check me"), client,
                              wait=lambda _: None)
    assert outcome.remote_id is not None
    assert LINK_CHECK.parse(client.send(LINK_CHECK.build(CONFIG, outcome.remote_id, None)))[0] == "ok"
    with emulator.state.lock:
        emulator.state.bluesky.records.clear()
    state, detail = LINK_CHECK.parse(client.send(LINK_CHECK.build(CONFIG, outcome.remote_id, None)))
    assert state == "broken" and "Could not locate record" in detail


def test_expired_and_bogus_tokens_are_400s_that_ask_for_a_refresh(
        tmp_path: Path, emulator: Emulator, client: httpx.Client) -> None:
    upload = UploadBlob(CONFIG)
    ctx = make_ctx(tmp_path, client, "x")
    emulator.advance_clock(7201)
    expired = client.send(upload.build(ctx))
    assert (expired.status_code, expired.json()["error"]) == (400, "ExpiredToken")
    assert upload.parse(ctx, expired).kind is Kind.AUTH
    from dataclasses import replace
    bogus = client.send(upload.build(replace(ctx, access_token="nope")))
    assert (bogus.status_code, bogus.json()["error"]) == (400, "InvalidToken")
    missing = client.send(upload.build(replace(ctx, access_token=None)))
    assert (missing.status_code, missing.json()["error"]) == (401, "AuthMissing")


def test_rate_limit_headers_become_the_runner_convention() -> None:
    headers = httpx.Headers({"ratelimit-limit": "30", "ratelimit-remaining": "0", "ratelimit-reset": "1800000300",
                             "ratelimit-policy": "30;w=300"})
    assert rate_limit_data(headers) == {"rate_limit": {"window": {"limit": 30, "remaining": 0, "reset": 1800000300}}}
    assert rate_limit_data(httpx.Headers()) == {}


# --- the emulator refuses what the lexicon refuses ----------------------------------------------------


def _record(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2026-12-01T20:00:00.000Z"}
    record.update(changes)
    return record


@pytest.mark.parametrize(("record", "words"), [
    (_record(text="a" * 301), "Record/text must not be longer than 300 graphemes"),
    (_record(text="é" * 1501), "Record/text must not be longer than 3000 characters"),
    (_record(createdAt="yesterday"), "Record/createdAt must be a valid datetime"),
    (_record(langs=["en", "de", "fr", "es"]), "Record/langs must not have more than 3 elements"),
    (_record(langs=["not a language"]), "Record/langs/0 must be a valid language"),
    (_record(facets=[{"index": {"byteStart": 0, "byteEnd": 2}, "features": [{"$type": "app.bsky.richtext.facet#tag",
                                                                             "tag": "#" * 641}]}]),
     "must not be longer than 640 characters"),
    (_record(facets=[{"index": {"byteStart": -1, "byteEnd": 2},
                      "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://a.b"}]}]),
     "byteStart can not be less than 0"),
    (_record(embed={"$type": "app.bsky.embed.images", "images": [
        {"image": {"$type": "blob", "ref": {"$link": "bafk"}, "mimeType": "image/jpeg", "size": 2_000_001},
         "alt": ""}]}),
     "blob too big (maximum 2000000, got 2000001)"),
    (_record(embed={"$type": "app.bsky.embed.images", "images": [
        {"image": {"$type": "blob", "ref": {"$link": "bafk"}, "mimeType": "image/jpeg", "size": 10}}]}),
     'must have the property "alt"'),
    (_record(embed={"$type": "app.bsky.embed.images", "images": [
        {"image": {"$type": "blob", "ref": {"$link": "bafk"}, "mimeType": "text/plain", "size": 10}, "alt": ""}]}),
     "mime type must be one of image/*"),
    ({"$type": "app.bsky.feed.post", "text": "no date"}, 'must have the property "createdAt"'),
])
def test_the_lexicon_validator_refuses_in_the_reference_words(record: dict[str, object], words: str) -> None:
    with pytest.raises(LexiconError, match=r"Invalid app\.bsky\.feed\.post record") as raised:
        validate_record("app.bsky.feed.post", record)
    assert words in str(raised.value)


def test_the_validator_accepts_what_crosswatch_sends(tmp_path: Path, client: httpx.Client) -> None:
    ctx = make_ctx(tmp_path, client, "Fine #ok https://example.com")
    record = post_record(CONFIG, ctx)
    validate_record("app.bsky.feed.post", record)


def test_the_pds_refuses_bad_keys_foreign_blobs_and_oversized_uploads(
        tmp_path: Path, emulator: Emulator, client: httpx.Client) -> None:
    upload, create = UploadBlob(CONFIG), CreatePost(CONFIG)
    ctx = make_ctx(tmp_path, client, "keys")
    _, ctx, _ = drive([upload], ctx, client, wait=lambda _: None)
    from dataclasses import replace
    bad_key = client.send(create.build(replace(ctx, data={**ctx.data, "rkey": "not-a-tid"})))
    assert bad_key.status_code == 400 and "Record key must be a TID" in bad_key.json()["message"]
    foreign = {**dict(ctx.data["blob"]), "ref": {"$link": "bafkreiaaaa"}}
    unknown_blob = client.send(create.build(replace(ctx, data={**ctx.data, "blob": foreign})))
    assert unknown_blob.status_code == 400 and unknown_blob.json()["error"] == "BlobNotFound"
    assert unknown_blob.json()["message"] == "Could not find blob: bafkreiaaaa"
    assert create.parse(ctx, unknown_blob).kind is Kind.AGAIN  # uploaded again, then posted
    big = httpx.Request("POST", f"{ORIGIN}/xrpc/com.atproto.repo.uploadBlob", content=b"\0" * (5 * 1024 * 1024 + 1),
                        headers={"Authorization": f"Bearer {ctx.access_token}", "Content-Type": "image/jpeg"})
    too_big = client.send(big)
    assert (too_big.status_code, too_big.json()["error"]) == (413, "PayloadTooLarge")
    assert upload.parse(ctx, too_big).kind is Kind.REJECTED
    assert emulator.snapshot()["bluesky"]["posts"] == []


def test_the_emulator_page_shows_the_post_with_its_facets_as_links(
        tmp_path: Path, emulator: Emulator, client: httpx.Client) -> None:
    outcome, _, _ = drive(BlueskyTarget(CONFIG).steps(), make_ctx(tmp_path, client, "Dawn 🐦 #東京 https://e.com/x"),
                          client, wait=lambda _: None)
    page = client.get(f"{ORIGIN}/_emulator/").text
    assert "Bluesky (1)" in page
    assert '<a class="facet-tag" href="/_emulator/bsky/hashtag/東京">#東京</a>' in page
    assert '<a class="facet-link" href="https://e.com/x">https://e.com/x</a>' in page
    rkey = str(outcome.remote_id).rsplit("/", 1)[-1]
    own = client.get(f"{ORIGIN}/_emulator/bsky/profile/{DEFAULT_BSKY_HANDLE}/post/{rkey}")
    assert own.status_code == 200 and 'alt="A heron"' in own.text
    assert client.get(f"{ORIGIN}/_emulator/bsky/profile/{DEFAULT_BSKY_HANDLE}/post/nope").status_code == 404


def test_sign_ins_are_limited_a_day_and_refresh_tokens_are_single_use_with_a_grace(
        emulator: Emulator, client: httpx.Client) -> None:
    from crosswatch.emulator.bluesky_state import BlueskySettings
    from crosswatch.errors import TransientPlatformError
    from crosswatch.platforms.bluesky.signin import refresh_session

    with emulator.state.lock:
        emulator.state.bluesky.settings = BlueskySettings(create_session_per_day=2)
    first = create_session(CONFIG, client, DEFAULT_BSKY_APP_PASSWORD, time.time())
    create_session(CONFIG, client, DEFAULT_BSKY_APP_PASSWORD, time.time())
    with pytest.raises(TransientPlatformError, match="RateLimitExceeded"):
        create_session(CONFIG, client, DEFAULT_BSKY_APP_PASSWORD, time.time())
    fresh = refresh_session(CONFIG, client, first, time.time())
    again = refresh_session(CONFIG, client, first, time.time())  # within the grace: the same successor
    assert (again.access_token, again.refresh_token) == (fresh.access_token, fresh.refresh_token)
    assert fresh.refresh_token != first.refresh_token and fresh.api_base == ORIGIN
    emulator.advance_clock(7201)
    from crosswatch.auth.tokens import SignInRefused
    with pytest.raises(SignInRefused, match="ExpiredToken"):
        refresh_session(CONFIG, client, first, time.time())
    assert refresh_session(CONFIG, client, fresh, time.time()).access_token != fresh.access_token
