"""The bundled emulator: OAuth, posting flows, limits, faults and inspection, in-process and on a socket.

Every test's X traffic is checked against X's OpenAPI document (see tests/emulator_fixtures.py).
"""

from __future__ import annotations

import base64
import functools
import io
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from crosswatch.emulator import (
    DEFAULT_IG_CLIENT_ID,
    DEFAULT_IG_CLIENT_SECRET,
    DEFAULT_IG_USER_ID,
    DEFAULT_X_CLIENT_ID,
    DEFAULT_X_USER_ID,
    Emulator,
    EmulatorServer,
    EmulatorSettings,
    ManualClock,
    RateLimit,
    generate_pkce_pair,
    run_emulator,
    sample_jpeg,
)
from tests.emulator_fixtures import OpenAPIRecorder, watch_openapi
from tests.openapi_check import XOpenAPI

PHOTOS = Path(__file__).resolve().parent / "data" / "photos"
REAL_JPEG = PHOTOS / "dn-Samsung GT-I9000 (Galaxy S).jpg"  # 640x480
WIDE_JPEG = PHOTOS / "dn-Issue 258 (dotnet).jpg"  # 1000x500: wider than 1.91:1
MPO_JPEG = PHOTOS / "et-ExifTool.jpg"  # a multi-picture JPEG
PNG = PHOTOS / "et-PNG.png"
REDIRECT = "http://127.0.0.1:8765/callback"
X_SCOPES = "tweet.read tweet.write users.read media.write offline.access"
BASE = "http://emulator.test"

# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> XOpenAPI:
    return XOpenAPI()


class Rig:
    """An emulator on a manual clock, a client through MockTransport, and the OpenAPI recorder."""

    def __init__(self, spec: XOpenAPI, settings: EmulatorSettings | None = None) -> None:
        self.clock = ManualClock(1_800_000_000.0)
        self.emulator = Emulator(settings or EmulatorSettings(), clock=self.clock)
        self.recorder: OpenAPIRecorder = watch_openapi(self.emulator, spec)
        self.client = httpx.Client(transport=httpx.MockTransport(self.emulator.handle), base_url=BASE)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def make_rig(spec: XOpenAPI) -> Iterator[Any]:
    rigs: list[Rig] = []

    def build(settings: EmulatorSettings | None = None) -> Rig:
        rig = Rig(spec, settings)
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        rig.close()
    for rig in rigs:
        rig.recorder.assert_clean()


@pytest.fixture
def rig(make_rig: Any) -> Rig:
    return make_rig()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class _FileServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # The emulator hangs up once an image passes the size limit; that is expected here.
        return


