"""What `crosswatch report` and the console's analytics page show, built once for both faces.

Each done post of an analytics target, joined to its photo's own metadata (keywords, camera, lens,
rating), with its latest metrics in the platform's own names and its engagement: the interactions the
platform counts (likes, replies, reposts, ... per ``platforms/<name>/metrics.py``) and, where the
platform shows an audience (reach, views, impressions), the engagement rate. Posts are grouped by hour,
weekday, keyword, lens, camera or target, and per target the posting windows that did best are
suggested from the user's own history, with the sample size and how sure it is. Nothing here writes the
config: the suggestion is a ``schedule:`` snippet to copy.

Hours and weekdays are in the schedule's time zone (``schedule.timezone``), as posting windows are.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosswatch.config import Config
from crosswatch.journal import Journal
from crosswatch.metadata import Metadata, read_metadata
from crosswatch.platforms import registry

GROUPINGS = ("hour", "weekday", "keyword", "lens", "camera", "target")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A window is suggested when its posts did at least this much better than the target's median post.
SUGGEST_LIFT = 1.25
# Fewest posts in one hour for it to be a window.
WINDOW_MIN_POSTS = 3
MAX_WINDOWS = 3
# The CSV's fixed columns (README documents them); one column per metric name follows.
CSV_COLUMNS = ("job_id", "target", "platform", "remote_id", "permalink", "posted_at", "read_at", "status",
               "interactions", "audience", "engagement_rate", "file", "keywords", "camera", "lens", "rating")


@dataclass(frozen=True)
class PostMetrics:
    job_id: int
    target: str
    platform: str
    remote_id: str
    permalink: str | None
    posted_at: float
    read_at: float | None
    # The latest reading's status: ok, empty, not_enough_viewers, deleted; "unread" before the first.
    status: str
    metrics: Mapping[str, int]  # the latest numbers the platform gave (kept when it later said "deleted")
    photo_id: int
    file: str
    metadata: Metadata
    interactions: int | None
    audience: int | None
    # (when read, interactions) of every reading with numbers: engagement over time.
    series: tuple[tuple[float, int], ...] = ()

    @property
    def rate(self) -> float | None:
        """Interactions per person reached (or per view), where the platform says how many."""
        if self.interactions is None or not self.audience:
            return None
        return self.interactions / self.audience

    @property
    def score(self) -> float | None:
        """What posts of one target are compared by: the rate where known, else the interactions."""
        return self.rate if self.rate is not None else (float(self.interactions)
                                                         if self.interactions is not None else None)

    @property
    def camera(self) -> str | None:
        parts = [p for p in (self.metadata.make, self.metadata.model) if p]
        if len(parts) == 2 and parts[1].lower().startswith(parts[0].lower()):
            return parts[1]
        return " ".join(parts) or None

    def json(self, zone: dt.tzinfo) -> dict[str, Any]:
        return {"job_id": self.job_id, "target": self.target, "platform": self.platform,
                "remote_id": self.remote_id, "permalink": self.permalink, "posted_at": iso(self.posted_at, zone),
                "metrics": dict(self.metrics), "read_at": iso(self.read_at, zone), "status": self.status,
                "engagement": {"interactions": self.interactions, "audience": self.audience, "rate": self.rate},
                "photo": {"file": self.file, "keywords": list(self.metadata.keywords), "camera": self.camera,
                          "lens": self.metadata.lens, "rating": self.metadata.rating}}


def iso(moment: float | None, zone: dt.tzinfo) -> str | None:
    return None if moment is None else dt.datetime.fromtimestamp(moment, zone).isoformat(timespec="seconds")


def zone_of(config: Config) -> dt.tzinfo:
    from crosswatch.schedule import time_zone

    return time_zone(config.schedule)


def analytics_targets(config: Config) -> dict[str, str]:
    """Target name -> platform, for the targets whose metrics are read."""
    return {name: t.kind for name, t in config.targets.items()
            if t.analytics and registry.metrics_read(t.kind) is not None}


def post_metrics(config: Config, journal: Journal, *, since: float | None = None,
                 read_photo: Callable[[Path], Metadata] = read_metadata) -> list[PostMetrics]:
    """Every done post of the analytics targets (posted at or after ``since``), newest first."""
    targets = analytics_targets(config)
    posts = [p for p in journal.metric_posts(list(targets)) if since is None or p["posted_at"] >= since]
    readings: dict[int, list[dict[str, Any]]] = {}
    for reading in journal.metric_readings([p["job_id"] for p in posts]):
        readings.setdefault(reading["job_id"], []).append(reading)
    photos = journal.photos_by_id(sorted({p["photo_id"] for p in posts}))
    metadata: dict[int, Metadata] = {}
    found: list[PostMetrics] = []
    for post in posts:
        photo = photos.get(post["photo_id"])
        if post["photo_id"] not in metadata:
            metadata[post["photo_id"]] = _photo_metadata(photo.path if photo else None, read_photo)
        found.append(_post(post, targets[post["target"]], readings.get(post["job_id"], []),
                           photo.path if photo else "", metadata[post["photo_id"]]))
    return sorted(found, key=lambda p: p.posted_at, reverse=True)


def _photo_metadata(path: str | None, read_photo: Callable[[Path], Metadata]) -> Metadata:
    """The photo's metadata, or none when the file is gone or unreadable (the post is still shown)."""
    if not path:
        return Metadata()
    try:
        return read_photo(Path(path))
    except (OSError, ValueError):
        return Metadata()


