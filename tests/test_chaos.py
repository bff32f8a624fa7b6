"""Chaos: the daemon is SIGKILLed at 25 random instants spread over every step, restarted each time,
and still posts 40 photos exactly once to each platform.

The daemon runs as a subprocess against the emulator as a real HTTP server (Instagram through the
directory media host the emulator serves). Most kills are crash points (``CROSSWATCH_CRASHPOINT``):
before a step, after its intent is committed, after the answer came and before it is recorded, and
after it is recorded, for every step of both targets; the rest are kills at random times. The seed is
fixed so CI is repeatable; ``CROSSWATCH_CHAOS_SEED=<n>`` replays a run and ``CROSSWATCH_CHAOS_SEED=random``
draws a new one (the seed is printed, and named in every failure).

The second test does the same on four networks at once (X, Instagram, Mastodon, Bluesky), each crash
point named by its target (``phase:target:step``) so it kills that network's step and no other's.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.journal import Journal
from crosswatch.models import JobState
from tests.conftest import DaemonProcess, jpeg_bytes, run_cli, wait_until, write_config, xmp_packet
from tests.fault_harness import platform_targets
from tests.test_platforms_e2e import done_count, platform_config, sign_in

StartDaemon = Callable[..., DaemonProcess]

CI_SEED = 20261129
PHOTOS = 40
KILLS = 25
TIMED_KILLS = 5
X_STEPS = ("upload_media", "set_alt_text", "create_post")
IG_STEPS = ("host_image", "create_container", "wait_for_container", "publish", "read_permalink", "unhost_image")
UNSAFE_STEPS = ("create_post", "publish")
PHASES = ("before", "intent", "after", "recorded")
LATE_STEPS = ("publish", "read_permalink", "unhost_image")
# A crash point no job reaches in time (every job is past it) is replaced by a kill after this long.
CRASH_WAIT_SECONDS = 15.0


def chaos_seed() -> int:
    wanted = os.environ.get("CROSSWATCH_CHAOS_SEED", "")
    if wanted == "random":
        return random.SystemRandom().randrange(2**32)
    return int(wanted) if wanted.isdigit() else CI_SEED


def crash_points() -> list[str]:
    return [f"{phase}:{step}" for step in (*X_STEPS, *IG_STEPS) for phase in PHASES
            if phase != "intent" or step in UNSAFE_STEPS]


def step_of(kill: str | float) -> str | None:
    return kill.split(":")[1] if isinstance(kill, str) else None


def kill_plan(rng: random.Random) -> list[str | float]:
    """25 kills: a crash point on every step, more random points, and random-time kills. A point is
    ``name:N`` (die at its Nth pass, N small so every round moves only a little); a float is seconds
    after the start. About half the points are on Instagram's steps after the container is ready."""
    points = crash_points()
    by_step = {step: [p for p in points if p.endswith(":" + step)] for step in (*X_STEPS, *IG_STEPS)}
    chosen = [rng.choice(options) for options in by_step.values()]
    late = [p for p in points if p not in chosen and step_of(p) in LATE_STEPS]
    other = [p for p in points if p not in chosen and p not in late]
    extra = KILLS - TIMED_KILLS - len(chosen)
    chosen += rng.sample(late, extra // 2) + rng.sample(other, extra - extra // 2)
    plan: list[str | float] = [f"{p}:{rng.randint(1, 2)}" for p in chosen]
    plan += [round(rng.uniform(0.4, 1.5), 2) for _ in range(TIMED_KILLS)]
    rng.shuffle(plan)
    return plan


def next_kill(pending: list[str | float], x_left: bool) -> str | float:
    """The first planned kill that can happen now. Jobs are taken oldest first, so Instagram's steps
    after the container wait only come once the X backlog ahead of them is done: until then, kills
    at those steps wait their turn (the plan itself, and the order within each phase, are random)."""
    for kill in pending:
        late = step_of(kill) in LATE_STEPS
        if isinstance(kill, float) or step_of(kill) == "wait_for_container" or late != x_left:
            pending.remove(kill)
            return kill
    return pending.pop(0)


def x_jobs_left(state: Path) -> bool:
    with Journal(state / "journal.sqlite3") as journal:
        return any(job.state is not JobState.DONE for job in journal.jobs(target="x"))


def kill_through(plan: list[str | float], take: Callable[[list[str | float]], str | float | None],
                 start_daemon: StartDaemon, config: Path, env: dict[str, str], seed: int) -> list[str]:
    """Start the daemon once per planned kill (``take`` picks the next one; None: no kill left can
    happen) and SIGKILL it there; returns the crash points it died at."""
    died_at: list[str] = []
    pending = list(plan)
    while pending:
        kill = take(pending)
        if kill is None:
            break
        if isinstance(kill, str):
            daemon = start_daemon(config, env={**env, "CROSSWATCH_CRASHPOINT": kill})
            try:
                daemon.process.wait(timeout=CRASH_WAIT_SECONDS)
                if daemon.process.returncode == -9:
                    died_at.append(kill)
            except subprocess.TimeoutExpired:
                pass  # no job reached that point in time: this becomes a random-time kill
        else:
            daemon = start_daemon(config, env=env)
            time.sleep(kill)  # the kill's instant itself, not a wait for anything
        if daemon.process.poll() is None:
            daemon.kill()
        else:
            daemon._log.close()
        assert daemon.process.returncode == -9, (seed, kill, daemon.log_path.read_text()[-3000:])
    return died_at


def finish(start_daemon: StartDaemon, config: Path, env: dict[str, str], state: Path, jobs: int) -> None:
    """A last daemon, left alone until every job is done, then stopped cleanly."""
    daemon = start_daemon(config, env=env)
    daemon.wait_for_log("watching")
    wait_until(lambda: done_count(state) == jobs, timeout=120)
    assert daemon.stop() == 0


@pytest.mark.slow
def test_sigkill_at_25_random_instants_posts_40_photos_exactly_once_per_platform(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path) -> None:
    seed = chaos_seed()
    print(f"chaos seed {seed} (CROSSWATCH_CHAOS_SEED={seed} replays it)")
    rng = random.Random(seed)
    plan = kill_plan(rng)
    assert {step_of(kill) for kill in plan if isinstance(kill, str)} == {*X_STEPS, *IG_STEPS}
    # The emulator's timeline is consistent at once: a post absent after a second is absent.
    env = {"CROSSWATCH_X_TIMELINE_SETTLE_SECONDS": "1"}
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        for index in range(PHOTOS):
            # Small photos (Instagram's minimum width) keep each round short.
            data = jpeg_bytes(1000 + index, size=(320, 240),
                              xmp=xmp_packet(f"Chaos photo {index}", f"A flat test card, number {index}."))
            (workspace["inbox"] / f"chaos-{index:03d}.jpg").write_bytes(data)
        journal_path = workspace["state"] / "journal.sqlite3"
        died_at = kill_through(plan, lambda pending: next_kill(
            pending, not journal_path.exists() or x_jobs_left(workspace["state"])),
            start_daemon, config, env, seed)
        finish(start_daemon, config, env, workspace["state"], 2 * PHOTOS)

    # Most kills hit their crash point, across nearly every step (a point no job reached in time
    # became a timed kill instead).
    print(f"died at {len(died_at)} crash points: {sorted(died_at)}")
    assert len(died_at) >= (KILLS - TIMED_KILLS) * 3 // 5, (seed, died_at)
    assert len({step_of(kill) for kill in died_at}) >= len(X_STEPS + IG_STEPS) - 2, (seed, died_at)
    x_posts = live_emulator.x_posts()
    ig_posts = live_emulator.ig_posts()
    assert len(x_posts) == PHOTOS, (seed, sorted(p.text for p in x_posts))
    assert len(ig_posts) == PHOTOS, (seed, sorted(m.caption for m in ig_posts))
    assert len({p.text for p in x_posts}) == PHOTOS, seed
    assert len({m.caption for m in ig_posts}) == PHOTOS, seed
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        jobs = journal.jobs()
        assert len(jobs) == 2 * PHOTOS
        for job in jobs:
            history = [e["to_state"] for e in journal.events(job.id)]
            assert job.state is JobState.DONE and history.count("done") == 1, (seed, job, history)
        assert sorted(j.remote_id or "" for j in jobs if j.target == "x") == sorted(p.id for p in x_posts)
        assert sorted(j.remote_id or "" for j in jobs if j.target == "instagram") == sorted(m.id for m in ig_posts)
    assert not [p for p in hosted.iterdir() if not p.name.startswith(".")], "hosted copies were left public"


# The four-network run: every network's steps, each crash point named by its target as well
# (``phase:target:step``), since X and Mastodon both have ``upload_media`` and X and Bluesky both
# ``create_post``: a point by step alone would kill whichever network got there first.
FOUR_PHOTOS = 20  # the issue: 20 photos to all four networks, 20 SIGKILLs
FOUR_TIMED_KILLS = 4  # beside the 16 crash points: 20 kills in all
NETWORK_STEPS: dict[str, tuple[str, ...]] = {
    "x": X_STEPS, "instagram": IG_STEPS,
    "mastodon": ("upload_media", "wait_for_media", "create_status"), "bluesky": ("upload_blob", "create_post"),
}
# The steps a daemon life reaches only in a later pass over the jobs (after a wait for processing).
SECOND_PASS = {("instagram", step) for step in LATE_STEPS} | {("mastodon", "create_status")}
FOUR_UNSAFE = {("x", "create_post"), ("instagram", "publish"), ("mastodon", "create_status"),
               ("bluesky", "create_post")}


def four_network_plan(rng: random.Random) -> list[str | float]:
    """One crash point on every step of every network (a random phase), one more on each unsafe step
    of the new networks, and a few random-time kills.

    A daemon life's first pass over the jobs does every X and Bluesky job whole, Instagram's only up
    to the container wait and Mastodon's up to the media processing wait; their publishing comes in
    a later pass, after X and Bluesky are through. So the points reached in the first pass go first,
    the networks taking turns (each such kill lets X and Bluesky move on by at most one photo), and
    the later steps' points and the timed kills come last."""
    turns: list[list[str]] = []
    late: list[str | float] = []
    for network, steps in NETWORK_STEPS.items():
        points = []
        for step in steps:
            phases = [p for p in PHASES if p != "intent" or (network, step) in FOUR_UNSAFE]
            points.append(f"{rng.choice(phases)}:{network}:{step}")
            if network in ("mastodon", "bluesky") and (network, step) in FOUR_UNSAFE:
                points.append(f"{rng.choice(('intent', 'after'))}:{network}:{step}")
        rng.shuffle(points)
        # Always the point's first pass, so that a kill comes before the network has gone far.
        late += [f"{p}:1" for p in points if (network, p.split(":")[2]) in SECOND_PASS]
        turns.append([f"{p}:1" for p in points if (network, p.split(":")[2]) not in SECOND_PASS])
    plan: list[str | float] = []
    while any(turns):
        plan += [turn.pop() for turn in turns if turn]
    late += [round(rng.uniform(0.4, 1.5), 2) for _ in range(FOUR_TIMED_KILLS)]
    rng.shuffle(late)
    return plan + late


def networks_left(state: Path) -> set[str]:
    """The networks with a job not done yet (all of them before the first intake)."""
    if not (state / "journal.sqlite3").exists():
        return set(NETWORK_STEPS)
    with Journal(state / "journal.sqlite3") as journal:
        return {job.target for job in journal.jobs() if job.state is not JobState.DONE} or (
            set() if journal.jobs() else set(NETWORK_STEPS))


def next_four_network_kill(pending: list[str | float], state: Path) -> str | float | None:
    """The first planned kill that can still happen: a point on a network with work left (a point on
    a network that is done would only wait, CRASH_WAIT_SECONDS, for nothing), or a timed kill."""
    left = networks_left(state)
    for kill in pending:
        if isinstance(kill, float) or kill.split(":")[1] in left:
            pending.remove(kill)
            return kill
    return None


def four_network_config(workspace: dict[str, Path], url: str, hosted: Path) -> Path:
    everything = platform_targets(url, hosted)
    targets = {name: everything[name] for name in NETWORK_STEPS}
    watch = [{"path": str(workspace["inbox"]), "targets": list(NETWORK_STEPS), "settle_seconds": 0.3}]
    return write_config(workspace, targets=targets, watch=watch)


def sign_in_everywhere(config: Path, emulator: Emulator, url: str) -> None:
    sign_in(config, emulator)  # X and Instagram
    session = emulator.mint_bsky_session(origin=url)
    for target, token in (("mastodon", emulator.mint_mastodon_token()),
                          ("bluesky", {key: session[key] for key in ("accessJwt", "refreshJwt", "did", "handle")})):
        result = run_cli("auth", "import", target, config=config, input=json.dumps(token))
        assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_sigkill_across_four_networks_posts_each_photo_exactly_once_on_each(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path) -> None:
    seed = chaos_seed()
    print(f"chaos seed {seed} (CROSSWATCH_CHAOS_SEED={seed} replays it)")
    plan = four_network_plan(random.Random(seed))
    env = {"CROSSWATCH_X_TIMELINE_SETTLE_SECONDS": "1"}
    live_emulator.state.mastodon.settings.processing_seconds = 0.3  # 202, then polled: wait_for_media runs
    with EmulatorServer(live_emulator) as server:
        config = four_network_config(workspace, server.url, hosted)
        sign_in_everywhere(config, live_emulator, server.url)
        for index in range(FOUR_PHOTOS):
            data = jpeg_bytes(2000 + index, size=(320, 240),
                              xmp=xmp_packet(f"Four photo {index}", f"A flat test card, number {index}."))
            (workspace["inbox"] / f"four-{index:03d}.jpg").write_bytes(data)
        died_at = kill_through(plan, lambda pending: next_four_network_kill(pending, workspace["state"]),
                               start_daemon, config, env, seed)
        finish(start_daemon, config, env, workspace["state"], len(NETWORK_STEPS) * FOUR_PHOTOS)

    print(f"died at {len(died_at)} crash points: {sorted(died_at)}")
    points = [kill for kill in plan if isinstance(kill, str)]
    assert len(died_at) >= len(points) * 3 // 5, (seed, died_at)
    # Every step of the new networks was crashed at least once (their own step, no other network's).
    new_steps = {f"{n}:{s}" for n in ("mastodon", "bluesky") for s in NETWORK_STEPS[n]}
    assert {":".join(p.split(":")[1:3]) for p in died_at} >= new_steps, (seed, died_at)

    posted: dict[str, list[tuple[str, str]]] = {  # network -> (remote id, text) of every post on it
        "x": [(p.id, p.text) for p in live_emulator.x_posts()],
        "instagram": [(m.id, m.caption or "") for m in live_emulator.ig_posts()],
        "mastodon": [(s["id"], s["text"]) for s in live_emulator.mastodon_statuses()],
        "bluesky": [(p["uri"], p["record"]["text"]) for p in live_emulator.snapshot()["bluesky"]["posts"]],
    }
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        jobs = journal.jobs()
        assert len(jobs) == len(NETWORK_STEPS) * FOUR_PHOTOS
        for job in jobs:
            history = [e["to_state"] for e in journal.events(job.id)]
            assert job.state is JobState.DONE and history.count("done") == 1, (seed, job, history)
        for network, posts in posted.items():
            titles = {re.search(r"Four photo \d+", text_).group(0) for _, text_ in posts}  # type: ignore[union-attr]
            assert len(posts) == FOUR_PHOTOS and len(titles) == FOUR_PHOTOS, (seed, network, posts)
            assert sorted(j.remote_id or "" for j in jobs if j.target == network) == sorted(i for i, _ in posts)
    assert all(len(s["media"]) == 1 for s in live_emulator.mastodon_statuses())
    assert not [p for p in hosted.iterdir() if not p.name.startswith(".")], "hosted copies were left public"


def test_a_crash_point_named_by_target_kills_that_networks_step_only() -> None:
    script = ("from crosswatch.crashpoints import crashpoint, step_points\n"
              "crashpoint(*step_points('before', 'x', 'upload_media'))\n"
              "print('x passed', flush=True)\n"
              "crashpoint(*step_points('before', 'mastodon', 'upload_media'))\n"
              "print('mastodon passed', flush=True)\n")
    for armed, code, printed in (("before:mastodon:upload_media", -9, "x passed\n"),
                                 ("before:upload_media", -9, ""),  # by step alone: the first network's
                                 ("before:upload_media:2", -9, "x passed\n"),
                                 ("before:bluesky:upload_media", 0, "x passed\nmastodon passed\n")):
        ran = subprocess.run([sys.executable, "-c", script], env={**os.environ, "CROSSWATCH_CRASHPOINT": armed},
                             capture_output=True, text=True, timeout=60)
        assert (ran.returncode, ran.stdout) == (code, printed), (armed, ran.stderr)