@pytest.fixture
def image_host(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain local web server standing in for the public host Meta fetches image_url from."""
    root = tmp_path / "public"
    root.mkdir()
    server = _FileServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- helpers -----------------------------------------------------------------------------------------


def x_authorize(client: httpx.Client, challenge: str, **overrides: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": DEFAULT_X_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": X_SCOPES,
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return client.get("/i/oauth2/authorize", params=params)


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def x_sign_in(client: httpx.Client, client_id: str = DEFAULT_X_CLIENT_ID) -> dict[str, Any]:
    verifier, challenge = generate_pkce_pair()
    code = redirect_query(x_authorize(client, challenge, client_id=client_id))["code"]
    response = client.post(
        "/2/oauth2/token",
        data={
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def x_refresh(client: httpx.Client, refresh_token: str) -> httpx.Response:
    return client.post(
        "/2/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": DEFAULT_X_CLIENT_ID,
        },
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def upload(client: httpx.Client, token: str, data: bytes) -> httpx.Response:
    return client.post(
        "/2/media/upload",
        headers=bearer(token),
        data={"media_category": "tweet_image"},
        files={"media": ("photo.jpg", data, "image/jpeg")},
    )


def post_photo(client: httpx.Client, token: str, text: str, data: bytes, alt: str) -> httpx.Response:
    media_id = upload(client, token, data).json()["data"]["id"]
    alt_response = client.post(
        "/2/media/metadata",
        headers=bearer(token),
        json={"id": media_id, "metadata": {"alt_text": {"text": alt}}},
    )
    assert alt_response.status_code == 200
    return client.post(
        "/2/tweets", headers=bearer(token), json={"text": text, "media": {"media_ids": [media_id]}}
    )


def graph_error(response: httpx.Response) -> tuple[int, int | None]:
    error = response.json()["error"]
    assert {"message", "type", "code", "fbtrace_id"} <= set(error)
    return error["code"], error.get("error_subcode")


def ig_token(emulator: Emulator) -> str:
    token: str = emulator.mint_ig_token()["access_token"]
    return token


def jpeg_of_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


# --- X: OAuth ------------------------------------------------------------------------------------------


def test_x_pkce_code_exchange_then_refresh_rotates_and_rejects_reuse(rig: Rig) -> None:
    tokens = x_sign_in(rig.client)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 7200
    assert tokens["scope"] == X_SCOPES

    rotated = x_refresh(rig.client, tokens["refresh_token"])
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != tokens["refresh_token"]

    reused = x_refresh(rig.client, tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_request"

    again = x_refresh(rig.client, rotated.json()["refresh_token"])
    assert again.status_code == 200
    me = rig.client.get("/2/users/me", headers=bearer(again.json()["access_token"]))
    assert me.json()["data"]["id"] == DEFAULT_X_USER_ID


def test_x_code_is_single_use_short_lived_and_bound_to_the_verifier(rig: Rig) -> None:
    verifier, challenge = generate_pkce_pair()
    form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "client_id": DEFAULT_X_CLIENT_ID}

    code = redirect_query(x_authorize(rig.client, challenge))["code"]
    wrong = rig.client.post("/2/oauth2/token", data={**form, "code": code, "code_verifier": "x" * 50})
    assert wrong.status_code == 400
    ok = rig.client.post("/2/oauth2/token", data={**form, "code": code, "code_verifier": verifier})
    assert ok.status_code == 200
    replay = rig.client.post("/2/oauth2/token", data={**form, "code": code, "code_verifier": verifier})
    assert replay.status_code == 400

    late = redirect_query(x_authorize(rig.client, challenge))["code"]
    rig.clock.advance(31)
    expired = rig.client.post("/2/oauth2/token", data={**form, "code": late, "code_verifier": verifier})
    assert expired.status_code == 400
    assert expired.json()["error_description"] == "Value passed for the authorization code was invalid."


def test_x_authorize_validates_the_request_and_reports_denial(rig: Rig) -> None:
    _, challenge = generate_pkce_pair()
    assert x_authorize(rig.client, challenge, client_id="nobody").status_code == 400
    assert x_authorize(rig.client, challenge, scope="tweet.read bogus.scope").status_code == 400
    assert x_authorize(rig.client, challenge, code_challenge_method="S512").status_code == 400
    assert x_authorize(rig.client, "short").status_code == 400

    redirected = redirect_query(x_authorize(rig.client, challenge))
    assert redirected["state"] == "state-123"

    rig.emulator.set_consent("x", approve=False)
    denied = redirect_query(x_authorize(rig.client, challenge))
    assert denied == {"error": "access_denied", "state": "state-123"}


def test_x_confidential_client_authenticates_with_basic(rig: Rig) -> None:
    rig.emulator.add_x_client("confidential-app", "s3cret", (REDIRECT,))
    verifier, challenge = generate_pkce_pair()
    code = redirect_query(x_authorize(rig.client, challenge, client_id="confidential-app"))["code"]
    form = {
        "code": code,
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }

    without = rig.client.post("/2/oauth2/token", data={**form, "client_id": "confidential-app"})
    assert without.status_code == 401
    assert without.json()["error"] == "unauthorized_client"
    with_basic = rig.client.post("/2/oauth2/token", data=form, auth=("confidential-app", "s3cret"))
    assert with_basic.status_code == 200


def test_x_expired_and_revoked_tokens_get_the_documented_401(make_rig: Any) -> None:
    rig = make_rig(EmulatorSettings(x_access_token_lifetime=5))
    tokens = x_sign_in(rig.client)
    assert tokens["expires_in"] == 5
    assert rig.client.get("/2/users/me", headers=bearer(tokens["access_token"])).status_code == 200
    rig.clock.advance(5)
    expired = rig.client.get("/2/users/me", headers=bearer(tokens["access_token"]))
    assert expired.status_code == 401
    assert expired.json() == {
        "title": "Unauthorized",
        "type": "about:blank",
        "status": 401,
        "detail": "Unauthorized",
    }
    assert rig.client.get("/2/users/me").status_code == 401

    fresh = x_refresh(rig.client, tokens["refresh_token"]).json()
    revoked = rig.client.post(
        "/2/oauth2/revoke", data={"token": fresh["access_token"], "client_id": DEFAULT_X_CLIENT_ID}
    )
    assert revoked.json() == {"revoked": True}
    assert rig.client.get("/2/users/me", headers=bearer(fresh["access_token"])).status_code == 401
    assert x_refresh(rig.client, fresh["refresh_token"]).status_code == 400
    state = rig.emulator.snapshot()
    assert all(t["revoked"] for t in state["x"]["refresh_tokens"] if t["token"] == fresh["refresh_token"])


# --- X: posting ----------------------------------------------------------------------------------------


def test_x_upload_alt_text_and_post_are_recorded_with_the_bytes(rig: Rig) -> None:
    token = x_sign_in(rig.client)["access_token"]
    photo = REAL_JPEG.read_bytes()
    uploaded = upload(rig.client, token, photo)
    assert uploaded.status_code == 200
    data = uploaded.json()["data"]
    assert data["media_key"] == f"3_{data['id']}"
    assert data["image"] == {"image_type": "image/jpeg", "w": 640, "h": 480}
    assert data["size"] == len(photo)

    alt = rig.client.post(
        "/2/media/metadata",
        headers=bearer(token),
        json={"id": data["id"], "metadata": {"alt_text": {"text": "A phone on a desk"}}},
    )
    assert alt.json()["data"]["associated_metadata"]["alt_text"]["text"] == "A phone on a desk"

    created = rig.client.post(
        "/2/tweets",
        headers=bearer(token),
        json={"text": "New photo 📷", "media": {"media_ids": [data["id"]]}},
    )
    assert created.status_code == 201
    post = created.json()["data"]
    assert post["text"] == "New photo 📷"

    [recorded] = rig.emulator.x_posts()
    assert recorded.id == post["id"]
    assert rig.emulator.x_media_bytes(data["id"]) == photo
    assert rig.emulator.x_alt_text(data["id"]) == "A phone on a desk"
    served = rig.client.get(f"/_emulator/media/x/{data['id']}")
    assert served.content == photo

    timeline = rig.client.get(
        f"/2/users/{DEFAULT_X_USER_ID}/tweets",
        headers=bearer(token),
        params={
            "max_results": 5,
            "post.fields": "created_at,attachments",
            "expansions": "attachments.media_keys",
            "media.fields": "alt_text,url,width,height",
        },
    ).json()
    assert timeline["data"][0]["attachments"]["media_keys"] == [data["media_key"]]
    assert timeline["includes"]["media"][0]["alt_text"] == "A phone on a desk"
    assert timeline["meta"]["result_count"] == 1


def test_x_json_base64_upload_is_accepted(rig: Rig) -> None:
    token = x_sign_in(rig.client)["access_token"]
    photo = sample_jpeg(300, 200)
    response = rig.client.post(
        "/2/media/upload",
        headers=bearer(token),
        json={"media": base64.b64encode(photo).decode(), "media_category": "tweet_image"},
    )
    assert response.status_code == 200
    assert rig.emulator.x_media_bytes(response.json()["data"]["id"]) == photo


def test_x_duplicate_content_is_refused_with_403(rig: Rig) -> None:
    token = x_sign_in(rig.client)["access_token"]
    photo = REAL_JPEG.read_bytes()
    assert post_photo(rig.client, token, "Same words", photo, "alt").status_code == 201
    duplicate = post_photo(rig.client, token, "Same words", photo, "alt")
    assert duplicate.status_code == 403
    assert duplicate.json()["detail"] == "You are not allowed to create a Tweet with duplicate content."
    assert post_photo(rig.client, token, "Other words", photo, "alt").status_code == 201
    assert len(rig.emulator.x_posts()) == 2


def test_x_refuses_bad_media_long_text_and_missing_scope(rig: Rig) -> None:
    token = x_sign_in(rig.client)["access_token"]
    assert upload(rig.client, token, b"not an image").status_code == 400
    assert upload(rig.client, token, PNG.read_bytes()).status_code == 200  # X takes PNG
    big = b"\xff\xd8" + b"\0" * (5 * 1024 * 1024)
    assert upload(rig.client, token, big).status_code == 400

    too_long = rig.client.post("/2/tweets", headers=bearer(token), json={"text": "é" * 281})
    assert too_long.status_code == 400
    assert "too long" in too_long.json()["detail"]
    assert rig.client.post("/2/tweets", headers=bearer(token), json={"text": "é" * 280}).status_code == 201
    bad_ids = rig.client.post(
        "/2/tweets", headers=bearer(token), json={"text": "x", "media": {"media_ids": ["1"]}}
    )
    assert bad_ids.status_code == 400

    read_only = rig.emulator.mint_x_token(scopes=("tweet.read", "users.read"))["access_token"]
    forbidden = upload(rig.client, read_only, REAL_JPEG.read_bytes())
    assert forbidden.status_code == 403
    assert forbidden.json()["title"] == "Forbidden"


def test_x_rate_limit_headers_count_down_then_429_until_the_window_resets(make_rig: Any) -> None:
    rig = make_rig(EmulatorSettings(x_rate_limits={"x.tweets.create": RateLimit(3, 60)}))
    token = x_sign_in(rig.client)["access_token"]
    start = rig.clock()
    remaining = []
    for n in range(3):
        response = rig.client.post("/2/tweets", headers=bearer(token), json={"text": f"post {n}"})
        assert response.status_code == 201
        assert response.headers["x-rate-limit-limit"] == "3"
        assert response.headers["x-rate-limit-reset"] == str(int(start + 60))
        remaining.append(int(response.headers["x-rate-limit-remaining"]))
    assert remaining == [2, 1, 0]

    limited = rig.client.post("/2/tweets", headers=bearer(token), json={"text": "post 4"})
    assert limited.status_code == 429
    assert limited.json() == {
        "title": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
        "detail": "Too Many Requests",
    }
    assert limited.headers["x-rate-limit-remaining"] == "0"
    assert len(rig.emulator.x_posts()) == 3

    rig.clock.advance(60)
    after = rig.client.post("/2/tweets", headers=bearer(token), json={"text": "post 4"})
    assert after.status_code == 201
    assert after.headers["x-rate-limit-remaining"] == "2"


def test_x_timeline_pages_and_filters(rig: Rig) -> None:
    token = x_sign_in(rig.client)["access_token"]
    ids = []
    for n in range(7):
        rig.clock.advance(10)
        ids.append(
            rig.client.post("/2/tweets", headers=bearer(token), json={"text": f"n{n}"}).json()["data"]["id"]
        )
    path = f"/2/users/{DEFAULT_X_USER_ID}/tweets"
    first = rig.client.get(path, headers=bearer(token), params={"max_results": 5}).json()
    assert [p["id"] for p in first["data"]] == ids[::-1][:5]
    second = rig.client.get(
        path,
        headers=bearer(token),
        params={"max_results": 5, "pagination_token": first["meta"]["next_token"]},
    ).json()
    assert [p["id"] for p in second["data"]] == ids[::-1][5:]
    assert "next_token" not in second["meta"]
    since = rig.client.get(path, headers=bearer(token), params={"since_id": ids[4]}).json()
    assert [p["id"] for p in since["data"]] == [ids[6], ids[5]]
    assert rig.client.get(path, headers=bearer(token), params={"max_results": 2}).status_code == 400
    assert rig.recorder.take() == [
        "GET /2/users/{id}/tweets query max_results: <root>: 2 is less than the minimum of 5"
    ]


def test_openapi_recorder_flags_requests_outside_the_document(spec: XOpenAPI) -> None:
    emulator = Emulator()
    recorder = watch_openapi(emulator, spec)
    token = emulator.mint_x_token()["access_token"]
    with httpx.Client(transport=httpx.MockTransport(emulator.handle), base_url=BASE) as client:
        client.post("/2/tweets", headers=bearer(token), json={"text": "hi", "colour": "red"})
        client.post(
            "/2/media/metadata", headers=bearer(token), json={"id": "12", "metadata": {"alt_text": {}}}
        )
        client.get("/2/made-up", headers=bearer(token))
    assert len(recorder.violations) == 3
    assert "'colour' was unexpected" in recorder.violations[0]
    assert "'text' is a required property" in recorder.violations[1]
    assert "not an operation" in recorder.violations[2]


# --- Instagram: sign-in ----------------------------------------------------------------------------------


def ig_code(client: httpx.Client) -> str:
    response = client.get(
        "/oauth/authorize",
        params={
            "client_id": DEFAULT_IG_CLIENT_ID,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "instagram_business_basic,instagram_business_content_publish",
            "state": "st",
        },
    )
    location = response.headers["location"]
    assert location.endswith("#_")
    return parse_qs(urlsplit(location.removesuffix("#_")).query)["code"][0]


def ig_exchange(client: httpx.Client, code: str) -> httpx.Response:
    return client.post(
        "/oauth/access_token",
        data={
            "client_id": DEFAULT_IG_CLIENT_ID,
            "client_secret": DEFAULT_IG_CLIENT_SECRET,
            "grant_type": "authorization_code",
            "redirect_uri": REDIRECT,
            "code": code,
        },
    )


def test_instagram_login_short_then_long_lived_then_refresh_after_24h(rig: Rig) -> None:
    code = ig_code(rig.client)
    exchanged = ig_exchange(rig.client, code)
    body = exchanged.json()
    assert body["user_id"] == int(DEFAULT_IG_USER_ID)
    assert body["permissions"] == ["instagram_business_basic", "instagram_business_content_publish"]
    replay = ig_exchange(rig.client, code)
    assert replay.status_code == 400
    assert replay.json() == {
        "error_type": "OAuthException",
        "code": 400,
        "error_message": "Matching code was not found or was already used",
    }

    long_lived = rig.client.get(
        "/access_token",
        params={
            "grant_type": "ig_exchange_token",
            "client_secret": DEFAULT_IG_CLIENT_SECRET,
            "access_token": body["access_token"],
        },
    ).json()
    assert long_lived["expires_in"] == 5183944
    params = {"grant_type": "ig_refresh_token", "access_token": long_lived["access_token"]}
    too_early = rig.client.get("/refresh_access_token", params=params)
    assert too_early.status_code == 400
    rig.clock.advance(24 * 3600)
    refreshed = rig.client.get("/refresh_access_token", params=params)
    assert refreshed.status_code == 200
    me = rig.client.get(
        "/v21.0/me", params={"fields": "user_id,username", "access_token": refreshed.json()["access_token"]}
    ).json()
    assert me["user_id"] == DEFAULT_IG_USER_ID
    assert me["username"] == "crosswatch.demo"


def test_instagram_documented_data_shape_can_be_selected(make_rig: Any) -> None:
    rig = make_rig(EmulatorSettings(ig_token_response_shape="data"))
    body = ig_exchange(rig.client, ig_code(rig.client)).json()
    assert body["data"][0]["permissions"] == "instagram_business_basic,instagram_business_content_publish"


def test_instagram_token_errors_are_190_463_and_467(make_rig: Any) -> None:
    rig = make_rig(EmulatorSettings(ig_long_token_lifetime=10))
    token = ig_token(rig.emulator)
    assert rig.client.get("/me", params={"access_token": token}).status_code == 200
    assert graph_error(rig.client.get("/me", params={"access_token": "IGAAnope"})) == (190, 467)
    rig.clock.advance(10)
    assert graph_error(rig.client.get("/me", params={"access_token": token})) == (190, 463)
    assert graph_error(rig.client.get("/me", headers=bearer(token))) == (190, 463)


# --- Instagram: publishing ---------------------------------------------------------------------------------


def create_container(
    client: httpx.Client, token: str, image_url: str, caption: str = "A caption"
) -> httpx.Response:
    return client.post(
        f"/v21.0/{DEFAULT_IG_USER_ID}/media",
        data={"image_url": image_url, "caption": caption, "alt_text": "Alt words", "access_token": token},
    )


def test_instagram_container_flow_fetches_the_image_and_publishes(
    make_rig: Any, image_host: tuple[str, Path]
) -> None:
    rig = make_rig(EmulatorSettings(ig_container_processing_seconds=30))
    base_url, root = image_host
    photo = REAL_JPEG.read_bytes()
    (root / "photo.jpg").write_bytes(photo)
    token = ig_token(rig.emulator)

    created = create_container(rig.client, token, f"{base_url}/photo.jpg", "Evening light #sunset")
    assert created.status_code == 200, created.text
    container_id = created.json()["id"]
    status_params = {"fields": "status_code,status", "access_token": token}
    status = rig.client.get(f"/{container_id}", params=status_params).json()
    assert status["status_code"] == "IN_PROGRESS"

    publish_params = {"creation_id": container_id, "access_token": token}
    early = rig.client.post(f"/{DEFAULT_IG_USER_ID}/media_publish", params=publish_params)
    assert graph_error(early) == (9007, 2207027)

    rig.clock.advance(30)
    assert rig.client.get(f"/{container_id}", params=status_params).json()["status_code"] == "FINISHED"
    published = rig.client.post(f"/{DEFAULT_IG_USER_ID}/media_publish", params=publish_params)
    assert published.status_code == 200
    media_id = published.json()["id"]
    assert rig.client.get(f"/{container_id}", params=status_params).json()["status_code"] == "PUBLISHED"
    again = rig.client.post(f"/{DEFAULT_IG_USER_ID}/media_publish", params=publish_params)
    assert again.status_code == 400
    assert len(rig.emulator.ig_posts()) == 1

    media = rig.client.get(
        f"/{media_id}",
        params={
            "fields": "id,permalink,caption,media_type,media_url,timestamp,alt_text",
            "access_token": token,
        },
    ).json()
    assert media["caption"] == "Evening light #sunset"
    assert media["media_type"] == "IMAGE"
    assert media["alt_text"] == "Alt words"
    assert rig.client.get(media["media_url"]).content == photo
    page = rig.client.get(media["permalink"])
    assert page.status_code == 200
    assert "Evening light #sunset" in page.text
    assert 'alt="Alt words"' in page.text


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("image.png", PNG.read_bytes(), (36001, 2207005)),
        ("multi.jpg", MPO_JPEG.read_bytes(), (36001, 2207005)),
        ("wide.jpg", WIDE_JPEG.read_bytes(), (36003, 2207009)),
        ("tall.jpg", jpeg_of_size(400, 600), (36003, 2207009)),
        ("huge.jpg", jpeg_of_size(400, 400) + b"\0" * 200_000, (36000, 2207004)),
    ],
)
def test_instagram_checks_fetched_images_like_meta(
    make_rig: Any, image_host: tuple[str, Path], name: str, content: bytes, expected: tuple[int, int]
) -> None:
    rig = make_rig(EmulatorSettings(ig_image_max_bytes=200_000))
    base_url, root = image_host
    (root / name).write_bytes(content)
    response = create_container(rig.client, ig_token(rig.emulator), f"{base_url}/{name}")
    assert graph_error(response) == expected
    assert rig.emulator.snapshot()["instagram"]["containers"] == []


def test_instagram_refuses_unfetchable_urls_and_long_captions(rig: Rig, image_host: tuple[str, Path]) -> None:
    base_url, root = image_host
    (root / "ok.jpg").write_bytes(REAL_JPEG.read_bytes())
    token = ig_token(rig.emulator)
    assert graph_error(create_container(rig.client, token, f"{base_url}/missing.jpg")) == (9004, 2207052)
    assert graph_error(create_container(rig.client, token, "http://127.0.0.1:9/x.jpg")) == (9004, 2207052)
    long_caption = create_container(rig.client, token, f"{base_url}/ok.jpg", "x" * 2201)
    assert graph_error(long_caption) == (36004, 2207010)
    assert create_container(rig.client, token, f"{base_url}/ok.jpg", "x" * 2200).status_code == 200


def test_instagram_publish_quota_is_enforced_and_reported(make_rig: Any) -> None:
    rig = make_rig(EmulatorSettings(ig_publish_quota=2, ig_container_processing_seconds=0))
    rig.emulator.state.hosted_dir = PHOTOS
    token = ig_token(rig.emulator)
    image_url = f"{BASE}/_emulator/hosted/pil-iptc.jpg"  # 640x480, served by the emulator itself

    def publish() -> httpx.Response:
        container_id = create_container(rig.client, token, image_url).json()["id"]
        return rig.client.post(
            f"/{DEFAULT_IG_USER_ID}/media_publish", data={"creation_id": container_id, "access_token": token}
        )

    assert publish().status_code == 200
    rig.emulator.post_from_phone(caption="from the phone")  # does not count
    assert publish().status_code == 200
    assert graph_error(publish()) == (9, 2207042)
    limit = rig.client.get(
        f"/{DEFAULT_IG_USER_ID}/content_publishing_limit",
        params={"fields": "quota_usage,config", "access_token": token},
    ).json()
    assert limit == {"data": [{"quota_usage": 2, "config": {"quota_total": 2, "quota_duration": 86400}}]}
    rig.clock.advance(86400)
    assert publish().status_code == 200


def test_instagram_container_error_and_expired_outcomes(rig: Rig, image_host: tuple[str, Path]) -> None:
    base_url, root = image_host
    (root / "ok.jpg").write_bytes(REAL_JPEG.read_bytes())
    token = ig_token(rig.emulator)
    rig.emulator.fail_next_containers("ERROR")
    rig.emulator.fail_next_containers("EXPIRED")
    failed = create_container(rig.client, token, f"{base_url}/ok.jpg").json()["id"]
    expired = create_container(rig.client, token, f"{base_url}/ok.jpg").json()["id"]
    normal = create_container(rig.client, token, f"{base_url}/ok.jpg").json()["id"]
    rig.clock.advance(5)
    statuses = {
        cid: rig.client.get(f"/{cid}", params={"fields": "status_code", "access_token": token}).json()[
            "status_code"
        ]
        for cid in (failed, expired, normal)
    }
    assert statuses == {failed: "ERROR", expired: "EXPIRED", normal: "FINISHED"}
    publish = f"/{DEFAULT_IG_USER_ID}/media_publish"
    assert graph_error(rig.client.post(publish, data={"creation_id": expired, "access_token": token})) == (
        -2,
        2207020,
    )
    rig.emulator.set_container_status(normal, "EXPIRED")
    assert rig.client.post(publish, data={"creation_id": normal, "access_token": token}).status_code == 400


def test_instagram_media_list_pages_with_cursors(rig: Rig) -> None:
    for n in range(3):
        rig.clock.advance(1)
        rig.emulator.post_from_phone(caption=f"phone {n}")
    token = ig_token(rig.emulator)
    first = rig.client.get(
        "/me/media", params={"fields": "id,caption", "limit": 2, "access_token": token}
    ).json()
    assert [m["caption"] for m in first["data"]] == ["phone 2", "phone 1"]
    second = rig.client.get(first["paging"]["next"]).json()
    assert [m["caption"] for m in second["data"]] == ["phone 0"]
    assert "next" not in second["paging"]


# --- faults in-process ---------------------------------------------------------------------------------


def test_respond_fault_fires_the_given_number_of_times(rig: Rig) -> None:
    token = rig.emulator.mint_x_token()["access_token"]
    rig.emulator.respond_with("x.users.me", 503, times=2)
    statuses = [rig.client.get("/2/users/me", headers=bearer(token)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert rig.emulator.requests_log("x.users.me")[0].outcome == "fault:respond"


def test_dropped_connections_in_process_raise_httpx_transport_errors(rig: Rig) -> None:
    token = rig.emulator.mint_x_token()["access_token"]
    rig.emulator.drop_connection("x.tweets.create")
    with pytest.raises(httpx.RemoteProtocolError):
        rig.client.post("/2/tweets", headers=bearer(token), json={"text": "before"})
    assert rig.emulator.x_posts() == []

    rig.emulator.drop_connection("x.tweets.create", after_applying=True)
    with pytest.raises(httpx.RemoteProtocolError):
        rig.client.post("/2/tweets", headers=bearer(token), json={"text": "after"})
    assert [p.text for p in rig.emulator.x_posts()] == ["after"]

    rig.emulator.stall("x.tweets.create", 0.1)
    with pytest.raises(httpx.ReadTimeout):
        rig.client.post("/2/tweets", headers=bearer(token), json={"text": "stalled"})
    assert len(rig.emulator.x_posts()) == 1


# --- the real server -------------------------------------------------------------------------------------


@pytest.fixture
def served(spec: XOpenAPI) -> Iterator[tuple[Emulator, EmulatorServer, httpx.Client]]:
    emulator = Emulator(EmulatorSettings(ig_container_processing_seconds=0.2))
    recorder = watch_openapi(emulator, spec)
    with EmulatorServer(emulator) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        yield emulator, server, client
    recorder.assert_clean()


def test_real_server_x_flow_and_inspection(served: tuple[Emulator, EmulatorServer, httpx.Client]) -> None:
    _, server, client = served
    assert server.url.startswith("http://127.0.0.1:")
    tokens = x_sign_in(client)
    photo = REAL_JPEG.read_bytes()
    assert post_photo(client, tokens["access_token"], "Over the wire", photo, "A phone").status_code == 201

    state = client.get("/_emulator/state", params={"bytes": "1"}).json()
    [post] = state["x"]["posts"]
    assert post["text"] == "Over the wire"
    assert base64.b64decode(post["media"][0]["bytes_base64"]) == photo
    assert post["media"][0]["alt_text"] == "A phone"
    assert any(t["token"] == tokens["refresh_token"] for t in state["x"]["refresh_tokens"])
    assert all("access_token=" not in r["path"] or "redacted" in r["path"] for r in state["requests"])


def test_real_server_instagram_flow_with_admin_api(
    served: tuple[Emulator, EmulatorServer, httpx.Client], image_host: tuple[str, Path]
) -> None:
    emulator, _, client = served
    base_url, root = image_host
    (root / "photo.jpg").write_bytes(REAL_JPEG.read_bytes())
    token = client.post("/_emulator/tokens/instagram", json={}).json()["access_token"]
    container_id = create_container(client, token, f"{base_url}/photo.jpg").json()["id"]
    status = "IN_PROGRESS"
    for _ in range(50):
        status = client.get(
            f"/{container_id}", params={"fields": "status_code", "access_token": token}
        ).json()["status_code"]
        if status == "FINISHED":
            break
        threading.Event().wait(0.05)
    assert status == "FINISHED"
    published = client.post(
        f"/{DEFAULT_IG_USER_ID}/media_publish", data={"creation_id": container_id, "access_token": token}
    )
    assert published.status_code == 200

    phone = client.post(
        "/_emulator/instagram/posts",
        json={
            "caption": "Shot on the phone",
            "image_base64": base64.b64encode(sample_jpeg(600, 600)).decode(),
        },
    )
    assert phone.status_code == 201
    permalink = client.get(phone.json()["permalink"])
    assert "Shot on the phone" in permalink.text
    assert [m.source for m in emulator.ig_posts()] == ["api", "phone"]

    advanced = client.post("/_emulator/clock", json={"advance": 3600})
    assert advanced.json()["now"] >= emulator.now() - 1


def test_real_server_drops_and_stalls_connections(
    served: tuple[Emulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, client = served
    token = emulator.mint_x_token()["access_token"]
    armed = client.post("/_emulator/faults", json={"endpoint": "x.tweets.create", "action": "drop_before"})
    assert armed.status_code == 201
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/2/tweets", headers=bearer(token), json={"text": "lost"})
    assert emulator.x_posts() == []

    client.post("/_emulator/faults", json={"endpoint": "x.tweets.create", "action": "drop_after"})
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/2/tweets", headers=bearer(token), json={"text": "applied"})
    assert [p.text for p in emulator.x_posts()] == ["applied"]

    emulator.stall("x.users.me", 5)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/2/users/me", headers=bearer(token), timeout=0.3)

    emulator.delay("x.users.me", 0.2)
    assert client.get("/2/users/me", headers=bearer(token)).status_code == 200
    assert client.get("/_emulator/faults").json() == {"faults": []}


def test_real_server_html_page_shows_both_timelines(
    served: tuple[Emulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, client = served
    token = emulator.mint_x_token()["access_token"]
    post_photo(client, token, "X <caption> & more", REAL_JPEG.read_bytes(), 'Alt "quoted"')
    emulator.post_from_phone(caption="Instagram caption", alt_text="IG alt")
    page = client.get("/_emulator/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "X &lt;caption&gt; &amp; more" in page.text
    assert 'alt="Alt &quot;quoted&quot;"' in page.text
    assert 'alt="IG alt"' in page.text
    assert "Instagram caption" in page.text
    image_src = page.text.split('src="')[1].split('"')[0]
    assert client.get(image_src).headers["content-type"] == "image/jpeg"
    assert client.get("/").status_code == 200


def test_run_emulator_prints_the_url_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=run_emulator, kwargs={"port": 0, "ready": ready, "stop": stop})
    thread.start()
    assert ready.wait(5)
    url = capsys.readouterr().out.split("listening on ")[1].split()[0]
    with httpx.Client() as client:
        assert client.get(f"{url}/_emulator/state").status_code == 200
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_admin_api_seeds_accounts_arms_faults_and_overrides_containers(rig: Rig) -> None:
    client = rig.client
    names = client.get("/_emulator/endpoints").json()["endpoints"]
    assert {"x.tweets.create", "x.media.upload", "ig.media.create", "ig.media_publish"} <= set(names)

    seeded = client.post(
        "/_emulator/seed",
        json={
            "x_users": [{"id": "42", "username": "second"}],
            "ig_apps": [{"client_id": "77", "client_secret": "shh"}],
            "ig_users": [{"user_id": "17841400000000099", "username": "other.account"}],
        },
    )
    assert seeded.status_code == 200
    assert client.post("/_emulator/consent", json={"platform": "x", "user_id": "42"}).status_code == 200
    tokens = x_sign_in(client)
    assert (
        client.get("/2/users/me", headers=bearer(tokens["access_token"])).json()["data"]["username"]
        == "second"
    )

    unknown = client.post("/_emulator/faults", json={"endpoint": "x.nope", "action": "drop_before"})
    assert unknown.status_code == 400
    bad_action = client.post("/_emulator/faults", json={"endpoint": "x.users.me", "action": "explode"})
    assert bad_action.status_code == 400
    armed = client.post(
        "/_emulator/faults",
        json={"endpoint": "ig.me", "action": "respond", "status": 500, "times": None},
    ).json()
    token = ig_token(rig.emulator)
    assert graph_error(client.get("/me", params={"access_token": token})) == (2, None)
    assert graph_error(client.get("/me", params={"access_token": token})) == (2, None)
    assert client.delete(f"/_emulator/faults/{armed['id']}").json() == {"removed": True}
    assert client.get("/me", params={"access_token": token}).status_code == 200

    rig.emulator.state.hosted_dir = PHOTOS
    container_id = create_container(client, token, f"{BASE}/_emulator/hosted/pil-iptc.jpg").json()["id"]
    forced = client.post(f"/_emulator/containers/{container_id}", json={"status": "ERROR"})
    assert forced.json() == {"id": container_id, "status_code": "ERROR"}
    assert client.get("/_emulator/hosted/../conftest.py").status_code == 404


def test_request_log_redacts_secrets_and_records_dropped_requests(rig: Rig) -> None:
    token = ig_token(rig.emulator)
    rig.client.get("/me", params={"fields": "username", "access_token": token})
    rig.emulator.drop_connection("ig.me", after_applying=True)
    with pytest.raises(httpx.RemoteProtocolError):
        rig.client.get("/me", params={"access_token": token})
    first, dropped = rig.emulator.requests_log("ig.me")
    assert token not in first.path
    assert "access_token=%3Credacted%3E" in first.path
    assert (dropped.status, dropped.outcome) == (None, "fault:drop_after")


def test_module_entry_point_serves_as_a_subprocess(tmp_path: Path) -> None:
    (tmp_path / "hosted.jpg").write_bytes(sample_jpeg(400, 400))
    command = [
        sys.executable,
        "-m",
        "crosswatch.emulator",
        "--x-token-lifetime",
        "3",
        "--hosted-dir",
        str(tmp_path),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split("listening on ")[1].strip()
        with httpx.Client(base_url=url, timeout=5) as client:
            assert client.post("/_emulator/tokens/x", json={}).json()["expires_in"] == 3
            assert client.get("/_emulator/hosted/hosted.jpg").headers["content-type"] == "image/jpeg"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr


def test_x_daily_cap_reports_24_hour_headers_and_unknown_query_parameters_are_refused(make_rig: Any) -> None:
    rig = make_rig(EmulatorSettings(x_daily_limits={"x.tweets.create": RateLimit(2, 86400)}))
    token = x_sign_in(rig.client)["access_token"]
    first = rig.client.post("/2/tweets", headers=bearer(token), json={"text": "one"})
    assert first.headers["x-user-limit-24hour-limit"] == "2"
    assert first.headers["x-user-limit-24hour-remaining"] == "1"
    assert first.headers["x-rate-limit-remaining"] == "99"
    assert rig.client.post("/2/tweets", headers=bearer(token), json={"text": "two"}).status_code == 201
    capped = rig.client.post("/2/tweets", headers=bearer(token), json={"text": "three"})
    assert capped.status_code == 429
    assert capped.headers["x-user-limit-24hour-remaining"] == "0"

    odd = rig.client.get("/2/users/me", headers=bearer(token), params={"user.feilds": "created_at"})
    assert odd.status_code == 400
    assert "user.feilds" in odd.json()["errors"][0]["message"]
    assert rig.recorder.take() == ["GET /2/users/me: query parameter user.feilds is not defined"]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_real_server_never_acts_on_a_request_whose_body_was_cut_short(
        served: tuple[Emulator, EmulatorServer, httpx.Client], framing: str) -> None:
    """A client killed mid-upload (the chaos test's SIGKILLs) leaves half a request: like any HTTP
    server, the emulator drops it instead of handling a body it never fully received."""
    import socket
    import time

    emulator, server, client = served
    tokens = x_sign_in(client)
    seen = len(emulator.state.requests)
    host, port = urlsplit(server.url).hostname or "127.0.0.1", urlsplit(server.url).port or 80
    head = (f"POST /2/media/upload HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {tokens['access_token']}\r\nContent-Type: multipart/form-data; boundary=b\r\n")
    head += "Content-Length: 100000\r\n\r\n" if framing == "content-length" else "Transfer-Encoding: chunked\r\n\r\n"
    partial = b"--b\r\nContent-Disposition: form-data; name=\"media\"\r\n\r\n\xff\xd8"
    with socket.create_connection((host, port), timeout=5) as raw:
        raw.sendall(head.encode() + (partial if framing == "content-length" else b"ffff\r\n" + partial))
    time.sleep(0.3)  # the server sees the close and gives up on the request
    assert len(emulator.state.requests) == seen, "half a request must not be handled"
    assert client.get("/_emulator/state").status_code == 200, "the server keeps serving"
