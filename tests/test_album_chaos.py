"""Albums under SIGKILL: 5 albums of 6 photos to X (a thread of 4 + 2), Instagram and Threads
(carousels of 6), the daemon killed at 20 crash points spread over the child steps (each image's
upload and alt text, each carousel child's hosting and container, the carousel, the publish) and
restarted each time. Every album goes out exactly once per target, every image in its place, and a
child whose outcome was recorded is never made again: beyond the photos themselves, the emulator
saw only as many uploads and containers as there were kills between a child's answer and its record.
"""

from __future__ import annotations

import random
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.journal import Journal
from crosswatch.models import JobState
from tests.conftest import DaemonProcess, wait_until
from tests.test_albums import album_config, album_folder, alt, sign_in
from tests.test_platforms_e2e import done_count

StartDaemon = Callable[..., DaemonProcess]

SEED = 20261202
ALBUMS = 5
PHOTOS = 6
TARGETS = ["x", "instagram", "threads"]
# Child steps repeat once per image or child, so their Nth pass falls inside an album.
CHILD_POINTS = ("before:upload_media", "after:upload_media", "recorded:upload_media",
                "after:set_alt_text", "recorded:set_alt_text", "intent:create_post", "after:create_post",
                "before:host_image", "recorded:host_image", "before:create_container",
                "after:create_container", "recorded:create_container", "intent:publish", "after:publish")
# Each life of the daemon moves every job on a little before it dies, so kills come at a point's
# first pass, the per-image points first (each life short), the once-per-post ones last.
PER_POST = ("create_post", "publish")
KILLS = 20
# A point no job reaches in time becomes a kill at whatever the daemon does then.
CRASH_WAIT_SECONDS = 10.0
# Where each step stands in its target's steps (for "is any job still before it?").
STEP_INDEX = {"upload_media": 0, "set_alt_text": 1, "create_post": 2,
              "host_image": 0, "create_container": 1, "wait_for_container": 2, "publish": 3}
X_STEPS = ("upload_media", "set_alt_text", "create_post")


def kill_plan(rng: random.Random) -> list[str]:
    per_image = [p for p in CHILD_POINTS if p.split(":")[1] not in PER_POST]
    per_post = [p for p in CHILD_POINTS if p.split(":")[1] in PER_POST]
    first = per_image + rng.sample(per_image, KILLS - len(CHILD_POINTS))
    rng.shuffle(first)
    rng.shuffle(per_post)
    return [f"{point}:1" for point in (*first, *per_post)]


def ahead(state: Path) -> set[str]:
    """The steps some unfinished job has still to pass (an X album's next post passes them all again)."""
    path = state / "journal.sqlite3"
    if not path.exists():
        return set(STEP_INDEX)
    steps: set[str] = set()
    with Journal(path) as journal:
        for job in journal.jobs():
            row = journal.job_row(job.id)
            if job.state is JobState.DONE or row is None:
                continue
            own = X_STEPS if job.target == "x" else tuple(s for s in STEP_INDEX if s not in X_STEPS)
            more_posts = int(job.data.get("album_part") or 0) + 1 < int(job.data.get("album_parts") or 1)
            steps.update(s for s in own if more_posts or STEP_INDEX[s] >= row.step_index)
    return steps


def next_kill(pending: list[str], state: Path) -> str | None:
    """The first planned kill whose step some job has still to pass (the others are dropped)."""
    left = ahead(state)
    while pending:
        kill = pending.pop(0)
        if kill.split(":")[1] in left:
            return kill
    return None


@pytest.mark.slow
def test_sigkill_at_20_child_steps_posts_5_albums_exactly_once_per_target_and_never_redoes_a_recorded_child(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path) -> None:
    live_emulator.state.threads.settings.processing_seconds = 0.0
    rng = random.Random(SEED)
    plan = kill_plan(rng)
    for index in range(ALBUMS):
        album_folder(workspace["inbox"], f"album-{index}", PHOTOS, seed=100 * index, size=(320, 240))
    env = {"CROSSWATCH_X_TIMELINE_SETTLE_SECONDS": "1"}
    died_at: list[str] = []
    with EmulatorServer(live_emulator) as server:
        config = album_config(workspace, server.url, hosted, TARGETS)
        sign_in(config, live_emulator, TARGETS)
        pending = list(plan) + kill_plan(rng)  # a second round for the points the first could not reach
        kills = 0
        while kills < KILLS and (kill := next_kill(pending, workspace["state"])) is not None:
            kills += 1
            daemon = start_daemon(config, env={**env, "CROSSWATCH_CRASHPOINT": kill})
            try:
                daemon.process.wait(timeout=CRASH_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                daemon.kill()  # no job reached that point in time: a kill at whatever it was doing
            else:
                daemon._log.close()
                if daemon.process.returncode == -9:
                    died_at.append(kill)
            assert daemon.process.returncode == -9, (kill, daemon.log_path.read_text()[-3000:])
        daemon = start_daemon(config, env=env)
        daemon.wait_for_log("watching")
        wait_until(lambda: done_count(workspace["state"]) == ALBUMS * len(TARGETS), timeout=180)
        assert daemon.stop() == 0

    print(f"{kills} kills, {len(died_at)} at their crash points: {sorted(died_at)}")
    assert kills == KILLS
    assert len(died_at) >= KILLS * 2 // 3, died_at
    assert len({kill.split(":")[1] for kill in died_at}) >= 5, died_at
    redone = Counter(kill.rsplit(":", 1)[0] for kill in died_at)
    # X: one thread per album, 4 + 2 images, each image with its own alt text, in order.
    x_posts = sorted(live_emulator.x_posts(), key=lambda p: int(p.id))
    roots = [p for p in x_posts if p.in_reply_to is None]
    assert len(roots) == ALBUMS and len(x_posts) == 2 * ALBUMS
    for root in roots:
        [reply] = [p for p in x_posts if p.in_reply_to == root.id]
        alts = [live_emulator.x_alt_text(m) for m in (*root.media_ids, *reply.media_ids)]
        first = int(alts[0].rsplit(" ", 1)[1])  # type: ignore[union-attr]
        assert alts == [alt(first + i) for i in range(PHOTOS)]
    uploads = len(live_emulator.requests_log("x.media.upload"))
    assert uploads - ALBUMS * PHOTOS <= redone["after:upload_media"], (uploads, died_at)
    # Instagram and Threads: one carousel per album with its six children in order.
    ig = live_emulator.ig_posts()
    assert len(ig) == ALBUMS and all(len(m.children) == PHOTOS for m in ig)
    threads = live_emulator.threads_posts()
    assert len(threads) == ALBUMS and all(len(p["carousel"]) == PHOTOS for p in threads)
    for alts in ([c.alt_text for c in m.children] for m in ig):
        first = int(alts[0].rsplit(" ", 1)[1])  # type: ignore[union-attr]
        assert alts == [alt(first + i) for i in range(PHOTOS)]
    made = len(live_emulator.state.ig_containers) + len(live_emulator.state.threads.containers)
    assert made - 2 * ALBUMS * (PHOTOS + 1) <= redone["after:create_container"], (made, died_at)
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        jobs = journal.jobs()
        assert len(jobs) == ALBUMS * len(TARGETS)
        for job in jobs:
            history = [e["to_state"] for e in journal.events(job.id)]
            assert job.state is JobState.DONE and history.count("done") == 1, (job, history)
    assert not [p for p in hosted.iterdir() if not p.name.startswith(".")], "hosted copies were left public"
