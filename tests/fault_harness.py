"""In-process fault rig: a real Runner and a real SQLite journal against the emulator mounted on
``httpx.MockTransport``, all on one ``ManualClock`` that the rig moves to whenever the next job is due.

Waits that take minutes or days of platform time (a rate-limit reset, a 24-hour publishing window,
backoff) take no wall time here, and every answer is the emulator's own. The daemon-as-subprocess
tests (test_faults.py, test_chaos.py) use the same emulator over a real socket.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from crosswatch import auth
from crosswatch.config import Config, load_config
from crosswatch.emulator import DEFAULT_IG_CLIENT_ID, DEFAULT_X_CLIENT_ID, Emulator, EmulatorSettings, ManualClock
from crosswatch.emulator.bluesky_state import DEFAULT_BSKY_HANDLE
from crosswatch.emulator.threads_state import DEFAULT_THREADS_CLIENT_ID
from crosswatch.hosting import build_host
from crosswatch.journal import Journal, NewFile
from crosswatch.models import Job, JobState
from crosswatch.platforms.base import Target
from crosswatch.platforms.bluesky.steps import BlueskyTarget
from crosswatch.platforms.instagram.steps import InstagramTarget
from crosswatch.platforms.mastodon.steps import MastodonTarget
from crosswatch.platforms.threads.steps import ThreadsTarget
from crosswatch.platforms.x.steps import XTarget
from crosswatch.runner import Runner, TokenSource
from crosswatch.secrets import SecretStore
from tests.conftest import jpeg_bytes, write_config, xmp_packet
from tests.emulator_fixtures import OpenAPIRecorder, watch_openapi
from tests.openapi_check import XOpenAPI

ORIGIN = "http://emulator.test"
# Stop driving when nothing is due before this far ahead (a job left for a person, or a stuck rig).
HORIZON_SECONDS = 60 * 86400.0


def photo_bytes(seed: int, size: tuple[int, int] = (640, 480)) -> bytes:
    return jpeg_bytes(seed, size=size, xmp=xmp_packet(f"Fault photo {seed}", f"A flat test card, number {seed}."))


def platform_targets(url: str, hosted: Path, *, public_url: str | None = None,
                     **per_target: dict[str, Any]) -> dict[str, Any]:
    targets: dict[str, Any] = {
        "x": {"client_id": DEFAULT_X_CLIENT_ID, "api_base": url, "authorize_url": f"{url}/i/oauth2/authorize",
              "web_base": f"{url}/_emulator/x"},
        "instagram": {"client_id": DEFAULT_IG_CLIENT_ID, "graph_base": url, "api_base": url,
                      "authorize_url": f"{url}/oauth/authorize",
                      "media_host": {"type": "directory", "path": str(hosted),
                                     "public_url": public_url or f"{url}/_emulator/hosted/"}},
        "mastodon": {"instance": f"{url}/mastodon"},
        "bluesky": {"service": url, "handle": DEFAULT_BSKY_HANDLE, "language": "en",
                    "web_base": f"{url}/_emulator/bsky"},
        "threads": {"client_id": DEFAULT_THREADS_CLIENT_ID, "graph_base": f"{url}/threads",
                    "authorize_url": f"{url}/threads/oauth/authorize",
                    "media_host": {"type": "directory", "path": str(hosted),
                                   "public_url": public_url or f"{url}/_emulator/hosted/"}},
    }
    for name, extra in per_target.items():
        targets[name].update(extra)
    return targets


@dataclass
class Rig:
    config: Config
    clock: ManualClock
    emulator: Emulator
    client: httpx.Client
    journal: Journal
    runner: Runner
    inbox: Path
    hosted: Path
    recorder: OpenAPIRecorder
    tokens: dict[str, TokenSource] = field(default_factory=dict)
    photos: int = 0

    def add_photos(self, count: int, *, first_seed: int = 0, targets: Iterable[str] | None = None) -> None:
        """Drop ``count`` distinct photos in the inbox and record them as intake would."""
        wanted = tuple(targets or self.config.watch[0].targets)
        files = []
        for seed in range(first_seed, first_seed + count):
            path = self.inbox / f"photo-{seed:04d}.jpg"
            data = photo_bytes(seed)
            path.write_bytes(data)
            st = path.stat()
            files.append(NewFile(str(path), st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest(), wanted))
        self.journal.add_files(files)
        self.photos += count

    def jobs(self, target: str | None = None) -> list[Job]:
        return self.journal.jobs(target=target)

    def states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self.journal.jobs():
            counts[job.state.value] = counts.get(job.state.value, 0) + 1
        return counts

    def settled(self) -> bool:
        """Every job done, failed or rejected, or in doubt waiting for a person."""
        return all(job.state in (JobState.DONE, JobState.FAILED, JobState.REJECTED)
                   or (job.state is JobState.IN_DOUBT and job.next_attempt_at > self.clock() + HORIZON_SECONDS)
                   for job in self.journal.jobs())

    def drive(self, until: Callable[[], bool] | None = None, *, max_rounds: int = 20_000,
              on_round: Callable[[], None] | None = None) -> None:
        """Run due jobs; when none is due, move the clock to the next due time. Stops when ``until``
        (default: everything settled) holds, or nothing is due within the horizon."""
        done = until or self.settled
        for _ in range(max_rounds):
            if done():
                return
            attempted = self.runner.run_due()
            if on_round is not None:
                on_round()
            if attempted:
                continue
            next_due = self.journal.next_due_at()
            if next_due is None or next_due > self.clock() + HORIZON_SECONDS:
                return
            self.clock.set(max(self.clock(), next_due) + 0.001)
        raise AssertionError(f"the rig did not settle in {max_rounds} rounds: {self.states()}")

    def close(self) -> None:
        self.journal.close()
        self.client.close()


def sign_in(config: Config, emulator: Emulator, client: httpx.Client, clock: ManualClock,
            targets: Iterable[str]) -> None:
    """``auth import`` as the CLI does it, with tokens the emulator issued."""
    for name in targets:
        kind = config.targets[name].kind
        token = (emulator.mint_x_token() if kind == "x" else emulator.mint_mastodon_token() if kind == "mastodon"
                 else emulator.mint_bsky_session(origin=ORIGIN) if kind == "bluesky"
                 else emulator.mint_threads_token() if kind == "threads" else emulator.mint_ig_token())
        auth.import_tokens(config.targets[name], SecretStore(), json.dumps(token), client, clock=clock)


def make_rig(workspace: dict[str, Path], spec: XOpenAPI, *, targets: tuple[str, ...] = ("x", "instagram"),
             settings: EmulatorSettings | None = None, public_url: str | None = None,
             per_target: dict[str, dict[str, Any]] | None = None, signed_in: Iterable[str] | None = None,
             timeline_settle_seconds: float = 20.0, clock_start: float | None = None,
             config_extra: dict[str, Any] | None = None) -> Rig:
    clock = ManualClock(clock_start)
    hosted = workspace["state"].parent / "hosted"
    hosted.mkdir(exist_ok=True)
    emulator = Emulator(settings or EmulatorSettings(ig_container_processing_seconds=0.2), clock=clock,
                        hosted_dir=hosted)
    recorder = watch_openapi(emulator, spec)
    everything = platform_targets(ORIGIN, hosted, public_url=public_url, **(per_target or {}))
    config_path = write_config(workspace, targets={name: everything[name] for name in targets},
                               watch=[{"path": str(workspace["inbox"]), "targets": list(targets)}],
                               **(config_extra or {}))
    config = load_config(config_path)
    client = httpx.Client(transport=httpx.MockTransport(emulator.handle))
    sign_in(config, emulator, client, clock, signed_in if signed_in is not None else targets)
    journal = Journal(config.journal_path, clock=clock)
    built: dict[str, Target] = {}
    for name in targets:
        cfg = config.targets[name]
        if cfg.kind == "x":
            built[name] = XTarget(cfg, clock=clock, timeline_settle_seconds=timeline_settle_seconds)
        elif cfg.kind == "mastodon":
            built[name] = MastodonTarget(cfg, clock=clock)
        elif cfg.kind == "bluesky":
            built[name] = BlueskyTarget(cfg, clock=clock)
        elif cfg.kind == "threads":
            assert cfg.media_host is not None
            built[name] = ThreadsTarget(cfg, build_host(cfg.media_host))
        else:
            assert cfg.media_host is not None
            built[name] = InstagramTarget(cfg, build_host(cfg.media_host))
    tokens: dict[str, TokenSource] = {
        name: auth.token_provider(config.targets[name], SecretStore(), client, config.state_dir, clock=clock)
        for name in targets}
    runner = Runner(config, journal, built, client=client, tokens=tokens, clock=clock, rng=random.Random(7))
    return Rig(config, clock, emulator, client, journal, runner, workspace["inbox"], hosted, recorder, tokens)


def posted_once_per_target(rig: Rig) -> None:
    """The platform holds exactly one post per photo and target, and the journal agrees."""
    x_jobs = rig.jobs("x")
    ig_jobs = rig.jobs("instagram")
    if x_jobs:
        posts = rig.emulator.x_posts()
        assert len(posts) == len(x_jobs), [p.text for p in posts]
        assert len({p.text for p in posts}) == len(posts), "a photo went to X twice"
        assert sorted(j.remote_id or "" for j in x_jobs) == sorted(p.id for p in posts)
    if ig_jobs:
        media = rig.emulator.ig_posts()
        assert len(media) == len(ig_jobs), [m.caption for m in media]
        assert len({m.caption for m in media}) == len(media), "a photo went to Instagram twice"
    for job in rig.jobs():
        assert job.state is JobState.DONE, (job, rig.journal.events(job.id))
        assert [e["to_state"] for e in rig.journal.events(job.id)].count("done") == 1
    assert not [p for p in rig.hosted.iterdir() if not p.name.startswith(".")], "hosted copies left behind"
