"""End to end on Bluesky: `crosswatch auth` through the CLI (the app password on stdin) and the daemon
as a subprocess posting to the emulator PDS as a real HTTP server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.emulator.bluesky_state import DEFAULT_BSKY_APP_PASSWORD, DEFAULT_BSKY_DID, DEFAULT_BSKY_HANDLE
from tests.conftest import DaemonProcess, run_cli, wait_until, write_config
from tests.test_platforms_e2e import done_count, photo

StartDaemon = Callable[..., DaemonProcess]
CAPTION = "{title} {attribution} {hashtags} {link}"
CREDIT = "Photo: Jane Doe (CC BY 4.0)"


def bluesky_config(workspace: dict[str, Path], url: str) -> Path:
    targets = {"bluesky": {"service": url, "handle": DEFAULT_BSKY_HANDLE, "language": "en",
                           "web_base": f"{url}/_emulator/bsky"}}
    watch = [{"path": str(workspace["inbox"]), "targets": ["bluesky"], "settle_seconds": 0.3}]
    return write_config(workspace, targets=targets, watch=watch, captions={"bluesky": CAPTION},
                        attribution=CREDIT, hashtags={"extra": ["birds", "東京"], "from_keywords": False},
                        links={"url": "https://example.com/gallery"})


def auth_status(config: Path) -> dict[str, Any]:
    result = run_cli("auth", "status", "--json", config=config)
    assert result.returncode == 0, result.stderr
    [state] = json.loads(result.stdout)["targets"]
    return dict(state)


def test_auth_login_with_the_app_password_on_stdin_status_import_and_revoke(
        workspace: dict[str, Path], emulator: Emulator) -> None:
    with EmulatorServer(emulator) as server:
        config = bluesky_config(workspace, server.url)
        wrong = run_cli("auth", "login", "bluesky", config=config, input="abcd-efgh-ijkl-mnop\n")
        assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
        assert "Invalid identifier or password" in wrong.stderr and "abcd-efgh-ijkl-mnop" not in wrong.stderr

        login = run_cli("auth", "login", "bluesky", config=config, input=DEFAULT_BSKY_APP_PASSWORD + "\n")
        assert login.returncode == 0, login.stderr
        assert f"signed in to bluesky as {DEFAULT_BSKY_HANDLE}" in login.stdout
        state = auth_status(config)
        assert state["signed_in"] and not state["needs_login"] and state["account_id"] == DEFAULT_BSKY_DID
        assert state["has_refresh_token"] and 7000 < state["expires_in_seconds"] <= 7200
        # An app password has no scopes: the status says what it grants instead of "scopes ?".
        assert state["scopes"] == [] and state["grants"].startswith("app password: post, upload images, read")
        text = run_cli("auth", "status", config=config).stdout
        assert "scopes ?" not in text and f"bluesky: {DEFAULT_BSKY_HANDLE}, app password: post" in text, text
        assert "not the password, email, handle, account deletion or DMs" in text

        revoke = run_cli("auth", "revoke", "bluesky", config=config)
        assert revoke.returncode == 0, revoke.stderr
        assert "revoked at the platform" in revoke.stdout and "app-passwords" in revoke.stdout
        assert not auth_status(config)["signed_in"]
        assert [r.status for r in emulator.requests_log("bsky.server.deleteSession")] == [200]

        session = emulator.mint_bsky_session(origin=server.url)
        imported = run_cli("auth", "import", "bluesky", config=config, input=json.dumps(
            {key: session[key] for key in ("accessJwt", "refreshJwt", "did", "handle")}))
        assert imported.returncode == 0, imported.stderr
        assert auth_status(config)["username"] == DEFAULT_BSKY_HANDLE

        outputs = [wrong, login, revoke, imported]
        for result in outputs:
            assert DEFAULT_BSKY_APP_PASSWORD not in result.stdout + result.stderr
            assert session["accessJwt"] not in result.stdout + result.stderr
        assert len(emulator.requests_log("bsky.server.createSession")) == 2  # the wrong one and the login


def test_ten_photos_reach_bluesky_with_image_alt_text_credit_and_facets(
        workspace: dict[str, Path], start_daemon: StartDaemon, emulator: Emulator) -> None:
    with EmulatorServer(emulator) as server:
        url = server.url
        config = bluesky_config(workspace, url)
        login = run_cli("auth", "login", "bluesky", config=config, input=DEFAULT_BSKY_APP_PASSWORD + "\n")
        assert login.returncode == 0, login.stderr
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        for index in range(10):
            (workspace["inbox"] / f"bird-{index}.jpg").write_bytes(photo(index))
        wait_until(lambda: done_count(workspace["state"]) == 10, timeout=60)
        assert daemon.stop() == 0
        logs = "".join(path.read_text() for path in workspace["inbox"].parent.glob("daemon-*.log"))
        status = run_cli("status", "--json", config=config)

    posts = emulator.snapshot()["bluesky"]["posts"]
    assert len(posts) == 10 and len({p["rkey"] for p in posts}) == 10
    titles = set()
    for post in posts:
        record = post["record"]
        text = record["text"]
        data = text.encode("utf-8")
        titles.add(re.match(r"Test photo \d+", text).group(0))  # type: ignore[union-attr]
        assert CREDIT in text and record["langs"] == ["en"]
        [image] = record["embed"]["images"]
        assert image["alt"].startswith("A flat test card, number")
        assert image["aspectRatio"] == {"width": 640, "height": 480}
        assert post["images"][0]["size"] <= 2_000_000 and post["images"][0]["mime"] == "image/jpeg"
        sliced = [data[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode() for f in record["facets"]]
        assert sliced == ["#birds", "#東京", "https://example.com/gallery"], sliced
        assert [f["features"][0].get("tag") for f in record["facets"][:2]] == ["birds", "東京"]
    assert titles == {f"Test photo {i}" for i in range(10)}
    jobs = json.loads(status.stdout)["jobs"]
    assert {j["remote_id"] for j in jobs} == {p["uri"] for p in posts}
    assert all(j["permalink"].startswith(f"{url}/_emulator/bsky/profile/") for j in jobs)
    assert len(emulator.requests_log("bsky.server.createSession")) == 1  # one sign-in, reused for 10 posts
    tokens = [t for t in emulator.state.bluesky.access_tokens] + [DEFAULT_BSKY_APP_PASSWORD]
    journal_bytes = (workspace["state"] / "journal.sqlite3").read_bytes()
    for secret in tokens:
        assert secret not in logs and secret not in status.stdout
        assert secret.encode() not in journal_bytes
