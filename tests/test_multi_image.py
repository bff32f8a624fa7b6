"""Several images in one post on Mastodon and Bluesky: a bridged Instagram carousel goes out as one
status / one post carrying every image (up to the server's or the lexicon's limit), each with its alt
text; an upload that fails part-way resumes at that image; the emulator refuses more than the limit.

A real Runner and SQLite journal against the emulator on MockTransport (tests/fault_harness.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch.bridge import Bridge
from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.models import JobState
from tests.conftest import jpeg_bytes, run_cli, write_config
from tests.fault_harness import ORIGIN, Rig, make_rig, platform_targets
from tests.openapi_check import XOpenAPI
from tests.test_bridge import StaticToken

CAPTION = "Boats at the harbour wall at dawn. A long wait for the fog.\n\n📷 Jane Doe\n\n#harbour #fog"
SIZES = ((480, 360), (360, 480), (400, 400))
ALTS = ("Boats by the wall", None, "Gulls over the fog")


@pytest.fixture
def rig(workspace: dict[str, Any], x_openapi: XOpenAPI) -> Iterator[Rig]:
    made = make_rig(workspace, x_openapi, targets=("instagram", "mastodon", "bluesky"), config_extra={
        "bridge": {"enabled": True, "poll_seconds": 1, "targets": ["mastodon", "bluesky"]}})
    yield made
    made.close()


def bridge_a_carousel(rig: Rig) -> None:
    bridge = Bridge(rig.config, rig.journal, rig.client, StaticToken(rig.emulator.mint_ig_token()["access_token"]))
    bridge.poll()  # the first poll takes the baseline
    images = tuple(jpeg_bytes(40 + index, size=size) for index, size in enumerate(SIZES))
    rig.emulator.post_from_phone(caption=CAPTION, images=images, alt_texts=ALTS)
    assert bridge.poll() == 1


def bluesky_posts(rig: Rig) -> list[dict[str, Any]]:
    return list(rig.emulator.snapshot()["bluesky"]["posts"])


def test_a_bridged_carousel_is_one_post_with_every_image_up_to_each_servers_limit(rig: Rig) -> None:
    rig.emulator.state.mastodon.settings.max_media_attachments = 2  # this server takes two per status
    rig.emulator.state.mastodon.settings.processing_seconds = 1.0   # 202, then polled per image
    rig.emulator.state.mastodon.settings.description_limit = 12     # and alt texts of 12 at most
    bridge_a_carousel(rig)
    rig.drive()
    for job in rig.jobs():
        if job.target != "instagram":
            assert job.state is JobState.DONE, (job, rig.journal.events(job.id))

    [status] = rig.emulator.mastodon_statuses()
    assert [m["description"] for m in status["media"]] == ["Boats by…", None]  # cut at a word
    assert len(rig.emulator.requests_log("mastodon.media.upload")) == 2  # the third is never sent
    assert len(rig.emulator.requests_log("mastodon.media.show")) >= 2  # each image waited for

    [post] = bluesky_posts(rig)
    embedded = post["record"]["embed"]["images"]
    assert [image["alt"] for image in embedded] == ["Boats by the wall", "", "Gulls over the fog"]
    assert [(i["aspectRatio"]["width"], i["aspectRatio"]["height"]) for i in embedded] == list(SIZES)
    assert len({image["image"]["ref"]["$link"] for image in embedded}) == 3
    assert len(rig.emulator.requests_log("bsky.repo.uploadBlob")) == 3


def test_an_upload_failing_mid_carousel_resumes_at_that_image(rig: Rig) -> None:
    bridge_a_carousel(rig)

    def fail_the_second_upload(request: httpx.Request, response: httpx.Response | None, endpoint: str) -> None:
        uploads = ("mastodon.media.upload", "bsky.repo.uploadBlob")
        if endpoint in uploads and len(rig.emulator.requests_log(endpoint)) == 1:
            rig.emulator.respond_with(endpoint, 503)

    rig.emulator.add_observer(fail_the_second_upload)
    rig.drive()
    assert [r.status for r in rig.emulator.requests_log("mastodon.media.upload")] == [200, 503, 200, 200]
    assert [r.status for r in rig.emulator.requests_log("bsky.repo.uploadBlob")] == [200, 503, 200, 200]
    [status] = rig.emulator.mastodon_statuses()
    [post] = bluesky_posts(rig)
    assert len(status["media"]) == 3 and len(post["record"]["embed"]["images"]) == 3


def test_the_emulator_refuses_more_attachments_than_the_limit(rig: Rig) -> None:
    masto_token = rig.emulator.mint_mastodon_token()["access_token"]
    auth = {"Authorization": f"Bearer {masto_token}"}
    ids = []
    for seed in range(5):
        uploaded = rig.client.post(f"{ORIGIN}/mastodon/api/v2/media", headers=auth,
                                   files={"file": ("p.jpg", jpeg_bytes(seed, size=(64, 64)), "image/jpeg")})
        ids.append(uploaded.json()["id"])
    refused = rig.client.post(f"{ORIGIN}/mastodon/api/v1/statuses", headers=auth,
                              json={"status": "five", "media_ids": ids})
    assert refused.status_code == 422 and "more than 4" in refused.json()["error"]

    session = rig.emulator.mint_bsky_session(origin=ORIGIN)
    bearer = {"Authorization": f"Bearer {session['accessJwt']}"}
    blobs = [rig.client.post(f"{ORIGIN}/xrpc/com.atproto.repo.uploadBlob", content=jpeg_bytes(seed, size=(64, 64)),
                             headers={**bearer, "Content-Type": "image/jpeg"}).json()["blob"] for seed in range(5)]
    record = {"$type": "app.bsky.feed.post", "text": "five", "createdAt": "2026-12-02T06:00:00.000Z",
              "embed": {"$type": "app.bsky.embed.images", "images": [{"image": b, "alt": ""} for b in blobs]}}
    refused = rig.client.post(f"{ORIGIN}/xrpc/com.atproto.repo.createRecord", headers=bearer, json={
        "repo": session["did"], "collection": "app.bsky.feed.post", "record": record})
    assert refused.status_code == 400 and "4" in refused.json()["message"], refused.json()
    assert not bluesky_posts(rig) and not rig.emulator.mastodon_statuses()


def test_sigkilled_mid_carousel_the_upload_goes_on_at_the_image_it_stopped_at(
        workspace: dict[str, Any], hosted: Path, served: tuple[Emulator, EmulatorServer]) -> None:
    """`run --once` as a subprocess, SIGKILLed at crash points inside the uploads of a bridged carousel."""
    emulator, server = served
    everything = platform_targets(server.url, hosted)
    config = write_config(workspace, targets={name: everything[name] for name in ("instagram", "mastodon", "bluesky")},
                          watch=[{"path": str(workspace["inbox"]), "targets": ["instagram"]}],
                          bridge={"enabled": True, "backfill": 1, "targets": ["mastodon", "bluesky"]})
    session = emulator.mint_bsky_session(origin=server.url)
    for name, token in (("instagram", emulator.mint_ig_token()), ("mastodon", emulator.mint_mastodon_token()),
                        ("bluesky", {key: session[key] for key in ("accessJwt", "refreshJwt", "did", "handle")})):
        assert run_cli("auth", "import", name, config=config, input=json.dumps(token)).returncode == 0
    images = tuple(jpeg_bytes(60 + index, size=size) for index, size in enumerate(SIZES))
    emulator.post_from_phone(caption=CAPTION, images=images, alt_texts=ALTS)

    # Killed once Mastodon's second image is recorded, then once Bluesky's second blob is uploaded
    # but before its answer is recorded (that one upload is the only one sent twice).
    for point in ("recorded:mastodon:upload_media:2", "after:bluesky:upload_blob:2"):
        killed = run_cli("run", "--once", config=config, env={"CROSSWATCH_CRASHPOINT": point})
        assert killed.returncode == -9, (point, killed.stderr[-2000:])
    finished = run_cli("run", "--once", config=config)
    assert finished.returncode == 0, finished.stderr[-2000:]

    [status] = emulator.mastodon_statuses()
    assert [m["description"] for m in status["media"]] == ["Boats by the wall", None, "Gulls over the fog"]
    assert len(emulator.requests_log("mastodon.media.upload")) == 3, "an image recorded as uploaded went again"
    [post] = emulator.snapshot()["bluesky"]["posts"]
    embedded = post["record"]["embed"]["images"]
    assert [image["alt"] for image in embedded] == ["Boats by the wall", "", "Gulls over the fog"]
    assert len({image["image"]["ref"]["$link"] for image in embedded}) == 3
    assert len(emulator.requests_log("bsky.repo.uploadBlob")) == 4
