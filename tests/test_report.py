"""The report's pure parts: engagement from each platform's own metric names, grouping, and the
suggestion's refusals (too few posts, no pattern); `report`'s bad input is one line, exit 2."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crosswatch.metadata import Metadata
from crosswatch.report import PostMetrics, grouped, suggest
from tests.conftest import run_cli, write_config

UTC = dt.UTC


def post(job_id: int, hour: int, metrics: dict[str, int], platform: str = "instagram", **meta: object) -> PostMetrics:
    posted = dt.datetime(2026, 11, 1 + job_id % 28, hour, tzinfo=UTC).timestamp()
    from crosswatch.platforms import registry

    read = registry.metrics_read(platform)
    assert read is not None
    interactions = sum(metrics[n] for n in read.interactions if n in metrics) if metrics else None
    audience = next((metrics[n] for n in read.audience if metrics.get(n)), None)
    return PostMetrics(job_id, platform, platform, str(job_id), None, posted, posted + 3600, "ok", metrics, job_id,
                       f"p{job_id}.jpg", Metadata(**meta), interactions, audience)  # type: ignore[arg-type]


def test_engagement_uses_the_platforms_own_names_and_the_audience_where_known() -> None:
    ig = post(1, 9, {"views": 400, "reach": 300, "total_interactions": 30, "likes": 20})
    masto = post(2, 9, {"favourites_count": 5, "reblogs_count": 2, "replies_count": 1}, "mastodon")
    x = post(3, 9, {"impression_count": 1000, "like_count": 10, "repost_count": 5, "reply_count": 5}, "x")
    assert (ig.interactions, ig.audience, ig.rate) == (30, 300, 0.1)  # reach before views
    assert (masto.interactions, masto.audience, masto.rate, masto.score) == (8, None, None, 8.0)
    assert x.rate == 0.02


def test_groups_by_keyword_count_a_post_in_each_of_its_keywords_best_first() -> None:
    posts = [post(1, 9, {"reach": 100, "total_interactions": 10}, keywords=("Fog", "sea")),
             post(2, 9, {"reach": 100, "total_interactions": 2}, keywords=("sea",))]
    groups = grouped(posts, "keyword", UTC)
    assert [(g.key, g.posts) for g in groups] == [("fog", 1), ("sea", 2)]
    assert grouped(posts, "lens", UTC)[0].key == "(unknown lens)"


def test_no_suggestion_below_the_minimum_and_none_without_a_pattern() -> None:
    few = [post(i, 9, {"reach": 100, "total_interactions": 10}) for i in range(5)]
    too_few = suggest("instagram", few, UTC, min_posts=20)
    assert too_few.windows is None and "5 post(s)" in too_few.why and "analytics.min_posts" in too_few.why
    flat = [post(i, (8, 12, 18)[i % 3], {"reach": 100, "total_interactions": 10}) for i in range(30)]
    none = suggest("instagram", flat, UTC, min_posts=20)
    assert none.windows == () and none.snippet is None and "no hour did clearly better" in none.why


def test_a_lift_from_few_scattered_posts_is_called_a_hint() -> None:
    steady = [post(i, (8, 12)[i % 2], {"reach": 100, "total_interactions": 17 + i % 3}) for i in range(26)]
    scattered = [post(26 + i, 18, {"reach": 100, "total_interactions": v}) for i, v in enumerate((5, 45, 10, 40))]
    hint = suggest("instagram", steady + scattered, UTC, min_posts=20)
    assert hint.windows and hint.windows[0].window == "daily 18:00-19:00" and hint.windows[0].posts == 4
    assert "could well be chance" in hint.why


def test_report_refuses_a_bad_date_and_two_formats_in_one_line(workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    bad = run_cli("report", "--since", "yesterday", config=config)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "YYYY-MM-DD" in bad.stderr
    both = run_cli("report", "--json", "--csv", config=config)
    assert both.returncode == 2 and "choose one" in both.stderr
    off = run_cli("report", "--refresh", config=config)
    assert off.returncode == 2 and "analytics.enabled" in off.stderr
    empty = run_cli("report", "--json", config=config)
    assert empty.returncode == 0 and empty.stdout.startswith("{") and '"posts": []' in empty.stdout


def test_the_console_page_escapes_what_photos_say_and_says_when_analytics_is_off(workspace: dict[str, Path]) -> None:
    from crosswatch.config import load_config
    from crosswatch.journal import Journal
    from crosswatch.models import JobState
    from tests.conftest import jpeg_bytes
    from tests.console_helpers import UNUSED_URL, make_console, take_in

    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:subject><rdf:Bag>'
           b"<rdf:li>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</rdf:li></rdf:Bag></dc:subject>"
           b"</rdf:Description></rdf:RDF></x:xmpmeta>")
    (workspace["inbox"] / "a.jpg").write_bytes(jpeg_bytes(1, size=(320, 240), xmp=xmp))
    watch = [{"path": str(workspace["inbox"]), "targets": ["x"], "settle_seconds": 0}]
    path = write_config(workspace, targets={"x": {"client_id": "c", "api_base": UNUSED_URL, "redirect_port": 0}},
                        watch=watch, analytics={"enabled": True})
    config = load_config(path)
    take_in(config)
    with Journal(config.journal_path) as journal:
        [job] = journal.jobs()
        journal.transition(job.id, JobState.IN_FLIGHT, step="post")
        journal.transition(job.id, JobState.DONE, remote_id="1")
        journal.record_readings([(job.id, "ok", {"impression_count": 100, "like_count": 5}, None, None)])
    console = make_console(path)
    try:
        console.sign_in()
        page = console.client.get("/analytics").text
    finally:
        console.close()
    assert "<script>alert(1)" not in page and "\\u003c/script>" in page  # the chart data cannot end its block
    assert 'data-post-job="' in page and 'href="/analytics" aria-current="page"' in page
    off = write_config(workspace, targets={"x": {"client_id": "c", "api_base": UNUSED_URL, "redirect_port": 0}},
                       watch=watch)
    console = make_console(off)
    try:
        console.sign_in()
        assert "Metrics are not read" in console.client.get("/analytics").text
    finally:
        console.close()
