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
from collections.abc import Callable, Mapping
from typing import Protocol

import httpx
import structlog

from crosswatch.config import Config
from crosswatch.errors import AuthError, BadPhoto, CrosswatchError, JournalError
from crosswatch.jobs import JobContexts
from crosswatch.journal import Journal, JobRow
from crosswatch.models import JobState
from crosswatch.targets.base import HttpStep, JobContext, Kind, LocalStep, Outcome, Step, Target, step_applies

log = structlog.get_logger("crosswatch.runner")

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0
# A target without a usable token is looked at again this often (a sign-in needs no restart).
AUTH_PARK_SECONDS = 60.0
SPAM_BLOCK_PAUSE_SECONDS = 24 * 3600.0


class TokenSource(Protocol):
    def access_token(self) -> str: ...

    def force_refresh(self) -> str: ...

    def account_id(self) -> str | None: ...


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter (AWS's "full jitter": uniform in [cap/2, cap])."""
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
        self._stopping: Callable[[], bool] = lambda: False

    def stop_when(self, stopping: Callable[[], bool]) -> None:
        """Between steps the runner asks this; when true it leaves the job where it stands."""
        self._stopping = stopping

    # -- entry points ------------------------------------------------------------------------------

    def recover(self) -> None:
        """At start-up: settle jobs a crash left in flight (see Journal.recover_in_flight)."""
        for row, state in self.journal.recover_in_flight():
            log.warning("job recovered after a stop", job=row.job.id, target=row.job.target, state=state.value)

    def run_due(self, limit: int = 50) -> int:
        """Perform every job due now (up to ``limit``); returns how many were attempted."""
        rows = self.journal.due_jobs(self.clock(), limit)
        done = 0
        for row in rows:
            if self._stopping():
                break
            if row.job.target not in self.targets:
                self._park(row, AUTH_PARK_SECONDS * 10,
                           f"target {row.job.target} is not configured or not enabled; add it back to run this job")
                continue
            self.run_job(row)
            done += 1
        return done

    # -- one job -----------------------------------------------------------------------------------

    def run_job(self, row: JobRow) -> None:
        job = row.job
        target = self.targets[job.target]
        try:
            token, account = self._credentials(job.target)
        except AuthError as exc:
            self._park(row, AUTH_PARK_SECONDS, str(exc))
            return
        try:
            ctx = self.contexts.build(job, access_token=token, account_id=account)
        except BadPhoto as exc:
            self.journal.transition(job.id, JobState.REJECTED, reason=str(exc))
            log.warning("photo rejected", job=job.id, target=job.target, reason=str(exc))
            return
        steps = target.steps()
        index = min(row.step_index, len(steps) - 1)
        self.journal.transition(job.id, JobState.IN_FLIGHT, expect=JobState.READY, step=steps[index].name,
                                step_index=index, attempts_delta=1, detail="started")
        refreshed = False
        while index < len(steps):
            if self._stopping():
                # Safe to leave: nothing of this step was sent; recovery puts the job back to ready.
                self.journal.transition(job.id, JobState.READY, step_index=index, detail="stopping")
                return
            step = steps[index]
            if not step.safe_to_repeat:
                self.journal.transition(job.id, JobState.IN_FLIGHT, step=step.name, intent=True,
                                        detail="intent")
            outcome = self._perform(step, ctx)
            if outcome.kind is Kind.AUTH and not refreshed and job.target in self.tokens:
                refreshed = True
                try:
                    ctx = dataclasses.replace(ctx, access_token=self.tokens[job.target].force_refresh())
                    continue
                except AuthError as exc:
                    outcome = Outcome(Kind.AUTH, reason=str(exc))
            if outcome.kind is Kind.NEXT:
                index += 1
                ctx = dataclasses.replace(ctx, data={**ctx.data, **outcome.data})
                if index < len(steps):
                    self.journal.transition(job.id, JobState.IN_FLIGHT, step=steps[index].name,
                                            step_index=index, data=dict(outcome.data), intent=False)
                    continue
                outcome = Outcome(Kind.DONE, data=outcome.data)
            self._apply(job.id, job.target, index, outcome, attempts=job.attempts + 1)
            return

    def _credentials(self, target: str) -> tuple[str | None, str | None]:
        source = self.tokens.get(target)
        if source is None:
            return None, None
        return source.access_token(), source.account_id()

    def _perform(self, step: Step, ctx: JobContext) -> Outcome:
        if not step_applies(step, ctx):
            return Outcome.next()
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
        data = dict(outcome.data)
        kind = outcome.kind
        if kind is Kind.DONE:
            row = self.journal.transition(job_id, JobState.DONE, remote_id=outcome.remote_id,
                                          permalink=outcome.permalink, data=data, intent=False)
            self._discard(row)
            log.info("posted", job=job_id, target=target, remote_id=outcome.remote_id, permalink=outcome.permalink)
        elif kind is Kind.AGAIN:
            self.journal.transition(job_id, JobState.READY, step_index=index, data=data, intent=False,
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
            # Waiting is not failing: the attempt is not counted.
            self.journal.transition(job_id, JobState.READY, step_index=index, data=data, intent=False,
                                    next_attempt_at=now + delay, attempts_delta=-1, reason=outcome.reason)
            log.warning("waiting", job=job_id, target=target, why=kind.value, reason=outcome.reason)
        elif kind is Kind.UNKNOWN:
            self.journal.transition(job_id, JobState.IN_DOUBT, data=data, reason=outcome.reason)
            log.error("in doubt", job=job_id, target=target, reason=outcome.reason)
        else:  # FAILED, REJECTED, DUPLICATE: retrying cannot help
            state = JobState.REJECTED if kind is Kind.REJECTED else JobState.FAILED
            row = self.journal.transition(job_id, state, data=data, intent=False, reason=outcome.reason)
            self._discard(row)
            log.error("job " + state.value, job=job_id, target=target, reason=outcome.reason)

    def _park(self, row: JobRow, seconds: float, reason: str) -> None:
        self.journal.transition(row.job.id, JobState.READY, next_attempt_at=self.clock() + seconds,
                                reason=reason)

    def _discard(self, row: JobRow) -> None:
        try:
            self.contexts.discard(row.job)
        except (OSError, JournalError) as exc:
            log.warning("could not remove a prepared image", job=row.job.id, error=str(exc))
