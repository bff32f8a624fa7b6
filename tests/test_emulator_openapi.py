"""The emulator is as strict as X where crosswatch was found wrong (issue 10): query parameters come from
X's OpenAPI document on every endpoint, ``text`` is never optional, and an upload tells the photo's
problems from the request's. Requests go to the emulator as a real HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crosswatch.emulator import (
    DEFAULT_X_USER_ID,
    Emulator,
    EmulatorServer,
    EmulatorSettings,
    openapi_params,
    sample_jpeg,
    x_api,
)
from tests.emulator_fixtures import watch_openapi
from tests.openapi_check import SPEC_PATH, XOpenAPI

INVALID_REQUEST = "https://api.x.com/2/problems/invalid-request"


def test_the_shipped_extract_matches_xs_full_document() -> None:
    document = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    assert openapi_params.shipped_text() == openapi_params.render(document, x_api.served_operations()), (
        "crosswatch/emulator/data/x-openapi-params.json is out of date: run tools/make_x_openapi_extract.py")


def test_the_extract_lists_the_documents_query_parameters_in_its_order() -> None:
    document = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    assert openapi_params.listed_names("GET", "/2/users/{id}/tweets")[:3] == ("id", "max_results", "pagination_token")
    assert "tweet.fields" not in openapi_params.query_names("GET", "/2/users/{id}/tweets")
    assert "post.fields" in openapi_params.query_names("GET", "/2/tweets/{id}")
    assert openapi_params.query_names("POST", "/2/tweets") == frozenset()
    with pytest.raises(KeyError, match="not an operation"):
        openapi_params.extract(document, [("GET", "/2/not/an/endpoint")])


@pytest.fixture
def server(x_openapi: XOpenAPI) -> Iterator[tuple[Emulator, httpx.Client, str]]:
    emulator = Emulator(EmulatorSettings(x_image_max_bytes=200_000))
    recorder = watch_openapi(emulator, x_openapi)
    token = emulator.mint_x_token()["access_token"]
    with EmulatorServer(emulator) as served, httpx.Client(base_url=served.url,
                                                          headers={"Authorization": f"Bearer {token}"}) as client:
        yield emulator, client, served.url
    # The requests below break the document on purpose; the emulator's answers (labelled "->") must not.
    assert [v for v in recorder.take() if " -> " in v] == []


def concrete(template: str, post_id: str) -> str:
    return template.replace("{id}", DEFAULT_X_USER_ID if "/users/" in template else post_id)


def upload(client: httpx.Client, data: bytes, **fields: str) -> httpx.Response:
    return client.post("/2/media/upload", data=fields, files={"media": ("p.jpg", data, "image/jpeg")})


@pytest.mark.parametrize(("method", "template"), x_api.served_operations())
def test_every_x_endpoint_refuses_a_query_parameter_the_document_does_not_list(
        server: tuple[Emulator, httpx.Client, str], method: str, template: str) -> None:
    _, client, _ = server
    media_id = upload(client, sample_jpeg(64, 48, seed=1), media_category="tweet_image").json()["data"]["id"]
    post = client.post("/2/tweets", json={"text": "one", "media": {"media_ids": [media_id]}}).json()["data"]
    answer = client.request(method, concrete(template, post["id"]), params={"tweet.fields": "created_at"})
    assert answer.status_code == 400
    body = answer.json()
    listed = ",".join(openapi_params.listed_names(method, template))
    assert body["type"] == INVALID_REQUEST and body["title"] == "Invalid Request"
    assert body["errors"] == [{"parameters": {"tweet.fields": ["created_at"]},
                               "message": f"The query parameter [tweet.fields] is not one of [{listed}]"}]


def test_listed_parameters_are_taken(server: tuple[Emulator, httpx.Client, str]) -> None:
    _, client, _ = server
    media_id = upload(client, sample_jpeg(64, 48, seed=2), media_category="tweet_image").json()["data"]["id"]
    client.post("/2/tweets", json={"text": "two", "media": {"media_ids": [media_id]}})
    timeline = client.get(f"/2/users/{DEFAULT_X_USER_ID}/tweets",
                          params={"max_results": 5, "expansions": "attachments.media_keys"})
    assert timeline.status_code == 200
    # The expansion alone brings each post's media keys, as X sends them.
    assert timeline.json()["data"][0]["attachments"]["media_keys"] == [f"3_{media_id}"]
    assert client.get("/2/users/me", params={"user.fields": "created_at"}).status_code == 200


def test_a_post_without_text_is_refused_even_with_media(server: tuple[Emulator, httpx.Client, str]) -> None:
    emulator, client, _ = server
    media_id = upload(client, sample_jpeg(64, 48, seed=3), media_category="tweet_image").json()["data"]["id"]
    refused = client.post("/2/tweets", json={"media": {"media_ids": [media_id]}})
    assert refused.status_code == 400
    assert refused.json()["type"] == INVALID_REQUEST
    assert refused.json()["errors"][0]["parameters"] == {"text": []}
    assert emulator.x_posts() == []
    accepted = client.post("/2/tweets", json={"text": "", "media": {"media_ids": [media_id]}})
    assert accepted.status_code == 201 and accepted.json()["data"]["text"] == ""


@pytest.mark.parametrize(("data", "fields", "message", "parameter"), [
    (sample_jpeg(64, 48), {}, x_api.MEDIA_CATEGORY_REQUIRED, "media_category"),
    (sample_jpeg(64, 48), {"media_category": "tweet_image", "shared": "true"}, "Unknown fields: shared", "shared"),
    (b"%PDF-1.4 not an image", {"media_category": "tweet_image"}, x_api.UNRECOGNIZED_MEDIA, "media"),
    (sample_jpeg(2, 2), {"media_category": "tweet_image"}, "Image dimensions must be >= 4x4 and <= 8192x8192.",
     "media"),
    (sample_jpeg(64, 48, seed=4) + bytes(250_000), {"media_category": "tweet_image"}, "File size exceeds 200000 bytes.",
     "media"),
], ids=["no-category", "unknown-field", "not-an-image", "dimensions", "too-large"])
def test_upload_refusals_name_the_request_field_or_the_photo(
        server: tuple[Emulator, httpx.Client, str], data: bytes, fields: dict[str, Any], message: str,
        parameter: str) -> None:
    _, client, _ = server
    refused = upload(client, data, **fields)
    assert refused.status_code == 400
    body = refused.json()
    assert body["type"] == INVALID_REQUEST
    assert body["errors"] == [{"parameters": {parameter: []}, "message": message}]
