"""``crosswatch links check``: posted links are read back through the platforms' APIs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from crosswatch.config import TargetConfig
from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.linkcheck import build_check_request, parse_check
from tests.conftest import run_cli
from tests.test_platforms_e2e import done_count, photo, platform_config, sign_in

X = TargetConfig(name="x", kind="x", api_base="http://emulator.test")
IG = TargetConfig(name="instagram", kind="instagram", graph_base="http://emulator.test/v25.0")


def test_requests_read_the_post_by_id_with_the_token_in_the_header() -> None:
    x_request = build_check_request(X, "1860000000000000001", "tok")
    assert (x_request.method, x_request.url.path) == ("GET", "/2/tweets/1860000000000000001")
    ig_request = build_check_request(IG, "18000000000000001", "tok")
    assert ig_request.url.path == "/v25.0/18000000000000001" and ig_request.url.params["fields"] == "permalink"
    for request in (x_request, ig_request):
        assert request.headers["Authorization"] == "Bearer tok" and "tok" not in str(request.url)


@pytest.mark.parametrize(("response", "state"), [
    (httpx.Response(200, json={"data": {"id": "1", "text": "hi"}}), "ok"),
    (httpx.Response(200, json={"errors": [{"type": "https://api.twitter.com/2/problems/resource-not-found",
                                           "detail": "Could not find tweet with id: [1]."}]}), "broken"),
    (httpx.Response(404, json={"title": "Not Found"}), "broken"),
    (httpx.Response(401, json={"title": "Unauthorized", "status": 401}), "unknown"),
    (httpx.Response(503, content=b"<html>"), "unknown"),
])
def test_x_answers(response: httpx.Response, state: str) -> None:
    assert parse_check(X, response)[0] == state


@pytest.mark.parametrize(("response", "state"), [
    (httpx.Response(200, json={"id": "1", "permalink": "https://www.instagram.com/p/x/"}), "ok"),
    (httpx.Response(400, json={"error": {"code": 100, "error_subcode": 33, "message": "does not exist"}}), "broken"),
    (httpx.Response(400, json={"error": {"code": 190, "error_subcode": 463, "message": "expired"}}), "unknown"),
    (httpx.Response(500, content=b"garbage"), "unknown"),
])
def test_instagram_answers(response: httpx.Response, state: str) -> None:
    assert parse_check(IG, response)[0] == state


def test_links_check_finds_deleted_posts(workspace: dict[str, Path], hosted: Path,
                                         served: tuple[Emulator, EmulatorServer]) -> None:
    emulator, server = served
    config = platform_config(workspace, server.url, hosted)
    sign_in(config, emulator)
    for index in range(2):
        (workspace["inbox"] / f"p{index}.jpg").write_bytes(photo(200 + index))
    result = run_cli("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert done_count(workspace["state"]) == 4

    healthy = run_cli("links", "check", config=config)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "4 links checked: 0 broken" in healthy.stdout

    deleted_x = emulator.x_posts()[0].id
    deleted_ig = emulator.ig_posts()[1].id
    assert emulator.delete_x_post(deleted_x) and emulator.delete_ig_post(deleted_ig)
    broken = run_cli("links", "check", config=config)
    assert broken.returncode == 1
    assert "4 links checked: 2 broken" in broken.stdout
    broken_lines = [line for line in broken.stdout.splitlines() if line.startswith("BROKEN")]
    assert len(broken_lines) == 2
    assert any(f"/status/{deleted_x}" in line for line in broken_lines)

    document = json.loads(run_cli("links", "check", "--json", config=config).stdout)
    by_state = {(link["target"], link["remote_id"]): link["state"] for link in document["links"]}
    assert by_state[("x", deleted_x)] == "broken" and by_state[("instagram", deleted_ig)] == "broken"
    assert sorted(by_state.values()) == ["broken", "broken", "ok", "ok"]
    assert document["broken"] == 2
    assert emulator.requests_log("x.tweets.get"), "X was asked, not scraped"
