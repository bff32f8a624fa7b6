"""``crosswatch demo``: the whole flow against the bundled emulator, with nothing to set up.

It starts the emulator on loopback, writes a config for a temporary folder, signs in to both
platforms through the real OAuth flows (an HTTP client plays the browser), runs the daemon, drops
the bundled sample photos into the folder, waits until every job is finished, and prints what was
posted, where to look, and what those posts would cost on the real X. Tokens go to an in-memory
keyring for the demo's lifetime, never the user's. As on the real X, its X posts carry no URL unless
its config asks for one (``x_options``, e.g. ``{"allow_urls": True}``): each would cost $0.20, not
$0.015.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import keyring
import keyring.backend
import yaml

from crosswatch import auth, decisions, logs, pricing
from crosswatch.config import Config, load_config
from crosswatch.console.server import make_console
from crosswatch.daemon import Daemon
from crosswatch.emulator import (
    DEFAULT_BSKY_APP_PASSWORD,
    DEFAULT_BSKY_HANDLE,
    DEFAULT_IG_CLIENT_ID,
    DEFAULT_IG_CLIENT_SECRET,
    DEFAULT_X_CLIENT_ID,
    Emulator,
    EmulatorServer,
)
from crosswatch.emulator.threads_state import DEFAULT_THREADS_CLIENT_ID, DEFAULT_THREADS_CLIENT_SECRET
from crosswatch.journal import Journal
from crosswatch.models import TERMINAL_STATES, Job, JobState
from crosswatch.secrets import SecretStore

DEMO_TIMEOUT_SECONDS = 180.0
APPROVAL_TARGET = "mastodon"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives and dies with the demo, so the user's own keyring is never touched."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self._items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._items.pop((service, username), None)


def sample_photos() -> list[Path]:
    folder = resources.files("crosswatch") / "samples"
    return sorted(Path(str(p)) for p in folder.iterdir() if str(p).endswith(".jpg"))


def write_demo_config(root: Path, base_url: str, x_options: Mapping[str, Any] | None = None) -> Path:
    hosted = root / "hosted"
    hosted.mkdir()
    (root / "inbox").mkdir()
    document: dict[str, Any] = {
        "state_dir": str(root / "state"),
        "watch": [{"path": str(root / "inbox"), "targets": ["instagram", "x", "outbox"], "settle_seconds": 0.5}],
        "hashtags": {"extra": ["crosswatchdemo"]},
        "targets": {
            "outbox": {"path": str(root / "outbox")},
            "x": {"client_id": DEFAULT_X_CLIENT_ID, "api_base": base_url,
                  "authorize_url": f"{base_url}/i/oauth2/authorize", "redirect_port": 0,
                  "web_base": f"{base_url}/_emulator/x", **(x_options or {})},
            "instagram": {"client_id": DEFAULT_IG_CLIENT_ID, "graph_base": base_url, "api_base": base_url,
                          "authorize_url": f"{base_url}/oauth/authorize", "redirect_port": 0,
                          "media_host": {"type": "directory", "path": str(hosted),
                                         "public_url": f"{base_url}/_emulator/hosted/"}},
        },
        # One target asks for approval, so the console's queue has a photo waiting for the newcomer.
        "approval": [APPROVAL_TARGET],
        "logging": {"level": "warning", "format": "console"},
        "console": {"host": "127.0.0.1", "port": 0},
    }
    # Mastodon: the emulator serves a Mastodon server under /mastodon; the app is registered at sign-in.
    document["targets"]["mastodon"] = {"instance": f"{base_url}/mastodon", "redirect_port": 0}
    document["watch"][0]["targets"].append("mastodon")
    add_bluesky(document, base_url)
    # Threads: the emulator serves Threads under /threads; Meta fetches images from the same media host.
    document["targets"]["threads"] = {"client_id": DEFAULT_THREADS_CLIENT_ID, "graph_base": f"{base_url}/threads",
                                      "authorize_url": f"{base_url}/threads/oauth/authorize", "redirect_port": 0,
                                      "media_host": {"type": "directory", "path": str(hosted),
                                                     "public_url": f"{base_url}/_emulator/hosted/"}}
    document["watch"][0]["targets"].append("threads")
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# --- Bluesky: a target on the emulator's PDS, signed in with the seeded account's app password ---------


def add_bluesky(document: dict[str, Any], base_url: str) -> None:
    document["watch"][0]["targets"].append("bluesky")
    document["targets"]["bluesky"] = {"service": base_url, "handle": DEFAULT_BSKY_HANDLE, "language": "en",
                                      "web_base": f"{base_url}/_emulator/bsky"}


def sign_in_bluesky(config: Config, store: SecretStore, client: httpx.Client) -> str:
    """`crosswatch auth login bluesky` with the app password given, as on stdin."""
    state = auth.login(config.targets["bluesky"], store, client, lambda _url: None,
                       ask_password=_answer(DEFAULT_BSKY_APP_PASSWORD))
    return f"signed in to bluesky as @{state['username']} (app password)"


def browser_for(client: httpx.Client) -> Callable[[str], None]:
    """Plays the user's browser: opens the authorize page, which (in the emulator) approves at once and
    redirects to crosswatch's loopback listener, and follows that redirect."""

    def open_browser(url: str) -> None:
        client.get(url, follow_redirects=True)

    return open_browser


