"""Cross-promotion: ``targets.x.link_to: instagram`` makes a photo's X post wait for its Instagram post
and carry that post's permalink (with UTM parameters)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from crosswatch.config import Config, config_from_mapping
from crosswatch.emulator import DEFAULT_IG_CLIENT_ID, DEFAULT_X_CLIENT_ID, Emulator, EmulatorServer, EmulatorSettings
from crosswatch.errors import ConfigError
from crosswatch.jobs import JobContexts, NotYet
from crosswatch.journal import Journal, NewFile
from crosswatch.models import Job, JobState
from crosswatch.runner import Runner
from tests.conftest import DaemonProcess, jpeg_bytes, wait_until, xmp_packet
from tests.emulator_fixtures import watch_openapi
from tests.openapi_check import XOpenAPI
from tests.test_platforms_e2e import done_count, photo, platform_config, sign_in

IG_PERMALINK = "https://www.instagram.com/p/Cabc123/"


def make_config(tmp_path: Path, *, x: dict[str, Any] | None = None, targets: tuple[str, ...] = ("instagram", "x"),
                captions: dict[str, str] | None = None) -> Config:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    document: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "watch": [{"path": str(inbox), "targets": list(targets)}],
        "targets": {
            "x": {"client_id": DEFAULT_X_CLIENT_ID, "link_to": "instagram", **(x or {})},
            "instagram": {"client_id": DEFAULT_IG_CLIENT_ID,
                          "media_host": {"type": "directory", "path": str(tmp_path / "hosted"),
                                         "public_url": "https://example.com/h/"}},
        },
        "links": {"utm": {"x": {"source": "x", "campaign": "crosspost"}}},
        "captions": captions or {},
    }
    return config_from_mapping(document, tmp_path / "config.yaml")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "state" / "journal.sqlite3") as opened:
        yield opened


def add_photo(tmp_path: Path, journal: Journal, targets: tuple[str, ...] = ("instagram", "x")) -> dict[str, Job]:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    path = tmp_path / "inbox" / "harbour.jpg"
    path.write_bytes(jpeg_bytes(1, size=(320, 240), xmp=xmp_packet("Harbour at dawn", "Boats in fog")))
    journal.add_files([NewFile(str(path), path.stat().st_size, path.stat().st_mtime_ns, "hash-1", targets)])
    return {job.target: job for job in journal.jobs()}


def finish(journal: Journal, job: Job, state: JobState, permalink: str | None = None) -> None:
    journal.transition(job.id, JobState.IN_FLIGHT, step="publish")
    journal.transition(job.id, state, remote_id="1801" if state is JobState.DONE else None, permalink=permalink,
                       reason=None if state is JobState.DONE else "Instagram refused the image")


def test_the_x_job_waits_while_the_instagram_job_is_to_come(tmp_path: Path, journal: Journal) -> None:
    config = make_config(tmp_path)
    jobs = add_photo(tmp_path, journal)
    contexts = JobContexts(config, journal, clock=lambda: 1000.0)
    journal.transition(jobs["instagram"].id, JobState.READY, next_attempt_at=1030.0)
    with pytest.raises(NotYet) as waiting:
        contexts.build(journal.job(jobs["x"].id) or jobs["x"], need_image=False)
    assert "instagram" in waiting.value.reason and "link_to" in waiting.value.reason
    assert 30.0 <= waiting.value.retry_after <= 31.0  # until the Instagram job's own next attempt


def test_the_wait_lasts_while_instagram_is_held(tmp_path: Path, journal: Journal) -> None:
    jobs = add_photo(tmp_path, journal)
    journal.set_hold("instagram", 1000.0 + 300.0, "rate_limited", "quota used up")
    contexts = JobContexts(make_config(tmp_path), journal, clock=lambda: 1000.0)
    with pytest.raises(NotYet) as waiting:
        contexts.build(jobs["x"], need_image=False)
    assert 300.0 <= waiting.value.retry_after <= 301.0


def test_once_instagram_is_done_the_caption_carries_its_permalink_with_utm(tmp_path: Path, journal: Journal) -> None:
    config = make_config(tmp_path)  # the default X template has no {link}: the link is added anyway
    jobs = add_photo(tmp_path, journal)
    finish(journal, jobs["instagram"], JobState.DONE, IG_PERMALINK)
    ctx = JobContexts(config, journal).build(jobs["x"], need_image=False)
    assert f"{IG_PERMALINK}?utm_source=x&utm_campaign=crosspost" in ctx.caption.text
    assert ctx.caption.text.startswith("Harbour at dawn")
    assert ctx.caption.length <= 280


def test_a_template_with_link_puts_it_where_the_template_says(tmp_path: Path, journal: Journal) -> None:
    config = make_config(tmp_path, captions={"x": "{link} {title}"})
    jobs = add_photo(tmp_path, journal)
    finish(journal, jobs["instagram"], JobState.DONE, IG_PERMALINK)
    ctx = JobContexts(config, journal).build(jobs["x"], need_image=False)
    assert ctx.caption.text.startswith(IG_PERMALINK) and ctx.caption.text.endswith("Harbour at dawn")


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.REJECTED])
def test_when_instagram_does_not_go_out_x_goes_without_the_link(tmp_path: Path, journal: Journal,
                                                                 state: JobState) -> None:
    jobs = add_photo(tmp_path, journal)
    finish(journal, jobs["instagram"], state)
    ctx = JobContexts(make_config(tmp_path), journal).build(jobs["x"], need_image=False)
    assert "http" not in ctx.caption.text and "Harbour at dawn" in ctx.caption.text


def test_link_none_waits_for_instagram_but_carries_no_link(tmp_path: Path, journal: Journal) -> None:
    config = make_config(tmp_path, x={"link": "none"})
    jobs = add_photo(tmp_path, journal)
    with pytest.raises(NotYet):
        JobContexts(config, journal).build(jobs["x"], need_image=False)
    finish(journal, jobs["instagram"], JobState.DONE, IG_PERMALINK)
    assert "http" not in JobContexts(config, journal).build(jobs["x"], need_image=False).caption.text


def test_a_photo_that_does_not_go_to_instagram_does_not_wait(tmp_path: Path, journal: Journal) -> None:
    jobs = add_photo(tmp_path, journal, targets=("x",))
    ctx = JobContexts(make_config(tmp_path), journal).build(jobs["x"], need_image=False)
    assert "http" not in ctx.caption.text


def test_the_runner_parks_a_waiting_job_without_counting_an_attempt(tmp_path: Path, journal: Journal) -> None:
    config = make_config(tmp_path)
    jobs = add_photo(tmp_path, journal)
    journal.transition(jobs["instagram"].id, JobState.READY, next_attempt_at=5000.0)  # not due yet

    class Token:
        def access_token(self) -> str:
            return "t"

        def force_refresh(self) -> str:
            return "t"

        def account_id(self) -> str | None:
            return None

        def username(self) -> str | None:
            return None

    from crosswatch.platforms.registry import build_target

    runner = Runner(config, journal, {"x": build_target(config.targets["x"])}, tokens={"x": Token()},
                    clock=lambda: 1000.0, contexts=JobContexts(config, journal, clock=lambda: 1000.0))
    runner.run_due()
    x_job = journal.job(jobs["x"].id)
    assert x_job is not None and x_job.state is JobState.READY and x_job.attempts == 0
    assert x_job.next_attempt_at == pytest.approx(1000.0 + 600.0)  # capped wait
    assert x_job.reason and "waiting for the instagram post" in x_job.reason
    assert runner.run_due() == 0  # parked: not due again before its time


def test_link_to_must_name_an_instagram_target(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="link_to"):
        make_config(tmp_path, x={"link_to": "x"})
    with pytest.raises(ConfigError, match="link_to"):
        make_config(tmp_path, x={"link_to": "nowhere"})


# --- end to end -------------------------------------------------------------------------------------


@pytest.fixture
def hosted(tmp_path: Path) -> Path:
    folder = tmp_path / "hosted"
    folder.mkdir()
    return folder


def test_daemon_x_posts_carry_the_matching_instagram_permalink(
        workspace: dict[str, Path], start_daemon: Callable[..., DaemonProcess], hosted: Path,
        x_openapi: XOpenAPI) -> None:
    emulator = Emulator(EmulatorSettings(ig_container_processing_seconds=0.5), hosted_dir=hosted)
    recorder = watch_openapi(emulator, x_openapi)
    with EmulatorServer(emulator) as server:
        url = server.url
        config = platform_config(workspace, url, hosted, links={"utm": {"x": {"source": "x"}}})
        document = yaml.safe_load(config.read_text())
        document["targets"]["x"]["link_to"] = "instagram"
        config.write_text(yaml.safe_dump(document))
        sign_in(config, emulator)
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        for index in range(3):
            (workspace["inbox"] / f"photo-{index}.jpg").write_bytes(photo(100 + index))
        wait_until(lambda: done_count(workspace["state"]) == 6, timeout=60)
        assert daemon.stop() == 0
    recorder.assert_clean()

    x_posts = {p.id: p for p in emulator.x_posts()}
    ig_posts = {m.id: m for m in emulator.ig_posts()}
    assert len(x_posts) == 3 and len(ig_posts) == 3
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        for photo_row, _status, _reason in journal.photos():
            jobs = {j.target: j for j in journal.jobs_for_photo(photo_row.id)}
            ig_media = ig_posts[jobs["instagram"].remote_id or ""]
            x_post = x_posts[jobs["x"].remote_id or ""]
            permalink = f"{url}/_emulator/p/{ig_media.shortcode}/"
            assert jobs["instagram"].permalink == permalink
            assert f"{permalink}?utm_source=x" in x_post.text
            assert x_post.created_at >= ig_media.timestamp
            # Only this photo's own Instagram post is linked.
            assert len(re.findall(r"/_emulator/p/", x_post.text)) == 1
        waited = [e for j in journal.jobs(target="x") for e in journal.events(j.id)
                  if "waiting for the instagram post" in (e["detail"] or "")]
        assert waited, "the X jobs were due first, so they must have waited"
