"""The console in a real browser: the daemon as a subprocess with its console on, the emulator as a real
server, and headless Chromium driven by Playwright.

Playwright cannot download its own browsers here (``playwright install`` needs the network), so it
launches the system's Chromium (Debian's ``chromium``, which ``.ci/run`` installs). Without one the
browser tests skip and say why.

The rig is built once per test module (``ConsoleRig``): starting a daemon, an emulator and a browser
takes seconds, and the tests that share one act on photos of their own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch.emulator import (
    DEFAULT_BSKY_HANDLE,
    DEFAULT_IG_CLIENT_ID,
    DEFAULT_X_CLIENT_ID,
    Emulator,
    EmulatorServer,
    EmulatorSettings,
)
from crosswatch.emulator.threads_state import DEFAULT_THREADS_CLIENT_ID
from crosswatch.journal import Journal
from crosswatch.models import Job, JobState
from tests.conftest import REPO, DaemonProcess, cli_env, jpeg_bytes, wait_until, write_config, xmp_packet
from tests.emulator_fixtures import OpenAPIRecorder, watch_openapi
from tests.openapi_check import XOpenAPI

CONSOLE_LINE = re.compile(r"^console: (?P<url>http://[^\s/]+)/signin\?token=(?P<token>\S+)$", re.MULTILINE)
# The emulator's timeline is consistent at once, so the X reconciler's "not visible yet" wait is short.
DAEMON_ENV = {"CROSSWATCH_X_TIMELINE_SETTLE_SECONDS": "1"}
# Drawn for the project (CC0), with titles, alt text, GPS and a camera serial in their metadata.
SAMPLES = REPO / "crosswatch" / "samples"
PAGES = ("queue", "posted", "needs-you", "accounts")
WIDTHS = {"desktop": 1280, "phone": 390}


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_args() -> list[str]:
    # Chromium's sandbox refuses to start as root (CI containers); /dev/shm is tiny in containers.
    args = ["--disable-dev-shm-usage"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no system Chromium (`chromium` or `chromium-browser` on PATH); .ci/run installs Debian's "
                    "`chromium` — `apt-get install --no-install-recommends chromium`")
    return path


def photo_bytes(seed: int, title: str) -> bytes:
    return jpeg_bytes(seed, size=(640, 480), xmp=xmp_packet(title, f"A flat test card, number {seed}."))


@dataclass
class ConsoleRig:
    """One daemon with its console, one emulator, their folders, and what the tests need to reach them."""

    root: Path
    env: dict[str, str]
    emulator: Emulator
    server: EmulatorServer
    recorder: OpenAPIRecorder
    config: Path
    inboxes: dict[str, Path]
    daemon: DaemonProcess
    base_url: str
    signin_url: str
    x_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    photos: int = 0

    @property
    def journal_path(self) -> Path:
        return self.root / "state" / "journal.sqlite3"

    def drop_photo(self, inbox: str = "main", *, title: str | None = None) -> Path:
        """A new, distinct photo in a watched folder; its title (so its caption) is unique too."""
        self.photos += 1
        seed = 1000 + self.photos
        path = self.inboxes[inbox] / f"console-{seed}.jpg"
        path.write_bytes(photo_bytes(seed, title or f"Console photo {seed}"))
        return path

    def drop_album(self, name: str, count: int) -> tuple[Path, list[int]]:
        """A new album: ``count`` distinct photos written beside the albums folder, then moved in
        whole as sub-folder ``name``; the folder and its photos' seeds, in order."""
        staging = self.root / f"staging-{name}"
        staging.mkdir()
        seeds = []
        for index in range(count):
            self.photos += 1
            seeds.append(1000 + self.photos)
            (staging / f"shot-{index:02d}.jpg").write_bytes(photo_bytes(seeds[-1], f"Album {name} {index}"))
        folder = self.inboxes["albums"] / name
        staging.rename(folder)
        return folder, seeds

    def drop_sample(self, name: str, inbox: str = "main") -> Path:
        """One of the bundled sample photos (each can be dropped once: a photo is known by its bytes)."""
        path = self.inboxes[inbox] / name
        shutil.copyfile(SAMPLES / name, path)
        return path

    def jobs_of(self, photo: Path) -> dict[str, Job]:
        """The photo's jobs by target (empty until intake has recorded the photo)."""
        if not self.journal_path.exists():
            return {}
        with Journal(self.journal_path) as journal:
            found = [p for p, _status, _reason in journal.photos() if p.path == str(photo)]
            return {job.target: job for p in found for job in journal.jobs_for_photo(p.id)}

    def job(self, job_id: int) -> Job:
        with Journal(self.journal_path) as journal:
            job = journal.job(job_id)
        assert job is not None, f"job {job_id} is not in the journal"
        return job

    def wait_for_job(self, photo: Path, target: str, state: JobState, timeout: float = 30.0) -> Job:
        """The photo's job for ``target`` once it is in ``state``."""
        seen: list[Job | None] = [None]

        def reached() -> bool:
            seen[0] = self.jobs_of(photo).get(target)
            return seen[0] is not None and seen[0].state is state

        try:
            wait_until(reached, timeout=timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"{photo.name} on {target}: wanted {state.value}, have {seen[0]}\n"
                                 f"{self.daemon.log_path.read_text()[-3000:]}") from None
        job = seen[0]
        assert job is not None
        return job

    def wait_for_state(self, job_id: int, state: JobState, timeout: float = 30.0) -> Job:
        try:
            wait_until(lambda: self.job(job_id).state is state, timeout=timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"job {job_id}: wanted {state.value}, have {self.job(job_id)}\n"
                                 f"{self.daemon.log_path.read_text()[-3000:]}") from None
        return self.job(job_id)

    def x_texts(self) -> list[str]:
        return [post.text for post in self.emulator.x_posts()]

    def revoke_x(self, target: str) -> None:
        """The account holder revokes the app's access (X's own revoke endpoint, RFC 7009): every
        access and refresh token of that sign-in stops working."""
        token = self.x_tokens[target]["refresh_token"]
        response = httpx.post(f"{self.server.url}/2/oauth2/revoke",
                              data={"token": token, "token_type_hint": "refresh_token",
                                    "client_id": DEFAULT_X_CLIENT_ID})
        assert response.status_code == 200, response.text


