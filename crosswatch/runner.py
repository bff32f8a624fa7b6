"""The runner: the only place that performs steps and sends platform requests.

For each due job it builds the job's context, then walks the target's steps from where the journal
says the job stands. Before a step that is not safe to repeat it commits the intent; after every
answer it commits the outcome. What an outcome means for the job (next step, done, retry later, wait
for a rate limit, park until sign-in, fail) is decided here, in ``_apply``.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import httpx
import structlog

from crosswatch import platform_info, pricing, tokenhealth, uploadcheck
from crosswatch.config import Config
from crosswatch.crashpoints import crashpoint, step_points
from crosswatch.errors import AuthError, BadPhoto, CrosswatchError, JournalError
from crosswatch.jobs import JobContexts, NotYet
from crosswatch.journal import BUDGET_HOLD, JobRow, Journal
from crosswatch.models import JobState
from crosswatch.platforms.base import (
    DUPLICATE_REFUSED,
    Finding,
    HttpStep,
    JobContext,
    Kind,
    LocalStep,
    Outcome,
    Quota,
    QuotaCheck,
    Reconciler,
    Step,
    Target,
    Verdict,
    post_images,
    step_applies,
)
from crosswatch.schedule import Planner
from crosswatch.secrets import SecretStore

log = structlog.get_logger("crosswatch.runner")

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0
# A target without a usable token is looked at again this often (a sign-in needs no restart).
AUTH_PARK_SECONDS = 60.0
SPAM_BLOCK_PAUSE_SECONDS = 24 * 3600.0
# A job that failed on this machine (no room to prepare its image) is tried again this soon.
LOCAL_FAILURE_RETRY_SECONDS = 10.0
# An in-doubt job is checked against the platform this many times (with backoff) before it is left
# to a person (`crosswatch resolve`).
MAX_RECONCILE_ATTEMPTS = 6
RECONCILE_FIRST_DELAY_SECONDS = 2.0
# "Never by itself": a job left for a person is not picked up again until resolved.
NEVER = 253402300799.0  # 9999-12-31
# A platform quota read (Instagram's content_publishing_limit) is trusted this long, counting our own
# uses meanwhile, so it is not asked before every job; a used-up quota is always asked again.
QUOTA_CACHE_SECONDS = 600.0
# When the quota is used up by posts crosswatch did not make, look again after this long.
QUOTA_RECHECK_SECONDS = 3600.0
# A job not started because jobs on their way hold the quota's last room looks again after this long.
QUOTA_RESERVED_WAIT_SECONDS = 600.0
# What an album job keeps from one post of its thread to the next (everything else in its data is
# what the post's own steps returned: uploads, containers, ids).
ALBUM_KEEPS = frozenset({"album", "album_part", "album_parts", "album_thread", "reply_to", "edit", "post_now",
                         "link", "username", "reconcile_checks"})
# How often the runner looks whether a target's server limits (platform_info) are due to be read again.
PLATFORM_INFO_LOOK_SECONDS = 60.0
# How often the runner notes which tokens lapse soon with nothing to renew them (for `status`).
TOKEN_HEALTH_LOOK_SECONDS = 3600.0


@dataclasses.dataclass
class _QuotaReading:
    quota: Quota
    asked_at: float
    spent: int = 0  # uses of the step by this runner since the reading

    @property
    def left(self) -> int | None:
        remaining = self.quota.remaining
        return None if remaining is None else remaining - self.spent


class TokenSource(Protocol):
    def access_token(self) -> str: ...

    def force_refresh(self) -> str: ...

    def account_id(self) -> str | None: ...

    def username(self) -> str | None: ...


def alt_text_flags(ctx: JobContext) -> list[bool]:
    """Per image of the post, whether it has an alt text (one metadata call each)."""
    images = post_images(ctx)
    if images:
        return [isinstance(image.get("alt_text"), str) and bool(str(image.get("alt_text")).strip())
                for image in images]
    return [bool(ctx.caption.alt_text and ctx.caption.alt_text.strip())]


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: uniform in [ceiling/2, ceiling] (AWS's "equal jitter"), the
    ceiling doubling from BACKOFF_BASE_SECONDS up to BACKOFF_CAP_SECONDS.

    Kept here rather than taken from a retry library (tenacity's wait functions): the runner does not
    loop in-process, it stores the next attempt time in the journal so a restart keeps the schedule,
    and it draws from its own seedable ``rng`` so tests are repeatable.
    """
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)