def _answer(secret: str) -> Callable[[str], str]:
    return lambda _question: secret


def sign_in(config: Config, store: SecretStore, client: httpx.Client) -> list[str]:
    lines = []
    browser = httpx.Client(timeout=30.0)
    try:
        for name in ("x", "instagram", "mastodon", "threads"):
            target = config.targets[name]
            # The emulator's X client is public (no secret); its Instagram and Threads apps have secrets.
            secrets = {"instagram": DEFAULT_IG_CLIENT_SECRET, "threads": DEFAULT_THREADS_CLIENT_SECRET}
            secret = secrets.get(target.kind, "")
            state = auth.login(target, store, client, browser_for(browser), _answer(secret), timeout=30.0)
            lines.append(f"signed in to {name} as @{state['username']} ({', '.join(state['scopes'])})")
    finally:
        browser.close()
    return lines


def settled(job: Job) -> bool:
    """Nothing more will happen to this job without someone: finished, in doubt, or awaiting approval."""
    return job.state in TERMINAL_STATES or job.state in (JobState.IN_DOUBT, JobState.AWAITING_APPROVAL)


def wait_until_settled(config: Config, expected: int, timeout: float, stopped: threading.Event) -> list[Job]:
    """The journal's jobs once all ``expected`` are settled (or at the deadline, or when the demo stops)."""
    deadline = time.monotonic() + timeout
    while not stopped.wait(0.25) and time.monotonic() < deadline:
        with Journal(config.journal_path) as journal:
            jobs = journal.jobs()
        if len(jobs) >= expected and all(settled(j) for j in jobs):
            return jobs
    with Journal(config.journal_path) as journal:
        return journal.jobs()


def approve_all_but_one(config: Config, jobs: list[Job]) -> int:
    """Approve the waiting jobs as `crosswatch approve ID` would, leaving the last for the newcomer to
    approve in the console; returns how many were approved."""
    waiting = sorted(j.id for j in jobs if j.state is JobState.AWAITING_APPROVAL)
    with Journal(config.journal_path) as journal:
        for job_id in waiting[:-1]:
            decisions.approve(journal, job_id)
    return max(len(waiting) - 1, 0)


def summary(config: Config) -> list[dict[str, Any]]:
    with Journal(config.journal_path) as journal:
        paths = {photo.id: Path(photo.path).name for photo, _s, _r in journal.photos()}
        return [{"id": j.id, "photo": paths.get(j.photo_id, "?"), "target": j.target, "state": j.state.value,
                 "permalink": j.permalink, "reason": j.reason} for j in journal.jobs()]


def spend_line(config: Config) -> str:
    """What the demo's X posts would have cost on the real X (pay-per-use)."""
    with Journal(config.journal_path) as journal:
        spent = journal.spend("x", 0.0, float("inf"))
    return (f"on the real X these {spent.posts} posts would cost {pricing.usd_text(spent.usd)} "
            f"(pay-per-use; `crosswatch preview` shows each post's cost)")


