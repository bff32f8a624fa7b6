"""Reading done posts' metrics on a schedule (``analytics``): the daemon and `crosswatch report --refresh`.

A post is read when it reaches an age in ``analytics.schedule`` (1 h, 24 h, 7 d, 28 d by default) and has
not been read since; a post past an age whose reading was missed (the daemon was off) is read once,
late. Each platform's read is sans-I/O (``platforms/<name>/metrics.py``); this collector batches the due
posts, sends through the same HTTP client as the runner, and journals every answer as a reading (a time
series per post, never overwritten). What a platform says instead of numbers is kept as such: "empty"
(no data yet), "not_enough_viewers" (Instagram's code 10), "deleted" (never read again).

Rate limits, a spent budget and a missing scope hold that target's reads (``metric_holds``) until the
platform's reset, the month's end, or an hour later; posting is never held by a metrics read. X bills
each post read ($0.005, once per UTC day): reads are charged like the runner's and a batch that would
pass ``monthly_budget_usd`` is not sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import structlog

from crosswatch import pricing
from crosswatch.config import Config, TargetConfig
from crosswatch.errors import CrosswatchError
from crosswatch.journal import Journal
from crosswatch.platforms import registry
from crosswatch.platforms.base import MetricsAnswer, MetricsRead

log = structlog.get_logger("crosswatch.analytics")

# X's non-public metrics cover 30 days after posting; an hour's margin for the two clocks.
PRIVATE_METRICS_SECONDS = 30 * 86400.0 - 3600.0
# A target whose reads were refused for a reason a person fixes (a missing scope, a sign-in) is tried
# again this much later.
REFUSED_WAIT_SECONDS = 3600.0
# `report --refresh` reads a post again only when its last reading is at least this old.
REFRESH_MIN_SECONDS = 3600.0
# How often the daemon looks for due readings.
DAEMON_TICK_SECONDS = 300.0


class Tokens(Protocol):
    def access_token(self) -> str: ...

    def force_refresh(self) -> str: ...


def due_age(posted_at: float, read_at: float | None, ages: Sequence[float], now: float) -> float | None:
    """The scheduled age to read now: the oldest one reached and not read since it was reached (so a
    missed reading is taken once, late); None when nothing is due."""
    reached = [age for age in ages if posted_at + age <= now]
    if not reached:
        return None
    latest = max(reached)
    if read_at is not None and read_at >= posted_at + latest:
        return None
    return latest


def ages_for(ages: Sequence[float], private_window: float | None) -> tuple[float, ...]:
    """The schedule's ages, plus one a day before a platform's private metrics end (X: 30 days) when
    the schedule reads later than that and not in the last three days before it, so the last reading
    with them is taken before the window closes."""
    if private_window is None or not any(age >= private_window for age in ages):
        return tuple(sorted(ages))
    if any(private_window - 3 * 86400.0 <= age < private_window for age in ages):
        return tuple(sorted(ages))
    return tuple(sorted({*ages, private_window - 86400.0}))


@dataclass
class Collected:
    """What one pass read: readings per target, and the targets that wait (with why)."""

    read: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)

    def waiting_lines(self) -> list[str]:
        """One line per target whose reads wait (what was read is in the log)."""
        return [f"{target}: {why}" for target, why in sorted(self.waiting.items())]


class Collector:
    def __init__(self, config: Config, journal: Journal, client: httpx.Client,
                 tokens: Mapping[str, Tokens], *, clock: Callable[[], float] = time.time,
                 api_bases: Mapping[str, str | None] | None = None) -> None:
        self.config = config
        self.journal = journal
        self.client = client
        self.tokens = tokens
        self.clock = clock
        self.api_bases = api_bases or {}

    def targets(self) -> dict[str, tuple[TargetConfig, MetricsRead]]:
        """The enabled targets whose analytics is on and whose platform can read metrics."""
        found: dict[str, tuple[TargetConfig, MetricsRead]] = {}
        for name, target in self.config.targets.items():
            read = registry.metrics_read(target.kind) if target.enabled and target.analytics else None
            if read is not None:
                found[name] = (target, read)
        return found

    def collect(self, *, refresh: bool = False) -> Collected:
        """Read every due post of every analytics target (one pass). ``refresh`` (`report --refresh`):
        also every post not read in the last hour that has not had its last scheduled reading."""
        result = Collected()
        now = self.clock()
        targets = self.targets()
        holds = self.journal.metrics_holds(now)
        ages = self.config.analytics.ages
        due: dict[str, list[dict[str, Any]]] = {}
        for post in self.journal.metric_posts(list(targets)):
            own = ages_for(ages, getattr(targets[post["target"]][1], "private_window", None))
            if post["deleted_at"] is None and (due_age(post["posted_at"], post["read_at"], own, now) is not None
                                               or (refresh and _refreshable(post, own, now))):
                due.setdefault(post["target"], []).append(post)
        for name, posts in due.items():
            if name in holds:
                result.waiting[name] = f"metrics reads wait until {_when(holds[name][0])}: {holds[name][1]}"
                continue
            target, read = targets[name]
            count, why = self._read_target(target, read, posts, now)
            if count:
                result.read[name] = count
            if why:
                result.waiting[name] = why
        return result

    def _read_target(self, target: TargetConfig, read: MetricsRead, posts: list[dict[str, Any]],
                     now: float) -> tuple[int, str | None]:
        read_count = 0
        for batch, recent in _batches(posts, read.batch, now):
            refusal = self._over_budget(target, len(batch), now)
            if refusal is not None:
                return read_count, refusal
            answer = self._ask(target, read, batch, recent, now)
            if answer.kind != "ok":
                return read_count, self._hold(target.name, answer, now)
            by_remote = {post["remote_id"]: post for post in batch}
            rows = [(by_remote[remote_id]["job_id"], reading.status, reading.metrics, reading.detail,
                     reading.posted_at) for remote_id, reading in answer.readings.items() if remote_id in by_remote]
            self.journal.record_readings(rows, at=now)
            read_count += len(rows)
        log.info("metrics read", target=target.name, posts=read_count)
        return read_count, None

    def _ask(self, target: TargetConfig, read: MetricsRead, batch: list[dict[str, Any]], recent: bool,
             now: float) -> MetricsAnswer:
        source = self.tokens.get(target.name)
        ids = [post["remote_id"] for post in batch]
        answer = MetricsAnswer(kind="auth", problem="not signed in")
        for attempt in range(2):
            try:
                token = None if source is None else (source.access_token() if attempt == 0
                                                     else source.force_refresh())
            except CrosswatchError as exc:
                return MetricsAnswer(kind="auth", problem=str(exc))
            request = read.build(target, ids, token, recent=recent, api_base=self.api_bases.get(target.name))
            try:
                response = self.client.send(request)
                response.read()
            except httpx.TransportError as exc:
                return MetricsAnswer(kind="failed", problem=f"cannot reach {request.url.host}: {type(exc).__name__}")
            self._charge(target, response)
            answer = read.parse(ids, response, now)
            if answer.kind != "auth" or source is None:
                return answer
        return answer

    def _charge(self, target: TargetConfig, response: httpx.Response) -> None:
        """X bills each post an answer returned (once per UTC day), as the runner's reads are billed."""
        prices = pricing.prices_for(target.kind, target.prices)
        resources = pricing.billed_in(response.content) if prices is not None and response.is_success else []
        if prices is not None and resources:
            self.journal.record_reads(target.name, resources, prices["read"], purpose="metrics")

    def _over_budget(self, target: TargetConfig, posts: int, now: float) -> str | None:
        """Hold the target's reads until the month turns when this batch would pass the budget."""
        from crosswatch.schedule import time_zone

        prices = pricing.prices_for(target.kind, target.prices)
        if prices is None or target.monthly_budget_usd is None:
            return None
        zone = time_zone(self.config.schedule)
        start, end = pricing.month_bounds(now, zone)
        spent = self.journal.spend(target.name, start, end).usd
        cost = posts * prices["read"]
        if not pricing.over_budget(spent, cost, target.monthly_budget_usd):
            return None
        why = (f"monthly budget: {pricing.usd_text(spent)} of {pricing.usd_text(target.monthly_budget_usd)} spent "
               f"in {pricing.month_name(now, zone)}, reading {posts} post(s) costs {pricing.usd_text(cost)}; "
               f"targets.{target.name}.monthly_budget_usd")
        self.journal.set_metrics_hold(target.name, end, why)
        log.warning("metrics reads wait for the budget", target=target.name, reason=why)
        return why

    def _hold(self, name: str, answer: MetricsAnswer, now: float) -> str:
        wait = answer.retry_after if answer.kind == "rate_limited" and answer.retry_after else REFUSED_WAIT_SECONDS
        if answer.kind == "failed":
            log.warning("metrics read failed; tried again at the next pass", target=name, reason=answer.problem)
            return f"metrics read failed: {answer.problem}"
        why = {"rate_limited": "rate limited", "auth": "the sign-in was refused",
               "scope": "the sign-in may not read metrics"}[answer.kind] + f": {answer.problem}"
        self.journal.set_metrics_hold(name, now + wait, why)
        log.warning("metrics reads wait", target=name, seconds=round(wait), reason=why)
        return f"metrics reads wait until {_when(now + wait)}: {why}"


