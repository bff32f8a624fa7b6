"""The metrics collector against the emulator over real HTTP, on a fake clock shared by both: reads
happen at the configured ages and not otherwise, every reading is kept, X reads are charged and held
to the budget, and a missing scope, a deleted post, "not enough viewers" and a rate limit are each
recorded as what they are, with nothing lost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch import spend
from crosswatch.analytics import Collector, ages_for, due_age
from crosswatch.config import Config, config_from_mapping
from crosswatch.emulator import Emulator, EmulatorServer, EmulatorSettings
from crosswatch.emulator.accounts import IG_DAEMON_SCOPES
from crosswatch.emulator.clock import ManualClock
from crosswatch.journal import Journal, NewFile
from crosswatch.models import JobState
from tests.emulator_fixtures import watch_openapi
from tests.openapi_check import XOpenAPI
from tests.test_bridge import StaticToken as Token

HOUR = 3600.0
DAY = 86400.0
INSIGHTS = "instagram_business_manage_insights"
# The first of a month at 10:00 UTC: 28 days on stay in the same month for the budget.
START = dt.datetime(2026, 10, 1, 10, tzinfo=dt.UTC).timestamp()


class Rig:
    def __init__(self, tmp_path: Path, server: EmulatorServer, emulator: Emulator, clock: ManualClock,
                 **analytics: Any) -> None:
        self.emulator, self.clock, self.url = emulator, clock, server.url
        url = server.url
        self.config: Config = config_from_mapping({
            "state_dir": str(tmp_path / "state"),
            "watch": [{"path": str(tmp_path), "targets": ["x", "instagram"]}],
            "targets": {"x": {"client_id": "c", "api_base": url, "monthly_budget_usd": analytics.pop("budget", None)},
                        "instagram": {"client_id": "c", "graph_base": url, "api_base": url,
                                      "media_host": {"type": "directory", "path": str(tmp_path),
                                                     "public_url": f"{url}/_emulator/hosted/"}}},
            "schedule": {"timezone": "UTC"},
            "analytics": {"enabled": True, **analytics},
        }, tmp_path / "config.yaml")
        (tmp_path / "state").mkdir(exist_ok=True)
        self.journal = Journal(self.config.journal_path, clock=clock)
        self.client = httpx.Client()
        self.x_token = emulator.mint_x_token()["access_token"]
        self.ig_token = emulator.mint_ig_token(scopes=(*IG_DAEMON_SCOPES, INSIGHTS))["access_token"]
        self.tokens = {"x": Token(self.x_token), "instagram": Token(self.ig_token)}
        self.count = 0

    def collector(self) -> Collector:
        return Collector(self.config, self.journal, self.client, self.tokens, clock=self.clock)

    def post(self, target: str, remote_id: str) -> int:
        """A done job of ``target`` with the platform's id (as the runner leaves one)."""
        self.count += 1
        [result] = self.journal.add_files([NewFile(f"p{self.count}.jpg", 1, 1, f"h{self.count}", (target,))])
        [job] = self.journal.jobs_for_photo(result.photo_id)
        self.journal.transition(job.id, JobState.IN_FLIGHT, step="create_post")
        self.journal.transition(job.id, JobState.DONE, remote_id=remote_id)
        return job.id

    def x_post(self, text: str) -> int:
        answer = self.client.post(f"{self.url}/2/tweets", json={"text": text},
                                  headers={"Authorization": f"Bearer {self.x_token}"})
        return self.post("x", answer.json()["data"]["id"])

    def ig_post(self, caption: str) -> int:
        return self.post("instagram", self.emulator.post_from_phone(caption=caption).id)

    def lookups(self) -> int:
        return len(self.emulator.requests_log("x.tweets.lookup"))

    def readings(self, job_id: int) -> list[dict[str, Any]]:
        return self.journal.metric_readings([job_id])


@pytest.fixture
def rig(tmp_path: Path, x_openapi: XOpenAPI, request: pytest.FixtureRequest) -> Iterator[Rig]:
    clock = ManualClock(START)
    emulator = Emulator(EmulatorSettings(x_access_token_lifetime=400 * DAY), clock=clock)
    recorder = watch_openapi(emulator, x_openapi)
    options: dict[str, Any] = getattr(request, "param", {})
    with EmulatorServer(emulator) as server:
        built = Rig(tmp_path, server, emulator, clock, **options)
        yield built
        built.client.close()
        built.journal.close()
    recorder.assert_clean()


