"""What X charges for the calls crosswatch makes, in one table, and what a job will cost (pure).

X API pay-per-use, since 6 Feb 2026 (api-notes.md item 14). Source: X's pricing page,
https://docs.x.com/x-api/getting-started/pricing, "Credit consumption details", as rendered on
docs.x.com and read on 2026-12-01. (The page's source in xdevplatform/docs, x-api/getting-started/
pricing.mdx, says only "view current rates in the Developer Console"; the table is rendered from
the console.) Every price can be overridden per target: ``targets.NAME.prices`` in the config.

Known (on X's page):
- ``post``: "Content: Create", $0.015 per request (POST /2/tweets).
- ``post_with_url``: "Content: Create (with URL)", $0.200 per request, since 20 Apr 2026. A post
  "contains a URL" when X's own autolinker would link something in its text: twitter-text's URL
  extraction, which also finds bare domains such as example.com (``contains_url`` below).
- ``read``: "Posts: Read", $0.005 per resource returned (a timeline answer of 20 posts is 20
  resources); "Media: Read" is also $0.005, so the media an answer includes are counted alike.
  X charges a resource once per UTC day however often it is read again ("Deduplication").
- ``media_metadata``: "Media Metadata", $0.005 per request (POST /2/media/metadata: the alt text).

Assumed (not on X's page; say so wherever they matter):
- ``media_upload``: $0. The page lists no price for POST /2/media/upload. Some third-party billing
  proxies charge an upload as a post to be safe; set ``prices.media_upload`` if your console does.
- A post whose only link is its attached photo is a plain post ($0.015): the page prices URLs in
  the text. (Some third parties suspect media posts are billed "with URL"; unconfirmed.)
- Reads of one's own posts are priced as any read ($0.005). Third-party summaries (and earlier
  api-notes.md) say "owned reads" cost $0.001; X's page does not list it, so the higher price is
  kept: the budget then errs on the safe side.
- The account lookup at sign-in (GET /2/users/me, "User: Read" $0.010) happens outside the daemon
  and is not counted.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crosswatch import twitter_counting

PRICES_SOURCE = "https://docs.x.com/x-api/getting-started/pricing (read 2026-12-01)"

# The one table: what X charges, in US dollars, per request (reads: per resource returned).
X_PRICES: Mapping[str, float] = {
    "post": 0.015,
    "post_with_url": 0.200,
    "read": 0.005,
    "media_metadata": 0.005,
    "media_upload": 0.0,
}

# Which of the X target's steps is billed as which price (the post's price depends on its text).
BILLED_STEPS: Mapping[str, str] = {
    "upload_media": "media_upload",
    "set_alt_text": "media_metadata",
    "create_post": "post",
}

ITEM_LABELS: Mapping[str, str] = {"post_with_url": "post with a URL", "media_metadata": "alt text",
                                  "media_upload": "upload"}



def _table(kind: str) -> Mapping[str, float] | None:
    """The platform's price table (its limits' ``prices``: X's is X_PRICES); None: it charges nothing."""
    from crosswatch.platforms import registry  # the platforms' limits import this module

    return registry.limits(kind).prices if registry.platform(kind) is not None else None


def charges(kind: str) -> bool:
    """Whether targets of this kind cost money per call; the others cost nothing (cost_usd is null)."""
    return _table(kind) is not None


def prices_for(kind: str, overrides: Mapping[str, float]) -> dict[str, float] | None:
    """The price table of a target kind with the config's overrides; None when it charges nothing."""
    table = _table(kind)
    return None if table is None else {**table, **overrides}


def known_prices(kind: str) -> tuple[str, ...]:
    """The price names a target of this kind may override (``targets.NAME.prices``)."""
    return tuple(_table(kind) or ())


def url_spans(text: str) -> list[tuple[int, int]]:
    """Where X's autolinker sees a URL in ``text``, as string indices. (The Python port of twitter-text
    reports code points, unlike the JavaScript one's UTF-16 units: "📷 example.com" gives [2, 13].)"""
    return twitter_counting.url_spans(text)


