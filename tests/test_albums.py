"""Albums end to end (watch[].albums: folder): the CLI as a real subprocess against the emulator as a
real HTTP server, a real SQLite journal and real JPEG files with Lightroom-style XMP."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from crosswatch.emulator import DEFAULT_IG_CLIENT_ID, DEFAULT_X_CLIENT_ID, Emulator, EmulatorServer
from crosswatch.emulator.threads_state import DEFAULT_THREADS_CLIENT_ID
from tests.conftest import run_cli, write_config
from tests.test_mastodon_e2e import credited_photo


def album_folder(inbox: Path, name: str, count: int, *, seed: int = 0, quiet_for: float = 120.0) -> Path:
    """``count`` credited photos in ``inbox/name``, written ``quiet_for`` seconds ago (a settled export);
    file names sort in the order of their seeds."""
    folder = inbox / name
    folder.mkdir()
    written = time.time() - quiet_for
    for index in range(count):
        path = folder / f"shot-{index:02d}.jpg"
        path.write_bytes(credited_photo(seed + index))
        os.utime(path, (written, written))
    return folder


def album_config(workspace: dict[str, Path], url: str, hosted: Path, targets: list[str], **watch: Any) -> Path:
    every = {
        "x": {"client_id": DEFAULT_X_CLIENT_ID, "api_base": url, "authorize_url": f"{url}/i/oauth2/authorize",
              "web_base": f"{url}/_emulator/x"},
        "instagram": {"client_id": DEFAULT_IG_CLIENT_ID, "graph_base": url, "api_base": url,
                      "authorize_url": f"{url}/oauth/authorize",
                      "media_host": {"type": "directory", "path": str(hosted),
                                     "public_url": f"{url}/_emulator/hosted/"}},
        "threads": {"client_id": DEFAULT_THREADS_CLIENT_ID, "graph_base": f"{url}/threads/v1.0",
                    "authorize_url": f"{url}/threads/oauth/authorize",
                    "media_host": {"type": "directory", "path": str(hosted),
                                   "public_url": f"{url}/_emulator/hosted/"}},
    }
    folder = {"path": str(workspace["inbox"]), "targets": targets, "settle_seconds": 0.3,
              "albums": "folder", "album_settle_seconds": 1.0, **watch}
    return write_config(workspace, targets={t: every[t] for t in targets}, watch=[folder])


def sign_in(config: Path, emulator: Emulator, targets: list[str]) -> None:
    mint = {"x": emulator.mint_x_token, "instagram": emulator.mint_ig_token, "threads": emulator.mint_threads_token}
    for target in targets:
        result = run_cli("auth", "import", target, config=config, input=json.dumps(mint[target]()))
        assert result.returncode == 0, result.stderr


def status_of(config: Path) -> dict[str, Any]:
    result = run_cli("status", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def alt(seed: int) -> str:
    return f"Fishing boats moored in a grey harbour, number {seed}"


@pytest.mark.slow
def test_an_album_of_twelve_becomes_an_x_thread_of_four_four_four_in_order_with_every_alt_text(
        workspace: dict[str, Path], live_emulator: Emulator, hosted: Path) -> None:
    album_folder(workspace["inbox"], "harbour", 12)
    with EmulatorServer(live_emulator) as server:
        config = album_config(workspace, server.url, hosted, ["x"])
        sign_in(config, live_emulator, ["x"])
        run = run_cli("run", "--once", config=config, timeout=180)
        assert run.returncode == 0, run.stderr
        status = status_of(config)

    posts = sorted(live_emulator.x_posts(), key=lambda p: int(p.id))
    assert [len(p.media_ids) for p in posts] == [4, 4, 4]
    assert posts[0].in_reply_to is None
    assert [p.in_reply_to for p in posts[1:]] == [posts[0].id, posts[1].id]
    alts = [live_emulator.x_alt_text(m) for p in posts for m in p.media_ids]
    assert alts == [alt(i) for i in range(12)]
    assert "Harbour study 0" in posts[0].text and posts[1].text == "2/3" and posts[2].text == "3/3"
    [job] = status["jobs"]
    assert job["state"] == "done" and job["remote_id"] == posts[0].id
