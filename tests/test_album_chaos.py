"""Albums under SIGKILL: 5 albums of 6 photos to all five targets (X, Bluesky and Mastodon threads
of 4 + 2, Instagram and Threads carousels of 6), the daemon killed at 20 crash points spread over the
child steps (each image's upload and alt text, each carousel child's hosting and container, the
carousel, the publish, each post of a thread) and restarted each time. Every album goes out exactly
once per target, every image in its place with its alt text, and a child whose outcome was recorded
is never made again: beyond the photos themselves, the emulator saw only as many uploads and
containers as there were kills between a child's answer and its record.

Every point is named by its target as well (``phase:target:step``): X and Mastodon share
``upload_media``, X and Bluesky ``create_post``, Instagram and Threads every step.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
META_STEPS = ("host_image", "create_container", "wait_for_container", "publish")
TARGET_STEPS: dict[str, tuple[str, ...]] = {
    "x": ("upload_media", "set_alt_text", "create_post"), "instagram": META_STEPS, "threads": META_STEPS,
    "mastodon": ("upload_media", "wait_for_media", "create_status"), "bluesky": ("upload_blob", "create_post"),
}
TARGETS = list(TARGET_STEPS)
# Four points per target. Child steps repeat once per image or child, so their Nth pass falls inside an album.
CHILD_POINTS = (
    "after:x:upload_media", "recorded:x:upload_media", "after:x:set_alt_text", "intent:x:create_post",
    "recorded:instagram:host_image", "after:instagram:create_container", "recorded:instagram:create_container",
    "after:instagram:publish",
    "before:threads:host_image", "after:threads:create_container", "recorded:threads:create_container",
    "intent:threads:publish",
    "after:mastodon:upload_media", "recorded:mastodon:upload_media", "intent:mastodon:create_status",
    "after:mastodon:create_status",
    "after:bluesky:upload_blob", "recorded:bluesky:upload_blob", "intent:bluesky:create_post",
    "after:bluesky:create_post",
)
# Each life of the daemon moves every job on a little before it dies, so kills come at a point's
# first pass, the targets taking turns (Mastodon and Bluesky, the quickest through an album, first
# in every turn), each target's per-image points before its once-per-post ones.
PER_POST = ("create_post", "publish", "create_status")
TURN_ORDER = ("mastodon", "bluesky", "x", "threads", "instagram")
KILLS = 20
# A point no job reaches in time becomes a kill at whatever the daemon does then.
CRASH_WAIT_SECONDS = 10.0


def point_step(point: str) -> tuple[str, str]:
    """(target, step) of ``phase:target:step[:N]``."""
    _, target, step = point.split(":")[:3]
    return target, step


def kill_plan(rng: random.Random) -> list[str]:
    turns: list[list[str]] = []
    for target in TURN_ORDER:
        points = [p for p in CHILD_POINTS if point_step(p)[0] == target]
        per_image = [p for p in points if point_step(p)[1] not in PER_POST]
        per_post = [p for p in points if point_step(p)[1] in PER_POST]
        rng.shuffle(per_image)
        rng.shuffle(per_post)
        turns.append([*per_image, *per_post])
    plan: list[str] = []
    while any(turns):
        plan += [turn.pop(0) for turn in turns if turn]
    return [f"{point}:1" for point in plan]


def ahead(state: Path) -> set[tuple[str, str]]:
    """The (target, step) some unfinished job has still to pass (an album's next post of a thread
    passes them all again)."""
    everything = {(target, step) for target, steps in TARGET_STEPS.items() for step in steps}
    path = state / "journal.sqlite3"
    if not path.exists():
        return everything
    left: set[tuple[str, str]] = set()
    with Journal(path) as journal:
        jobs = journal.jobs()
        if not jobs:  # signed in, nothing taken in yet
            return everything
        for job in jobs:
            row = journal.job_row(job.id)
            if job.state is JobState.DONE or row is None:
                continue
            steps = TARGET_STEPS[job.target]
            more_posts = int(job.data.get("album_part") or 0) + 1 < int(job.data.get("album_parts") or 1)
            left.update((job.target, s) for i, s in enumerate(steps) if more_posts or i >= row.step_index)
    return left


def next_kill(pending: list[str], state: Path) -> str | None:
    """The first planned kill whose step some job has still to pass (the others are dropped)."""
    left = ahead(state)
    while pending:
        kill = pending.pop(0)
        if point_step(kill) in left:
            return kill
    return None


def first_number(alts: Sequence[Any]) -> int:
    """The seed in an album's first alt text (the albums' photos are numbered 100 * album + index)."""
    return int(str(alts[0]).rsplit(" ", 1)[1])


def assert_in_order(alts: Sequence[Any]) -> None:
    first = first_number(alts)
    assert list(alts) == [alt(first + i) for i in range(PHOTOS)], alts


def assert_mastodon_threads(statuses: list[dict[str, Any]]) -> None:
    """The server's default limit of 4 attachments: a thread of 4 + 2 per album, in order."""
    roots = [s for s in statuses if s["in_reply_to_id"] is None]
    assert len(roots) == ALBUMS and len(statuses) == 2 * ALBUMS
    for root in roots:
        [reply] = [s for s in statuses if s["in_reply_to_id"] == root["id"]]
        assert [len(root["media"]), len(reply["media"])] == [4, 2]
        assert_in_order([m["description"] for m in (*root["media"], *reply["media"])])


