"""Mastodon under faults: a real Runner and SQLite journal against the emulator on MockTransport, on a
ManualClock (tests/fault_harness.py). Each test ends with every photo on the server exactly once, or
the job rejected or failed with Mastodon's own words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from crosswatch.models import JobState
from crosswatch.platforms.mastodon.limits import status_length
from tests.fault_harness import Rig, make_rig, sign_in
from tests.openapi_check import XOpenAPI

MastodonRig = Callable[..., Rig]


@pytest.fixture
def rig_factory(workspace: dict[str, Any], x_openapi: XOpenAPI) -> Iterator[MastodonRig]:
    made: list[Rig] = []

    def make(**kwargs: Any) -> Rig:
        rig = make_rig(workspace, x_openapi, targets=("mastodon",), **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def posted_once(rig: Rig) -> list[dict[str, Any]]:
    """Exactly one status per job, each with its one image and alt text, and the journal agrees."""
    statuses = rig.emulator.mastodon_statuses()
    jobs = rig.jobs("mastodon")
    assert len(statuses) == len(jobs), [s["text"] for s in statuses]
    assert sorted(j.remote_id or "" for j in jobs) == sorted(s["id"] for s in statuses)
    for job in jobs:
        assert job.state is JobState.DONE, (job, rig.journal.events(job.id))
        assert [e["to_state"] for e in rig.journal.events(job.id)].count("done") == 1
    for status in statuses:
        assert len(status["media"]) == 1 and status["media"][0]["description"], status
    return statuses


def test_photos_go_out_once_each_and_the_servers_limits_are_kept(rig_factory: MastodonRig) -> None:
    rig = rig_factory()
    rig.add_photos(3)
    rig.drive()
    statuses = posted_once(rig)
    assert all(s["visibility"] == "public" for s in statuses)
    known = rig.journal.platform_info("mastodon")
    assert known is not None and known[0]["max_characters"] == 500
    assert len(rig.emulator.requests_log("mastodon.instance")) == 1  # read once, not per job


def test_limits_learned_from_the_server_shape_the_caption_and_the_image(rig_factory: MastodonRig) -> None:
    rig = rig_factory(config_extra={"captions": {"mastodon": "{title} {description} {attribution} "
                                                 "https://example.com/a/very/long/link/that/counts/as/23"}})
    settings = rig.emulator.state.mastodon.settings
    settings.max_characters, settings.characters_reserved_per_url = 60, 23
    settings.image_size_limit, settings.image_matrix_limit = 40_000, 200 * 200
    rig.add_photos(2)
    rig.drive()
    for status in posted_once(rig):
        assert status_length(status["text"]) <= 60 < len(status["text"])  # the URL counts 23, not its length
        media = status["media"][0]
        assert media["size"] < 40_000 and media["width"] * media["height"] < 200 * 200


def test_a_dropped_answer_to_create_is_found_and_posted_once(rig_factory: MastodonRig) -> None:
    rig = rig_factory()
    rig.emulator.drop_connection("mastodon.statuses.create", after_applying=True)
    rig.add_photos(2)
    rig.drive()
    posted_once(rig)
    reconciled = [j for j in rig.jobs("mastodon") if j.data.get("reconciled") == "posted"]
    assert len(reconciled) == 1


def test_a_lost_answer_past_the_key_window_is_found_on_the_account(rig_factory: MastodonRig) -> None:
    rig = rig_factory()
    rig.emulator.stall("mastodon.statuses.create", 0.0, after_applying=True)
    rig.add_photos(1)
    rig.drive(until=lambda: rig.jobs("mastodon")[0].state is JobState.IN_DOUBT)
    rig.clock.advance(2 * 3600)  # the Idempotency-Key is forgotten by now
    rig.drive()
    posted_once(rig)
    assert rig.jobs("mastodon")[0].data.get("reconciled") == "posted"
    assert len(rig.emulator.requests_log("mastodon.statuses.create")) == 1, "sent again past the window"
    assert rig.emulator.requests_log("mastodon.accounts.statuses")


def test_a_5xx_on_create_that_did_not_apply_is_sent_again_after_asking(rig_factory: MastodonRig) -> None:
    rig = rig_factory()
    rig.emulator.respond_with("mastodon.statuses.create", 503)
    rig.add_photos(1)
    rig.drive()
    posted_once(rig)
    assert [r.status for r in rig.emulator.requests_log("mastodon.media.show")] == [200]  # unattached: absent
    assert [r.status for r in rig.emulator.requests_log("mastodon.statuses.create")] == [503, 200]


def test_a_429_holds_the_target_until_the_reset_and_everything_goes_out(rig_factory: MastodonRig) -> None:
    rig = rig_factory()
    rig.emulator.state.mastodon.settings.api_limit = 3
    rig.add_photos(3)
    rig.drive()
    posted_once(rig)
    assert 429 in [r.status for r in rig.emulator.requests_log()]


def test_slow_processing_is_waited_for(rig_factory: MastodonRig) -> None:
    rig = rig_factory()
    rig.emulator.state.mastodon.settings.processing_seconds = 30.0
    rig.add_photos(2)
    rig.drive()
    posted_once(rig)
    assert {r.status for r in rig.emulator.requests_log("mastodon.media.upload")} == {202}
    assert 206 in {r.status for r in rig.emulator.requests_log("mastodon.media.show")}


def test_a_413_rejects_the_photo_and_a_422_on_create_keeps_mastodons_words(rig_factory: MastodonRig) -> None:
    rig = rig_factory()
    rig.emulator.inject("mastodon.media.upload", "respond", status=413,
                        body="<html>413 Request Entity Too Large</html>")
    rig.emulator.respond_with("mastodon.statuses.create", 422,
                              {"error": "Validation failed: Text character limit of 500 exceeded"})
    rig.add_photos(2)
    rig.drive()
    jobs = sorted(rig.jobs("mastodon"), key=lambda j: j.id)
    assert [j.state for j in jobs] == [JobState.REJECTED, JobState.REJECTED]
    reasons = sorted(j.reason or "" for j in jobs)
    assert "Mastodon answered 413" in reasons[0] and "too large" in reasons[0]
    assert reasons[1] == "Mastodon answered 422: Validation failed: Text character limit of 500 exceeded"
    assert rig.emulator.mastodon_statuses() == []


def test_a_refused_token_parks_the_target_and_a_new_sign_in_posts(rig_factory: MastodonRig) -> None:
    rig = rig_factory()
    for issued in rig.emulator.state.mastodon.tokens.values():
        issued.revoked = True
    rig.add_photos(1)
    rig.drive(until=lambda: "auth" in {h.kind for h in rig.journal.holds().values()})
    job = rig.jobs("mastodon")[0]
    assert job.state is JobState.READY and rig.emulator.mastodon_statuses() == []
    hold = rig.journal.holds()["mastodon"]
    assert hold.reason == "Mastodon refused the access token; run `crosswatch auth login mastodon`"
    sign_in(rig.config, rig.emulator, rig.client, rig.clock, ["mastodon"])
    rig.runner.recover()  # a start lifts sign-in holds, as after `auth login`
    rig.drive()
    posted_once(rig)


def test_the_servers_limits_are_read_again_after_a_day(rig_factory: MastodonRig) -> None:
    rig = rig_factory()
    rig.add_photos(1)
    rig.drive()
    rig.emulator.state.mastodon.settings.max_characters = 777
    rig.clock.advance(3600)
    rig.add_photos(1, first_seed=1)
    rig.drive()
    assert len(rig.emulator.requests_log("mastodon.instance")) == 1  # an hour old: still good
    rig.clock.advance(86400)
    rig.add_photos(1, first_seed=2)
    rig.drive()
    assert len(rig.emulator.requests_log("mastodon.instance")) == 2
    known = rig.journal.platform_info("mastodon")
    assert known is not None and known[0]["max_characters"] == 777
    posted_once(rig)
