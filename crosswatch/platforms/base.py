"""The Target protocol: a target turns a job into steps; only the runner performs them.

A platform step (``HttpStep``) builds an ``httpx.Request`` and parses the ``httpx.Response`` into an
``Outcome``; it never sends (sans-I/O, after h11). A ``LocalStep`` does local work the runner calls
(writing the outbox, copying a file to the media host). Each step says whether it is safe to repeat:
before a step that is not, the runner commits its intent to the journal, so that a crash in between
is found and reconciled instead of posting twice.

Parsing never raises on a strange response: it returns an outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from crosswatch.models import Caption, PreparedImage

if TYPE_CHECKING:  # httpx in annotations only: importing it is left to the code that sends
    import httpx

    from crosswatch.config import TargetConfig


@dataclass(frozen=True)
class JobContext:
    """Everything a step may read. ``data`` holds what earlier steps of this job returned."""

    job_id: int
    target: str
    photo_hash: str
    photo_path: Path
    caption: Caption
    image: PreparedImage | None
    data: Mapping[str, Any] = field(default_factory=dict)
    access_token: str | None = None
    # The signed-in account's platform id (X user id, Instagram user id), from the token store.
    account_id: str | None = None
    # Where the account's API lives when sign-in found it elsewhere than the config says (Bluesky: the
    # PDS in the account's DID document); None: the target's configured endpoints.
    api_base: str | None = None


class Kind(enum.StrEnum):
    NEXT = "next"            # this step succeeded; go on to the next one (data merged)
    AGAIN = "again"          # the same step again after ``retry_after`` (polling a container)
    DONE = "done"            # the job is done; remote_id/permalink set
    RETRY = "retry"          # transient failure; retry after ``retry_after`` or by backoff
    RATE_LIMITED = "rate_limited"  # wait until ``retry_after``; not a failure
    AUTH = "auth"            # the token was refused: refresh once, else park until sign-in
    PAUSED = "paused"        # the platform blocked the account (spam block); park the target
    FAILED = "failed"        # permanent platform failure: no retry
    REJECTED = "rejected"    # the input itself cannot be posted
    DUPLICATE = "duplicate"  # the platform says this exact post exists already
    UNKNOWN = "unknown"      # the request may or may not have been applied (ambiguous answer)


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    data: Mapping[str, Any] = field(default_factory=dict)
    remote_id: str | None = None
    permalink: str | None = None
    reason: str | None = None
    retry_after: float | None = None  # seconds from now
    # AGAIN only: go back to this earlier step instead (Instagram: a container that expired while the
    # job waited for a quota or a pause is made again before publishing).
    back_to: str | None = None

    @classmethod
    def next(cls, **data: Any) -> Outcome:
        return cls(Kind.NEXT, data=data)


@runtime_checkable
class HttpStep(Protocol):
    name: str
    safe_to_repeat: bool

    def build(self, ctx: JobContext) -> httpx.Request: ...

    def parse(self, ctx: JobContext, response: httpx.Response) -> Outcome: ...


@runtime_checkable
class LocalStep(Protocol):
    name: str
    safe_to_repeat: bool

    def run(self, ctx: JobContext) -> Outcome: ...


Step = HttpStep | LocalStep


class Target(Protocol):
    """A configured destination. ``steps`` is fixed per target; the journal records the index."""

    name: str
    kind: str

    def steps(self) -> Sequence[Step]: ...


def post_images(ctx: JobContext) -> list[Mapping[str, Any]]:
    """The images of a several-image post (``ctx.data["images"]``: path, format, alt_text; jobs.py
    puts them there for a bridged carousel, as many as the platform's ``max_images``); [] for one."""
    images = ctx.data.get("images")
    if not isinstance(images, list) or len(images) < 2:
        return []
    return [image for image in images if isinstance(image, Mapping)]


@dataclass(frozen=True)
class PostImage:
    """One image a post sends: the prepared file, its format and its alt text."""

    path: Path
    format: str
    alt_text: str | None


def every_image(ctx: JobContext) -> list[PostImage]:
    """Every image of the post, in order: ``ctx.data["images"]`` for several, else the prepared one."""
    several = post_images(ctx)
    if several:
        return [PostImage(Path(str(image.get("path"))), str(image.get("format") or "JPEG"),
                          str(image["alt_text"]) if image.get("alt_text") else None) for image in several]
    if ctx.image is None:
        return []
    return [PostImage(Path(ctx.image.path), ctx.image.format, ctx.caption.alt_text)]


def step_applies(step: Step, ctx: JobContext) -> bool:
    """Whether the runner should perform ``step`` for this job.

    A step may define ``applies(ctx) -> bool``; when it returns False the runner moves on to the next
    step as if this one returned ``Outcome.next()`` (X's alt-text step when a photo has no alt text).
    """
    applies = getattr(step, "applies", None)
    return True if applies is None else bool(applies(ctx))


# ---------------------------------------------------------------------------------------------------
# Reconciliation: after a crash or a lost answer, ask the platform whether an unsafe step took effect.


class Verdict(enum.StrEnum):
    POSTED = "posted"        # it went out: remote_id/permalink (or data for the steps that follow)
    ABSENT = "absent"        # certainly not there: the step may be sent again
    UNKNOWN = "unknown"      # the platform cannot tell now; ask again later, or leave it to a person
    ASK_AGAIN = "ask_again"  # this answer leads to another question: merge data, build again


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    remote_id: str | None = None
    permalink: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    # UNKNOWN only: asking again cannot help (the platform refused the question itself, a 400), so
    # the job is left to a person at once, with the platform's words, instead of asked for minutes.
    final: bool = False


# In the context a reconciler is asked with after the platform refused the unsafe step as a duplicate
# of a post it already has (the platform's words): look that post up instead of our own attempt's.
DUPLICATE_REFUSED = "duplicate_refused"


@runtime_checkable
class Reconciler(Protocol):
    """A target's way to find out whether its unsafe step ``step`` took effect (sans-I/O).

    ``build`` returns None when the platform cannot be asked at all (then the job stays in doubt for
    a person to resolve); ``intent_at`` is when the step was about to be sent.
    """

    def build(self, ctx: JobContext, step: str, intent_at: float) -> httpx.Request | None: ...

    def parse(self, ctx: JobContext, step: str, response: httpx.Response) -> Finding: ...


# ---------------------------------------------------------------------------------------------------
# Quotas: a platform-wide cap on one step that the platform lets a client read (Instagram's
# content_publishing_limit on media_publish). The runner asks before that step and holds the target
# instead of spending a request on a certain refusal.


@dataclass(frozen=True)
class Quota:
    used: int
    total: int | None        # None: the platform did not say
    duration: float | None   # the rolling window in seconds, when the platform says

    @property
    def remaining(self) -> int | None:
        return None if self.total is None else max(0, self.total - self.used)


@runtime_checkable
class QuotaCheck(Protocol):
    """Sans-I/O: ``build`` the question, ``parse`` the answer (None when it says nothing usable)."""

    step: str  # the name of the step the quota counts
    # (optional) ``label``: what the platform calls the quota, for doctor ("publishing quota").

    def build(self, ctx: JobContext) -> httpx.Request: ...

    def parse(self, response: httpx.Response) -> Quota | None: ...


def account_context(target: str, access_token: str | None, account_id: str | None) -> JobContext:
    """A context for a question about the account rather than a job (``doctor`` reading a quota)."""
    return JobContext(job_id=0, target=target, photo_hash="", photo_path=Path(), image=None,
                      caption=Caption(text="", length=0, limit=0, alt_text=None, hashtags=(), shortened=()),
                      access_token=access_token, account_id=account_id)


# ---------------------------------------------------------------------------------------------------
# Links: is a post crosswatch made still there? (`crosswatch links check`)

LinkState = Literal["ok", "broken", "unknown"]


@runtime_checkable
class LinkCheck(Protocol):
    """A platform's ``steps.LINK_CHECK`` (sans-I/O): ``build`` reads one post back by its platform id,
    ``parse`` says whether it is there: ``ok``, ``broken`` (the platform says it is gone) or
    ``unknown`` (it could not tell), with a few words in the platform's own terms. Never raises."""

    def build(self, cfg: TargetConfig, remote_id: str, token: str | None) -> httpx.Request: ...

    def parse(self, response: httpx.Response) -> tuple[LinkState, str]: ...


# ---------------------------------------------------------------------------------------------------
# Metrics: how a post did (`crosswatch report`, analytics.py). Each platform's ``metrics.METRICS``.

# ok: the platform's numbers; empty: it answered with no data (Instagram's insights lag up to 48 h);
# not_enough_viewers: Instagram's code 10 for low-reach media; deleted: the post is gone (never read
# again).
ReadingStatus = Literal["ok", "empty", "not_enough_viewers", "deleted"]


@dataclass(frozen=True)
class Reading:
    """One post's metrics at one moment, in the platform's own names (``like_count``, ``reach``)."""

    status: ReadingStatus
    metrics: Mapping[str, int] = field(default_factory=dict)
    # When the platform says the post was made (X created_at): the hour and weekday the report uses.
    posted_at: float | None = None
    detail: str | None = None


@dataclass(frozen=True)
class MetricsAnswer:
    """What one metrics request said: readings by remote id (a post not named was not answered for, and
    is asked again next time), or why nothing could be read (``retry_after``: rate limited, seconds)."""

    readings: Mapping[str, Reading] = field(default_factory=dict)
    # ok: readings hold the answer; rate_limited: wait ``retry_after`` s; auth: the token was refused;
    # scope: the token may not read metrics (sign in again with analytics on); failed: try next time.
    kind: Literal["ok", "rate_limited", "auth", "scope", "failed"] = "ok"
    retry_after: float | None = None
    problem: str | None = None


@runtime_checkable
class MetricsRead(Protocol):
    """A platform's metrics read (sans-I/O). ``batch``: posts one request may ask about; ``scope``: the
    OAuth scope it needs beyond posting (asked for at sign-in only when analytics is on), or None."""

    batch: int
    scope: str | None
    # The metrics that count as interactions (summed), and those that measure the audience (the first
    # one present is the engagement rate's denominator; none: the platform shows no reach or views).
    interactions: tuple[str, ...]
    audience: tuple[str, ...]

    def build(self, cfg: TargetConfig, remote_ids: Sequence[str], token: str | None, *,
              recent: bool, api_base: str | None = None) -> httpx.Request:
        """``recent``: every post is young enough for the platform's private metrics (X: 30 days)."""

    def parse(self, remote_ids: Sequence[str], response: httpx.Response, now: float) -> MetricsAnswer: ...
