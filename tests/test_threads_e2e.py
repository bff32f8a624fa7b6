"""Threads end to end: the daemon and the CLI as real subprocesses against the emulator as a real HTTP
server (graph_base ``{server}/threads``), a real SQLite journal, real JPEG files and a directory media
host the emulator fetches from, as Meta fetches ``image_url``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.emulator.threads_state import DEFAULT_THREADS_CLIENT_ID, DEFAULT_THREADS_CLIENT_SECRET
from tests.conftest import REPO, DaemonProcess, cli_env, run_cli, wait_until, write_config
from tests.test_mastodon_e2e import CREATOR, credited_photo, free_port
from tests.test_platforms_e2e import done_count


def threads_config(workspace: dict[str, Path], url: str, hosted: Path, **target: Any) -> Path:
    targets = {"threads": {"client_id": DEFAULT_THREADS_CLIENT_ID, "graph_base": f"{url}/threads/v1.0",
                           "authorize_url": f"{url}/threads/oauth/authorize",
                           "media_host": {"type": "directory", "path": str(hosted),
                                          "public_url": f"{url}/_emulator/hosted/"}, **target}}
    watch = [{"path": str(workspace["inbox"]), "targets": ["threads"], "settle_seconds": 0.3}]
    return write_config(workspace, targets=targets, watch=watch)


@pytest.mark.slow  # a daemon and five CLI runs as subprocesses: about 25 s on a busy machine
def test_ten_photos_reach_threads_through_the_container_flow(
        workspace: dict[str, Path], start_daemon: Any, live_emulator: Emulator, hosted: Path) -> None:
    live_emulator.state.threads.settings.processing_seconds = 0.0  # FINISHED at the first check
    with EmulatorServer(live_emulator) as server:
        url = server.url
        config = threads_config(workspace, url, hosted)
        token = live_emulator.mint_threads_token()
        imported = run_cli("auth", "import", "threads", config=config, input=json.dumps(token))
        assert imported.returncode == 0, imported.stderr
        assert "crosswatch.demo" in imported.stdout
        daemon: DaemonProcess = start_daemon(config)
        daemon.wait_for_log("watching")
        for index in range(10):
            (workspace["inbox"] / f"harbour-{index}.jpg").write_bytes(credited_photo(index))
        wait_until(lambda: done_count(workspace["state"]) == 10, timeout=90)
        assert daemon.stop() == 0
        status = json.loads(run_cli("status", "--json", config=config).stdout)
        page = httpx.get(f"{url}/_emulator/").text
        first_permalink = status["jobs"][0]["permalink"]
        permalink_page = httpx.get(first_permalink)
        links = run_cli("links", "check", config=config)
        logs = "".join(p.read_text() for p in workspace["inbox"].parent.glob("daemon-*.log"))

    posts = live_emulator.threads_posts()
    assert len(posts) == 10
    alts = set()
    for post in posts:
        assert CREATOR in post["text"] and "Harbour study" in post["text"]
        number = post["text"].split("Harbour study ")[1].split()[0]
        assert post["alt_text"] == f"Fishing boats moored in a grey harbour, number {number}"
        alts.add(post["alt_text"])
    assert len(alts) == 10
    containers = live_emulator.snapshot()["threads"]["containers"]
    assert len(containers) == 10 and {c["status"] for c in containers} == {"PUBLISHED"}
    jobs = status["jobs"]
    assert {j["state"] for j in jobs} == {"done"}
    assert {j["remote_id"] for j in jobs} == {p["id"] for p in posts}
    assert {j["permalink"] for j in jobs} == {url + p["url"] for p in posts}
    assert permalink_page.status_code == 200 and "Harbour study" in permalink_page.text
    assert "Threads (10)" in page
    assert links.returncode == 0, links.stderr
    # Quota read before publishing; every call under the configured version, token endpoints aside.
    assert live_emulator.requests_log("threads.publishing_limit")
    assert all("/threads/v1.0/" in r.path for r in live_emulator.requests_log("threads.create"))
    assert not list(hosted.iterdir()), "hosted copies are removed after publishing"
    assert token["access_token"] not in logs + json.dumps(status)
    assert token["access_token"].encode() not in (workspace["state"] / "journal.sqlite3").read_bytes()


def login_through_the_cli(config: Path, secret: str) -> subprocess.CompletedProcess[str]:
    """``crosswatch auth login threads --no-browser`` with the app secret piped on stdin; the test is the
    browser: it opens the printed address (the emulator approves at once) and follows the redirect."""
    process = subprocess.Popen([sys.executable, "-m", "crosswatch.cli", "--config", str(config), "auth", "login",
                                "threads", "--no-browser", "--timeout", "60"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=REPO)
    assert process.stderr is not None and process.stdin is not None
    process.stdin.write(secret + "\n")
    process.stdin.flush()
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.strip().startswith("http"):
            break
    else:
        raise AssertionError("no sign-in address printed: " + "".join(lines))
    answer = httpx.get(line.strip())
    assert answer.status_code == 302, answer.text
    deadline = time.monotonic() + 10
    while True:  # the loopback listener may take a moment to be there
        try:
            httpx.get(answer.headers["location"].removesuffix("#_"))
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, "".join(lines) + stderr)


@pytest.mark.slow  # five CLI runs as subprocesses: about 20 s on a busy machine
def test_login_import_status_and_revoke_through_the_cli(
        workspace: dict[str, Path], live_emulator: Emulator, hosted: Path) -> None:
    with EmulatorServer(live_emulator) as server:
        config = threads_config(workspace, server.url, hosted, redirect_port=free_port())
        signed_in = login_through_the_cli(config, DEFAULT_THREADS_CLIENT_SECRET)
        assert signed_in.returncode == 0, signed_in.stderr
        assert "signed in to threads as crosswatch.demo" in signed_in.stdout
        endpoints = [r.endpoint for r in live_emulator.requests_log() if r.endpoint.startswith("threads.")]
        assert endpoints == ["threads.authorize", "threads.code_exchange", "threads.exchange_token", "threads.me"]
        authorize = next(r.path for r in live_emulator.requests_log("threads.authorize"))
        assert "scope=threads_basic%2Cthreads_content_publish" in authorize
        [short, long_lived] = live_emulator.snapshot()["threads"]["tokens"]
        assert (short["kind"], long_lived["kind"]) == ("short", "long")
        assert long_lived["expires_at"] - long_lived["issued_at"] == 5183944  # 60 days

        shown = json.loads(run_cli("auth", "status", "--json", config=config).stdout)
        [entry] = [t for t in shown["targets"] if t["target"] == "threads"]
        assert entry["username"] == "crosswatch.demo" and entry["problem"] is None
        assert set(entry["scopes"]) == {"threads_basic", "threads_content_publish"}

        imported = run_cli("auth", "import", "threads", config=config,
                           input=json.dumps(live_emulator.mint_threads_token()))
        assert imported.returncode == 0, imported.stderr
        revoked = run_cli("auth", "revoke", "threads", config=config)
        assert revoked.returncode == 0, revoked.stderr
        assert "Threads has no revoke endpoint" in revoked.stdout + revoked.stderr
        after = run_cli("auth", "status", "--json", config=config)
        assert "crosswatch.demo" not in after.stdout
        for output in (signed_in, imported, revoked, after):
            assert DEFAULT_THREADS_CLIENT_SECRET not in output.stdout + output.stderr
            assert long_lived["token"] not in output.stdout + output.stderr