def rig_env(root: Path) -> dict[str, str]:
    """A keyring and XDG dirs of the module's own: the per-test isolation fixture changes them per test,
    but this daemon lives across the module's tests."""
    env = {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring", **DAEMON_ENV}
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):
        (root / "home" / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / "home" / sub)
    return env


def outside_window_now() -> str:
    """A daily posting window that starts about 12 hours from now (UTC): a job approved there waits."""
    hour = (datetime.now(UTC).hour + 12) % 24
    return f"daily {hour:02d}:00-{hour:02d}:30"


def rig_config(root: Path, url: str) -> tuple[Path, dict[str, Path]]:
    """X and Instagram for the main folder; a second X account whose posts wait for a window far off
    (so an approved job stays in the queue to be edited); and a folder for all five platforms, as in
    the demo (Mastodon signs in from the console's button); and a folder of albums (each sub-folder one
post) for X. X jobs need approval; the others do not."""
    hosted = root / "hosted"
    hosted.mkdir()
    media_host = {"type": "directory", "path": str(hosted), "public_url": f"{url}/_emulator/hosted/"}
    inboxes = {"main": root / "inbox", "later": root / "inbox-later", "five": root / "inbox-five",
               "albums": root / "inbox-albums"}
    for folder in inboxes.values():
        folder.mkdir()
    x_target = {"client_id": DEFAULT_X_CLIENT_ID, "api_base": url, "authorize_url": f"{url}/i/oauth2/authorize",
                "web_base": f"{url}/_emulator/x"}
    targets = {
        "x": x_target,
        "x_later": {"type": "x", **x_target},
        "instagram": {"client_id": DEFAULT_IG_CLIENT_ID, "graph_base": url, "api_base": url,
                      "authorize_url": f"{url}/oauth/authorize", "media_host": media_host},
        "mastodon": {"instance": f"{url}/mastodon", "redirect_port": 0},
        "bluesky": {"service": url, "handle": DEFAULT_BSKY_HANDLE, "web_base": f"{url}/_emulator/bsky"},
        "threads": {"client_id": DEFAULT_THREADS_CLIENT_ID, "graph_base": f"{url}/threads",
                    "authorize_url": f"{url}/threads/oauth/authorize", "media_host": media_host},
    }
    workspace = {"inbox": inboxes["main"], "outbox": root / "outbox", "state": root / "state",
                 "config": root / "config.yaml"}
    config = write_config(
        workspace, targets=targets,
        watch=[{"path": str(inboxes["main"]), "targets": ["x", "instagram"], "settle_seconds": 0.3},
               {"path": str(inboxes["later"]), "targets": ["x_later"], "settle_seconds": 0.3},
               {"path": str(inboxes["five"]), "targets": ["x", "instagram", "mastodon", "bluesky", "threads"],
                "settle_seconds": 0.3},
               {"path": str(inboxes["albums"]), "targets": ["x"], "settle_seconds": 0.3, "albums": "folder",
                "album_settle_seconds": 1.0}],
        approval=["x", "x_later"],
        schedule={"timezone": "UTC", "targets": {"x_later": {"windows": [outside_window_now()]}}},
        console={"enabled": True, "host": "127.0.0.1", "port": 0},
    )
    return config, inboxes