def contains_url(text: str) -> bool:
    """Whether X would price a post with this text as "Content: Create (with URL)"."""
    return twitter_counting.contains_url(text)


def post_item(text: str, *, will_link: bool = False) -> str:
    """The price name of a post with this text (``will_link``: a link is added when it goes out)."""
    return "post_with_url" if will_link or contains_url(text) else "post"


@dataclass(frozen=True)
class Cost:
    """What a job will cost: the total and each billed call."""

    usd: float
    items: tuple[tuple[str, float], ...]

    def describe(self) -> str:
        """"$0.020 (post $0.015, alt text $0.005)"."""
        parts = ", ".join(f"{ITEM_LABELS.get(name, name)} {usd_text(usd)}" for name, usd in self.items)
        return f"{usd_text(self.usd)} ({parts})" if parts else usd_text(self.usd)


def job_cost(prices: Mapping[str, float], text: str, alt_texts: Sequence[bool], *, will_link: bool = False,
             steps: Collection[str] = tuple(BILLED_STEPS)) -> Cost:
    """The cost of the billed ``steps`` still to run for one X post: one upload per image, one
    metadata call per image with alt text, one post priced by its text. ``alt_texts``: per image,
    whether it has an alt text."""
    items: list[tuple[str, float]] = []
    if "create_post" in steps:
        item = post_item(text, will_link=will_link)
        items.append((item, prices[item]))
    if "upload_media" in steps:
        items += [("media_upload", prices["media_upload"])] * len(alt_texts)
    if "set_alt_text" in steps:
        items += [("media_metadata", prices["media_metadata"])] * sum(1 for alt in alt_texts if alt)
    billed = tuple((name, usd) for name, usd in items if usd)
    return Cost(round(sum(usd for _name, usd in items), 6), billed)


def usd_text(usd: float) -> str:
    return f"${usd:.3f}"


# ---------------------------------------------------------------------------------------------------
# Reads


def billed_resources(body: Any) -> list[str]:
    """The resources an X read answer returned, each as X bills it: the posts in ``data`` and the
    objects in ``includes`` (media, users), named ``post:ID``, ``media:KEY``, ``users:ID``."""
    found: list[str] = []
    if not isinstance(body, Mapping):
        return found
    data = body.get("data")
    for item in data if isinstance(data, list) else [data] if isinstance(data, Mapping) else []:
        if isinstance(item, Mapping) and item.get("id") is not None:
            found.append(f"post:{item['id']}")
    includes = body.get("includes")
    for kind, items in includes.items() if isinstance(includes, Mapping) else ():
        for item in items if isinstance(items, list) else ():
            key = item.get("media_key") or item.get("id") if isinstance(item, Mapping) else None
            if key is not None:
                found.append(f"{kind}:{key}")
    return found


def billed_in(content: bytes) -> list[str]:
    """The billed resources of a read answer's body (``billed_resources``); none when it is not JSON."""
    try:
        return billed_resources(json.loads(content)) if content else []
    except (ValueError, UnicodeDecodeError):
        return []


def utc_day(at: float) -> str:
    """X's deduplication window: a resource is charged once per UTC day."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d")


# ---------------------------------------------------------------------------------------------------
# The budget month, in the user's time zone


def month_bounds(at: float, zone: dt.tzinfo) -> tuple[float, float]:
    """The start of the calendar month holding ``at`` and the start of the next, in ``zone``."""
    local = dt.datetime.fromtimestamp(at, zone)
    start = dt.datetime(local.year, local.month, 1, tzinfo=zone)
    days = calendar.monthrange(local.year, local.month)[1]
    following = (start.replace(tzinfo=None) + dt.timedelta(days=days)).replace(tzinfo=zone)
    return start.timestamp(), following.timestamp()


def month_name(at: float, zone: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(at, zone).strftime("%Y-%m")


def over_budget(spent: float, next_cost: float, budget: float | None) -> bool:
    """Whether spending ``next_cost`` more would pass the budget (to a thousandth of a cent)."""
    return budget is not None and round(spent + next_cost, 6) > round(budget, 6)
