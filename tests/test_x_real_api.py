"""Right on X's real API (issue 10 defects 1, 2, 4 and 5; issue 11 defect 7), shown through the daemon
and the CLI against the emulator as a real HTTP server, every X request checked against X's OpenAPI
document (the ``live_emulator`` fixture fails the test on any violation)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch.emulator import DEFAULT_X_CLIENT_ID, DEFAULT_X_USER_ID, Emulator, EmulatorServer, EmulatorSettings
from crosswatch.journal import Journal
from crosswatch.models import Job, JobState
from crosswatch.runner import NEVER
from tests.conftest import DaemonProcess, jpeg_bytes, run_cli, wait_until, write_config, xmp_packet
from tests.emulator_fixtures import watch_openapi
from tests.openapi_check import XOpenAPI

StartDaemon = Callable[..., DaemonProcess]
# The emulator's timeline is consistent at once, so a miss is certain after a second.
FAST = {"CROSSWATCH_X_TIMELINE_SETTLE_SECONDS": "1"}


def x_only_config(workspace: dict[str, Path], url: str, state: Path | None = None) -> Path:
    targets = {"x": {"client_id": DEFAULT_X_CLIENT_ID, "api_base": url, "authorize_url": f"{url}/i/oauth2/authorize",
                     "web_base": f"{url}/_emulator/x"}}
    watch = [{"path": str(workspace["inbox"]), "targets": ["x"], "settle_seconds": 0.3}]
    overrides: dict[str, Any] = {"state_dir": str(state)} if state is not None else {}
    return write_config(workspace, targets=targets, watch=watch, **overrides)


def sign_in_x(config: Path, emulator: Emulator) -> dict[str, Any]:
    token = emulator.mint_x_token()
    result = run_cli("auth", "import", "x", config=config, input=json.dumps(token))
    assert result.returncode == 0, result.stderr
    return token


def captioned(seed: int) -> bytes:
    return jpeg_bytes(seed, size=(640, 480), xmp=xmp_packet(f"Heron {seed}", f"A grey heron, number {seed}."))


def jobs(state: Path) -> list[Job]:
    path = state / "journal.sqlite3"
    if not path.exists():
        return []
    with Journal(path) as journal:
        return journal.jobs()


def settled(state: Path, count: int) -> bool:
    found = jobs(state)
    return len(found) == count and all(job.state in (JobState.DONE, JobState.FAILED, JobState.REJECTED)
                                       or job.next_attempt_at >= NEVER for job in found)


class CreateBodies:
    """Every POST /2/tweets body the emulator received."""

    def __init__(self, emulator: Emulator) -> None:
        self.bodies: list[Any] = []
        self._lock = threading.Lock()
        emulator.add_observer(self)

    def __call__(self, request: httpx.Request, response: httpx.Response | None, endpoint: str) -> None:
        if endpoint == "x.tweets.create":
            with self._lock:
                self.bodies.append(json.loads(request.content))


def emulator_answer(method: str, path: str, **kwargs: Any) -> Any:
    """What an emulator answers a request crosswatch does not make: the body a fault then replays, so
    the test's refusal is the platform's own, not a hand-written one. A throwaway emulator answers, so
    the test's own emulator sees (and checks) only crosswatch's requests."""
    emulator = Emulator()
    token = emulator.mint_x_token()["access_token"]
    with httpx.Client(transport=httpx.MockTransport(emulator.handle), base_url="http://emulator.test") as client:
        answer = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    assert answer.status_code == 400, answer.text
    return answer.json()


def post_one_photo(workspace: dict[str, Path], start_daemon: StartDaemon, emulator: Emulator, photo: bytes, *,
                   arm: Callable[[], object] = lambda: None, env: dict[str, str] | None = None,
                   while_running: Callable[[Path], object] = lambda config: None) -> Job:
    """Sign in, arm the faults, start the daemon, drop one photo, wait until its job settles and stop:
    the job as the journal has it. ``while_running`` gets the config before the daemon stops."""
    with EmulatorServer(emulator) as server:
        config = x_only_config(workspace, server.url)
        sign_in_x(config, emulator)
        arm()
        daemon = start_daemon(config, env=env)
        daemon.wait_for_log("watching")
        (workspace["inbox"] / "photo.jpg").write_bytes(photo)
        wait_until(lambda: settled(workspace["state"], 1), timeout=60)
        while_running(config)
        assert daemon.stop() == 0
    [job] = jobs(workspace["state"])
    return job


# ---------------------------------------------------------------------------------------------------
# Defect 1: a photo without a caption


def test_a_photo_without_a_caption_is_posted_with_an_empty_text(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator) -> None:
    bodies = CreateBodies(live_emulator)
    # No title, creator, keywords or description: the X caption is empty.
    job = post_one_photo(workspace, start_daemon, live_emulator, jpeg_bytes(3, size=(640, 480)))
    assert job.state is JobState.DONE, job.reason
    [post] = live_emulator.x_posts()
    assert post.text == "" and len(post.media_ids) == 1
    assert bodies.bodies == [{"text": "", "media": {"media_ids": list(post.media_ids)}}]


# ---------------------------------------------------------------------------------------------------
# Defect 2: the in-doubt check asks only what X lists, and a 400 on it is shown at once


def test_an_in_doubt_post_settles_with_a_read_x_accepts(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator) -> None:
    job = post_one_photo(workspace, start_daemon, live_emulator, captioned(1), env=FAST,
                         arm=lambda: live_emulator.drop_connection("x.tweets.create", after_applying=True))
    [post] = live_emulator.x_posts()
    assert (job.state, job.remote_id, job.data.get("reconciled")) == (JobState.DONE, post.id, "posted")
    reads = live_emulator.requests_log("x.users.tweets")
    assert reads and {read.status for read in reads} == {200}


def test_a_400_on_the_reconciliation_read_leaves_the_job_in_doubt_at_once_with_xs_words(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator) -> None:
    # What X answers a timeline read carrying a name it does not list (the pre-2026 tweet.fields).
    refusal = emulator_answer("GET", f"/2/users/{DEFAULT_X_USER_ID}/tweets",
                              params={"tweet.fields": "created_at"})
    statuses: list[str] = []

    def arm() -> None:
        live_emulator.drop_connection("x.tweets.create", after_applying=True)
        live_emulator.respond_with("x.users.tweets", 400, refusal, times=None)

    job = post_one_photo(workspace, start_daemon, live_emulator, captioned(2), env=FAST, arm=arm,
                         while_running=lambda config: statuses.append(run_cli("status", config=config).stdout))
    assert job.state is JobState.IN_DOUBT and job.next_attempt_at >= NEVER
    assert "The query parameter [tweet.fields] is not one of [id,max_results," in (job.reason or "")
    assert f"crosswatch resolve {job.id} --posted" in (job.reason or "")
    assert "The query parameter [tweet.fields]" in statuses[0]
    # Shown at once: one read, not a backoff of reads over minutes.
    assert len(live_emulator.requests_log("x.users.tweets")) == 1
    assert len(live_emulator.x_posts()) == 1, "a job in doubt is never sent again by itself"


# ---------------------------------------------------------------------------------------------------
# Defect 4: a malformed upload request is not the photo's fault


def test_an_upload_request_problem_fails_with_xs_words_and_retry_sends_it_again(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator) -> None:
    # X's answer to an upload without media_category, replayed once for crosswatch's real upload.
    refusal = emulator_answer("POST", "/2/media/upload",
                              files={"media": ("p.jpg", captioned(9), "image/jpeg")})
    with EmulatorServer(live_emulator) as server:
        config = x_only_config(workspace, server.url)
        sign_in_x(config, live_emulator)
        live_emulator.respond_with("x.media.upload", 400, refusal)
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        (workspace["inbox"] / "fine.jpg").write_bytes(captioned(4))
        wait_until(lambda: settled(workspace["state"], 1), timeout=60)
        [job] = jobs(workspace["state"])
        assert job.state is JobState.FAILED, job
        assert "The `media_category` field is required." in (job.reason or "")
        status = run_cli("status", config=config)
        assert "media_category" in status.stdout and "photo" not in (job.reason or "").lower()
        again = run_cli("retry", str(job.id), config=config)
        assert again.returncode == 0, again.stderr
        wait_until(lambda: jobs(workspace["state"])[0].state is JobState.DONE, timeout=60)
        assert daemon.stop() == 0
    assert len(live_emulator.x_posts()) == 1


@pytest.fixture
def small_uploads(x_openapi: XOpenAPI) -> Any:
    emulator = Emulator(EmulatorSettings(x_image_max_bytes=2_000))
    recorder = watch_openapi(emulator, x_openapi)
    yield emulator
    recorder.assert_clean()


def test_a_photo_x_will_not_take_is_rejected_with_xs_words(
        workspace: dict[str, Path], start_daemon: StartDaemon, small_uploads: Emulator) -> None:
    job = post_one_photo(workspace, start_daemon, small_uploads, captioned(5))
    assert job.state is JobState.REJECTED
    assert "File size exceeds 2000 bytes." in (job.reason or "")
    assert small_uploads.x_posts() == []


# ---------------------------------------------------------------------------------------------------
# Issue 11 defect 7: a post the journal forgot, refused by X as a duplicate, is found, not failed


def test_a_post_a_fresh_journal_forgot_is_found_when_x_refuses_it_as_a_duplicate(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, tmp_path: Path) -> None:
    first_state, fresh_state = workspace["state"], tmp_path / "fresh-state"
    with EmulatorServer(live_emulator) as server:
        config = x_only_config(workspace, server.url)
        sign_in_x(config, live_emulator)
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        (workspace["inbox"] / "heron.jpg").write_bytes(captioned(6))
        wait_until(lambda: settled(first_state, 1), timeout=60)
        assert daemon.stop() == 0
        [first] = jobs(first_state)
        assert first.state is JobState.DONE

        # The same folder under a journal that never saw the post: it goes out again, and X refuses it.
        config = x_only_config(workspace, server.url, state=fresh_state)
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        wait_until(lambda: settled(fresh_state, 1), timeout=60)
        status = run_cli("status", "--json", config=config)
        assert daemon.stop() == 0
    [again] = jobs(fresh_state)
    assert again.state is JobState.DONE, again.reason
    assert (again.remote_id, again.permalink) == (first.remote_id, first.permalink)
    assert again.data.get("reconciled") == "duplicate"
    assert len(live_emulator.x_posts()) == 1
    creates = live_emulator.requests_log("x.tweets.create")
    assert [c.status for c in creates] == [201, 403]
    assert json.loads(status.stdout)["jobs"][0]["state"] == "done"


def test_a_duplicate_refusal_with_no_such_post_fails_with_xs_words(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator) -> None:
    refusal = {"title": "Forbidden", "type": "about:blank", "status": 403,
               "detail": "You are not allowed to create a Tweet with duplicate content."}
    job = post_one_photo(workspace, start_daemon, live_emulator, captioned(7),
                         arm=lambda: live_emulator.respond_with("x.tweets.create", 403, refusal))
    assert job.state is JobState.FAILED
    assert "You are not allowed to create a Tweet with duplicate content." in (job.reason or "")
    assert "no recent post of the account carries this caption" in (job.reason or "")
    assert live_emulator.x_posts() == []
