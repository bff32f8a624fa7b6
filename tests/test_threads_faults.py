"""Threads under faults: a real Runner and SQLite journal against the emulator on MockTransport, on a
ManualClock (tests/fault_harness.py). Each test ends with every photo on Threads exactly once, or the job
failed with Threads' own words, and no hosted copy left behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from crosswatch.models import JobState
from crosswatch.platforms.threads.limits import threads_length
from tests.fault_harness import ORIGIN, Rig, make_rig, photo_bytes
from tests.openapi_check import XOpenAPI

ThreadsRig = Callable[..., Rig]


@pytest.fixture
def rig_factory(workspace: dict[str, Any], x_openapi: XOpenAPI) -> Iterator[ThreadsRig]:
    made: list[Rig] = []

    def make(**kwargs: Any) -> Rig:
        rig = make_rig(workspace, x_openapi, targets=("threads",), **kwargs)
        rig.emulator.state.threads.settings.processing_seconds = 0.2
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def posted_once(rig: Rig) -> list[dict[str, Any]]:
    """Exactly one thread per job, with its text and alt text; the journal agrees; nothing left hosted."""
    posts = rig.emulator.threads_posts()
    jobs = rig.jobs("threads")
    assert len(posts) == len(jobs), [p["text"] for p in posts]
    assert sorted(j.remote_id or "" for j in jobs) == sorted(p["id"] for p in posts)
    for job in jobs:
        assert job.state is JobState.DONE, (job, rig.journal.events(job.id))
        assert [e["to_state"] for e in rig.journal.events(job.id)].count("done") == 1
        assert job.permalink and job.permalink.startswith(f"{ORIGIN}/threads/@crosswatch.demo/post/")
    for post in posts:
        assert post["alt_text"] and threads_length(post["text"]) <= 500
    assert not [p for p in rig.hosted.iterdir() if not p.name.startswith(".")], "hosted copies left behind"
    return posts


def test_photos_go_through_the_container_flow_once_each(rig_factory: ThreadsRig) -> None:
    rig = rig_factory()
    rig.add_photos(3)
    rig.drive()
    posts = posted_once(rig)
    assert {p["text"].split("\n")[0] for p in posts} == {f"Fault photo {n}" for n in range(3)}
    # Every container was checked before publishing and read back as PUBLISHED.
    containers = rig.emulator.snapshot()["threads"]["containers"]
    assert [c["status"] for c in containers] == ["PUBLISHED"] * 3
    assert rig.emulator.requests_log("threads.node")


def test_the_publishing_limit_reached_holds_threads_until_it_frees(rig_factory: ThreadsRig) -> None:
    rig = rig_factory()
    rig.emulator.state.threads.settings.publish_quota = 2
    start = rig.clock()
    rig.add_photos(3)
    rig.drive(until=lambda: "threads" in rig.journal.holds(rig.clock()))
    assert len(rig.emulator.threads_posts()) == 2
    hold = rig.journal.holds(rig.clock())["threads"]
    assert hold.kind == "quota" and "publishing limit (2 per 24 h)" in hold.reason
    rig.drive()
    posts = posted_once(rig)
    assert max(p["timestamp"] for p in posts) >= start + 86400 - 2, "the third waited for the window"
    # The quota was kept: Threads never had to refuse a publish.
    assert {r.status for r in rig.emulator.requests_log("threads.publish")} == {200}


def test_a_container_in_error_fails_with_threads_words_and_an_expired_one_is_made_again(
        rig_factory: ThreadsRig) -> None:
    rig = rig_factory()
    rig.emulator.fail_next_threads_containers("ERROR")
    rig.add_photos(1)
    rig.drive()
    [failed] = rig.jobs()
    assert failed.state is JobState.FAILED
    assert failed.reason is not None and "Threads could not process the image: ERROR (UNKNOWN)" in failed.reason
    assert rig.emulator.threads_posts() == []
    assert not list(rig.hosted.iterdir()), "a failed job's hosted copy is removed"

    rig.emulator.fail_next_threads_containers("EXPIRED")
    rig.add_photos(1, first_seed=1)
    rig.drive()
    done = [j for j in rig.jobs() if j.state is JobState.DONE]
    assert len(done) == 1 and done[0].data.get("containers_recreated") == 1
    statuses = [c["status"] for c in rig.emulator.snapshot()["threads"]["containers"]]
    assert statuses == ["ERROR", "EXPIRED", "PUBLISHED"]


def test_a_lost_publish_answer_is_reconciled_by_the_containers_status(rig_factory: ThreadsRig) -> None:
    rig = rig_factory()
    rig.emulator.drop_connection("threads.publish", after_applying=True)
    rig.emulator.drop_connection("threads.publish", after_applying=False)
    rig.add_photos(2)
    rig.drive()
    posts = posted_once(rig)
    assert len(posts) == 2
    reconciled = {j.data.get("reconciled") for j in rig.jobs()}
    assert "posted" in reconciled, [j.data for j in rig.jobs()]
    # The applied one was found PUBLISHED; the one whose request never arrived was found not published
    # (its container FINISHED) and published again, once.
    publishes = rig.emulator.requests_log("threads.publish")
    assert [r.outcome for r in publishes] == ["fault:drop_after", "fault:drop_before", "ok"]
    assert len(rig.emulator.requests_log("threads.node")) >= 2 + 2 + 2, "containers asked before deciding"


def test_a_publish_answer_lost_and_its_thread_found_among_recent_threads(rig_factory: ThreadsRig) -> None:
    rig = rig_factory()
    rig.emulator.respond_with("threads.publish", 500)  # not applied: the container stays FINISHED
    rig.emulator.drop_connection("threads.publish", after_applying=True)
    rig.add_photos(1)
    rig.drive()
    [post] = posted_once(rig)
    [job] = rig.jobs()
    assert job.remote_id == post["id"]
    assert rig.emulator.requests_log("threads.list"), "the thread was looked up among the account's threads"


def test_an_expired_token_is_refreshed_before_it_dies_and_the_refresh_is_24h_old(rig_factory: ThreadsRig) -> None:
    rig = rig_factory()
    rig.clock.advance(86400 + 5)
    rig.add_photos(1)
    rig.drive()
    posted_once(rig)
    assert [r.status for r in rig.emulator.requests_log("threads.refresh_token")] == [200]


def test_the_emulator_refuses_what_threads_refuses(rig_factory: ThreadsRig) -> None:
    rig = rig_factory()
    token = rig.emulator.mint_threads_token()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    (rig.hosted / "a.jpg").write_bytes(photo_bytes(5))
    url = f"{ORIGIN}/_emulator/hosted/a.jpg"

    def create(**data: str) -> dict[str, Any]:
        answer = rig.client.post(f"{ORIGIN}/threads/v1.0/me/threads", headers=headers, data=data)
        return dict(answer.json())

    assert create(image_url=url)["error"]["message"] == "The parameter media_type is required."
    assert "caption" in create(media_type="IMAGE", image_url=url, caption="x")["error"]["message"]
    too_long = "👍" * 126  # 504 by Meta's count (4 bytes each), 126 characters
    assert "at most 500" in create(media_type="IMAGE", image_url=url, text=too_long)["error"]["message"]
    assert "id" in create(media_type="IMAGE", image_url=url, text="👍" * 125)
    expired = rig.client.get(f"{ORIGIN}/threads/me", headers={"Authorization": "Bearer nope"}).json()
    assert expired["error"]["code"] == 190
    quota = rig.client.get(f"{ORIGIN}/threads/me/threads_publishing_limit", headers=headers,
                           params={"fields": "quota_usage,config"}).json()
    assert quota == {"data": [{"quota_usage": 0, "config": {"quota_total": 250, "quota_duration": 86400}}]}
    # Instagram's Graph routes on the same base URL are untouched by Threads' tokens.
    assert rig.client.get(f"{ORIGIN}/me", headers=headers).json()["error"]["code"] == 190


def test_threads_counting_rule() -> None:
    assert threads_length("abc") == 3
    assert threads_length("👍") == 4
    assert threads_length("👍🏽") == 8
    assert threads_length("e\u0301") == 1  # one character a person sees
    assert threads_length("🇩🇪") == 8