class Runner:
    def __init__(self, config: Config, journal: Journal, targets: Mapping[str, Target], *,
                 client: httpx.Client | None = None, tokens: Mapping[str, TokenSource] | None = None,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 contexts: JobContexts | None = None) -> None:
        self.config = config
        self.journal = journal
        self.targets = targets
        self.client = client
        self.tokens = tokens or {}
        self.clock = clock
        self.rng = rng or random.Random()
        self.contexts = contexts or JobContexts(config, journal)
        self.planner = Planner(config)
        self._stopping: Callable[[], bool] = lambda: False
        self._quotas: dict[str, _QuotaReading] = {}
        self._info_looked_at = float("-inf")
        # Every refreshable token renewed in time, posting or not (tokenhealth.py).
        self.refresh_tokens = tokenhealth.RefreshTick(self.tokens, self.clock)
        self._health_looked_at = float("-inf")

    def stop_when(self, stopping: Callable[[], bool]) -> None:
        """Between steps the runner asks this; when true it leaves the job where it stands."""
        self._stopping = stopping

    # -- entry points ------------------------------------------------------------------------------

    def recover(self) -> None:
        """At start-up: settle jobs a crash left in flight (see Journal.recover_in_flight)."""
        for row, state in self.journal.recover_in_flight():
            log.warning("job recovered after a stop", job=row.job.id, target=row.job.target, state=state.value)
        # A start is a natural moment to look at the sign-in again: the user may have fixed what a
        # sign-in hold waits for (signed in, unlocked the keyring) and restarted to say so.
        for name, hold in self.journal.holds(self.clock()).items():
            if hold.kind == "auth":
                self.journal.clear_hold(name, kind="auth")
            elif hold.kind == BUDGET_HOLD:
                # The budget or the prices may have changed with the config: the next job looks again.
                self.journal.clear_hold(name, kind=BUDGET_HOLD)

    def run_due(self, limit: int = 50) -> int:
        """Check due in-doubt jobs, then perform every job due now (up to ``limit``); returns how many
        jobs were attempted."""
        self.refresh_platform_info()
        self.refresh_tokens()
        self.record_token_health()
        now = self.clock()
        attempted = 0
        for row in self.journal.due_jobs(now, limit, state=JobState.IN_DOUBT):
            if self._stopping():
                return attempted
            self.reconcile(row)
            attempted += 1
        held = set(self.journal.holds(now))
        for row in self.journal.due_jobs(now, limit):
            target = row.job.target
            if self._stopping():
                break
            if target in held:
                continue  # a job before this one set a hold on its target
            if target not in self.targets:
                self._park(row, AUTH_PARK_SECONDS * 10,
                           f"target {target} is not configured or not enabled; add it back to run this job")
                continue
            if self._pace(target, now):
                held.add(target)
                continue
            if self._scheduled_later(row, now):
                continue
            self.run_job(row)
            attempted += 1
            if self.journal.holds(self.clock()).get(target):
                held.add(target)
        return attempted

    def refresh_platform_info(self) -> None:
        """Read the targets' servers' own limits (Mastodon's instance) where the reading is missing or
        a day old; looked at once a minute at most (platform_info.py)."""
        now = self.clock()
        if self.client is None or now - self._info_looked_at < PLATFORM_INFO_LOOK_SECONDS:
            return
        self._info_looked_at = now
        platform_info.refresh_due(self.config, self.journal, self.client, now)

    def record_token_health(self) -> None:
        """Hourly: keep the tokens about to lapse in the journal, for `status` (tokenhealth.py)."""
        now = self.clock()
        if not self.tokens or now - self._health_looked_at < TOKEN_HEALTH_LOOK_SECONDS:
            return
        self._health_looked_at = now
        try:
            tokenhealth.record_warnings(self.journal, self.config, SecretStore(), now)
        except CrosswatchError as exc:  # the keyring locked: the next look tries again
            log.warning("cannot read the tokens' expiry", error=str(exc))

    def _pace(self, target: str, now: float) -> bool:
        """Hold the target when its own max_per_hour / max_per_day is reached; True if held."""
        config = self.config.targets.get(target)
        if config is None:
            return False
        for cap, window, key in ((config.max_per_hour, 3600.0, "max_per_hour"),
                                 (config.max_per_day, 86400.0, "max_per_day")):
            if cap <= 0:
                continue
            done = self.journal.done_since(target, now - window)
            if len(done) >= cap:
                until = done[len(done) - cap] + window
                self._hold(target, until, "pacing", f"targets.{target}.{key} ({cap}) reached")
                return True
        return False

    def _scheduled_later(self, row: JobRow, now: float) -> bool:
        """Move the job to its planned time when the schedule (windows, gap, daily max, stagger) says
        it may not go out now; True if moved."""
        if row.job.data.get("post_now"):
            return False  # "post now" (console, once): outside the schedule; pacing and holds still apply
        if self.journal.has_started(row.job.id):
            # Posting has begun (media uploaded, a container made): finish it rather than wait for the
            # next window, by when uploaded media and containers may have expired.
            return False
        target = row.job.target
        planned, why = self.planner.earliest(target, now, self.journal.done_since(target, now - 2 * 86400.0),
                                             self.journal.sibling_starts(row.job.id))
        if planned <= now:
            return False
        self.journal.transition(row.job.id, JobState.READY, next_attempt_at=planned, reason=f"scheduled: {why}")
        return True

    def _hold(self, target: str, until: float, kind: str, reason: str) -> None:
        self.journal.set_hold(target, until, kind, reason)
        log.warning("target held", target=target, kind=kind, seconds=round(until - self.clock()), reason=reason)

    # -- one job -----------------------------------------------------------------------------------

    def run_job(self, row: JobRow) -> None:
        job = row.job
        target = self.targets[job.target]
        try:
            token, account, username = self._credentials(job.target)
            api_base = self._api_base(job.target)
        except CrosswatchError as exc:
            # No usable token (not signed in, revoked, keyring locked, platform unreachable for the
            # refresh): the target's jobs wait; nothing fails.
            self._hold(job.target, self.clock() + AUTH_PARK_SECONDS, "auth", str(exc))
            return
        try:
            ctx = self.contexts.build(job, access_token=token, account_id=account, username=username)
            ctx = dataclasses.replace(ctx, api_base=api_base)
        except BadPhoto as exc:
            self.journal.transition(job.id, JobState.REJECTED, reason=str(exc))
            log.warning("photo rejected", job=job.id, target=job.target, reason=str(exc))
            return
        except OSError as exc:
            # The prepared image could not be written (state_dir's disk is full): not the photo's
            # fault, and nothing was sent. The job waits and is tried again.
            reason = (f"cannot prepare the image in {self.config.state_dir}: {exc.strerror or exc}; "
                      "free some space there")
            log.error("cannot prepare the image; will try again", job=job.id, target=job.target, reason=reason)
            self._park(row, LOCAL_FAILURE_RETRY_SECONDS, reason)
            return
        except NotYet as wait:
            # Waiting for another job (cross-promotion): not an attempt, nothing sent.
            self._park(row, wait.retry_after, wait.reason)
            return
        steps = target.steps()
        index = min(row.step_index, len(steps) - 1)
        if self._over_budget(job.target, ctx, [step.name for step in steps[index:]]):
            return  # not started: the job waits, ready, behind the target's budget hold
        self.journal.transition(job.id, JobState.IN_FLIGHT, expect=JobState.READY, step=steps[index].name,
                                step_index=index, attempts_delta=1, detail="started")
        refreshed = False
        while index < len(steps):
            if self._stopping():
                # Safe to leave: nothing of this step was sent; recovery puts the job back to ready.
                self.journal.transition(job.id, JobState.READY, step_index=index, detail="stopping")
                return
            step = steps[index]
            waiting_until = self._quota_exhausted(job.target, target, steps, index, ctx)
            if waiting_until is not None:
                # Not sent, not failed: the job waits at this step for the quota to come back.
                self.journal.transition(job.id, JobState.READY, step_index=index, step=step.name,
                                        next_attempt_at=waiting_until, attempts_delta=-1, intent=False,
                                        reason="waiting for the platform's publishing quota")
                return
            crashpoint(*step_points("before", job.target, step.name))
            if not step.safe_to_repeat:
                self.journal.transition(job.id, JobState.IN_FLIGHT, step=step.name, intent=True,
                                        detail="intent")
                crashpoint(*step_points("intent", job.target, step.name))
            applies = step_applies(step, ctx)
            outcome = self._perform(step, ctx)
            crashpoint(*step_points("after", job.target, step.name))
            if applies:
                self._charge(ctx, step.name, outcome)
            self._count_quota(job.target, target, step, outcome)
            if outcome.kind is Kind.AUTH and not refreshed and job.target in self.tokens:
                refreshed = True
                try:
                    ctx = dataclasses.replace(ctx, access_token=self.tokens[job.target].force_refresh())
                    continue
                except AuthError as exc:
                    outcome = Outcome(Kind.AUTH, reason=str(exc))
            if outcome.kind is Kind.NEXT:
                index += 1
                kept = self._job_data(job.target, outcome.data)
                ctx = dataclasses.replace(ctx, data={**ctx.data, **kept})
                if index < len(steps):
                    self.journal.transition(job.id, JobState.IN_FLIGHT, step=steps[index].name,
                                            step_index=index, data=kept, intent=False)
                    crashpoint(*step_points("recorded", job.target, step.name))
                    continue
                outcome = Outcome(Kind.DONE, data=kept)
            if outcome.kind is Kind.DUPLICATE:
                outcome = self._settle_duplicate(target, ctx, step, outcome)
            if outcome.kind is Kind.DONE:
                outcome = self._album_thread(job.id, job.target, ctx.data, outcome)
                if outcome.kind is Kind.AGAIN:
                    crashpoint(f"recorded:{step.name}")
                    return
            self._apply(job.id, job.target, index, outcome, attempts=job.attempts + 1)
            crashpoint(*step_points("recorded", job.target, step.name))
            return

    # -- what the platform charges (pricing.py) ----------------------------------------------------

    def _prices(self, name: str) -> dict[str, float] | None:
        config = self.config.targets.get(name)
        return None if config is None else pricing.prices_for(config.kind, config.prices)

    def _over_budget(self, name: str, ctx: JobContext, steps: Sequence[str]) -> bool:
        """Hold the target until the month turns (in the schedule's time zone) when this job's billed
        calls would take the month's spend past ``monthly_budget_usd``; True if held."""
        config = self.config.targets.get(name)
        prices = self._prices(name)
        if config is None or prices is None or config.monthly_budget_usd is None:
            return False
        cost = pricing.job_cost(prices, ctx.caption.text, alt_text_flags(ctx), steps=steps)
        now = self.clock()
        start, end = pricing.month_bounds(now, self.planner.zone)
        spent = self.journal.spend(name, start, end).usd
        budget = config.monthly_budget_usd
        if not pricing.over_budget(spent, cost.usd, budget):
            return False
        why = (f"monthly budget: {pricing.usd_text(spent)} of {pricing.usd_text(budget)} spent in "
               f"{pricing.month_name(now, self.planner.zone)}, the next post costs {cost.describe()}")
        if cost.usd > budget:
            why += ", more than the whole budget"
        self._hold(name, end, BUDGET_HOLD, f"{why}; targets.{name}.monthly_budget_usd")
        return True

    def _charge(self, ctx: JobContext, step: str, outcome: Outcome, at: float | None = None) -> None:
        """Record a billed call that went through (X: an upload, an alt text, the post), made now or
        ``at``."""
        prices = self._prices(ctx.target)
        item = pricing.BILLED_STEPS.get(step)
        if prices is None or item is None or outcome.kind not in (Kind.NEXT, Kind.AGAIN, Kind.DONE):
            return
        if item == "post":
            item = pricing.post_item(ctx.caption.text)
        self.journal.record_charge(ctx.target, item, prices[item], job_id=ctx.job_id, at=at)

    def _charge_reads(self, ctx: JobContext, response: httpx.Response, purpose: str) -> None:
        """Record the resources a read returned (X bills each, once per UTC day)."""
        prices = self._prices(ctx.target)
        resources = pricing.billed_in(response.content) if prices is not None and response.is_success else []
        if prices is not None and resources:
            self.journal.record_reads(ctx.target, resources, prices["read"], job_id=ctx.job_id, purpose=purpose)

    # -- platform quotas ---------------------------------------------------------------------------

    def _quota_exhausted(self, name: str, target: Target, steps: Sequence[Step], index: int,
                         ctx: JobContext) -> float | None:
        """Before a job starts, and before its quota-counted step: None when it may go on; else until
        when it waits. A quota that cannot be read lets the job go (the platform still refuses).

        A job is only started when the quota has room beyond the jobs already on their way to the
        counted step (Instagram: containers made and not yet published), so a backlog does not make
        hundreds of containers that would expire while waiting for their turn.
        """
        check = getattr(target, "quota_check", None)
        counted = [i for i, step in enumerate(steps) if isinstance(check, QuotaCheck) and step.name == check.step]
        if not isinstance(check, QuotaCheck) or not counted or index not in (0, counted[0]):
            return None
        now = self.clock()
        reading = self._quotas.get(name)
        if reading is None or now - reading.asked_at >= QUOTA_CACHE_SECONDS or (reading.left or 0) <= 0:
            reading = self._read_quota(name, check, ctx, now)
        left = reading.left if reading is not None else None
        if reading is None or left is None:
            return None
        if left > 0 and index == counted[0]:
            return None
        if left > 0:
            on_the_way = self.journal.count_started(name, [step.name for step in steps[1:counted[0] + 1]])
            if on_the_way < left:
                return None
            # Room is spoken for; look again once those jobs have had time to use it.
            return now + QUOTA_RESERVED_WAIT_SECONDS
        until = self._quota_back_at(name, reading.quota, now)
        window = reading.quota.duration or 86400.0
        self._hold(name, until, "quota", f"the platform's publishing limit ({reading.quota.total} per "
                                         f"{window / 3600:g} h) is used up")
        return until

    def _read_quota(self, name: str, check: QuotaCheck, ctx: JobContext, now: float) -> _QuotaReading | None:
        self._quotas.pop(name, None)
        if self.client is None:
            return None
        request = check.build(ctx)
        try:
            response = self.client.send(request)
            response.read()
        except httpx.TransportError as exc:
            log.warning("could not read the publishing quota", target=name, error=type(exc).__name__)
            return None
        quota = check.parse(response)
        if quota is None:
            log.warning("the publishing quota answer was not usable", target=name, status=response.status_code)
            return None
        reading = _QuotaReading(quota, now)
        self._quotas[name] = reading
        return reading

    def _quota_back_at(self, name: str, quota: Quota, now: float) -> float:
        """When a use falls out of the rolling window: from our own posts when they fill it (each
        counted from when its job became done, a little after the platform counted it, so never
        early); otherwise others used the quota, and it is read again later."""
        window = quota.duration or 86400.0
        done = self.journal.done_since(name, now - window)
        if quota.total and len(done) >= quota.total:
            return max(now + 1.0, done[len(done) - quota.total] + window)
        return now + min(QUOTA_RECHECK_SECONDS, window)

    def _count_quota(self, name: str, target: Target, step: Step, outcome: Outcome) -> None:
        check = getattr(target, "quota_check", None)
        if not isinstance(check, QuotaCheck) or check.step != step.name:
            return
        reading = self._quotas.get(name)
        if outcome.kind in (Kind.NEXT, Kind.DONE, Kind.UNKNOWN) and reading is not None:
            reading.spent += 1  # an unknown outcome may have used it: count it, to be safe
        elif outcome.kind is Kind.RATE_LIMITED:
            self._quotas.pop(name, None)  # the platform disagrees with our count: read it again

    def _credentials(self, target: str) -> tuple[str | None, str | None, str | None]:
        source = self.tokens.get(target)
        if source is None:
            return None, None, None
        return source.access_token(), source.account_id(), source.username()

    def _api_base(self, target: str) -> str | None:
        """Where the account's API lives, when its token source knows (Bluesky: the PDS from the DID
        document, found at sign-in); None for platforms whose endpoints are all in the config."""
        api_base = getattr(self.tokens.get(target), "api_base", None)
        return api_base() if callable(api_base) else None

    def _perform(self, step: Step, ctx: JobContext) -> Outcome:
        if not step_applies(step, ctx):
            return Outcome.next()
        if uploadcheck.sends_media(step):
            # The image is read again right before its bytes leave: anything private blocks it.
            blocked = uploadcheck.check_before_sending(self.journal, ctx, step.name)
            if blocked is not None:
                log.error("upload blocked by the privacy check", job=ctx.job_id, target=ctx.target,
                          file=blocked.file, traces=list(blocked.traces))
                return Outcome(Kind.FAILED, reason=blocked.reason(ctx.job_id))
        if isinstance(step, HttpStep):
            return self._send(step, ctx)
        assert isinstance(step, LocalStep)
        try:
            return step.run(ctx)
        except CrosswatchError as exc:
            return Outcome(Kind.RETRY, reason=str(exc))

    def _send(self, step: HttpStep, ctx: JobContext) -> Outcome:
        if self.client is None:
            return Outcome(Kind.FAILED, reason="no HTTP client configured for a platform target")
        request = step.build(ctx)
        try:
            response = self.client.send(request)
            response.read()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never reached the platform: always safe to try again.
            return Outcome(Kind.RETRY, reason=f"cannot reach {request.url.host}: {type(exc).__name__}")
        except httpx.TransportError as exc:
            # Sent, but the answer was lost: a safe step is simply repeated; an unsafe one may have
            # been applied, so the platform must be asked before anything else happens.
            kind = Kind.RETRY if step.safe_to_repeat else Kind.UNKNOWN
            return Outcome(kind, reason=f"no answer from {request.url.host} to {step.name}: {type(exc).__name__}")
        return step.parse(ctx, response)

    # -- what an outcome does to the job -----------------------------------------------------------

    def _apply(self, job_id: int, target: str, index: int, outcome: Outcome, *, attempts: int) -> None:
        now = self.clock()
        data = self._job_data(target, outcome.data)
        kind = outcome.kind
        if kind is Kind.DONE:
            row = self.journal.transition(job_id, JobState.DONE, remote_id=outcome.remote_id,
                                          permalink=outcome.permalink, data=data, intent=False)
            self._discard(row)
            log.info("posted", job=job_id, target=target, remote_id=outcome.remote_id, permalink=outcome.permalink)
        elif kind is Kind.AGAIN:
            names = [step.name for step in self.targets[target].steps()] if target in self.targets else []
            back = names.index(outcome.back_to) if outcome.back_to in names else None
            if back is not None:
                index = back
            self.journal.transition(job_id, JobState.READY, step_index=index, data=data, intent=False,
                                    step=names[back] if back is not None else None,
                                    next_attempt_at=now + (outcome.retry_after or 5.0), attempts_delta=-1,
                                    reason=outcome.reason)
        elif kind is Kind.RETRY:
            if attempts >= MAX_ATTEMPTS:
                self.journal.transition(job_id, JobState.FAILED, data=data, intent=False,
                                        reason=f"gave up after {attempts} attempts: {outcome.reason}")
                log.error("job failed", job=job_id, target=target, reason=outcome.reason)
                return
            delay = outcome.retry_after or backoff_delay(attempts, self.rng)
            self.journal.transition(job_id, JobState.READY, step_index=index, data=data, intent=False,
                                    next_attempt_at=now + delay, reason=f"will retry: {outcome.reason}")
            log.warning("will retry", job=job_id, target=target, in_seconds=round(delay, 1), reason=outcome.reason)
        elif kind in (Kind.RATE_LIMITED, Kind.AUTH, Kind.PAUSED):
            wait = {Kind.RATE_LIMITED: 60.0, Kind.AUTH: AUTH_PARK_SECONDS,
                    Kind.PAUSED: SPAM_BLOCK_PAUSE_SECONDS}[kind]
            delay = outcome.retry_after if outcome.retry_after is not None else wait
            # Waiting is not failing: the attempt is not counted, and the whole target waits. For a
            # sign-in the hold alone keeps the job, so a new sign-in (which lifts it) releases it.
            job_wait = 0.0 if kind is Kind.AUTH else delay
            self.journal.transition(job_id, JobState.READY, step_index=index, data=data, intent=False,
                                    next_attempt_at=now + job_wait, attempts_delta=-1, reason=outcome.reason)
            self._hold(target, now + delay, kind.value, outcome.reason or kind.value)
        elif kind is Kind.UNKNOWN:
            self.journal.transition(job_id, JobState.IN_DOUBT, data=data, reason=outcome.reason,
                                    next_attempt_at=now + RECONCILE_FIRST_DELAY_SECONDS)
            log.error("in doubt; will ask the platform", job=job_id, target=target, reason=outcome.reason)
        else:  # FAILED, REJECTED, DUPLICATE: retrying cannot help
            state = JobState.REJECTED if kind is Kind.REJECTED else JobState.FAILED
            row = self.journal.transition(job_id, state, data=data, intent=False, reason=outcome.reason)
            self._discard(row)
            log.error("job " + state.value, job=job_id, target=target, reason=outcome.reason)

    def _album_thread(self, job_id: int, target: str, data: Mapping[str, object], done: Outcome) -> Outcome:
        """An album's post is out. When the album has more posts for this target (``overflow:
        thread``), record this one in ``album_thread`` and start the next as a reply to it, from the
        first step, with what this post's steps kept cleared (their uploads and containers were this
        post's); returns AGAIN then. The last post ends the job with the first post's id and link."""
        part, parts = data.get("album_part"), data.get("album_parts")
        if not isinstance(part, int) or not isinstance(parts, int):
            return done
        earlier = data.get("album_thread")
        thread = [*(t for t in (earlier if isinstance(earlier, list) else ()) if isinstance(t, Mapping)),
                  {"remote_id": done.remote_id, "permalink": done.permalink, "data": dict(done.data)}]
        if part + 1 >= parts:
            first = thread[0]
            return dataclasses.replace(done, data={**done.data, "album_thread": thread},
                                       remote_id=str(first["remote_id"]) if first["remote_id"] else done.remote_id,
                                       permalink=str(first["permalink"]) if first["permalink"] else done.permalink)
        kept = self._job_data(target, done.data)
        cleared = {key: None for key in {*data, *kept} if key not in ALBUM_KEEPS}
        reply_to = {"remote_id": done.remote_id, "permalink": done.permalink, "data": kept,
                    "root_remote_id": thread[0]["remote_id"], "root_data": thread[0]["data"]}
        first = thread[0]
        self.journal.transition(
            job_id, JobState.READY, step_index=0, step="", intent=False, attempts_delta=-1,
            data={**cleared, "album_part": part + 1, "album_thread": thread, "reply_to": reply_to},
            remote_id=str(first["remote_id"]) if first["remote_id"] else None,
            permalink=str(first["permalink"]) if first["permalink"] else None,
            next_attempt_at=self.clock(), reason=f"post {part + 1} of {parts} of the album is out; next: a reply",
            detail=f"album post {part + 1} of {parts} done")
        log.info("album post out; the next goes as a reply", job=job_id, part=part + 1, parts=parts,
                 remote_id=done.remote_id)
        return Outcome(Kind.AGAIN)

    def _job_data(self, target: str, data: Mapping[str, object]) -> dict[str, object]:
        """Outcome data worth keeping with the job; rate-limit windows go to the target instead.

        Convention: ``data["rate_limit"]`` maps a window name to ``{limit, remaining, reset}`` (reset
        in epoch seconds). A window with nothing remaining holds the target until its reset, so the
        next request is not spent on a certain 429.
        """
        kept = dict(data)
        windows = kept.pop("rate_limit", None)
        if isinstance(windows, Mapping):
            resets = [w.get("reset") for w in windows.values()
                      if isinstance(w, Mapping) and w.get("remaining") == 0 and isinstance(w.get("reset"), int)]
            if resets:
                until = float(max(r for r in resets if isinstance(r, int))) + 1.0
                if until > self.clock():
                    self._hold(target, until, "rate_limited", "the platform's rate limit is used up until its reset")
        return kept

    def _park(self, row: JobRow, seconds: float, reason: str) -> None:
        self.journal.transition(row.job.id, JobState.READY, next_attempt_at=self.clock() + seconds,
                                reason=reason)

    def _discard(self, row: JobRow) -> None:
        """The job is finished: drop its prepared image, and anything the target left public."""
        try:
            self.contexts.discard(row.job)
        except (OSError, JournalError) as exc:
            log.warning("could not remove a prepared image", job=row.job.id, error=str(exc))
        discard = getattr(self.targets.get(row.job.target), "discard", None)
        if row.job.state is not JobState.DONE and callable(discard):
            problem = discard(row.job.data)
            if problem:
                log.warning("could not clean up after the job", job=row.job.id, error=str(problem))

    # -- in doubt: ask the platform ----------------------------------------------------------------

    def reconcile(self, row: JobRow) -> Verdict:
        """Find out whether an in-doubt job's unsafe step took effect, and move the job accordingly:
        posted -> done (or on to the safe steps after it); absent -> ready to send again; the platform
        cannot tell -> ask again later, and after MAX_RECONCILE_ATTEMPTS leave it to a person."""
        job = row.job
        target = self.targets.get(job.target)
        reconciler = getattr(target, "reconciler", None)
        if target is None or not isinstance(reconciler, Reconciler):
            return self._undecided(row, f"{job.target} cannot be asked whether '{job.step}' went out", final=True)
        try:
            token, account, username = self._credentials(job.target)
            ctx = self.contexts.build(job, access_token=token, account_id=account, username=username,
                                      need_image=False)
            ctx = dataclasses.replace(ctx, api_base=self._api_base(job.target))
        except BadPhoto as exc:
            return self._undecided(row, str(exc), final=True)
        except CrosswatchError as exc:
            self._hold(job.target, self.clock() + AUTH_PARK_SECONDS, "auth", str(exc))
            return Verdict.UNKNOWN
        finding = self._ask(reconciler, ctx, job.step or "", row.intent_at or job.updated_at)
        steps = target.steps()
        if finding.verdict is Verdict.POSTED:
            # The post was made, and billed, when it was sent.
            self._charge(ctx, job.step or "", Outcome(Kind.DONE), at=row.intent_at or job.updated_at)
            data = {**self._job_data(job.target, finding.data), "reconciled": "posted"}
            following = row.step_index + 1
            if following >= len(steps):
                # ctx.data, not job.data: only the context says which post of an album's thread this
                # is (the first post's job has no album_part yet), so a found first post goes on to
                # its replies instead of ending the job.
                found = self._album_thread(job.id, job.target, {**ctx.data, **data}, Outcome(
                    Kind.DONE, data=data, remote_id=finding.remote_id, permalink=finding.permalink))
                if found.kind is Kind.AGAIN:
                    return finding.verdict
                done = self.journal.transition(job.id, JobState.DONE, remote_id=found.remote_id,
                                               permalink=found.permalink, data=dict(found.data), intent=False,
                                               detail="found on the platform")
                self._discard(done)
            else:
                self.journal.transition(job.id, JobState.READY, step_index=following, data=data, intent=False,
                                        step=steps[following].name, remote_id=finding.remote_id,
                                        permalink=finding.permalink, next_attempt_at=self.clock(),
                                        detail="found on the platform")
            log.info("in-doubt job had gone out", job=job.id, target=job.target, remote_id=finding.remote_id)
        elif finding.verdict is Verdict.ABSENT:
            self.journal.transition(job.id, JobState.READY, intent=False, next_attempt_at=self.clock(),
                                    reason=None, detail=f"not on the platform: {finding.reason or 'absent'}")
            log.info("in-doubt job had not gone out; sending again", job=job.id, target=job.target)
        else:
            return self._undecided(row, finding.reason or "the platform could not tell", final=finding.final)
        return finding.verdict

    def _ask(self, reconciler: Reconciler, ctx: JobContext, step: str, intent_at: float) -> Finding:
        for _round in range(4):
            request = reconciler.build(ctx, step, intent_at)
            if request is None:
                return Finding(Verdict.UNKNOWN, reason="the platform offers no way to check")
            if self.client is None:
                return Finding(Verdict.UNKNOWN, reason="no HTTP client configured")
            try:
                response = self.client.send(request)
                response.read()
            except httpx.TransportError as exc:
                return Finding(Verdict.UNKNOWN, reason=f"cannot ask {request.url.host}: {type(exc).__name__}")
            self._charge_reads(ctx, response, "reconcile")
            finding = reconciler.parse(ctx, step, response)
            if finding.verdict is not Verdict.ASK_AGAIN:
                return finding
            ctx = dataclasses.replace(ctx, data={**ctx.data, **finding.data})
        return Finding(Verdict.UNKNOWN, reason="the platform's answers did not settle the question")

    def _settle_duplicate(self, target: Target, ctx: JobContext, step: Step, refused: Outcome) -> Outcome:
        """The platform refused the post as a duplicate of one it has: a finding, not a failure. The
        target's reconciler looks that post up (a journal that forgot it: reset, restored, started
        afresh); found, the job is done with its permalink; not found, it fails with the platform's
        words."""
        reconciler = getattr(target, "reconciler", None)
        if not isinstance(reconciler, Reconciler) or not getattr(reconciler, "finds_duplicates", False):
            return refused
        asking = dataclasses.replace(ctx, data={**ctx.data, DUPLICATE_REFUSED: refused.reason or "duplicate"})
        finding = self._ask(reconciler, asking, step.name, self.clock())
        if finding.verdict is Verdict.POSTED:
            log.info("refused as a duplicate; the post is there already", job=ctx.job_id, target=ctx.target,
                     remote_id=finding.remote_id)
            return Outcome(Kind.DONE, data={**finding.data, "reconciled": "duplicate"},
                           remote_id=finding.remote_id, permalink=finding.permalink)
        return Outcome(Kind.FAILED, data=refused.data,
                       reason=f"{refused.reason}; {finding.reason or 'the post could not be found'}")

    def _undecided(self, row: JobRow, reason: str, *, final: bool) -> Verdict:
        job = row.job
        checks = int(job.data.get("reconcile_checks", 0)) + 1
        if final or checks >= MAX_RECONCILE_ATTEMPTS:
            self.journal.transition(
                job.id, JobState.IN_DOUBT, next_attempt_at=NEVER, data={"reconcile_checks": checks},
                reason=(f"{reason}; check {job.target} by hand, then run `crosswatch resolve {job.id} --posted` "
                        f"or `crosswatch resolve {job.id} --not-posted`"))
            log.error("in doubt; a person must decide", job=job.id, target=job.target, reason=reason)
        else:
            delay = backoff_delay(checks, self.rng)
            self.journal.transition(job.id, JobState.IN_DOUBT, next_attempt_at=self.clock() + delay,
                                    data={"reconcile_checks": checks}, reason=f"will ask again: {reason}")
        return Verdict.UNKNOWN