def test_due_age_reads_each_scheduled_age_once_and_a_missed_one_late() -> None:
    ages = (HOUR, DAY, 7 * DAY)
    assert due_age(0, None, ages, HOUR - 1) is None
    assert due_age(0, None, ages, HOUR) == HOUR
    assert due_age(0, HOUR, ages, 2 * HOUR) is None
    assert due_age(0, HOUR, ages, 8 * DAY) == 7 * DAY  # the 24 h reading was missed: one read, late
    assert due_age(0, 8 * DAY, ages, 300 * DAY) is None  # past the last age: never again


def test_a_schedule_past_30_days_reads_x_once_before_its_private_metrics_end() -> None:
    assert ages_for((HOUR, 60 * DAY), 30 * DAY) == (HOUR, 29 * DAY, 60 * DAY)
    assert ages_for((HOUR, 28 * DAY, 60 * DAY), 30 * DAY) == (HOUR, 28 * DAY, 60 * DAY)  # 28 d is close enough
    assert ages_for((HOUR, 60 * DAY), None) == (HOUR, 60 * DAY)  # no private window: as configured


def test_reads_happen_at_the_configured_ages_only_and_x_reads_cost_what_status_says(rig: Rig) -> None:
    jobs = [rig.x_post(f"harbour {n}") for n in range(3)]
    seen: list[int] = []
    for age in (0.5 * HOUR, HOUR, 2 * HOUR, DAY, 3 * DAY, 7 * DAY, 20 * DAY, 28 * DAY, 29 * DAY):
        rig.clock.set(START + age)
        rig.collector().collect()
        seen.append(rig.lookups())
    assert seen == [0, 1, 1, 2, 2, 3, 3, 4, 4]  # one request for the three posts at 1 h, 24 h, 7 d, 28 d
    series = [r["metrics"]["impression_count"] for r in rig.readings(jobs[0])]
    assert len(series) == 4 and series == sorted(series) and series[0] < series[-1]  # kept, growing
    assert all("url_link_clicks" in r["metrics"] for r in rig.readings(jobs[0]))  # younger than 30 d
    spent = spend.month_spend(rig.config, rig.journal, rig.clock())["x"]
    assert (spent["reads"], spent["usd"]) == (12, pytest.approx(12 * 0.005))  # 3 posts x 4 UTC days


@pytest.mark.parametrize("rig", [{"budget": 0.01}], indirect=True)
def test_a_spent_budget_holds_x_reads_and_nothing_else(rig: Rig) -> None:
    for n in range(3):
        rig.x_post(f"dunes {n}")
    rig.ig_post("dunes")
    rig.clock.set(START + HOUR)
    collected = rig.collector().collect()
    assert rig.lookups() == 0 and "monthly budget" in collected.waiting["x"]
    assert collected.read == {"instagram": 1}  # the other target reads on
    rig.clock.set(START + DAY)
    assert "x" in rig.collector().collect().waiting and rig.lookups() == 0  # held until the month turns


def test_deleted_not_enough_viewers_and_empty_are_recorded_as_such(rig: Rig) -> None:
    rig.emulator.state.engagement.min_viewers = 30
    quiet, gone, lagging = rig.ig_post("quiet"), rig.ig_post("gone"), rig.x_post("deleted on X")
    x_gone = rig.journal.job(lagging)
    assert x_gone is not None and x_gone.remote_id is not None
    rig.emulator.delete_ig_post(str(rig.journal.job(gone).remote_id))  # type: ignore[union-attr]
    rig.emulator.delete_x_post(x_gone.remote_id)
    rig.clock.set(START + HOUR)
    rig.collector().collect()
    assert [r["status"] for r in rig.readings(quiet)] == ["not_enough_viewers"]
    assert rig.readings(quiet)[0]["metrics"] == {}  # not zeros
    assert [r["status"] for r in rig.readings(gone)] == ["deleted"]
    assert [r["status"] for r in rig.readings(lagging)] == ["deleted"]
    rig.emulator.state.engagement.insights_delay_seconds = 10 * DAY
    rig.clock.set(START + 7 * DAY)
    rig.collector().collect()
    assert [r["status"] for r in rig.readings(quiet)] == ["not_enough_viewers", "empty"]
    assert len(rig.readings(gone)) == 1 and len(rig.readings(lagging)) == 1  # deleted: never read again