def _post(post: Mapping[str, Any], platform: str, readings: Sequence[Mapping[str, Any]], file: str,
          metadata: Metadata) -> PostMetrics:
    read = registry.metrics_read(platform)
    assert read is not None
    with_numbers = [r for r in readings if r["status"] == "ok" and r["metrics"]]
    latest = with_numbers[-1]["metrics"] if with_numbers else {}
    series = tuple((r["at"], interactions) for r in with_numbers
                   if (interactions := _interactions(r["metrics"], read.interactions)) is not None)
    return PostMetrics(
        job_id=post["job_id"], target=post["target"], platform=platform, remote_id=post["remote_id"],
        permalink=post["permalink"], posted_at=post["posted_at"], read_at=post["read_at"],
        status=readings[-1]["status"] if readings else "unread", metrics=latest, photo_id=post["photo_id"],
        file=file, metadata=metadata, interactions=_interactions(latest, read.interactions),
        audience=next((latest[name] for name in read.audience if latest.get(name)), None), series=series)


def _interactions(metrics: Mapping[str, int], names: Sequence[str]) -> int | None:
    counted = [metrics[name] for name in names if name in metrics]
    return sum(counted) if counted else None


# ---------------------------------------------------------------------------------------------------
# Grouping


@dataclass(frozen=True)
class Group:
    key: str
    posts: int
    interactions: float | None  # mean per post
    rate: float | None  # mean engagement rate of the posts whose audience is known
    scored: int  # posts with numbers


def group_keys(post: PostMetrics, by: str, zone: dt.tzinfo) -> list[str]:
    """The groups a post counts in (a post counts in each of its keywords)."""
    local = dt.datetime.fromtimestamp(post.posted_at, zone)
    if by == "hour":
        return [f"{local.hour:02d}:00"]
    if by == "weekday":
        return [WEEKDAYS[local.weekday()]]
    if by == "keyword":
        return list(dict.fromkeys(k.lower() for k in post.metadata.keywords)) or ["(no keywords)"]
    if by == "lens":
        return [post.metadata.lens or "(unknown lens)"]
    if by == "camera":
        return [post.camera or "(unknown camera)"]
    if by == "target":
        return [post.target]
    raise ValueError(f"cannot group by {by!r}; use one of {', '.join(GROUPINGS)}")