def assert_bluesky_threads(posts: list[dict[str, Any]]) -> None:
    """4 images a post: a thread of 4 + 2 per album, the reply's root and parent its first post."""
    roots = [p for p in posts if "reply" not in p["record"]]
    assert len(roots) == ALBUMS and len(posts) == 2 * ALBUMS
    for root in roots:
        ref = {"uri": root["uri"], "cid": root["cid"]}
        [reply] = [p for p in posts if p["record"].get("reply") == {"root": ref, "parent": ref}]
        first, second = root["record"]["embed"]["images"], reply["record"]["embed"]["images"]
        assert [len(first), len(second)] == [4, 2]
        assert_in_order([image["alt"] for image in (*first, *second)])


@pytest.mark.slow
def test_sigkill_at_20_child_steps_posts_5_albums_exactly_once_on_all_five_targets_and_never_redoes_a_recorded_child(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path) -> None:
    live_emulator.state.threads.settings.processing_seconds = 0.0
    # Mastodon's stock 30 uploads per 30 minutes is exactly the 30 photos: the kills' repeats would
    # hold the target for half an hour (the daemon waits, as it should), so this server allows more.
    live_emulator.state.mastodon.settings.media_limit = 300
    rng = random.Random(SEED)
    plan = kill_plan(rng)
    for index in range(ALBUMS):
        album_folder(workspace["inbox"], f"album-{index}", PHOTOS, seed=100 * index, size=(320, 240))
    env = {"CROSSWATCH_X_TIMELINE_SETTLE_SECONDS": "1"}
    died_at: list[str] = []
    timed = 0  # kills at a random instant, which may fall between an answer and its record too
    with EmulatorServer(live_emulator) as server:
        config = album_config(workspace, server.url, hosted, TARGETS)
        sign_in(config, live_emulator, TARGETS, url=server.url)
        pending = list(plan) + kill_plan(rng)  # a second round for the points the first could not reach
        kills = 0
        while kills < KILLS and ahead(workspace["state"]):
            kill = next_kill(pending, workspace["state"])
            kills += 1
            if kill is None:  # every planned point is behind the jobs: a kill at a random instant
                daemon = start_daemon(config, env=env)
                time.sleep(rng.uniform(0.5, 2.0))
                daemon.kill()
                timed += 1
                continue
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

    print(f"{kills} kills ({timed} at random instants), {len(died_at)} at their crash points: {died_at}")
    assert kills == KILLS
    assert len(died_at) >= KILLS * 2 // 3, died_at
    assert len({point_step(kill)[0] for kill in died_at}) == len(TARGETS), died_at
    # The kills that may have lost an answer: at a step's "after" point (or at a random instant).
    redone = Counter(kill.rsplit(":", 1)[0] for kill in died_at)
    for point in CHILD_POINTS:
        redone[point] += timed

    # X: one thread per album, 4 + 2 images, each image with its own alt text, in order.
    x_posts = sorted(live_emulator.x_posts(), key=lambda p: int(p.id))
    roots = [p for p in x_posts if p.in_reply_to is None]
    assert len(roots) == ALBUMS and len(x_posts) == 2 * ALBUMS
    for root in roots:
        [reply] = [p for p in x_posts if p.in_reply_to == root.id]
        assert_in_order([live_emulator.x_alt_text(m) for m in (*root.media_ids, *reply.media_ids)])
    uploads = len(live_emulator.requests_log("x.media.upload"))
    assert uploads - ALBUMS * PHOTOS <= redone["after:x:upload_media"], (uploads, died_at)

    assert_mastodon_threads(live_emulator.mastodon_statuses())
    uploads = len(live_emulator.requests_log("mastodon.media.upload"))
    assert uploads - ALBUMS * PHOTOS <= redone["after:mastodon:upload_media"], (uploads, died_at)
    assert_bluesky_threads(live_emulator.snapshot()["bluesky"]["posts"])
    uploads = len(live_emulator.requests_log("bsky.repo.uploadBlob"))
    assert uploads - ALBUMS * PHOTOS <= redone["after:bluesky:upload_blob"], (uploads, died_at)

    # Instagram and Threads: one carousel per album with its six children in order.
    ig = live_emulator.ig_posts()
    assert len(ig) == ALBUMS and all(len(m.children) == PHOTOS for m in ig)
    for media in ig:
        assert_in_order([c.alt_text for c in media.children])
    threads = live_emulator.threads_posts()
    assert len(threads) == ALBUMS and all(len(p["carousel"]) == PHOTOS for p in threads)
    for post in threads:
        assert_in_order([item["alt_text"] for item in post["carousel"]])
    for target, made in (("instagram", len(live_emulator.state.ig_containers)),
                         ("threads", len(live_emulator.state.threads.containers))):
        assert made - ALBUMS * (PHOTOS + 1) <= redone[f"after:{target}:create_container"], (target, made, died_at)

    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        jobs = journal.jobs()
        assert len(jobs) == ALBUMS * len(TARGETS)
        for job in jobs:
            history = [e["to_state"] for e in journal.events(job.id)]
            assert job.state is JobState.DONE and history.count("done") == 1, (job, history)
    assert not [p for p in hosted.iterdir() if not p.name.startswith(".")], "hosted copies were left public"