def test_a_missing_scope_and_a_rate_limit_hold_reads_until_later_and_lose_nothing(rig: Rig) -> None:
    ig_job, x_job = rig.ig_post("fog"), rig.x_post("fog")
    rig.tokens["instagram"] = Token(rig.emulator.mint_ig_token()["access_token"])  # no insights scope
    rig.emulator.respond_with("x.tweets.lookup", 429, None)
    rig.clock.set(START + HOUR)
    waiting = rig.collector().collect().waiting
    assert "instagram_business_manage_insights" in waiting["instagram"] and "rate limited" in waiting["x"]
    assert rig.readings(ig_job) == [] and rig.readings(x_job) == []
    rig.clock.set(START + 1.5 * HOUR)
    again = rig.collector().collect()
    assert again.read == {"x": 1} and "wait until" in again.waiting["instagram"]  # X's window reset
    rig.tokens["instagram"] = Token(rig.ig_token)
    rig.clock.set(START + 2.5 * HOUR)
    assert rig.collector().collect().read == {"instagram": 1}  # the 1 h reading, taken late
    assert [r["status"] for r in rig.readings(ig_job)] == ["ok"]


def test_mastodon_bluesky_and_threads_counts_are_read_and_a_gone_post_is_deleted(
        tmp_path: Path, x_openapi: XOpenAPI) -> None:
    from crosswatch.emulator.threads_state import THREADS_DAEMON_SCOPES, ThreadsPost

    clock = ManualClock(START)
    emulator = Emulator(clock=clock)
    with EmulatorServer(emulator) as server, httpx.Client() as client:
        url = server.url
        config = config_from_mapping({
            "state_dir": str(tmp_path / "state"),
            "watch": [{"path": str(tmp_path), "targets": ["mastodon"]}],
            "targets": {"mastodon": {"instance": f"{url}/mastodon"},
                        "bluesky": {"service": url, "handle": "crosswatch-test.bsky.social"},
                        "threads": {"client_id": "c", "graph_base": f"{url}/threads",
                                    "media_host": {"type": "directory", "path": str(tmp_path),
                                                   "public_url": f"{url}/_emulator/hosted/"}}},
            "analytics": {"enabled": True}}, tmp_path / "config.yaml")
        (tmp_path / "state").mkdir()
        masto = emulator.mint_mastodon_token()["access_token"]
        bsky = emulator.mint_bsky_session(origin=url)["accessJwt"]
        threads = emulator.mint_threads_token(scopes=(*THREADS_DAEMON_SCOPES, "threads_manage_insights"))
        status = client.post(f"{url}/mastodon/api/v1/statuses", data={"status": "fog over the harbour"},
                             headers={"Authorization": f"Bearer {masto}"}).json()["id"]
        record = client.post(f"{url}/xrpc/com.atproto.repo.createRecord",
                             headers={"Authorization": f"Bearer {bsky}"},
                             json={"repo": "crosswatch-test.bsky.social", "collection": "app.bsky.feed.post",
                                   "record": {"$type": "app.bsky.feed.post", "text": "fog",
                                              "createdAt": "2026-10-01T10:00:00.000Z"}}).json()["uri"]
        with emulator.state.lock:  # a thread made in the app, as the Instagram phone posts are
            user = next(iter(emulator.state.threads.users))
            emulator.state.threads.posts.append(ThreadsPost("17900000000000777", user, "fog", None, b"", START,
                                                            "ABCdef123", "0"))
        with Journal(config.journal_path, clock=clock) as journal:
            jobs = {}
            for n, (target, remote_id) in enumerate((("mastodon", status), ("bluesky", record),
                                                     ("bluesky", record[:-3] + "zzz"),
                                                     ("threads", "17900000000000777"))):
                [made] = journal.add_files([NewFile(f"q{n}.jpg", 1, 1, f"q{n}", (target,))])
                [job] = journal.jobs_for_photo(made.photo_id)
                journal.transition(job.id, JobState.IN_FLIGHT, step="post")
                journal.transition(job.id, JobState.DONE, remote_id=remote_id)
                jobs[n] = job.id
            clock.set(START + 2 * DAY)
            fresh = emulator.mint_bsky_session(origin=url)["accessJwt"]  # Bluesky access tokens live 2 h
            tokens = {"mastodon": Token(masto), "bluesky": Token(fresh), "threads": Token(threads["access_token"])}
            collected = Collector(config, journal, client, tokens, clock=clock).collect()
            readings = {n: journal.metric_readings([job_id]) for n, job_id in jobs.items()}
    assert collected.read == {"mastodon": 1, "bluesky": 2, "threads": 1}, collected.waiting
    assert set(readings[0][0]["metrics"]) == {"favourites_count", "reblogs_count", "replies_count"}
    assert set(readings[1][0]["metrics"]) == {"likeCount", "repostCount", "replyCount", "quoteCount"}
    assert readings[1][0]["metrics"]["likeCount"] > 0
    assert readings[2][0]["status"] == "deleted"  # getPosts left it out
    assert set(readings[3][0]["metrics"]) == {"views", "likes", "replies", "reposts", "quotes", "shares"}