def grouped(posts: Iterable[PostMetrics], by: str, zone: dt.tzinfo) -> list[Group]:
    """Groups, best first (by mean rate where known, else by mean interactions)."""
    members: dict[str, list[PostMetrics]] = {}
    for post in posts:
        for key in group_keys(post, by, zone):
            members.setdefault(key, []).append(post)
    groups = []
    for key, items in members.items():
        counts = [p.interactions for p in items if p.interactions is not None]
        rates = [rate for p in items if (rate := p.rate) is not None]
        groups.append(Group(key, len(items), statistics.fmean(counts) if counts else None,
                            statistics.fmean(rates) if rates else None, len(counts)))
    return sorted(groups, key=lambda g: (g.rate if g.rate is not None else -1.0, g.interactions or 0.0),
                  reverse=True)


# ---------------------------------------------------------------------------------------------------
# Suggestions


@dataclass(frozen=True)
class Window:
    window: str  # as schedule.targets.NAME.windows takes it: "daily 18:00-19:00"
    posts: int
    lift: float  # its posts' mean score over the target's median post's

    def json(self) -> dict[str, Any]:
        return {"window": self.window, "posts": self.posts, "lift": round(self.lift, 2)}


@dataclass(frozen=True)
class Suggestion:
    target: str
    windows: tuple[Window, ...] | None  # None: not enough history to say
    why: str
    posts: int
    snippet: str | None = None

    def json(self) -> dict[str, Any]:
        return {"windows": [w.json() for w in self.windows] if self.windows is not None else None,
                "why": self.why, "posts": self.posts, "snippet": self.snippet}


def suggestions(config: Config, posts: Sequence[PostMetrics], zone: dt.tzinfo) -> dict[str, Suggestion]:
    """Per analytics target, the hours of the day its posts did best in, from its own history."""
    return {name: suggest(name, [p for p in posts if p.target == name], zone, config.analytics.min_posts)
            for name in analytics_targets(config)}


def suggest(target: str, posts: Sequence[PostMetrics], zone: dt.tzinfo, min_posts: int) -> Suggestion:
    scored = [p for p in posts if p.score is not None]
    if len(scored) < min_posts:
        return Suggestion(target, None, f"{len(scored)} post(s) with metrics so far; a suggestion needs at "
                          f"least {min_posts} (analytics.min_posts)", len(scored))
    by_hour: dict[int, list[float]] = {}
    for post in scored:
        by_hour.setdefault(dt.datetime.fromtimestamp(post.posted_at, zone).hour, []).append(float(post.score or 0))
    median = statistics.median(float(p.score or 0) for p in scored)
    best = sorted(((statistics.fmean(v) / median if median else 0.0, hour, v) for hour, v in by_hour.items()
                   if len(v) >= WINDOW_MIN_POSTS), reverse=True)
    chosen = [(lift, hour, values) for lift, hour, values in best if lift >= SUGGEST_LIFT][:MAX_WINDOWS]
    if not chosen:
        return Suggestion(target, (), f"no hour did clearly better than the others across {len(scored)} posts "
                          f"(none at least {SUGGEST_LIFT:g}x the median post with {WINDOW_MIN_POSTS}+ posts)",
                          len(scored))
    windows = tuple(Window(f"daily {hour:02d}:00-{(hour + 1) % 24:02d}:00", len(values), lift)
                    for lift, hour, values in chosen)
    top_lift, top_hour, top_values = chosen[0]
    others = [float(p.score or 0) for p in scored
              if dt.datetime.fromtimestamp(p.posted_at, zone).hour != top_hour]
    why = (f"posts at {top_hour:02d}:00 did {top_lift:.1f}x the median post ({len(top_values)} of {len(scored)} "
           f"posts); {confidence(top_values, others)}")
    return Suggestion(target, windows, why, len(scored), snippet=snippet(target, windows))


