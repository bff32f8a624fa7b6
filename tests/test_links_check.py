"""``crosswatch links check``: posted links are read back through the platforms' APIs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from crosswatch.config import TargetConfig
from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.linkcheck import build_check_request, parse_check
from tests.conftest import run_cli, write_config
from tests.fault_harness import platform_targets
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


MASTODON = TargetConfig(name="mastodon", kind="mastodon", instance="http://emulator.test/mastodon")
BLUESKY = TargetConfig(name="bluesky", kind="bluesky", service="http://emulator.test", handle="ada.bsky.social")
THREADS = TargetConfig(name="threads", kind="threads", graph_base="http://emulator.test/threads")


@pytest.mark.parametrize(("target", "response", "state"), [
    (MASTODON, httpx.Response(200, json={"id": "1", "url": "http://emulator.test/@a/1"}), "ok"),
    (MASTODON, httpx.Response(404, json={"error": "Record not found"}), "broken"),
    (MASTODON, httpx.Response(503, content=b"<html>"), "unknown"),
    (BLUESKY, httpx.Response(200, json={"uri": "at://did:plc:a/app.bsky.feed.post/3k", "value": {}}), "ok"),
    (BLUESKY, httpx.Response(400, json={"error": "RecordNotFound", "message": "Could not locate record"}), "broken"),
    (BLUESKY, httpx.Response(400, json={"error": "InvalidRequest", "message": "bad repo"}), "unknown"),
    (THREADS, httpx.Response(200, json={"id": "1", "permalink": "https://www.threads.net/@a/post/x"}), "ok"),
    (THREADS, httpx.Response(400, json={"error": {"code": 100, "error_subcode": 33, "message": "gone"}}), "broken"),
    (THREADS, httpx.Response(400, json={"error": {"code": 190, "message": "expired"}}), "unknown"),
])
def test_mastodon_bluesky_and_threads_answers(target: TargetConfig, response: httpx.Response, state: str) -> None:
    assert parse_check(target, response)[0] == state


def test_bluesky_reads_the_record_by_its_uri_without_a_token() -> None:
    request = build_check_request(BLUESKY, "at://did:plc:a/app.bsky.feed.post/3kabc", "tok")
    assert request.url.path == "/xrpc/com.atproto.repo.getRecord" and "Authorization" not in request.headers
    assert dict(request.url.params) == {"repo": "did:plc:a", "collection": "app.bsky.feed.post", "rkey": "3kabc"}


def post_two_photos_and_check(workspace: dict[str, Path], config: Path, seed: int, links: int) -> None:
    """Two photos posted by `run --once` to every target, then `links check` finds every link well."""
    for index in range(2):
        (workspace["inbox"] / f"p{index}.jpg").write_bytes(photo(seed + index))
    result = run_cli("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert done_count(workspace["state"]) == links
    healthy = run_cli("links", "check", config=config)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert f"{links} links checked: 0 broken" in healthy.stdout


def test_links_check_finds_deleted_posts(workspace: dict[str, Path], hosted: Path,
                                         served: tuple[Emulator, EmulatorServer]) -> None:
    emulator, server = served
    config = platform_config(workspace, server.url, hosted)
    sign_in(config, emulator)
    post_two_photos_and_check(workspace, config, 200, 4)

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


def test_links_check_finds_deleted_posts_on_mastodon_bluesky_and_threads(
        workspace: dict[str, Path], hosted: Path, served: tuple[Emulator, EmulatorServer]) -> None:
    emulator, server = served
    networks = ("mastodon", "bluesky", "threads")
    everything = platform_targets(server.url, hosted)
    config = write_config(workspace, targets={name: everything[name] for name in networks},
                          watch=[{"path": str(workspace["inbox"]), "targets": list(networks)}])
    session = emulator.mint_bsky_session(origin=server.url)
    for name, token in (("mastodon", emulator.mint_mastodon_token()), ("threads", emulator.mint_threads_token()),
                        ("bluesky", {key: session[key] for key in ("accessJwt", "refreshJwt", "did", "handle")})):
        imported = run_cli("auth", "import", name, config=config, input=json.dumps(token))
        assert imported.returncode == 0, imported.stderr
    post_two_photos_and_check(workspace, config, 300, 6)

    deleted = {"mastodon": emulator.mastodon_statuses()[0]["id"],
               "bluesky": emulator.snapshot()["bluesky"]["posts"][1]["uri"],
               "threads": emulator.threads_posts()[0]["id"]}
    assert all(emulator.delete_post(network, remote_id) for network, remote_id in deleted.items())
    broken = run_cli("links", "check", config=config)
    assert broken.returncode == 1 and "6 links checked: 3 broken" in broken.stdout, broken.stdout
    document = json.loads(run_cli("links", "check", "--json", config=config).stdout)
    by_state = {(link["target"], link["remote_id"]): link["state"] for link in document["links"]}
    assert sorted(by_state.values()) == ["broken"] * 3 + ["ok"] * 3
    assert all(by_state[(name, remote_id)] == "broken" for name, remote_id in deleted.items()), by_state
