"""The emulator's metrics and insights endpoints: engagement deterministic in the hour posted, the
keywords and the age; X's lookup held to X's OpenAPI document (the ``emulator`` fixture checks every
X request and answer); Instagram's and Threads' insights refuse what Meta refuses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from crosswatch.emulator import Emulator
from crosswatch.emulator.accounts import IG_DAEMON_SCOPES
from tests.emulator_fixtures import watch_openapi
from tests.openapi_check import XOpenAPI

INSIGHTS = "instagram_business_manage_insights"


@pytest.fixture
def client(emulator: Emulator) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(emulator.handle), base_url="http://emulator.test")


def _x_post(client: httpx.Client, token: str, text: str) -> str:
    answer = client.post("/2/tweets", json={"text": text}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["data"]["id"])


def _at_hour(hour: int, days_ago: int = 10) -> float:
    today = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return (today - dt.timedelta(days=days_ago)).replace(hour=hour).timestamp()


def _lookup(client: httpx.Client, token: str, ids: list[str], fields: str) -> dict[str, Any]:
    answer = client.get("/2/tweets", params={"ids": ",".join(ids), "post.fields": fields},
                        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_x_lookup_metrics_follow_the_planted_hour_and_keywords(emulator: Emulator, client: httpx.Client) -> None:
    token = emulator.mint_x_token()["access_token"]
    client.post("/_emulator/engagement", json={"hour_factors": {"18": 3.0}, "keyword_factors": {"fog": 2.0}})
    plain, evening, foggy = (_x_post(client, token, text) for text in ("a harbour", "a harbour at dusk", "fog"))
    for post_id, hour in ((plain, 9), (evening, 18), (foggy, 9)):
        assert client.post("/_emulator/age", json={"platform": "x", "id": post_id,
                                                   "posted_at": _at_hour(hour)}).status_code == 200
    body = _lookup(client, token, [plain, evening, foggy, "1"], "public_metrics,non_public_metrics,created_at")
    likes = {p["id"]: p["public_metrics"]["like_count"] for p in body["data"]}
    views = {p["id"]: p["public_metrics"]["impression_count"] for p in body["data"]}
    assert 2.4 < likes[evening] / likes[plain] < 3.7  # 3x, within the per-post spread of +-10 %
    assert 1.6 < likes[foggy] / likes[plain] < 2.5
    assert 0.8 < views[evening] / views[plain] < 1.25  # the audience is not what the hour changes
    assert all("non_public_metrics" in p for p in body["data"])  # own posts, 10 days old
    assert [e["type"].rsplit("/", 1)[1] for e in body["errors"]] == ["resource-not-found"]
    again = _lookup(client, token, [plain], "public_metrics")
    assert again["data"][0]["public_metrics"] == body["data"][0]["public_metrics"]  # deterministic


def test_x_private_metrics_end_after_30_days_and_ids_are_checked(emulator: Emulator, client: httpx.Client) -> None:
    token = emulator.mint_x_token()["access_token"]
    post_id = _x_post(client, token, "an old post")
    client.post("/_emulator/age", json={"platform": "x", "id": post_id, "by_seconds": 31 * 86400})
    body = _lookup(client, token, [post_id], "public_metrics,non_public_metrics")
    assert "non_public_metrics" not in body["data"][0] and body["data"][0]["public_metrics"]["like_count"] > 0
    assert body["errors"][0]["type"].endswith("field-unauthorized")
    assert client.post("/_emulator/age", json={"platform": "x", "by_seconds": -1}).status_code == 400


def test_x_lookup_refuses_more_than_100_ids_as_the_document_does(x_openapi: XOpenAPI) -> None:
    emulator = Emulator()
    recorder = watch_openapi(emulator, x_openapi)
    client = httpx.Client(transport=httpx.MockTransport(emulator.handle), base_url="http://emulator.test")
    token = emulator.mint_x_token()["access_token"]
    too_many = client.get("/2/tweets", params={"ids": ",".join(str(10 + i) for i in range(101))},
                          headers={"Authorization": f"Bearer {token}"})
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["parameters"]["ids"]
    assert [v.split(":")[0] for v in recorder.take()] == ["GET /2/tweets query ids"]  # the document agrees


def _ig_insights(client: httpx.Client, token: str, media_id: str, metric: str) -> httpx.Response:
    return client.get(f"/{media_id}/insights", params={"metric": metric},
                      headers={"Authorization": f"Bearer {token}"})


def test_instagram_insights_scope_viewers_delay_and_deprecated_metrics(emulator: Emulator,
                                                                        client: httpx.Client) -> None:
    media = emulator.post_from_phone(caption="dunes")
    without = emulator.mint_ig_token()["access_token"]
    token = emulator.mint_ig_token(scopes=(*IG_DAEMON_SCOPES, INSIGHTS))["access_token"]
    refused = _ig_insights(client, without, media.id, "views")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 10
    assert "permission" in refused.json()["error"]["message"]
    fresh = _ig_insights(client, token, media.id, "views,reach")
    assert fresh.json()["error"]["code"] == 10 and "Not enough viewers" in fresh.json()["error"]["message"]
    client.post("/_emulator/age", json={"platform": "instagram", "by_seconds": 3 * 86400})
    metrics = "views,reach,likes,comments,saved,shares,total_interactions"
    answer = _ig_insights(client, token, media.id, metrics).json()
    values = {item["name"]: item["values"][0]["value"] for item in answer["data"]}
    assert list(values) == metrics.split(",") and values["views"] > values["reach"] > values["likes"] > 0
    deprecated = _ig_insights(client, token, media.id, "impressions")
    assert deprecated.status_code == 400 and "views" in deprecated.json()["error"]["message"]
    client.post("/_emulator/engagement", json={"insights_delay_seconds": 10 * 86400})
    assert _ig_insights(client, token, media.id, "views").json() == {"data": []}
    emulator.delete_ig_post(media.id)
    gone = _ig_insights(client, token, media.id, "views").json()["error"]
    assert (gone["code"], gone["error_subcode"]) == (100, 33)