def confidence(inside: Sequence[float], outside: Sequence[float]) -> str:
    """A plain statement of how sure the difference is, from Welch's t statistic of the two samples
    (about 2 or more: unlikely to be chance with samples this size; 3 or more: clear)."""
    if len(inside) < 2 or len(outside) < 2:
        return "too few posts on one side to say whether it is chance"
    spread = math.sqrt(statistics.variance(inside) / len(inside) + statistics.variance(outside) / len(outside))
    difference = statistics.fmean(inside) - statistics.fmean(outside)
    t = difference / spread if spread else (math.inf if difference > 0 else 0.0)
    if t >= 3 and len(inside) >= 5:
        return "a clear difference, very unlikely to be chance"
    if t >= 2:
        return "likely a real difference, though more posts would make it surer"
    return "it could well be chance: treat it as a hint and keep posting at other hours too"


def snippet(target: str, windows: Sequence[Window]) -> str:
    """The ``schedule:`` lines to copy into the config (crosswatch never changes it by itself)."""
    listed = ", ".join(f'"{w.window}"' for w in windows)
    return f"schedule:\n  targets:\n    {target}:\n      windows: [{listed}]\n"


# ---------------------------------------------------------------------------------------------------
# The report's faces: JSON, CSV, text


@dataclass
class Report:
    posts: list[PostMetrics]
    suggestions: dict[str, Suggestion]
    zone: dt.tzinfo
    by: str | None = None
    groups: list[Group] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"posts": [p.json(self.zone) for p in self.posts],
                                    "suggestions": {n: s.json() for n, s in self.suggestions.items()}}
        if self.by is not None:
            document["groups"] = {"by": self.by, "groups": [g.__dict__ for g in self.groups]}
        return document

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if self.by is not None:
            writer.writerow([self.by, "posts", "posts_with_metrics", "mean_interactions", "mean_engagement_rate"])
            for g in self.groups:
                writer.writerow([g.key, g.posts, g.scored, _number(g.interactions), _number(g.rate)])
            return out.getvalue()
        names = sorted({name for p in self.posts for name in p.metrics})
        writer.writerow([*CSV_COLUMNS, *names])
        for p in self.posts:
            writer.writerow([p.job_id, p.target, p.platform, p.remote_id, p.permalink or "",
                             iso(p.posted_at, self.zone), iso(p.read_at, self.zone) or "", p.status,
                             _number(p.interactions), _number(p.audience), _number(p.rate), p.file,
                             "; ".join(p.metadata.keywords), p.camera or "", p.metadata.lens or "",
                             _number(p.metadata.rating), *(_number(p.metrics.get(name)) for name in names)])
        return out.getvalue()

    def lines(self) -> list[str]:
        if self.by is not None:
            rows = [f"{self.by:<24} {'posts':>5} {'interactions':>12} {'rate':>7}"]
            rows += [f"{g.key[:24]:<24} {g.posts:>5} {_shown(g.interactions):>12} {_percent(g.rate):>7}"
                     for g in self.groups]
        else:
            rows = [f"{'posted':<16} {'target':<10} {'status':<18} {'interactions':>12} {'audience':>8} "
                    f"{'rate':>7}  photo"]
            rows += [f"{dt.datetime.fromtimestamp(p.posted_at, self.zone):%Y-%m-%d %H:%M} {p.target[:10]:<10} "
                     f"{p.status:<18} {_shown(p.interactions):>12} {_shown(p.audience):>8} {_percent(p.rate):>7}  "
                     f"{Path(p.file).name}" for p in self.posts]
        if not self.posts:
            rows.append("no posts of an analytics target yet (analytics.enabled, targets.NAME.analytics)")
        for name, s in self.suggestions.items():
            rows.append(f"suggestion for {name}: {s.why}")
            if s.snippet:
                rows += ["  " + line for line in s.snippet.splitlines()]
        return rows


