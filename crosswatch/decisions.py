"""What a person decides about a job, for every face (the CLI and the console): approve, reject,
edit, retry, resolve, post now.

Each decision checks the job's state, writes through the journal (one transaction, with an event)
and raises ``UsageError`` with one line saying why it cannot be taken. The daemon reads the journal
on its next look, so a decision needs no restart.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crosswatch import compose, platform_info, spend
from crosswatch.config import Config
from crosswatch.errors import CrosswatchError, UsageError
from crosswatch.journal import Journal
from crosswatch.models import Caption, Job, JobState

if TYPE_CHECKING:
    import httpx

    from crosswatch.secrets import SecretStore

Clock = Callable[[], float]

# States in which a caption may still be changed: nothing of the post has been sent yet.
EDITABLE = frozenset({JobState.AWAITING_APPROVAL, JobState.READY, JobState.FAILED, JobState.REJECTED})


def _job(journal: Journal, job_id: int, listing: str) -> Job:
    job = journal.job(job_id)
    if job is None:
        raise UsageError(f"there is no job {job_id}; `crosswatch {listing}` lists them")
    return job


def approve(journal: Journal, job_id: int, *, clock: Clock = time.time) -> Job:
    job = _job(journal, job_id, "queue")
    if job.state is not JobState.AWAITING_APPROVAL:
        raise UsageError(f"job {job_id} is {job.state.value}, not awaiting approval")
    journal.transition(job_id, JobState.READY, expect=JobState.AWAITING_APPROVAL, next_attempt_at=clock(),
                       detail="approved")
    return job


def reject(journal: Journal, job_id: int, *, by: str = "crosswatch reject") -> Job:
    job = _job(journal, job_id, "queue")
    if job.state is not JobState.AWAITING_APPROVAL:
        raise UsageError(f"job {job_id} is {job.state.value}, not awaiting approval")
    journal.transition(job_id, JobState.REJECTED, expect=JobState.AWAITING_APPROVAL,
                       reason=f"rejected by hand ({by})")
    return job


def retry(journal: Journal, job_id: int, *, clock: Clock = time.time) -> Job:
    job = _job(journal, job_id, "status --all")
    if job.state not in (JobState.FAILED, JobState.REJECTED):
        raise UsageError(f"job {job_id} is {job.state.value}; only failed or rejected jobs can be retried")
    journal.transition(job_id, JobState.READY, expect=job.state, step_index=0, next_attempt_at=clock(),
                       attempts_delta=-job.attempts, detail="retry requested")
    return job


def post_now(journal: Journal, job_id: int, *, clock: Clock = time.time) -> Job:
    """Send a waiting job at once, outside the schedule (windows, gap, daily cap), this once; an
    awaiting job is approved by it. Pacing caps, quotas, budgets and sign-in holds still apply."""
    job = _job(journal, job_id, "queue")
    if job.state not in (JobState.READY, JobState.AWAITING_APPROVAL):
        raise UsageError(f"job {job_id} is {job.state.value}; only a waiting job can be posted now")
    journal.transition(job_id, JobState.READY, expect=job.state, next_attempt_at=clock(), data={"post_now": True},
                       detail="post now requested" + (" (approved)" if job.state is JobState.AWAITING_APPROVAL else ""))
    return job


def step_names(config: Config, target: str) -> list[str]:
    """The configured target's steps, in order; empty when the target is gone from the config."""
    from crosswatch.platforms.registry import build_target

    target_cfg = config.targets.get(target)
    if target_cfg is None or not target_cfg.enabled:
        return []
    try:
        return [step.name for step in build_target(target_cfg).steps()]
    except CrosswatchError:
        return []


def resolve(config: Config, journal: Journal, job_id: int, *, posted: bool, clock: Clock = time.time) -> Job:
    """Settle a job in doubt after the person looked at the platform: posted (never send it again;
    the steps after the post still run) or not posted (send it again)."""
    row = journal.job_row(job_id)
    if row is None:
        raise UsageError(f"there is no job {job_id}; `crosswatch status` lists the jobs in doubt")
    job = row.job
    if job.state is not JobState.IN_DOUBT:
        raise UsageError(f"job {job_id} is {job.state.value}; only a job in doubt can be resolved")
    now = clock()
    if not posted:
        journal.transition(job_id, JobState.READY, expect=JobState.IN_DOUBT, intent=False, next_attempt_at=now,
                           data={"reconcile_checks": 0}, detail="resolved by hand: not posted")
        return job
    names = step_names(config, job.target)
    following = row.step_index + 1
    data = {"resolved": "posted", "reconcile_checks": 0}
    if following < len(names):
        # The post exists; the steps after it (Instagram: remove the hosted copy) still run.
        journal.transition(job_id, JobState.READY, expect=JobState.IN_DOUBT, intent=False, step_index=following,
                           step=names[following], next_attempt_at=now, data=data, detail="resolved by hand: posted")
    else:
        journal.transition(job_id, JobState.DONE, expect=JobState.IN_DOUBT, intent=False, data=data,
                           detail="resolved by hand: posted")
    spend.charge_resolved_post(config, journal, job, row.intent_at or job.updated_at)
    return job


