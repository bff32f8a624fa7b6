"""What a job will cost on a platform that charges, and what a target spent this month.

Built once for every face (the CLI today, the console next): the spend is read from the journal's
charges, the cost of a waiting job from its caption as jobs.py composes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crosswatch.config import Config, TargetConfig
from crosswatch.errors import CrosswatchError
from crosswatch.journal import Journal
from crosswatch.models import Caption, Job, JobState


def month_spend(config: Config, journal: Journal, now: float) -> dict[str, dict[str, Any]]:
    """This month's spend (in the schedule's time zone) of every target whose platform charges."""
    from crosswatch import pricing
    from crosswatch.schedule import time_zone

    zone = time_zone(config.schedule)
    start, end = pricing.month_bounds(now, zone)
    spend: dict[str, dict[str, Any]] = {}
    for name, target in config.targets.items():
        if pricing.charges(target.kind):
            spent = journal.spend(name, start, end)
            spend[name] = {"month": pricing.month_name(now, zone), "usd": spent.usd,
                           "budget_usd": target.monthly_budget_usd, "posts": spent.posts, "reads": spent.reads}
    return spend


def spend_line(spent: dict[str, Any]) -> str:
    from crosswatch.pricing import usd_text

    budget = f" of the {usd_text(spent['budget_usd'])} budget" if spent["budget_usd"] is not None else ""
    return (f"spent {usd_text(spent['usd'])}{budget} in {spent['month']} "
            f"({spent['posts']} posts, {spent['reads']} resources read)")


def job_link(config: Config, journal: Journal, job: Job,
             siblings: Sequence[Job] | None = None) -> tuple[str | None, bool]:
    """The link a job's X post carries, as jobs.py decides it (the linked post's permalink once it is
    out, none if it failed), and whether one is still to come; read without logging. ``siblings``:
    the photo's jobs when the caller has them already (a page of jobs: no query per job)."""
    target = config.targets[job.target]
    link = job.data.get("link") if isinstance(job.data.get("link"), str) else None
    if target.link_to is None:
        return link, False
    jobs = journal.jobs_for_photo(job.photo_id) if siblings is None else siblings
    linked = next((j for j in jobs if j.target == target.link_to), None)
    if link is not None or linked is None or target.link != "permalink":
        return link, False
    if linked.state is JobState.DONE:
        return linked.permalink, False
    return None, linked.state not in (JobState.FAILED, JobState.REJECTED) and job.step is None


def charge_resolved_post(config: Config, journal: Journal, job: Job, sent_at: float) -> None:
    """A post settled by hand as made was billed like any other, when it was sent: it counts in
    that month's spend."""
    from crosswatch import pricing
    from crosswatch.jobs import JobContexts

    target = config.targets.get(job.target)
    prices = pricing.prices_for(target.kind, target.prices) if target else None
    photo = journal.photo(job.photo_id)
    if prices is None or photo is None or pricing.BILLED_STEPS.get(job.step or "") != "post":
        return
    try:
        link = job_link(config, journal, job)[0]
        item = pricing.post_item(JobContexts(config, journal).caption(job, photo, link).text)
    except CrosswatchError:
        item = "post_with_url"  # the text cannot be told again: count the dearer price, to be safe
    journal.record_charge(job.target, item, prices[item], job_id=job.id, purpose="resolved by hand", at=sent_at)


def job_cost(config: Config, journal: Journal, contexts: Any, job: Job, photo: Any,
             siblings: Sequence[Job] | None = None, *, caption: Caption | None = None) -> str:
    """What a waiting job will cost where its platform charges ("$0.015"), else ""; ``caption``: the
    job's caption when the caller has composed it already."""
    from crosswatch.preview import caption_cost

    target = config.targets.get(job.target)
    if target is None:
        return ""
    link, will_link = job_link(config, journal, job, siblings)
    if caption is None:
        try:
            caption = contexts.caption(job, photo, link)
        except CrosswatchError:
            return ""
    if isinstance(job.data.get("album"), dict):
        return _album_cost(target, caption, job, contexts, will_link)
    bridge = job.data.get("bridge")
    alts = None
    if isinstance(bridge, dict) and len(bridge.get("images") or ()) > 1:
        given = [bool(a) for a in bridge.get("alt_texts") or ()]
        alts = (given + [False] * len(bridge["images"]))[:min(4, len(bridge["images"]))]
    cost = caption_cost(target, caption, will_link=will_link, alt_texts=alts)
    return "" if cost is None else cost.describe()


def _album_cost(target: TargetConfig, caption: Caption, job: Job, contexts: Any, will_link: bool) -> str:
    """An album job's posts still to go, each priced as the runner prices it (its own caption, its
    images' alt texts): the first with the album's caption, the replies with their "n/N"."""
    from crosswatch import albums, pricing
    from crosswatch.preview import caption_cost

    posts = contexts.album_plan_posts(job)
    alt_texts = contexts.album_alt_texts(job)
    starts = [sum(len(post) for post in posts[:n]) for n in range(len(posts))]
    costs = []
    for n in range(min(int(job.data.get("album_part") or 0), len(posts)), len(posts)):
        alts = alt_texts[starts[n]:starts[n] + len(posts[n])]
        text = caption if n == 0 else albums.reply_caption(caption, n, len(posts), alts[0] or None)
        cost = caption_cost(target, text, will_link=will_link and n == 0, alt_texts=[bool(a) for a in alts])
        if cost is None:
            return ""
        costs.append(cost)
    by_item: dict[str, float] = {}  # one figure per kind of call: "post $0.030, alt text $0.030"
    for name, usd in (item for cost in costs for item in cost.items):
        by_item[name] = round(by_item.get(name, 0.0) + usd, 6)
    total = pricing.Cost(round(sum(cost.usd for cost in costs), 6), tuple(by_item.items()))
    return total.describe() + (f" for {len(costs)} posts" if len(costs) > 1 else "")