def build_report(config: Config, journal: Journal, *, since: float | None = None, by: str | None = None,
                 read_photo: Callable[[Path], Metadata] = read_metadata) -> Report:
    zone = zone_of(config)
    posts = post_metrics(config, journal, since=since, read_photo=read_photo)
    report = Report(posts, suggestions(config, posts, zone), zone, by)
    if by is not None:
        report.groups = grouped(posts, by, zone)
    return report


def _number(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def _shown(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.1f}"


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.2f}%"


def heat_map(posts: Iterable[PostMetrics], zone: dt.tzinfo) -> dict[str, list[list[float | None]]]:
    """Per platform, a weekday x hour grid (7 rows, 24 columns) of the posts' mean score there."""
    cells: dict[str, dict[tuple[int, int], list[float]]] = {}
    for post in posts:
        if post.score is None:
            continue
        local = dt.datetime.fromtimestamp(post.posted_at, zone)
        cells.setdefault(post.platform, {}).setdefault((local.weekday(), local.hour), []).append(post.score)
    return {platform: [[statistics.fmean(grid[(d, h)]) if (d, h) in grid else None for h in range(24)]
                       for d in range(7)] for platform, grid in cells.items()}


# ---------------------------------------------------------------------------------------------------
# The console's analytics page


@dataclass(frozen=True)
class HeatCell:
    value: float | None
    level: int  # 0 (no post) .. 5 (the best cell of the grid): the page's shade


@dataclass(frozen=True)
class HeatMap:
    platform: str
    rows: tuple[tuple[str, tuple[HeatCell, ...]], ...]  # (weekday, 24 cells)


@dataclass
class AnalyticsPage:
    report: Report
    heat_maps: list[HeatMap]
    keywords: list[Group]
    lenses: list[Group]
    chart_data: dict[str, Any]


PAGE_GROUPS = 10


def analytics_page(config: Config, journal: Journal, *,
                   read_photo: Callable[[Path], Metadata] = read_metadata) -> AnalyticsPage:
    """What the console's analytics page shows: the report, a weekday x hour heat map per platform,
    the best keywords and lenses, and the charts' data (engagement over time, per target)."""
    built = build_report(config, journal, read_photo=read_photo)
    zone = built.zone
    maps = [HeatMap(platform, tuple((WEEKDAYS[day], tuple(HeatCell(v, _level(v, grid)) for v in row))
                                    for day, row in enumerate(grid)))
            for platform, grid in sorted(heat_map(built.posts, zone).items())]
    keywords = [g for g in grouped(built.posts, "keyword", zone) if g.key != "(no keywords)"][:PAGE_GROUPS]
    lenses = [g for g in grouped(built.posts, "lens", zone) if g.key != "(unknown lens)"][:PAGE_GROUPS]
    return AnalyticsPage(built, maps, keywords, lenses, _chart_data(built.posts, keywords, lenses, zone))


def _level(value: float | None, grid: Sequence[Sequence[float | None]]) -> int:
    best = max((v for row in grid for v in row if v is not None), default=None)
    if value is None or not best:
        return 0
    return max(1, min(5, math.ceil(5 * value / best)))


def _chart_data(posts: Sequence[PostMetrics], keywords: Sequence[Group], lenses: Sequence[Group],
                zone: dt.tzinfo) -> dict[str, Any]:
    """Engagement over time: per target and posting day, the mean interactions of that day's posts."""
    days: dict[str, dict[str, list[int]]] = {}
    for post in posts:
        if post.interactions is not None:
            day = dt.datetime.fromtimestamp(post.posted_at, zone).date().isoformat()
            days.setdefault(post.target, {}).setdefault(day, []).append(post.interactions)
    labels = sorted({day for per in days.values() for day in per})
    return {
        "days": labels,
        "series": {target: [statistics.fmean(per[d]) if d in per else None for d in labels]
                   for target, per in sorted(days.items())},
        "keywords": {"labels": [g.key for g in keywords], "values": [g.interactions or 0 for g in keywords]},
        "lenses": {"labels": [g.key for g in lenses], "values": [g.interactions or 0 for g in lenses]},
    }