def run_demo(*, keep_serving: bool, out: Callable[[str], None] = print,
             x_options: Mapping[str, Any] | None = None,
             inspect: Callable[[Emulator], None] | None = None) -> int:
    """The demo; ``x_options`` are extra keys for its X target, ``inspect`` sees the emulator once the
    posts are made. With ``keep_serving`` the daemon, its console and the emulator run on until SIGINT
    or SIGTERM (exit 0); without, the demo stops once everything is posted or waits for approval."""
    keyring.set_keyring(MemoryKeyring())
    logs.configure("warning", "console")
    photos = sample_photos()
    with tempfile.TemporaryDirectory(prefix="crosswatch-demo-") as scratch:
        root = Path(scratch)
        emulator = Emulator(hosted_dir=root / "hosted")
        with EmulatorServer(emulator) as server, httpx.Client(timeout=30.0) as client:
            config = load_config(write_demo_config(root, server.url, x_options))
            out(f"emulator of X, Instagram, Mastodon, Bluesky and Threads running at {server.url}")
            for line in sign_in(config, SecretStore(), client):
                out(line)
            out(sign_in_bluesky(config, SecretStore(), client))
            daemon = Daemon(config)
            console = make_console(config, warn=out, on_decision=daemon.wake_runner.set)
            console.start_thread()
            outcome: dict[str, int] = {}
            stopped = threading.Event()

            def feed() -> None:
                outcome["code"] = _feed(config, photos, console.signin_url, server.url, stopped, out,
                                        daemon.wake_runner.set)
                if inspect is not None:
                    inspect(emulator)
                if keep_serving:
                    out("crosswatch, its console and the emulator keep running for you to look; press Ctrl-C "
                        "to stop")
                else:
                    daemon.request_stop()

            feeder = threading.Thread(target=feed, name="demo-feed", daemon=True)
            feeder.start()
            try:
                code = daemon.run_forever()
            finally:
                stopped.set()
                console.stop()
            feeder.join(timeout=10.0)
            if keep_serving:
                out("stopped")
    return code or outcome.get("code", 1)


def _where(row: Mapping[str, Any]) -> str:
    if row["state"] == JobState.DONE.value:
        return str(row["permalink"])
    if row["state"] == JobState.AWAITING_APPROVAL.value:
        return f"waits for your approval: in the console, or `crosswatch approve {row['id']}`"
    return f"{row['state']}: {row['reason']}"


def _feed(config: Config, photos: list[Path], console_url: str, emulator_url: str, stopped: threading.Event,
          out: Callable[[str], None], wake: Callable[[], None]) -> int:
    """Drop the samples in, approve all but one of the jobs held for approval, print what went out; 0 when
    every post was made or waits for approval."""
    time.sleep(0.5)
    for photo in photos:
        shutil.copy(photo, config.watch[0].path / photo.name)
    out(f"dropped {len(photos)} sample photos into {config.watch[0].path}; posting...")
    expected = len(photos) * len(config.watch[0].targets)
    jobs = wait_until_settled(config, expected, DEMO_TIMEOUT_SECONDS, stopped)
    if approve_all_but_one(config, jobs):
        wake()
        wait_until_settled(config, expected, DEMO_TIMEOUT_SECONDS, stopped)
    rows = summary(config)
    for row in rows:
        out(f"  {row['target']:<10} {row['photo']:<26} {_where(row)}")
    posted = sum(1 for r in rows if r["state"] == "done")
    waiting = [r for r in rows if r["state"] == JobState.AWAITING_APPROVAL.value]
    out(f"{posted} of {len(rows)} posts made, {len(waiting)} waiting for your approval. "
        f"See the timelines at {emulator_url}/_emulator/")
    out(spend_line(config))
    out(f"console: {console_url}")
    if waiting:
        out(f"open the console, approve {waiting[0]['photo']} for {waiting[0]['target']} under Queue, and watch "
            f"it appear at {emulator_url}/_emulator/")
    return 0 if posted + len(waiting) == len(rows) and len(rows) >= expected else 1