def _fitted_edit(config: Config, journal: Journal, job_id: int, caption: str | None,
                 alt_text: str | None) -> tuple[Job, dict[str, object], Caption]:
    """The job, what the person wrote (merged with an earlier edit) and the caption it makes, checked
    by the target's fitting rules; UsageError when it cannot be edited or does not fit."""
    from crosswatch.jobs import JobContexts

    row = journal.job_row(job_id)
    if row is None:
        raise UsageError(f"there is no job {job_id}; `crosswatch queue` lists the waiting jobs")
    job = row.job
    if caption is None and alt_text is None:
        raise UsageError(f"say what to change: `crosswatch edit {job_id} --caption TEXT` and/or `--alt-text TEXT`")
    begun = job.state not in (JobState.FAILED, JobState.REJECTED) and (
        row.intent_at is not None or job.step is not None)
    if job.state not in EDITABLE or begun:
        raise UsageError(f"job {job_id} is {job.state.value}" + (f" at step {job.step}" if job.step else "")
                         + "; only a job that has not begun posting can be edited")
    if job.target not in config.targets:
        raise UsageError(f"job {job_id}'s target {job.target} is not in the config; its caption cannot be checked")
    contexts = JobContexts(config, journal)
    photo = contexts.photo(job)
    earlier = job.data.get("edit")
    previous: dict[str, object] = dict(earlier) if isinstance(earlier, dict) else {}
    wanted: dict[str, object] = {**previous, **({"caption": caption} if caption is not None else {}),
                                 **({"alt_text": alt_text} if alt_text is not None else {})}
    unedited = dataclasses.replace(job, data={k: v for k, v in job.data.items() if k != "edit"})
    composed = contexts.caption(unedited, photo, spend.job_link(config, journal, job)[0])
    try:
        fitted = compose.edited_caption(config, job.target, composed, wanted,
                                        limits=platform_info.learned_limits(journal, config.targets[job.target]))
    except compose.CaptionRefused as exc:
        raise UsageError(str(exc)) from None
    return job, wanted, fitted


def check_edit(config: Config, journal: Journal, job_id: int, *, caption: str | None = None,
               alt_text: str | None = None) -> dict[str, object]:
    """What ``edit`` would say about this text, without saving it (the console's live check):
    ``{"length", "limit", "error"}``, the length by the platform's own count."""
    job = journal.job(job_id)
    target = config.targets.get(job.target) if job is not None else None
    length = limit = None
    if target is not None and caption is not None:
        limits = platform_info.learned_limits(journal, target)
        length = limits.caption_length(caption.replace("\r\n", "\n").strip())
        limit = limits.caption_limit
    try:
        _fitted_edit(config, journal, job_id, caption, alt_text)
    except UsageError as exc:
        return {"length": length, "limit": limit, "error": str(exc)}
    return {"length": length, "limit": limit, "error": None}


def edit(config: Config, journal: Journal, job_id: int, *, caption: str | None = None,
         alt_text: str | None = None, by: str = "crosswatch edit") -> Job:
    """Replace a job's caption and/or alt text with what the person wrote, checked by the target's
    fitting rules (``compose.edited_caption``); a refused text saves nothing. An approved job (ready,
    on a target that needs approval) goes back to awaiting approval. Returns the job as saved."""
    job, wanted, fitted = _fitted_edit(config, journal, job_id, caption, alt_text)
    # Only what was written by hand is kept: an unedited part still follows the metadata and links.
    saved = {**({"caption": fitted.text} if "caption" in wanted else {}),
             **({"alt_text": fitted.alt_text or ""} if "alt_text" in wanted else {})}
    back_to_approval = job.state is JobState.READY and config.needs_approval(job.target)
    new_state = JobState.AWAITING_APPROVAL if back_to_approval else job.state
    journal.edit_job(job_id, saved, expect=job.state, new_state=new_state,
                     detail=f"edited by hand ({by})" + ("; needs approval again" if back_to_approval else ""))
    result = journal.job(job_id)
    assert result is not None
    return result


def revoke_account(config: Config, store: SecretStore, target: str, client: httpx.Client) -> dict[str, Any]:
    """The console's revoke button: what ``crosswatch auth revoke TARGET`` does (revoke at the platform
    where it has an endpoint, then delete the tokens and secrets from the keyring)."""
    from crosswatch import auth
    from crosswatch.platforms import registry

    target_cfg = config.targets.get(target)
    if target_cfg is None or not registry.signs_in(target_cfg.kind):
        raise UsageError(f"target {target} has no account to revoke")
    return auth.revoke(target_cfg, store, client)