def _refreshable(post: Mapping[str, Any], ages: Sequence[float], now: float) -> bool:
    read_at = post["read_at"]
    if read_at is None:
        return True
    return now - read_at >= REFRESH_MIN_SECONDS and read_at < post["posted_at"] + max(ages, default=0.0)


def api_bases(tokens: Mapping[str, object]) -> dict[str, str | None]:
    """Where each account's API lives when its token source knows (Bluesky: the PDS found at sign-in)."""
    found: dict[str, str | None] = {}
    for name, source in tokens.items():
        base = getattr(source, "api_base", None)
        try:
            found[name] = base() if callable(base) else None
        except CrosswatchError:
            found[name] = None  # the configured endpoints; the read says what is wrong
    return found


def refresh_now(config: Config, journal: Journal) -> Collected:
    """`crosswatch report --refresh`: read now what is due, and every post not read in the last hour that
    has not had its last scheduled reading, with the daemon's client and sign-ins."""
    from crosswatch.daemon import http_timeout, platform_tokens

    with httpx.Client(timeout=http_timeout(), headers={"User-Agent": "crosswatch/0.1"}) as client:
        tokens = platform_tokens(config, client)
        return Collector(config, journal, client, tokens, api_bases=api_bases(tokens)).collect(refresh=True)


def _batches(posts: list[dict[str, Any]], size: int, now: float) -> list[tuple[list[dict[str, Any]], bool]]:
    """Posts in requests of at most ``size``, the ones young enough for private metrics apart."""
    groups: dict[bool, list[dict[str, Any]]] = {}
    for post in posts:
        groups.setdefault(now - post["posted_at"] < PRIVATE_METRICS_SECONDS, []).append(post)
    return [(items[i:i + max(1, size)], recent) for recent, items in groups.items()
            for i in range(0, len(items), max(1, size))]


def _when(moment: float) -> str:
    from crosswatch.views import when  # as the console shows every time (its analytics page says this)

    return when(moment)
