"""A minimal step driver for target tests: what the runner does, without the journal.

It performs each step in order (skipping those that do not apply), merges outcome data into the
context on NEXT and AGAIN, waits on AGAIN through ``wait`` (advance a manual clock, or sleep), and
stops at the first outcome that is neither.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import httpx

from crosswatch.platforms.base import HttpStep, JobContext, Kind, LocalStep, Outcome, Step, step_applies


def perform(step: Step, ctx: JobContext, client: httpx.Client) -> Outcome:
    if not step_applies(step, ctx):
        return Outcome.next()
    if isinstance(step, HttpStep):
        return step.parse(ctx, client.send(step.build(ctx)))
    assert isinstance(step, LocalStep)
    return step.run(ctx)


def drive(steps: Sequence[Step], ctx: JobContext, client: httpx.Client, *, wait: Callable[[float], None],
          max_rounds: int = 50) -> tuple[Outcome, JobContext, list[str]]:
    """Run the steps to the end; returns the last outcome, the final context and the step names run."""
    index = 0
    performed: list[str] = []
    for _ in range(max_rounds):
        step = steps[index]
        outcome = perform(step, ctx, client)
        performed.append(step.name)
        ctx = dataclasses.replace(ctx, data={**ctx.data, **outcome.data})
        if outcome.kind is Kind.AGAIN:
            wait(outcome.retry_after or 0.0)
            continue
        if outcome.kind is not Kind.NEXT:
            return outcome, ctx, performed
        index += 1
        if index == len(steps):
            return Outcome(Kind.DONE, data=outcome.data), ctx, performed
    raise AssertionError(f"no end after {max_rounds} rounds: {performed}")
