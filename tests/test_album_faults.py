"""Albums against the emulator through the in-process runner (manual clock, MockTransport): what Meta
and X refuse of carousels and replies, a carousel child that fails, and a carousel whose publish
answer was lost."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch.emulator.state import XPost
from crosswatch.journal import NewAlbum, NewFile
from crosswatch.models import JobState
from tests.conftest import jpeg_bytes
from tests.fault_harness import ORIGIN, Rig, make_rig, photo_bytes
from tests.openapi_check import XOpenAPI
from tests.test_albums import xmp_of


@pytest.fixture
def rig(workspace: dict[str, Any], x_openapi: XOpenAPI) -> Iterator[Rig]:
    made = make_rig(workspace, x_openapi, targets=("x", "instagram", "threads"))
    made.emulator.state.threads.settings.processing_seconds = 0.2
    yield made
    made.close()


def add_album(rig: Rig, name: str, count: int, targets: tuple[str, ...] = ("instagram", "threads")) -> None:
    """An album of ``count`` photos recorded as intake records one (journal.add_album)."""
    folder = rig.inbox / name
    folder.mkdir()
    files = []
    for index in range(count):
        path = folder / f"shot-{index:02d}.jpg"
        data = jpeg_bytes(index, size=(640, 480), xmp=xmp_of(index))
        path.write_bytes(data)
        st = path.stat()
        files.append(NewFile(str(path), st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest(), targets))
    members = [{"path": f.path, "hash": f.content_hash} for f in files]
    rig.journal.add_album(NewAlbum(
        folder=str(folder), content_hash="album-" + name, size=1, mtime_ns=1, members=files, left_out=[],
        targets=targets, data={t: {"album": {"folder": str(folder), "members": members, "left_out": []}}
                               for t in targets}))


def test_the_emulators_refuse_what_meta_and_x_refuse_of_carousels_and_replies(rig: Rig) -> None:
    ig = {"Authorization": f"Bearer {rig.emulator.mint_ig_token()['access_token']}"}
    threads = {"Authorization": f"Bearer {rig.emulator.mint_threads_token()['access_token']}"}
    (rig.hosted / "wide.jpg").write_bytes(photo_bytes(1, (800, 600)))
    (rig.hosted / "tall.jpg").write_bytes(photo_bytes(2, (600, 750)))

    def ig_create(**data: str) -> dict[str, Any]:
        return dict(rig.client.post(f"{ORIGIN}/me/media", headers=ig, data=data).json())

    def child(name: str) -> str:
        return str(ig_create(image_url=f"{ORIGIN}/_emulator/hosted/{name}", is_carousel_item="true")["id"])

    wide = [child("wide.jpg") for _ in range(11)]
    tall = child("tall.jpg")
    rig.clock.advance(1)
    assert "between 2 and 10" in ig_create(media_type="CAROUSEL", children=wide[0])["error"]["error_user_msg"]
    assert "between 2 and 10" in ig_create(media_type="CAROUSEL", children=",".join(wide))["error"]["error_user_msg"]
    mixed = ig_create(media_type="CAROUSEL", children=f"{wide[0]},{tall}")["error"]
    assert (mixed["code"], mixed["error_subcode"]) == (36003, 2207009) and "aspect ratio" in mixed["error_user_msg"]
    fresh = child("wide.jpg")  # still IN_PROGRESS
    assert ig_create(media_type="CAROUSEL", children=f"{wide[0]},{fresh}")["error"]["code"] == 9007
    alone = rig.client.post(f"{ORIGIN}/me/media_publish", headers=ig, data={"creation_id": wide[0]}).json()
    assert "cannot be published on its own" in alone["error"]["message"]
    assert "id" in ig_create(media_type="CAROUSEL", children=",".join(wide[:10]), caption="Ten")

    def threads_create(**data: str) -> dict[str, Any]:
        return dict(rig.client.post(f"{ORIGIN}/threads/v1.0/me/threads", headers=threads, data=data).json())

    items = [str(threads_create(media_type="IMAGE", is_carousel_item="true",
                                image_url=f"{ORIGIN}/_emulator/hosted/wide.jpg")["id"]) for _ in range(21)]
    rig.clock.advance(1)
    assert "between 2 and 20" in threads_create(media_type="CAROUSEL", children=",".join(items))["error"]["message"]
    assert "between 2 and 20" in threads_create(media_type="CAROUSEL", children=items[0])["error"]["message"]
    assert "id" in threads_create(media_type="CAROUSEL", children=",".join(items[:20]), text="Twenty")
    assert "does not exist" in threads_create(media_type="CAROUSEL", children=",".join(items[:2]),
                                              reply_to_id="17999999999999999")["error"]["message"]

    # X: a reply only where the replier was summoned, or in its own thread.
    x = {"Authorization": f"Bearer {rig.emulator.mint_x_token()['access_token']}"}
    stranger = rig.emulator.add_x_user("1800000000000000999", "stranger")
    with rig.emulator.state.lock:
        rig.emulator.state.x_posts.append(XPost("1860000000000000900", stranger.id, "other", "Not about you", (),
                                                rig.clock()))
    refused = rig.client.post(f"{ORIGIN}/2/tweets", headers=x,
                              json={"text": "hi", "reply": {"in_reply_to_tweet_id": "1860000000000000900"}})
    assert refused.status_code == 403 and "not been mentioned" in refused.json()["detail"]
    own = rig.client.post(f"{ORIGIN}/2/tweets", headers=x, json={"text": "first"}).json()["data"]["id"]
    reply = rig.client.post(f"{ORIGIN}/2/tweets", headers=x,
                            json={"text": "second", "reply": {"in_reply_to_tweet_id": own}})
    assert reply.status_code == 201
    assert rig.emulator.x_posts()[-1].in_reply_to == own


def test_a_carousel_child_that_fails_fails_the_job_in_the_platform_words_and_unhosts_every_copy(rig: Rig) -> None:
    add_album(rig, "harbour", 3, targets=("threads",))
    rig.emulator.inject("threads.create", "container_error", times=None)  # every child ends in ERROR
    rig.drive()
    [job] = rig.jobs("threads")
    assert job.state is JobState.FAILED
    assert "carousel image 1" in (job.reason or "") and "ERROR" in (job.reason or "")
    assert rig.emulator.threads_posts() == []
    assert not list(rig.hosted.iterdir()), "the failed carousel's hosted children were removed"


def test_a_lost_carousel_publish_answer_is_reconciled_by_the_container_status(rig: Rig) -> None:
    add_album(rig, "harbour", 4, targets=("instagram", "threads"))
    rig.emulator.drop_connection("ig.media_publish", after_applying=True)
    rig.emulator.drop_connection("threads.publish", after_applying=True)
    rig.drive()
    [carousel] = rig.emulator.ig_posts()
    [thread] = rig.emulator.threads_posts()
    assert len(carousel.children) == 4 and len(thread["carousel"]) == 4
    jobs = {j.target: j for j in rig.jobs()}
    assert {j.state for j in jobs.values()} == {JobState.DONE}
    assert jobs["instagram"].remote_id == carousel.id and jobs["threads"].remote_id == thread["id"]
    assert all(j.data.get("reconciled") == "posted" for j in jobs.values())
    assert len(rig.emulator.requests_log("ig.media_publish")) == 1
    assert len(rig.emulator.requests_log("threads.publish")) == 1
    assert isinstance(rig.client, httpx.Client) and not list(rig.hosted.iterdir())
    assert Path(rig.inbox / "harbour").is_dir()