def sign_in(config: Path, emulator: Emulator, env: dict[str, str], url: str) -> dict[str, dict[str, Any]]:
    """Tokens the emulator issued, imported as `crosswatch auth import` does (the same library call,
    checked against the platform) for the targets in one process: a CLI start each would take most
    of the rig's start-up. Mastodon is left signed out (the console's button signs it in). Returns
    the X tokens by target."""
    session = emulator.mint_bsky_session(origin=url)
    tokens = {"x": emulator.mint_x_token(), "x_later": emulator.mint_x_token(), "instagram": emulator.mint_ig_token(),
              "threads": emulator.mint_threads_token(),
              "bluesky": {key: session[key] for key in ("accessJwt", "refreshJwt", "did", "handle")}}
    importer = "from tests.console_rig import import_tokens_main; import_tokens_main()"
    result = subprocess.run([sys.executable, "-c", importer, str(config)], input=json.dumps(tokens),
                            capture_output=True, text=True, env=cli_env(env), cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return {target: token for target, token in tokens.items() if target in ("x", "x_later")}


def import_tokens_main() -> None:
    """In the subprocess of ``sign_in``: argv[1] the config, stdin {target: token response}."""
    from crosswatch import auth
    from crosswatch.config import load_config
    from crosswatch.secrets import SecretStore

    config = load_config(Path(sys.argv[1]))
    with httpx.Client() as client:
        for target, token in json.loads(sys.stdin.read()).items():
            auth.import_tokens(config.targets[target], SecretStore(), json.dumps(token), client)


def console_address(daemon: DaemonProcess, timeout: float = 30.0) -> tuple[str, str]:
    """(base URL, sign-in URL) from the `console: http://…/signin?token=…` line the daemon prints."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = CONSOLE_LINE.search(daemon.log_path.read_text(errors="replace"))
        if found:
            return found["url"], found.group(0).removeprefix("console: ")
        if daemon.process.poll() is not None:
            raise AssertionError(f"daemon exited {daemon.process.returncode}: {daemon.log_path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"no `console: http://…/signin?token=…` line within {timeout}s:\n"
                         f"{daemon.log_path.read_text()[-3000:]}")


def start_rig(root: Path, spec: XOpenAPI) -> Iterator[ConsoleRig]:
    """Emulator, sign-ins, daemon with its console; stopped (and the OpenAPI check asserted) after."""
    env = rig_env(root)
    emulator = Emulator(EmulatorSettings(ig_container_processing_seconds=0.2), hosted_dir=root / "hosted")
    recorder = watch_openapi(emulator, spec)
    with EmulatorServer(emulator) as server:
        config, inboxes = rig_config(root, server.url)
        x_tokens = sign_in(config, emulator, env, server.url)
        daemon = DaemonProcess(config, root / "daemon.log", env)
        try:
            base_url, signin_url = console_address(daemon)
            daemon.wait_for_log("watching")
            yield ConsoleRig(root, env, emulator, server, recorder, config, inboxes, daemon, base_url, signin_url,
                             x_tokens)
        finally:
            if daemon.process.poll() is None:
                code = daemon.stop()
                assert code == 0, f"daemon exited {code}: {daemon.log_path.read_text()[-3000:]}"
            elif not daemon._log.closed:
                daemon._log.close()
    recorder.assert_clean()


def every_image_loaded(page: Any) -> None:
    """Load the lazy images too (a full-page screenshot does not scroll), and fail on one that breaks."""
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })")
    widths = page.evaluate("Promise.all([...document.images].map(i => i.complete ? i.naturalWidth : "
                           "new Promise(ok => { i.onload = () => ok(i.naturalWidth); i.onerror = () => ok(0); })))")
    assert all(width > 0 for width in widths), f"an image on {page.url} did not load: {widths}"


def screenshot_dir(default: Path) -> Path:
    """Where the tests save screenshots: $CROSSWATCH_SCREENSHOTS, else pytest's tmp dir."""
    chosen = os.environ.get("CROSSWATCH_SCREENSHOTS")
    folder = Path(chosen) if chosen else default
    folder.mkdir(parents=True, exist_ok=True)
    return folder
