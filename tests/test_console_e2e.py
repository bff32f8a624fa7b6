"""The console as real subprocesses: `crosswatch console` and `crosswatch run` print the sign-in
address and serve it; `status` hands out a fresh one; a decision taken in the console is picked up by
the running daemon without a restart and reaches the emulator exactly as approved."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.journal import Journal
from crosswatch.models import JobState
from tests.conftest import REPO, DaemonProcess, cli_env, jpeg_bytes, run_cli, wait_until, xmp_packet
from tests.console_helpers import console_config

ADDRESS = re.compile(r"^console: (http://127\.0\.0\.1:(\d+))/signin\?token=([\w-]+)$", re.MULTILINE)


def signed_in_client(base: str, token: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=30.0, follow_redirects=True)
    response = client.get(f"/signin?token={token}")
    assert response.status_code == 200 and response.url.path == "/queue", response.text[:300]
    found = re.search(r'data-csrf="([^"]+)"', response.text)
    assert found
    return client, found.group(1)


def test_console_prints_its_address_serves_hands_out_tokens_via_status_and_stops_on_sigterm(
        workspace: dict[str, Path]) -> None:
    config = console_config(workspace)
    process = subprocess.Popen(
        [sys.executable, "-m", "crosswatch.cli", "--config", str(config), "console", "--host", "127.0.0.1",
         "--port", "0", "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(), cwd=REPO)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = ADDRESS.match(line.strip())
        assert found, line
        base, token = found.group(1), found.group(3)
        client, _csrf = signed_in_client(base, token)
        assert 'data-needs-you-count' in client.get("/queue").text
        # The printed token was for one use.
        assert httpx.get(f"{base}/signin?token={token}").status_code == 401
        status = run_cli("status", config=config)
        assert status.returncode == 0, status.stderr
        handed = ADDRESS.search(status.stdout)
        assert handed and handed.group(1) == base and handed.group(3) != token
        other, _ = signed_in_client(base, handed.group(3))
        assert other.get("/accounts").status_code == 200
        assert httpx.get(f"{base}/signin?token={handed.group(3)}").status_code == 401
        client.close()
        other.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert not (workspace["state"] / "console" / "address.json").exists()
    assert "console:" not in run_cli("status", config=config).stdout  # nothing serves it any more


def test_set_password_keeps_only_a_hash_in_the_keyring_and_beyond_loopback_needs_it(
        workspace: dict[str, Path]) -> None:
    config = console_config(workspace)
    refused = run_cli("console", "--host", "0.0.0.0", "--port", "0", "--no-browser", config=config, timeout=60)
    assert refused.returncode == 2 and "--set-password" in refused.stderr and "Traceback" not in refused.stderr
    short = run_cli("console", "--set-password", config=config, input="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    stored = run_cli("console", "--set-password", config=config, input="a long enough secret\n")
    assert stored.returncode == 0, stored.stderr
    keyrings = list(Path(os.environ["XDG_DATA_HOME"]).rglob("*.cfg"))
    assert keyrings and all("a long enough secret" not in path.read_text() for path in keyrings)
    assert any("scrypt" in path.read_text() or "c2NyeXB0" in path.read_text() for path in keyrings)


def test_the_daemon_posts_exactly_the_caption_edited_and_approved_in_the_console_and_never_a_rejected_one(
        workspace: dict[str, Path], emulator: Emulator) -> None:
    with EmulatorServer(emulator) as server:
        config = console_config(workspace, url=server.url, approval=["x"], console={"port": 0})
        result = run_cli("auth", "import", "x", config=config, input=json.dumps(emulator.mint_x_token()))
        assert result.returncode == 0, result.stderr
        daemon = DaemonProcess(config, workspace["state"].parent / "daemon.log")
        try:
            daemon.wait_for_log("watching")
            found = ADDRESS.search(daemon.log_path.read_text())
            assert found, daemon.log_path.read_text()[-2000:]
            for index in range(2):
                (workspace["inbox"] / f"p{index}.jpg").write_bytes(
                    jpeg_bytes(index, size=(320, 240), xmp=xmp_packet(f"Photo {index}", f"Card {index}")))

            def awaiting() -> list[int]:
                path = workspace["state"] / "journal.sqlite3"
                if not path.exists():
                    return []
                with Journal(path) as journal:
                    return [j.id for j in journal.jobs(state=JobState.AWAITING_APPROVAL, target="x")]

            wait_until(lambda: len(awaiting()) == 2, timeout=60)
            chosen, refused = awaiting()
            client, csrf = signed_in_client(found.group(1), found.group(3))
            origin = {"Origin": found.group(1)}
            caption = "Edited in the console: harbour at dawn #harbour"
            edit = client.post(f"/jobs/{chosen}/edit", data={"csrf": csrf, "caption": caption, "alt_text": "Boats"},
                               headers=origin, follow_redirects=False)
            assert edit.status_code == 303, edit.text[:500]
            assert client.post(f"/jobs/{refused}/reject", data={"csrf": csrf}, headers=origin,
                               follow_redirects=False).status_code == 303
            assert client.post(f"/jobs/{chosen}/approve", data={"csrf": csrf}, headers=origin,
                               follow_redirects=False).status_code == 303
            wait_until(lambda: len(emulator.x_posts()) == 1, timeout=60)
            wait_until(lambda: f'data-posted-job="{chosen}"' in client.get("/posted").text, timeout=30)
            time.sleep(1.5)  # the runner's next looks: the rejected job must stay unposted
            client.close()
        finally:
            code = daemon.stop()
    assert code == 0
    posts = emulator.x_posts()
    assert [p.text for p in posts] == [caption]
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        rejected = journal.job(refused)
        assert rejected is not None and rejected.state is JobState.REJECTED
        done = journal.job(chosen)
        assert done is not None and done.state is JobState.DONE


def test_crosswatch_edit_is_the_cli_face_of_the_same_edit(workspace: dict[str, Path]) -> None:
    from crosswatch.config import load_config
    from tests.console_helpers import drop_photos, take_in

    config = console_config(workspace)
    drop_photos(workspace, 1, real=False)
    take_in(load_config(config))
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        job = journal.jobs(target="x")[0]
    refused = run_cli("edit", str(job.id), "--caption", "x" * 281, config=config)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "281 long" in refused.stderr and "limit is 280" in refused.stderr
    done = run_cli("edit", str(job.id), "--caption", "By hand on the command line", "--alt-text", "", config=config)
    assert done.returncode == 0, done.stderr
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        edited = journal.job(job.id)
    assert edited is not None and edited.data["edit"] == {"caption": "By hand on the command line", "alt_text": ""}
    assert "By hand on the command line" in run_cli("queue", config=config).stdout
