"""Shared by the console's tests: a journal with real photos taken in, the console served for real
(uvicorn on a loopback port, in a thread) and an httpx client, a signed-in session and its CSRF token."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from crosswatch.config import Config, load_config
from crosswatch.console.app import ConsoleState
from crosswatch.console.security import PASSWORD_KEY
from crosswatch.console.server import Console as Served
from crosswatch.console.server import make_console as serve
from crosswatch.emulator import DEFAULT_X_CLIENT_ID
from crosswatch.journal import Journal
from crosswatch.secrets import SecretStore
from crosswatch.watcher import Intake
from tests.conftest import PHOTOS, jpeg_bytes, write_config, xmp_packet

UNUSED_URL = "http://127.0.0.1:9"  # nothing is sent in these tests; the X target only counts and prepares


def console_config(workspace: dict[str, Path], *, url: str = UNUSED_URL, approval: Any = True,
                   **overrides: Any) -> Path:
    targets = {"x": {"client_id": DEFAULT_X_CLIENT_ID, "api_base": url, "authorize_url": f"{url}/i/oauth2/authorize",
                     "web_base": f"{url}/_emulator/x", "redirect_port": 0},
               "outbox": {"path": str(workspace["outbox"])}}
    watch = [{"path": str(workspace["inbox"]), "targets": ["x", "outbox"], "settle_seconds": 0}]
    return write_config(workspace, targets=targets, watch=watch, approval=approval, **overrides)


def every_platform_config(workspace: dict[str, Path]) -> Path:
    """One target of each platform that signs in (nothing is sent: only the sign-in state is read)."""
    url = "http://127.0.0.1:9"
    host = {"type": "directory", "path": str(workspace["state"] / "hosted"), "public_url": f"{url}/hosted/"}
    targets = {"x": {"client_id": "cid", "api_base": url},
               "instagram": {"client_id": "cid", "graph_base": url, "media_host": host},
               "threads": {"client_id": "cid", "graph_base": url, "media_host": host},
               "bluesky": {"service": url, "handle": "ada.bsky.social"},
               "mastodon": {"instance": url},
               "outbox": {"path": str(workspace["outbox"])}}
    return write_config(workspace, targets=targets)


def drop_photos(workspace: dict[str, Path], count: int, *, real: bool = True) -> None:
    """``count`` photos in the inbox: the first a real camera file from tests/data, the rest small JPEGs
    with a title and alt text in their XMP."""
    samples = sorted(PHOTOS.glob("*.jpg"))
    for index in range(count):
        target = workspace["inbox"] / f"photo-{index:04d}.jpg"
        if real and index == 0 and samples:
            shutil.copyfile(samples[0], target)
        else:
            target.write_bytes(jpeg_bytes(index, size=(320, 240),
                                          xmp=xmp_packet(f"Test photo {index}", f"A flat test card, number {index}.")))


def take_in(config: Config) -> None:
    """Intake as the daemon runs it: scan the folders, journal what settled."""
    with Journal(config.journal_path) as journal:
        intake = Intake(config, journal)
        intake.scan()
        time.sleep(0.05)
        intake.process()


@dataclass
class Console:
    config: Config
    served: Served
    client: httpx.Client

    @property
    def state(self) -> ConsoleState:
        return self.served.state

    @property
    def base(self) -> str:
        return self.served.url

    @property
    def port(self) -> int:
        return int(self.served.url.rsplit(":", 1)[1])

    def close(self) -> None:
        self.client.close()
        self.served.stop()
        self.thread.join(timeout=10)

    @property
    def thread(self) -> Any:
        return self._thread

    _thread: Any = None

    def sign_in(self) -> str:
        """Sign in with a one-time token; the session's CSRF token."""
        response = self.client.get(f"/signin?token={self.state.sessions.new_token()}", follow_redirects=False)
        assert response.status_code == 303, response.text
        return self.csrf()

    def csrf(self) -> str:
        page = self.client.get("/queue")
        found = re.search(r'data-csrf="([^"]+)"', page.text)
        assert found, page.text[:500]
        return found.group(1)

    def post(self, path: str, data: dict[str, str], **headers: str) -> Any:
        return self.client.post(path, data=data, headers={"Origin": self.base, **headers}, follow_redirects=False)

    def journal(self) -> Journal:
        return Journal(self.config.journal_path)


class PasswordStore(SecretStore):
    """The real keyring (the tests' isolated one), with the console password's hash given."""

    def __init__(self, password_hash: str | None) -> None:
        super().__init__()
        self.password_hash = password_hash

    def get(self, name: str) -> str | None:
        return self.password_hash if name == PASSWORD_KEY else super().get(name)


def make_console(config_path: Path, *, password: str | None = None) -> Console:
    """The console served on a free loopback port (close() it)."""
    config = load_config(config_path)
    served = serve(config, host="127.0.0.1", port=0, store=PasswordStore(password))
    console = Console(config, served, httpx.Client(base_url=served.url, timeout=30.0))
    console._thread = served.start_thread()
    deadline = time.monotonic() + 10
    while not served.server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    return console
