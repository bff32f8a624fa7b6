"""Mastodon end to end: the daemon and the CLI as real subprocesses against the emulator as a real
HTTP server (instance URL ``{server}/mastodon``), a real SQLite journal and real JPEG files."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.journal import Journal
from tests.conftest import REPO, DaemonProcess, cli_env, jpeg_bytes, run_cli, wait_until, write_config
from tests.test_platforms_e2e import done_count

StartDaemon = Callable[..., DaemonProcess]
CREATOR = "Ada Kowalczyk"


def credited_photo(seed: int) -> bytes:
    """A JPEG with a title, an alt text and a creator in its XMP, as Lightroom writes them."""
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/">'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour study {seed}</rdf:li></rdf:Alt></dc:title>'
        f'<dc:creator><rdf:Seq><rdf:li>{CREATOR}</rdf:li></rdf:Seq></dc:creator>'
        '<Iptc4xmpCore:AltTextAccessibility><rdf:Alt><rdf:li xml:lang="x-default">'
        f'Fishing boats moored in a grey harbour, number {seed}</rdf:li></rdf:Alt></Iptc4xmpCore:AltTextAccessibility>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    return jpeg_bytes(seed, size=(800, 600), xmp=xmp)


def mastodon_config(workspace: dict[str, Path], url: str, **target: object) -> Path:
    targets = {"mastodon": {"instance": f"{url}/mastodon", "visibility": "unlisted", "language": "en", **target}}
    watch = [{"path": str(workspace["inbox"]), "targets": ["mastodon"], "settle_seconds": 0.3}]
    return write_config(workspace, targets=targets, watch=watch)


def test_ten_photos_reach_mastodon_each_with_its_image_alt_text_and_credit(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator) -> None:
    live_emulator.state.mastodon.settings.processing_seconds = 0.5  # 202, then 206 until processed
    with EmulatorServer(live_emulator) as server:
        url = server.url
        config = mastodon_config(workspace, url)
        token = live_emulator.mint_mastodon_token()
        imported = run_cli("auth", "import", "mastodon", config=config, input=json.dumps(token))
        assert imported.returncode == 0, imported.stderr
        assert "crosswatch_demo" in imported.stdout
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        for index in range(10):
            (workspace["inbox"] / f"harbour-{index}.jpg").write_bytes(credited_photo(index))
        wait_until(lambda: done_count(workspace["state"]) == 10, timeout=90)
        assert daemon.stop() == 0
        status = json.loads(run_cli("status", "--json", config=config).stdout)
        page = httpx.get(f"{url}/_emulator/").text
        doctor = run_cli("doctor", config=config)
        logs = "".join(p.read_text() for p in workspace["inbox"].parent.glob("daemon-*.log"))

    statuses = live_emulator.mastodon_statuses()
    assert len(statuses) == 10
    alts = set()
    for posted in statuses:
        assert (posted["visibility"], posted["language"]) == ("unlisted", "en")
        assert CREATOR in posted["text"] and "Harbour study" in posted["text"]
        [media] = posted["media"]
        number = posted["text"].split("Harbour study ")[1].split()[0]
        assert media["description"] == f"Fishing boats moored in a grey harbour, number {number}"
        alts.add(media["description"])
        assert posted["idempotency_key"]
    assert len(alts) == 10
    jobs = status["jobs"]
    assert {j["state"] for j in jobs} == {"done"}
    assert {j["permalink"] for j in jobs} == {f"{url}/mastodon/@crosswatch_demo/{s['id']}" for s in statuses}
    assert "Mastodon (10)" in page
    assert "target mastodon: signed in as crosswatch_demo" in doctor.stdout
    assert "target mastodon: server limits read" in doctor.stdout and "500 characters" in doctor.stdout
    assert 206 in {r.status for r in live_emulator.requests_log("mastodon.media.show")}
    for secret in (token["access_token"], token["client_secret"]):
        assert secret not in logs + json.dumps(status) + doctor.stdout
        assert secret.encode() not in (workspace["state"] / "journal.sqlite3").read_bytes()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def login_through_the_cli(config: Path) -> subprocess.CompletedProcess[str]:
    """``crosswatch auth login mastodon --no-browser``; the test is the browser: it opens the printed
    address on the emulator (which approves at once) and follows the redirect to the loopback."""
    process = subprocess.Popen([sys.executable, "-m", "crosswatch.cli", "--config", str(config), "auth", "login",
                                "mastodon", "--no-browser", "--timeout", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=REPO)
    assert process.stderr is not None
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
            httpx.get(answer.headers["location"])
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, "".join(lines) + stderr)


def test_login_registers_the_app_once_per_server_then_status_and_revoke(
        workspace: dict[str, Path], live_emulator: Emulator) -> None:
    with EmulatorServer(live_emulator) as server:
        config = mastodon_config(workspace, server.url, redirect_port=free_port())
        first = login_through_the_cli(config)
        assert first.returncode == 0, first.stderr
        assert "signed in to mastodon as crosswatch_demo; token expires never" in first.stdout
        second = login_through_the_cli(config)
        assert second.returncode == 0, second.stderr
        snapshot = live_emulator.snapshot()["mastodon"]
        assert len(snapshot["apps"]) == 1, "the app is registered once per server and redirect"
        [app] = snapshot["apps"]
        assert app["scopes"] == ["write:media", "write:statuses", "read:accounts", "read:statuses"]
        assert [r.status for r in live_emulator.requests_log("mastodon.token")] == [200, 200]
        with Journal(workspace["state"] / "journal.sqlite3") as journal:
            assert journal.platform_info("mastodon") is not None  # limits read at sign-in
        shown = json.loads(run_cli("auth", "status", "--json", config=config).stdout)
        [entry] = [t for t in shown["targets"] if t["target"] == "mastodon"]
        assert entry["username"] == "crosswatch_demo" and entry["problem"] is None
        assert set(entry["scopes"]) >= {"write:media", "write:statuses", "read:accounts"}
        revoked = run_cli("auth", "revoke", "mastodon", config=config)
        assert revoked.returncode == 0, revoked.stderr
        tokens = live_emulator.snapshot()["mastodon"]["tokens"]
        assert [t["revoked"] for t in tokens] == [False, True]  # the first was replaced, the second revoked
        after = run_cli("auth", "status", "--json", config=config)
        assert "crosswatch_demo" not in after.stdout
        client_secret = live_emulator.state.mastodon.apps[app["client_id"]].client_secret
        for output in (first, second, revoked, after):
            assert client_secret not in output.stdout + output.stderr


def test_a_config_without_instance_is_one_clear_line(workspace: dict[str, Path]) -> None:
    config = write_config(workspace, targets={"mastodon": {"visibility": "public"}},
                          watch=[{"path": str(workspace["inbox"]), "targets": ["mastodon"]}])
    result = run_cli("status", config=config)
    assert result.returncode == 2
    assert "targets.mastodon.instance" in result.stderr and "is required" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # three daemon kills and restarts: about 30 s each on a busy machine
@pytest.mark.parametrize("point", ["intent:create_status", "after:create_status", "after:upload_media"])
def test_a_kill_at_a_step_posts_each_photo_exactly_once_after_the_restart(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, point: str) -> None:
    with EmulatorServer(live_emulator) as server:
        config = mastodon_config(workspace, server.url)
        token = live_emulator.mint_mastodon_token()
        assert run_cli("auth", "import", "mastodon", config=config, input=json.dumps(token)).returncode == 0
        for index in range(2):
            (workspace["inbox"] / f"harbour-{index}.jpg").write_bytes(credited_photo(index))
        killed = start_daemon(config, env={"CROSSWATCH_CRASHPOINT": point})
        assert killed.process.wait(timeout=60) == -9  # SIGKILL at the point, as a power cut
        daemon = start_daemon(config)
        wait_until(lambda: done_count(workspace["state"]) == 2, timeout=60)
        assert daemon.stop() == 0
    statuses = live_emulator.mastodon_statuses()
    assert len(statuses) == 2, [s["text"] for s in statuses]
    assert all(len(s["media"]) == 1 for s in statuses)
