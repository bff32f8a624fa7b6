"""Bluesky faults through the real Runner and SQLite journal (tests/fault_harness.py): every answer is
the emulator PDS's own, and after each fault the account holds exactly one post per photo."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crosswatch.emulator.bluesky_state import BlueskySettings
from crosswatch.models import JobState
from crosswatch.platforms.bluesky.steps import CreatePost
from tests.fault_harness import Rig, make_rig
from tests.openapi_check import XOpenAPI


@pytest.fixture
def bsky_rig(workspace: dict[str, Path], x_openapi: XOpenAPI) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**kwargs: Any) -> Rig:
        rig = make_rig(workspace, x_openapi, targets=("bluesky",), **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def posts(rig: Rig) -> list[dict[str, Any]]:
    return list(rig.emulator.snapshot()["bluesky"]["posts"])


def one_post_per_job(rig: Rig) -> None:
    jobs = rig.jobs("bluesky")
    found = posts(rig)
    assert len(found) == len(jobs), [p["record"]["text"] for p in found]
    assert sorted(j.remote_id or "" for j in jobs) == sorted(p["uri"] for p in found)
    for job in jobs:
        assert job.state is JobState.DONE, (job, rig.journal.events(job.id))
        assert job.permalink and job.permalink.endswith(f"/post/{job.remote_id.rsplit('/', 1)[-1]}")  # type: ignore[union-attr]


def calls(rig: Rig, endpoint: str) -> int:
    return len(rig.emulator.requests_log(endpoint))


def test_three_photos_post_once_each(bsky_rig: Callable[..., Rig]) -> None:
    rig = bsky_rig()
    rig.add_photos(3)
    rig.drive()
    one_post_per_job(rig)
    assert calls(rig, "bsky.server.createSession") == 0  # the imported session is reused


def test_a_429_holds_the_target_until_the_reset_then_posts(bsky_rig: Callable[..., Rig]) -> None:
    rig = bsky_rig()
    reset = int(rig.clock()) + 600
    rig.emulator.inject("bsky.repo.createRecord", "respond", status=429, headers={
        "ratelimit-limit": "1666", "ratelimit-remaining": "0", "ratelimit-reset": str(reset),
        "ratelimit-policy": "1666;w=3600"})
    rig.add_photos(1)
    rig.runner.run_due()
    hold = rig.journal.holds(rig.clock()).get("bluesky")
    assert hold is not None and hold.kind == "rate_limited" and hold.until >= reset
    rig.drive()
    one_post_per_job(rig)
    assert rig.clock() >= reset


def test_a_5xx_on_create_reads_back_finds_nothing_and_sends_again(bsky_rig: Callable[..., Rig]) -> None:
    rig = bsky_rig()
    rig.emulator.inject("bsky.repo.createRecord", "respond", status=502)
    rig.add_photos(1)
    rig.drive()
    one_post_per_job(rig)
    assert calls(rig, "bsky.repo.getRecord") == 1 and calls(rig, "bsky.repo.createRecord") == 2


def test_a_create_applied_but_unanswered_is_found_by_its_key(bsky_rig: Callable[..., Rig]) -> None:
    rig = bsky_rig()
    rig.emulator.stall("bsky.repo.createRecord", 0.0, after_applying=True)
    rig.add_photos(1)
    rig.drive()
    one_post_per_job(rig)
    assert calls(rig, "bsky.repo.createRecord") == 1 and calls(rig, "bsky.repo.getRecord") == 1
    [job] = rig.jobs("bluesky")
    assert job.data.get("reconciled") == "posted"


def test_a_create_on_a_key_that_exists_answers_500_and_the_job_is_done(bsky_rig: Callable[..., Rig]) -> None:
    """An earlier process sent the create and died before recording it: the PDS has the record."""
    rig = bsky_rig()
    rig.emulator.inject("bsky.repo.createRecord", "respond", status=429, headers={"ratelimit-reset": "0"})
    rig.add_photos(1)
    rig.runner.run_due()
    [job] = rig.jobs("bluesky")
    assert job.step == "create_post" and job.data.get("rkey")
    ctx = rig.runner.contexts.build(job, access_token=rig.tokens["bluesky"].access_token(),
                                    account_id=rig.tokens["bluesky"].account_id(),
                                    username=rig.tokens["bluesky"].username())
    import dataclasses
    ctx = dataclasses.replace(ctx, api_base=rig.tokens["bluesky"].api_base())  # type: ignore[attr-defined]
    assert rig.client.send(CreatePost(rig.config.targets["bluesky"]).build(ctx)).status_code == 200
    rig.drive()
    one_post_per_job(rig)
    statuses = [r.status for r in rig.emulator.requests_log("bsky.repo.createRecord")]
    assert statuses == [429, 200, 500]


def test_an_expired_session_is_refreshed_and_the_post_goes_out(bsky_rig: Callable[..., Rig]) -> None:
    rig = bsky_rig()
    rig.emulator.respond_with("bsky.repo.uploadBlob", 400, {"error": "ExpiredToken", "message": "Token has expired"})
    rig.add_photos(1)
    rig.drive()
    one_post_per_job(rig)
    assert calls(rig, "bsky.server.refreshSession") == 1 and calls(rig, "bsky.server.createSession") == 0


def test_a_dead_refresh_token_signs_in_again_with_the_stored_app_password(bsky_rig: Callable[..., Rig]) -> None:
    from crosswatch.auth.tokens import app_password_key
    from crosswatch.emulator.bluesky_state import DEFAULT_BSKY_APP_PASSWORD
    from crosswatch.secrets import SecretStore

    rig = bsky_rig()
    SecretStore().set(app_password_key("bluesky"), DEFAULT_BSKY_APP_PASSWORD)
    with rig.emulator.state.lock:
        for refresh in rig.emulator.state.bluesky.refresh_tokens.values():
            refresh.revoked = True
    rig.clock.advance(7200)  # the access JWT has expired too
    rig.add_photos(1)
    rig.drive()
    one_post_per_job(rig)
    assert calls(rig, "bsky.server.refreshSession") == 1 and calls(rig, "bsky.server.createSession") == 1


def test_an_upload_too_large_for_the_pds_rejects_the_photo(bsky_rig: Callable[..., Rig]) -> None:
    rig = bsky_rig()
    with rig.emulator.state.lock:
        rig.emulator.state.bluesky.settings = BlueskySettings(upload_max_bytes=1000)
    rig.add_photos(1)
    rig.drive()
    [job] = rig.jobs("bluesky")
    assert job.state is JobState.REJECTED and "413 PayloadTooLarge" in (job.reason or "")
    assert posts(rig) == []


def test_a_validation_error_fails_the_job_with_bluesky_s_words(bsky_rig: Callable[..., Rig]) -> None:
    rig = bsky_rig()
    words = "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"
    rig.emulator.respond_with("bsky.repo.createRecord", 400, {"error": "InvalidRequest", "message": words})
    rig.add_photos(1)
    rig.drive()
    [job] = rig.jobs("bluesky")
    assert job.state is JobState.FAILED and job.reason == f"Bluesky answered 400 InvalidRequest: {words}"
    assert posts(rig) == []


def test_posts_go_to_the_pds_the_did_document_names(bsky_rig: Callable[..., Rig]) -> None:
    """An imported session without a DID document: the provider asks getSession once for it."""
    from dataclasses import replace

    from crosswatch.auth.tokens import load_tokens, save_tokens
    from crosswatch.secrets import SecretStore

    rig = bsky_rig()
    with rig.emulator.state.lock:
        rig.emulator.state.bluesky.settings = BlueskySettings(pds_endpoint="http://pds.emulator.test")
    tokens = load_tokens(SecretStore(), "bluesky")
    assert tokens is not None
    save_tokens(SecretStore(), "bluesky", replace(tokens, api_base=None))
    seen: list[str] = []
    rig.emulator.add_observer(lambda request, response, endpoint: seen.append(f"{request.url.host} {endpoint}"))
    rig.add_photos(2)
    rig.drive()
    one_post_per_job(rig)
    repo_hosts = {line.split()[0] for line in seen if "bsky.repo." in line}
    assert repo_hosts == {"pds.emulator.test"}
    assert calls(rig, "bsky.server.getSession") == 2  # `auth import` identified the account; one PDS lookup
    stored = load_tokens(SecretStore(), "bluesky")
    assert stored is not None and stored.api_base == "http://pds.emulator.test"


@pytest.mark.parametrize("fault", [
    {"action": "respond", "status": 503},
    {"action": "timeout_after", "seconds": 0.0},
    {"action": "drop_before"},
    {"action": "respond", "status": 429, "headers": {"ratelimit-remaining": "0", "ratelimit-reset": "0"}},
])
def test_a_failed_upload_is_simply_sent_again(bsky_rig: Callable[..., Rig], fault: dict[str, Any]) -> None:
    rig = bsky_rig()
    rig.emulator.inject("bsky.repo.uploadBlob", fault.pop("action"), **fault)
    rig.add_photos(1)
    rig.drive()
    one_post_per_job(rig)
    assert calls(rig, "bsky.repo.uploadBlob") == 2 and calls(rig, "bsky.repo.getRecord") == 0


def test_a_blob_the_pds_dropped_while_the_post_waited_is_uploaded_again(bsky_rig: Callable[..., Rig]) -> None:
    rig = bsky_rig()
    rig.emulator.inject("bsky.repo.createRecord", "respond", status=429, headers={"ratelimit-reset": "0"})
    rig.add_photos(1)
    rig.runner.run_due()
    [job] = rig.jobs("bluesky")
    rkey = job.data.get("rkey")
    with rig.emulator.state.lock:
        rig.emulator.state.bluesky.blobs.clear()  # unreferenced blobs are deleted after a while
    rig.drive()
    one_post_per_job(rig)
    statuses = [r.status for r in rig.emulator.requests_log("bsky.repo.createRecord")]
    assert statuses == [429, 400, 200] and calls(rig, "bsky.repo.uploadBlob") == 2
    [job] = rig.jobs("bluesky")
    assert job.remote_id is not None and job.remote_id.endswith(f"/{rkey}")  # the same key throughout
