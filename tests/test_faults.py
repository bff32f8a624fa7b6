"""One test per fault: each ends with every photo posted exactly once per target, or failed with the
platform's reason where the fault is permanent.

Two rigs:
- in-process (tests/fault_harness.py): Runner + real SQLite + the emulator on httpx.MockTransport, on
  a ManualClock, for faults whose waits are minutes or days of platform time;
- the daemon as a subprocess against the emulator as a real HTTP server, for the hard cases (a
  timeout or dropped connection after the platform applied the request, 401 mid-run, 429), the
  journal's disk filling up and the keyring going away.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crosswatch import auth
from crosswatch.emulator import DEFAULT_X_CLIENT_ID, Emulator, EmulatorServer, EmulatorSettings, RateLimit
from crosswatch.emulator.httputil import graph_error, x_blank_problem
from crosswatch.emulator.settings import default_x_rate_limits
from crosswatch.emulator.x_api import DUPLICATE_DETAIL
from crosswatch.journal import Journal
from crosswatch.models import JobState
from crosswatch.secrets import SecretStore
from tests.conftest import DaemonProcess, run_cli, wait_until
from tests.fault_harness import ORIGIN, Rig, make_rig, posted_once_per_target
from tests.fault_harness import sign_in as harness_sign_in
from tests.openapi_check import XOpenAPI
from tests.test_platforms_e2e import done_count, photo, platform_config, sign_in

StartDaemon = Callable[..., DaemonProcess]


@pytest.fixture
def rig_factory(workspace: dict[str, Path], x_openapi: XOpenAPI) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**kwargs: Any) -> Rig:
        rig = make_rig(workspace, x_openapi, **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()
        rig.recorder.assert_clean()


def graph_body(code: int, message: str, subcode: int | None = None, *, transient: bool = False) -> Any:
    return graph_error(code, message, subcode=subcode, is_transient=transient).json()


def events_of(rig: Rig, job_id: int) -> list[str]:
    return [e["to_state"] for e in rig.journal.events(job_id)]


# ---------------------------------------------------------------------------------------------------
# Transient server errors


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_on_every_kind_of_step_end_posted_once(status: int, rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.add_photos(2)
    # Safe steps (upload, container) are simply retried; unsafe ones (create post, publish) may have
    # been applied behind a failing gateway, so they are checked on the platform first.
    for endpoint in ("x.media.upload", "x.tweets.create", "ig.media.create", "ig.media_publish"):
        rig.emulator.respond_with(endpoint, status)
    rig.runner.run_due()
    # The next attempt is in the journal (a restart keeps the schedule), with the platform's reason.
    retrying = [job for job in rig.jobs() if (job.reason or "").startswith("will retry:")]
    assert retrying, [(job.state, job.reason) for job in rig.jobs()]
    for job in retrying:
        assert job.state is JobState.READY and job.next_attempt_at > rig.clock() + 2
        assert str(status) in (job.reason or "")
    rig.drive()
    posted_once_per_target(rig)
    assert len(rig.emulator.requests_log("x.tweets.create")) == 3  # one refused, two posted
    in_doubt = [j for j in rig.jobs() if "in_doubt" in events_of(rig, j.id)]
    assert {j.target for j in in_doubt} == {"x", "instagram"}


def test_backoff_grows_with_each_failure_and_gives_up_with_the_reason(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(targets=("x",))
    rig.add_photos(1)
    rig.emulator.respond_with("x.media.upload", 503, times=None)
    delays: list[float] = []
    for _ in range(12):
        before = rig.clock()
        rig.runner.run_due()
        [job] = rig.jobs()
        if job.state is not JobState.READY:
            break
        delays.append(job.next_attempt_at - before)
        rig.clock.set(job.next_attempt_at + 0.001)
    assert job.state is JobState.FAILED
    assert job.reason is not None and "gave up after 8 attempts" in job.reason and "503" in job.reason
    assert len(delays) == 7
    # Exponential with jitter: each delay within [base*2^(n-1)/2, base*2^(n-1)].
    for attempt, delay in enumerate(delays, start=1):
        ceiling = 5.0 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
    assert rig.emulator.x_posts() == []


# ---------------------------------------------------------------------------------------------------
# Timeouts and dropped connections (in-process; the subprocess versions of the hard case are below)


@pytest.mark.parametrize("applied", [False, True], ids=["before-applying", "after-applying"])
def test_timeouts_and_drops_on_the_unsafe_steps_end_posted_once(applied: bool,
                                                                 rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.add_photos(2)
    rig.emulator.stall("x.tweets.create", 0.0, after_applying=applied)
    rig.emulator.drop_connection("x.tweets.create", after_applying=applied)
    rig.emulator.stall("ig.media_publish", 0.0, after_applying=applied)
    rig.emulator.drop_connection("ig.media_publish", after_applying=applied)
    rig.drive()
    posted_once_per_target(rig)
    for job in rig.jobs():
        history = events_of(rig, job.id)
        assert "in_doubt" in history, history
    sent = len(rig.emulator.requests_log("x.tweets.create"))
    # Applied: the lost answers were found on the platform, never sent again. Not applied: sent again.
    assert sent == (2 if applied else 4)
    assert len(rig.emulator.requests_log("ig.media_publish")) == (2 if applied else 4)


def test_a_timeout_before_a_safe_step_was_applied_is_retried(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    rig.add_photos(1)
    rig.emulator.stall("x.media.upload", 0.0)
    rig.emulator.drop_connection("ig.media.create")
    rig.drive()
    posted_once_per_target(rig)
    assert all("in_doubt" not in events_of(rig, job.id) for job in rig.jobs())


# ---------------------------------------------------------------------------------------------------
# X rate-limit headers: a window with nothing left holds X until its reset, without a 429


def test_x_rate_limit_headers_hold_x_until_the_reset_without_a_429(rig_factory: Callable[..., Rig]) -> None:
    limits = {**default_x_rate_limits(), "x.tweets.create": RateLimit(2, 900)}
    settings = EmulatorSettings(x_rate_limits=limits, x_daily_limits={"x.tweets.create": RateLimit(3, 86400)})
    rig = rig_factory(targets=("x",), settings=settings)
    start = rig.clock()
    rig.add_photos(4)
    rig.drive()
    creates = rig.emulator.requests_log("x.tweets.create")
    assert [r.status for r in creates] == [201, 201, 201, 201], "a limit the headers announced was run into"
    times = sorted(r.time for r in creates)
    assert times[1] < start + 60
    assert times[2] >= start + 900  # the 15-minute window's reset
    assert times[3] >= start + 86400  # the 24-hour window's reset
    posted_once_per_target(rig)


# ---------------------------------------------------------------------------------------------------
# Sign-in


def test_a_reused_refresh_token_parks_x_until_a_new_sign_in(rig_factory: Callable[..., Rig],
                                                            workspace: dict[str, Path]) -> None:
    rig = rig_factory(signed_in=())
    token = rig.emulator.mint_x_token()
    harness_sign_in(rig.config, rig.emulator, rig.client, rig.clock, ["instagram"])
    auth.import_tokens(rig.config.targets["x"], SecretStore(), json.dumps(token), rig.client, clock=rig.clock)
    # Someone else (a restored backup, a second machine) spends the refresh token crosswatch holds.
    spent = rig.client.post(f"{rig.config.targets['x'].api_base}/2/oauth2/token",
                            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"],
                                  "client_id": DEFAULT_X_CLIENT_ID})
    assert spent.status_code == 200
    rig.clock.advance(token["expires_in"] + 1)  # crosswatch's access token has expired meanwhile
    rig.add_photos(2)
    rig.drive(until=lambda: all(j.state is JobState.DONE for j in rig.jobs("instagram")))
    assert [j.state for j in rig.jobs("x")] == [JobState.READY, JobState.READY]
    assert rig.emulator.x_posts() == []
    refused = [r for r in rig.emulator.requests_log("x.token") if r.status != 200]
    assert len(refused) == 1, "a refused refresh token must not be tried again and again"
    hold = rig.journal.holds()["x"]
    assert hold.kind == "auth" and "crosswatch auth login x" in hold.reason
    status = run_cli("status", config=workspace["config"])
    assert "crosswatch auth login x" in status.stdout
    doctor = run_cli("doctor", config=workspace["config"])
    assert doctor.returncode == 1
    assert any(line.startswith("FIX   target x:") for line in doctor.stdout.splitlines()), doctor.stdout
    # Nothing failed meanwhile; a new sign-in releases the jobs.
    rig.drive(until=lambda: rig.clock() > hold.until + 600)
    assert rig.emulator.x_posts() == []
    harness_sign_in(rig.config, rig.emulator, rig.client, rig.clock, ["x"])
    rig.drive()
    posted_once_per_target(rig)


# ---------------------------------------------------------------------------------------------------
# Instagram containers, quota, fetch, spam block, throttling


def test_a_container_in_error_fails_with_the_reason_and_an_expired_one_is_made_again(
        rig_factory: Callable[..., Rig], workspace: dict[str, Path]) -> None:
    rig = rig_factory(targets=("instagram",))
    rig.add_photos(1, first_seed=0)
    rig.emulator.fail_next_containers("ERROR")
    rig.drive()
    [failed] = rig.jobs()
    assert failed.state is JobState.FAILED
    assert failed.reason is not None and "could not process the image: ERROR" in failed.reason
    assert rig.emulator.ig_posts() == []
    assert not list(rig.hosted.iterdir()), "a failed job's hosted copy must be removed"
    status = run_cli("status", config=workspace["config"]).stdout
    assert f"failed: {failed.reason}; `crosswatch retry {failed.id}` to try again" in status
    # The user tries it again: it goes out once.
    assert run_cli("retry", str(failed.id), config=workspace["config"]).returncode == 0
    rig.drive()
    assert rig.journal.job(failed.id).state is JobState.DONE  # type: ignore[union-attr]
    assert len(rig.emulator.ig_posts()) == 1

    rig.add_photos(1, first_seed=1)
    rig.emulator.fail_next_containers("EXPIRED")
    rig.drive()
    expired = rig.jobs()[1]
    assert expired.state is JobState.DONE
    assert expired.data.get("containers_recreated") == 1
    assert len(rig.emulator.ig_posts()) == 2
    assert len(rig.emulator.requests_log("ig.media.create")) == 4
    posted_once_per_target(rig)


def test_the_publishing_limit_reached_waits_and_then_posts_once(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(targets=("instagram",))
    rig.add_photos(2)
    body = graph_body(9, "Application request limit reached", 2207042)
    rig.emulator.respond_with("ig.media_publish", 400, body)
    rig.drive(until=lambda: "instagram" in rig.journal.holds(rig.clock()))
    hold = rig.journal.holds(rig.clock())["instagram"]
    assert hold.kind == "rate_limited" and "2207042" in hold.reason
    assert hold.until - rig.clock() >= 3000
    start = rig.clock()
    rig.drive()
    posted_once_per_target(rig)
    assert min(m.timestamp for m in rig.emulator.ig_posts()) >= start + 3000
    assert all(j.attempts <= 2 for j in rig.jobs()), "waiting for the quota is not a failed attempt"


def test_a_quota_used_up_by_another_app_holds_instagram_until_it_frees(rig_factory: Callable[..., Rig]) -> None:
    settings = EmulatorSettings(ig_container_processing_seconds=0.2, ig_publish_quota=2)
    rig = rig_factory(targets=("instagram",), settings=settings)
    # Another app on the same account publishes twice: the whole quota is gone.
    other = rig.emulator.mint_ig_token()
    headers = {"Authorization": f"Bearer {other['access_token']}"}
    (rig.hosted / "other.jpg").write_bytes(photo(900))
    for _ in range(2):
        made = rig.client.post(f"{ORIGIN}/me/media", headers=headers,
                               data={"image_url": f"{ORIGIN}/_emulator/hosted/other.jpg", "caption": "elsewhere"})
        rig.clock.advance(1)
        published = rig.client.post(f"{ORIGIN}/me/media_publish", headers=headers,
                                    data={"creation_id": made.json()["id"]})
        assert published.status_code == 200, published.text
    (rig.hosted / "other.jpg").unlink()
    start = rig.clock()
    rig.add_photos(1)
    rig.runner.run_due()
    hold = rig.journal.holds(rig.clock())["instagram"]
    assert hold.kind == "quota" and "publishing limit (2 per 24 h)" in hold.reason
    assert [r for r in rig.emulator.requests_log("ig.media.create") if r.time >= start] == [], \
        "no container is made without quota"
    rig.drive()
    [job] = rig.jobs()
    assert job.state is JobState.DONE
    mine = [m for m in rig.emulator.ig_posts() if m.caption != "elsewhere"]
    assert len(mine) == 1 and mine[0].timestamp >= start + 86400 - 2
    assert {r.status for r in rig.emulator.requests_log("ig.media_publish")} == {200}


def test_an_image_url_instagram_cannot_fetch_fails_with_the_platforms_reason(
        rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(targets=("instagram",), public_url=f"{ORIGIN}/nowhere/")
    rig.add_photos(1)
    rig.drive()
    [job] = rig.jobs()
    assert job.state is JobState.FAILED
    assert job.reason is not None and "2207052" in job.reason and "public_url" in job.reason
    assert rig.emulator.ig_posts() == []
    assert not list(rig.hosted.iterdir())


def test_a_spam_block_pauses_instagram_and_says_so(rig_factory: Callable[..., Rig],
                                                  workspace: dict[str, Path]) -> None:
    rig = rig_factory(targets=("instagram",))
    rig.add_photos(2)
    rig.emulator.respond_with("ig.media_publish", 400, graph_body(4, "Activity restricted", 2207051))
    rig.drive(until=lambda: "instagram" in rig.journal.holds(rig.clock()))
    hold = rig.journal.holds(rig.clock())["instagram"]
    assert hold.kind == "paused" and "restricted this account" in hold.reason
    assert hold.until - rig.clock() >= 23 * 3600
    assert all(j.state is JobState.READY for j in rig.jobs())
    assert "restricted this account" in run_cli("status", config=workspace["config"]).stdout
    doctor = run_cli("doctor", config=workspace["config"]).stdout
    assert any(line.startswith("FIX   target instagram: waiting until") for line in doctor.splitlines()), doctor
    rig.drive()
    posted_once_per_target(rig)
    # The containers made before the pause outlived their 24 hours; new ones were made, not failed.
    assert all(job.data.get("stale_containers") == 1 or job.data.get("containers_recreated") == 1
               for job in rig.jobs())
    assert any(job.data.get("stale_containers") == 1 for job in rig.jobs())


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80002])
def test_throttling_waits_as_long_as_meta_estimates(code: int, rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(targets=("instagram",))
    rig.add_photos(1)
    usage = {"17841400000000000": [{"type": "instagram", "call_count": 100, "total_cputime": 20,
                                    "total_time": 30, "estimated_time_to_regain_access": 7}]}
    rig.emulator.inject("ig.media.create", "respond", status=400,
                        body=graph_body(code, "Application request limit reached"),
                        headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    rig.runner.run_due()
    hold = rig.journal.holds(rig.clock())["instagram"]
    assert hold.kind == "rate_limited"
    assert hold.until - rig.clock() == pytest.approx(7 * 60, abs=1)
    start = rig.clock()
    rig.drive()
    posted_once_per_target(rig)
    created = [r for r in rig.emulator.requests_log("ig.media.create") if r.status == 200]
    assert created[0].time >= start + 7 * 60 - 1


# ---------------------------------------------------------------------------------------------------
# No room to prepare the image (state_dir's disk)


def test_a_job_whose_image_cannot_be_written_waits_and_is_not_rejected(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(targets=("x",))
    rig.add_photos(1)
    # Where the prepared images go, something that is not a folder: every write there fails.
    blocker = rig.config.media_cache_dir
    blocker.write_bytes(b"")
    rig.runner.run_due()
    [job] = rig.jobs()
    assert job.state is JobState.READY and job.next_attempt_at > rig.clock()
    assert job.reason is not None and "cannot prepare the image" in job.reason and "free some space" in job.reason
    blocker.unlink()
    rig.drive()
    posted_once_per_target(rig)


# ---------------------------------------------------------------------------------------------------
# X duplicate content


def test_x_duplicate_content_fails_with_xs_reason_and_posts_nothing(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(targets=("x",))
    rig.add_photos(2)
    rig.emulator.respond_with("x.tweets.create", 403, x_blank_problem(403, DUPLICATE_DETAIL))
    rig.drive()
    failed = [j for j in rig.jobs() if j.state is JobState.FAILED]
    assert len(failed) == 1
    assert failed[0].reason is not None and "duplicate content" in failed[0].reason
    assert len(rig.emulator.x_posts()) == 1
    assert len(rig.emulator.requests_log("x.tweets.create")) == 2, "a duplicate is never sent again"


# ---------------------------------------------------------------------------------------------------
# When the platform cannot tell: a person decides with `crosswatch resolve`


def test_jobs_the_platform_cannot_settle_wait_for_resolve(rig_factory: Callable[..., Rig],
                                                         workspace: dict[str, Path]) -> None:
    rig = rig_factory()
    rig.add_photos(1)
    rig.emulator.drop_connection("x.tweets.create", after_applying=True)
    rig.emulator.drop_connection("ig.media_publish")
    # The reads that would tell fail for as long as crosswatch keeps asking (Instagram's from the
    # moment its publish is in doubt: the same node read polls the container before that).
    unreadable = [rig.emulator.respond_with("x.users.tweets", 503, times=None)]
    rig.drive(until=lambda: rig.jobs("instagram")[0].state is JobState.IN_DOUBT)
    unreadable.append(rig.emulator.respond_with(
        "ig.node", 500, graph_body(2, "Service unavailable", transient=True), times=None))
    rig.drive()
    x_job, ig_job = rig.jobs("x")[0], rig.jobs("instagram")[0]
    assert x_job.state is JobState.IN_DOUBT and ig_job.state is JobState.IN_DOUBT
    status = run_cli("status", config=workspace["config"]).stdout
    for job in (x_job, ig_job):
        assert f"`crosswatch resolve {job.id} --posted` or `crosswatch resolve {job.id} --not-posted`" in status
    assert json.loads(run_cli("status", "--json", config=workspace["config"]).stdout)["jobs"][0]["state"] == "in_doubt"
    for fault in unreadable:
        rig.emulator.faults.remove(fault.id)

    # X got the post (the answer was lost): the person says so. Instagram did not: send it again.
    missing = run_cli("resolve", str(x_job.id), config=workspace["config"])
    assert missing.returncode == 2 and "--posted" in missing.stderr
    assert run_cli("resolve", str(x_job.id), "--posted", config=workspace["config"]).returncode == 0
    assert run_cli("resolve", str(ig_job.id), "--not-posted", config=workspace["config"]).returncode == 0
    again = run_cli("resolve", str(x_job.id), "--posted", config=workspace["config"])
    assert again.returncode == 2 and "only a job in doubt can be resolved" in again.stderr
    rig.drive()
    assert rig.journal.job(x_job.id).state is JobState.DONE  # type: ignore[union-attr]
    assert len(rig.emulator.x_posts()) == 1
    assert len(rig.emulator.ig_posts()) == 1
    assert rig.journal.job(ig_job.id).state is JobState.DONE  # type: ignore[union-attr]
    assert not list(rig.hosted.iterdir())


# ---------------------------------------------------------------------------------------------------
# The daemon as a subprocess against the emulator as a real server


# The emulator's timeline is consistent at once, so a miss is certain after a second.
FAST = {"CROSSWATCH_X_TIMELINE_SETTLE_SECONDS": "1"}


def journal_jobs(state: Path) -> list[Any]:
    with Journal(state / "journal.sqlite3") as journal:
        return [(job, [e["to_state"] for e in journal.events(job.id)]) for job in journal.jobs()]


def exactly_once(emulator: Emulator, state: Path, photos: int) -> None:
    assert len(emulator.x_posts()) == photos
    assert len({p.text for p in emulator.x_posts()}) == photos
    assert len(emulator.ig_posts()) == photos
    assert len({m.caption for m in emulator.ig_posts()}) == photos
    for job, history in journal_jobs(state):
        assert job.state is JobState.DONE, (job, history)
        assert history.count("done") == 1


def drop_photos(inbox: Path, count: int, first: int = 0) -> None:
    for seed in range(first, first + count):
        (inbox / f"live-{seed:03d}.jpg").write_bytes(photo(seed))


@pytest.mark.parametrize("fault", ["timeout", "drop"])
def test_daemon_finds_a_post_whose_answer_was_lost_and_never_posts_it_twice(
        fault: str, workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator,
        hosted: Path) -> None:
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        for endpoint in ("x.tweets.create", "ig.media_publish"):
            if fault == "timeout":
                # Applied, then no answer for longer than the daemon waits: a real read timeout.
                live_emulator.stall(endpoint, 4.0, after_applying=True)
            else:
                live_emulator.drop_connection(endpoint, after_applying=True)
        daemon = start_daemon(config, env={**FAST, "CROSSWATCH_HTTP_TIMEOUT": "1.5"})
        daemon.wait_for_log("watching")
        drop_photos(workspace["inbox"], 3)
        wait_until(lambda: done_count(workspace["state"]) == 6, timeout=90)
        assert daemon.stop() == 0
    exactly_once(live_emulator, workspace["state"], 3)
    found = [job for job, history in journal_jobs(workspace["state"]) if "in_doubt" in history]
    assert {job.target for job in found} == {"x", "instagram"}
    assert all(job.data.get("reconciled") == "posted" for job in found)
    assert len(live_emulator.requests_log("x.tweets.create")) == 3
    assert len(live_emulator.requests_log("ig.media_publish")) == 3


def test_daemon_refreshes_after_a_401_mid_run(workspace: dict[str, Path], start_daemon: StartDaemon,
                                             live_emulator: Emulator, hosted: Path) -> None:
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        daemon = start_daemon(config, env=FAST)
        daemon.wait_for_log("watching")
        drop_photos(workspace["inbox"], 2)
        wait_until(lambda: done_count(workspace["state"]) == 4, timeout=60)
        # Mid-run the platform stops accepting the access token once (revoked, rotated elsewhere).
        live_emulator.respond_with("x.tweets.create", 401, x_blank_problem(401, "Unauthorized"))
        drop_photos(workspace["inbox"], 2, first=2)
        wait_until(lambda: done_count(workspace["state"]) == 8, timeout=60)
        assert daemon.stop() == 0
        doctor = run_cli("doctor", config=config).stdout
        assert "ok    target instagram: publishing quota 4 of 50 used in the last 24 h" in doctor, doctor
    exactly_once(live_emulator, workspace["state"], 4)
    refreshes = live_emulator.requests_log("x.token")
    assert [r.status for r in refreshes] == [200]
    assert [r.status for r in live_emulator.requests_log("x.tweets.create")].count(401) == 1


def test_daemon_waits_for_the_rate_limit_reset_after_a_429(workspace: dict[str, Path], start_daemon: StartDaemon,
                                                          live_emulator: Emulator, hosted: Path) -> None:
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        reset = int(time.time()) + 8
        live_emulator.inject("x.tweets.create", "respond", status=429, body=x_blank_problem(429),
                             headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                                      "x-rate-limit-reset": str(reset)})
        daemon = start_daemon(config, env=FAST)
        daemon.wait_for_log("watching")
        drop_photos(workspace["inbox"], 2)

        def x_held() -> bool:
            path = workspace["state"] / "journal.sqlite3"
            if not path.exists():
                return False
            with Journal(path) as journal:
                hold = journal.holds(time.time()).get("x")
            return hold is not None and hold.kind == "rate_limited"

        wait_until(x_held, timeout=30)
        status = run_cli("status", config=config).stdout
        assert "waiting until" in status and "X answered 429: Too Many Requests" in status, status
        wait_until(lambda: done_count(workspace["state"]) == 4, timeout=60)
        assert daemon.stop() == 0
    exactly_once(live_emulator, workspace["state"], 2)
    creates = live_emulator.requests_log("x.tweets.create")
    assert [r.status for r in creates] == [429, 201, 201]
    assert min(r.time for r in creates[1:]) >= reset


def test_daemon_with_no_keyring_keeps_jobs_waiting_and_says_why(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path) -> None:
    no_keyring = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        daemon = start_daemon(config, env={**FAST, **no_keyring})
        daemon.wait_for_log("watching")
        drop_photos(workspace["inbox"], 2)

        def both_held() -> bool:
            path = workspace["state"] / "journal.sqlite3"
            if not path.exists():
                return False
            with Journal(path) as journal:
                return set(journal.holds(time.time())) == {"x", "instagram"}

        wait_until(both_held, timeout=30)
        status = run_cli("status", config=config, env=no_keyring).stdout
        # Each of the four jobs (and each target) says why it waits.
        assert status.count("the OS keyring is not available") >= 4, status
        doctor = run_cli("doctor", config=config, env=no_keyring)
        assert doctor.returncode == 1
        assert "FIX   target x: cannot read crosswatch/x:token in the keyring" in doctor.stdout
        assert daemon.stop() == 0
        assert live_emulator.x_posts() == [] and live_emulator.ig_posts() == []
        states = {job.state for job, _ in journal_jobs(workspace["state"])}
        assert states == {JobState.READY}
        # The keyring is back (unlocked, installed): everything goes out, once.
        daemon = start_daemon(config, env=FAST)
        wait_until(lambda: done_count(workspace["state"]) == 4, timeout=120)
        assert daemon.stop() == 0
    exactly_once(live_emulator, workspace["state"], 2)


def log_tail(daemon: Any) -> Callable[[], str]:
    """What a daemon logged last, for a wait that fails: what it was doing says why."""
    return lambda: daemon.log_path.read_text()[-3000:]


@pytest.mark.slow
def test_daemon_survives_a_full_journal_disk_and_loses_nothing(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path) -> None:
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        drop_photos(workspace["inbox"], 2)
        daemon = start_daemon(config, env=FAST)
        wait_until(lambda: done_count(workspace["state"]) == 4, timeout=60, explain=log_tail(daemon))
        assert daemon.stop() == 0
        with Journal(workspace["state"] / "journal.sqlite3") as journal:
            pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        # The disk fills up: SQLite can add one page more, then answers SQLITE_FULL.
        full = {**FAST, "CROSSWATCH_JOURNAL_MAX_PAGES": str(pages + 1)}
        daemon = start_daemon(config, env=full)
        daemon.wait_for_log("watching")
        drop_photos(workspace["inbox"], 6, first=2)

        def full_errors() -> list[dict[str, Any]]:
            return [line for line in daemon.log_lines() if "disk is full" in str(line.get("error", ""))]

        # Said once, then again at the next try: the daemon keeps running while the journal is full.
        wait_until(lambda: len(full_errors()) >= 2, timeout=60, explain=log_tail(daemon))
        assert "free some space on the disk holding" in full_errors()[0]["error"]
        assert daemon.process.poll() is None, daemon.log_path.read_text()[-2000:]
        assert daemon.stop() == 0
        # The write that failed was a job's: it was left in flight, exactly as a crash leaves it.
        assert JobState.IN_FLIGHT in {job.state for job, _ in journal_jobs(workspace["state"])}
        # Space is freed: everything posts, nothing twice, nothing lost.
        daemon = start_daemon(config, env=FAST)
        wait_until(lambda: done_count(workspace["state"]) == 16, timeout=120, explain=log_tail(daemon))
        assert daemon.stop() == 0
    exactly_once(live_emulator, workspace["state"], 8)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: a disk that really runs out of space (ENOSPC). Needs the right to mount."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'not permitted'}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def fill_up(disk: Path) -> Path:
    """Write a file until the disk refuses (ENOSPC); returns it, so the space can be freed again."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


@pytest.mark.slow
def test_daemon_waits_out_a_really_full_disk_and_resumes_by_itself(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path,
        small_disk: Path) -> None:
    workspace["state"] = small_disk / "state"
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        drop_photos(workspace["inbox"], 2)
        daemon = start_daemon(config, env=FAST)
        wait_until(lambda: done_count(workspace["state"]) == 4, timeout=60, explain=log_tail(daemon))
        filler = fill_up(small_disk)
        drop_photos(workspace["inbox"], 4, first=2)

        def full_errors() -> list[dict[str, Any]]:
            return [line for line in daemon.log_lines()
                    if "full" in str(line.get("error", "")) or "No space" in str(line.get("reason", ""))]

        # Said, then said again at the next try: the daemon keeps running on a full disk.
        wait_until(lambda: len(full_errors()) >= 2, timeout=60, explain=log_tail(daemon))
        assert daemon.process.poll() is None, daemon.log_path.read_text()[-2000:]
        assert done_count(workspace["state"]) == 4
        filler.unlink()  # space is freed; no restart needed
        wait_until(lambda: done_count(workspace["state"]) == 12, timeout=90, explain=log_tail(daemon))
        assert daemon.stop() == 0
    exactly_once(live_emulator, workspace["state"], 6)

