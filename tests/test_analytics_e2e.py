"""End to end: photos posted through the daemon (`crosswatch run --once`, real HTTP to the emulator), aged
on the emulator with a planted best hour (posts at 18:00 get three times the engagement), then
`crosswatch report --refresh` reads their metrics and its suggestion finds 18:00 for Instagram and X;
`status` reports the X reads as spent; the CSV's columns are the documented ones."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch.emulator import DEFAULT_IG_CLIENT_ID, DEFAULT_X_CLIENT_ID, Emulator, EmulatorServer, EmulatorSettings
from crosswatch.emulator.accounts import IG_DAEMON_SCOPES
from crosswatch.report import CSV_COLUMNS
from tests.conftest import jpeg_bytes, run_cli, write_config

PHOTOS = 30  # 60 posts: each photo on X and on Instagram
HOURS = (8, 11, 14, 18, 20, 22)  # each hour gets 5 posts per platform
LENSES = ("XF23mmF1.4 R", "XF56mmF1.2 R")


@pytest.fixture
def hosted_settings() -> EmulatorSettings:
    return EmulatorSettings(ig_container_processing_seconds=0.1, ig_publish_quota=100)


def photo_xmp(index: int) -> bytes:
    keywords = "".join(f"<rdf:li>{k}</rdf:li>" for k in ("harbour", "fog" if index % 2 else "sun"))
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:exifEX="http://cipa.jp/exif/1.0/">'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour {index}</rdf:li></rdf:Alt></dc:title>'
        f"<dc:subject><rdf:Bag>{keywords}</rdf:Bag></dc:subject>"
        f"<exifEX:LensModel>{LENSES[index % 2]}</exifEX:LensModel>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def config_for(workspace: dict[str, Path], url: str, hosted: Path) -> Path:
    targets = {
        "x": {"client_id": DEFAULT_X_CLIENT_ID, "api_base": url, "web_base": f"{url}/_emulator/x"},
        "instagram": {"client_id": DEFAULT_IG_CLIENT_ID, "graph_base": url, "api_base": url,
                      "media_host": {"type": "directory", "path": str(hosted),
                                     "public_url": f"{url}/_emulator/hosted/"}},
    }
    watch = [{"path": str(workspace["inbox"]), "targets": ["x", "instagram"], "settle_seconds": 0.1}]
    return write_config(workspace, targets=targets, watch=watch, schedule={"timezone": "UTC"},
                        analytics={"enabled": True, "min_posts": 20})


def planted_times(count: int) -> list[float]:
    """Post i: (i // 6 + 2) days ago at HOURS[i % 6] UTC."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=5, second=0, microsecond=0)
    return [(today - dt.timedelta(days=i // len(HOURS) + 2)).replace(hour=HOURS[i % len(HOURS)]).timestamp()
            for i in range(count)]


def json_of(*args: str, config: Path) -> dict[str, Any]:
    result = run_cli(*args, config=config)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.slow
def test_a_planted_best_hour_is_found_for_instagram_and_x_from_60_posts(
        workspace: dict[str, Path], live_emulator: Emulator, hosted: Path) -> None:
    for index in range(PHOTOS):
        (workspace["inbox"] / f"harbour-{index:02d}.jpg").write_bytes(
            jpeg_bytes(index, size=(640, 480), xmp=photo_xmp(index)))
    with EmulatorServer(live_emulator) as server:
        config = config_for(workspace, server.url, hosted)
        for target, token in (("x", live_emulator.mint_x_token()),
                              ("instagram", live_emulator.mint_ig_token(
                                  scopes=(*IG_DAEMON_SCOPES, "instagram_business_manage_insights")))):
            assert run_cli("auth", "import", target, config=config, input=json.dumps(token)).returncode == 0
        posted = run_cli("run", "--once", config=config, timeout=600)
        assert posted.returncode == 0, posted.stderr[-2000:]
        x_posts, ig_posts = live_emulator.x_posts(), live_emulator.ig_posts()
        assert (len(x_posts), len(ig_posts)) == (PHOTOS, PHOTOS)
        httpx.post(f"{server.url}/_emulator/engagement", json={"hour_factors": {"18": 3.0}}).raise_for_status()
        for platform, ids in (("x", [p.id for p in x_posts]), ("instagram", [m.id for m in ig_posts])):
            for post_id, moment in zip(ids, planted_times(len(ids)), strict=True):
                httpx.post(f"{server.url}/_emulator/age",
                           json={"platform": platform, "id": post_id, "posted_at": moment}).raise_for_status()
        spent_before = json_of("status", "--json", config=config)["spend"]["x"]
        report = json_of("report", "--refresh", "--json", config=config)
        spent_after = json_of("status", "--json", config=config)["spend"]["x"]
        by_hour = run_cli("report", "--by", "hour", "--csv", config=config)
        per_post = run_cli("report", "--csv", config=config)
        nothing = json_of("report", "--json", "--since", "2999-01-01", config=config)
    assert len(report["posts"]) == 2 * PHOTOS and {p["status"] for p in report["posts"]} == {"ok"}
    for target in ("x", "instagram"):
        suggestion = report["suggestions"][target]
        assert suggestion["windows"][0]["window"] == "daily 18:00-19:00", suggestion
        assert suggestion["windows"][0]["posts"] == PHOTOS // len(HOURS) and suggestion["posts"] == PHOTOS
        assert 2.4 < suggestion["windows"][0]["lift"] < 3.7 and "clear difference" in suggestion["why"]
        assert 'windows: ["daily 18:00-19:00"' in suggestion["snippet"]
    hours = {p["posted_at"][11:13] for p in report["posts"]}
    assert hours == {f"{h:02d}" for h in HOURS}  # the platform's own posting times were learned
    photo = next(p["photo"] for p in report["posts"] if p["photo"]["file"].endswith("harbour-01.jpg"))
    assert photo["keywords"] == ["harbour", "fog"] and photo["lens"] == LENSES[1]
    # X: 30 posts read once each, $0.005 each, as status counts the month's spend.
    assert spent_after["reads"] - spent_before["reads"] == PHOTOS
    assert spent_after["usd"] - spent_before["usd"] == pytest.approx(PHOTOS * 0.005)
    rows = list(csv.reader(io.StringIO(by_hour.stdout)))
    assert rows[0] == ["hour", "posts", "posts_with_metrics", "mean_interactions", "mean_engagement_rate"]
    assert rows[1][0] == "18:00"  # the best group first
    header = next(csv.reader(io.StringIO(per_post.stdout)))
    assert tuple(header[:len(CSV_COLUMNS)]) == CSV_COLUMNS
    assert {"impression_count", "like_count", "reach", "views", "total_interactions"} <= set(header)
    assert nothing["posts"] == [] and nothing["suggestions"]["x"]["windows"] is None


def test_refused_metrics_reads_hold_only_the_reads_and_the_daemon_keeps_posting(
        workspace: dict[str, Path], live_emulator: Emulator, hosted: Path) -> None:
    """A rate-limited X lookup and an Instagram token without the insights scope: both targets' reads
    wait, nothing is recorded as a reading, and new photos still go out on both."""
    import threading
    import time

    from crosswatch.config import load_config
    from crosswatch.daemon import Daemon
    from crosswatch.journal import Journal, NewFile
    from crosswatch.models import JobState
    from tests.conftest import wait_until
    from tests.test_bridge import StaticToken

    with EmulatorServer(live_emulator) as server:
        config = load_config(config_for(workspace, server.url, hosted))
        x_token = live_emulator.mint_x_token()["access_token"]
        ig_token = live_emulator.mint_ig_token()  # posting scopes only
        old_x = httpx.post(f"{server.url}/2/tweets", json={"text": "an older post"},
                           headers={"Authorization": f"Bearer {x_token}"}).json()["data"]["id"]
        old_ig = live_emulator.post_from_phone(caption="an older post").id
        config.state_dir.mkdir(parents=True, exist_ok=True)
        with Journal(config.journal_path, clock=lambda: time.time() - 2 * 3600) as journal:  # 2 h ago
            for n, (target, remote_id) in enumerate((("x", old_x), ("instagram", old_ig))):
                [made] = journal.add_files([NewFile(f"old{n}.jpg", 1, 1, f"old{n}", (target,))])
                [job] = journal.jobs_for_photo(made.photo_id)
                journal.transition(job.id, JobState.IN_FLIGHT, step="publish")
                journal.transition(job.id, JobState.DONE, remote_id=remote_id)
        live_emulator.respond_with("x.tweets.lookup", 429, None)
        tokens = {"x": StaticToken(x_token),
                  "instagram": StaticToken(ig_token["access_token"], ig_token.get("user_id"))}
        daemon = Daemon(config, token_factory=lambda _config, _client: dict(tokens))

        def held_and_posted() -> bool:
            with Journal(config.journal_path) as journal:
                done = journal.state_counts()
                holds = journal.metrics_holds(time.time())
            posted = all(done.get(target, {}).get("done", 0) == 3 for target in ("x", "instagram"))
            return set(holds) == {"x", "instagram"} and posted

        def photos_then_stop() -> None:
            try:
                for index in range(2):
                    (workspace["inbox"] / f"new-{index}.jpg").write_bytes(jpeg_bytes(100 + index, size=(640, 480)))
                wait_until(held_and_posted, timeout=120, interval=0.2)
            finally:
                daemon.request_stop()

        helper = threading.Thread(target=photos_then_stop)
        helper.start()
        assert daemon.run_forever() == 0
        helper.join()
    assert held_and_posted()
    with Journal(config.journal_path) as journal:
        holds = journal.metrics_holds(time.time())
        assert journal.metric_readings() == []  # a refusal is not a reading
    assert "rate limited" in holds["x"][1] and "instagram_business_manage_insights" in holds["instagram"][1]
    assert len(live_emulator.x_posts()) == 3 and len(live_emulator.ig_posts()) == 3
