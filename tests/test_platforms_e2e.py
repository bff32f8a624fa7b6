"""End to end: the daemon as a subprocess posts to the emulator as a real HTTP server.

The X side is held to X's published OpenAPI document on every request (the live_emulator fixture fails
the test at teardown on any violation).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crosswatch.emulator import (
    DEFAULT_IG_CLIENT_ID,
    DEFAULT_X_CLIENT_ID,
    Emulator,
    EmulatorServer,
    EmulatorSettings,
)
from crosswatch.journal import Journal
from tests.conftest import DaemonProcess, jpeg_bytes, run_cli, wait_until, write_config, xmp_packet

StartDaemon = Callable[..., DaemonProcess]


def platform_config(workspace: dict[str, Path], url: str, hosted: Path, **overrides: Any) -> Path:
    targets = {
        "x": {"client_id": DEFAULT_X_CLIENT_ID, "api_base": url, "authorize_url": f"{url}/i/oauth2/authorize",
              "web_base": f"{url}/_emulator/x"},
        "instagram": {"client_id": DEFAULT_IG_CLIENT_ID, "graph_base": url, "api_base": url,
                      "authorize_url": f"{url}/oauth/authorize",
                      "media_host": {"type": "directory", "path": str(hosted),
                                     "public_url": f"{url}/_emulator/hosted/"}},
    }
    watch = [{"path": str(workspace["inbox"]), "targets": ["x", "instagram"], "settle_seconds": 0.3}]
    return write_config(workspace, targets=targets, watch=watch, **overrides)


def sign_in(config: Path, live_emulator: Emulator) -> list[str]:
    """`crosswatch auth import` with tokens the emulator issued; returns the token strings."""
    x_token = live_emulator.mint_x_token()
    ig_token = live_emulator.mint_ig_token()
    for target, token in (("x", x_token), ("instagram", ig_token)):
        result = run_cli("auth", "import", target, config=config, input=json.dumps(token))
        assert result.returncode == 0, result.stderr
    return [x_token["access_token"], x_token["refresh_token"], ig_token["access_token"]]


def photo(seed: int) -> bytes:
    return jpeg_bytes(seed, size=(640, 480), xmp=xmp_packet(f"Test photo {seed}", f"A flat test card, number {seed}."))


@pytest.fixture
def hosted_settings() -> EmulatorSettings:
    """Access tokens that live 2 s, so they expire and are refreshed mid-run."""
    return EmulatorSettings(x_access_token_lifetime=2.0, ig_container_processing_seconds=0.3)


def done_count(state: Path) -> int:
    path = state / "journal.sqlite3"
    if not path.exists():
        return 0
    with Journal(path) as journal:
        return sum(per.get("done", 0) for per in journal.state_counts().values())


@pytest.mark.slow
def test_ten_photos_reach_both_platforms_with_tokens_refreshed_across_a_restart(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path) -> None:
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        secrets = sign_in(config, live_emulator)
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        for index in range(5):
            # Spread over several token lifetimes, so tokens expire and are refreshed mid-run.
            (workspace["inbox"] / f"first-{index}.jpg").write_bytes(photo(index))
            time.sleep(1.5)
        wait_until(lambda: done_count(workspace["state"]) == 10, timeout=120)
        assert daemon.stop() == 0
        # Tokens that live 2 s have expired by now: the rotated refresh token must survive the restart.
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        for index in range(5):
            (workspace["inbox"] / f"second-{index}.jpg").write_bytes(photo(50 + index))
        wait_until(lambda: done_count(workspace["state"]) == 20, timeout=120)
        assert daemon.stop() == 0
        logs = "".join(path.read_text() for path in workspace["inbox"].parent.glob("daemon-*.log"))

    x_posts = live_emulator.x_posts()
    assert len(x_posts) == 10
    for post in x_posts:
        assert len(post.media_ids) == 1
        assert live_emulator.x_alt_text(post.media_ids[0])
    ig_posts = live_emulator.ig_posts()
    assert len(ig_posts) == 10
    fetches = live_emulator.requests_log("ig.media.create")
    assert len(fetches) == 10
    assert not list(hosted.iterdir()), "hosted copies must be removed after publishing"
    refreshes = live_emulator.requests_log("x.token")
    assert len(refreshes) >= 3, "access tokens living 2 s must have been refreshed during the run"
    assert {r.status for r in refreshes} == {200}, "a refresh token was used twice"
    # No token, old or new, reaches the logs, the journal or the CLI's output.
    snapshot = live_emulator.snapshot()
    issued = secrets + [t["token"] for t in snapshot["x"]["access_tokens"]]
    status = run_cli("status", "--json", config=workspace["config"])
    journal_bytes = (workspace["state"] / "journal.sqlite3").read_bytes()
    for token in issued:
        assert token not in logs
        assert token not in status.stdout + status.stderr
        assert token.encode() not in journal_bytes


def test_a_dead_token_makes_jobs_wait_and_status_and_doctor_say_so(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path) -> None:
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        assert run_cli("auth", "revoke", "x", config=config).returncode == 0
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        (workspace["inbox"] / "waiting.jpg").write_bytes(jpeg_bytes(1, size=(640, 480)))
        wait_until(lambda: done_count(workspace["state"]) == 1, timeout=60)  # Instagram still posts
        wait_until(lambda: "auth login x" in run_cli("status", config=config).stdout, timeout=30)
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=60) == 0
        doctor = run_cli("doctor", config=config)
    status = json.loads(run_cli("status", "--json", config=config).stdout)
    x_jobs = [j for j in status["jobs"] if j["target"] == "x"]
    assert [j["state"] for j in x_jobs] == ["ready"]
    assert doctor.returncode == 1
    assert "crosswatch auth login x" in doctor.stdout
    assert "ok    target instagram: media host (directory) serves files at" in doctor.stdout
    assert live_emulator.x_posts() == []
