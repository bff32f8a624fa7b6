"""What `status`, `queue` and the console's pages show, built once for both faces.

The CLI prints these views as text or JSON; the console renders them as HTML. Neither face holds
SQL or business rules: every number and every sentence is decided here, from the journal, the config
and the sign-in state. A page's view costs a fixed number of journal queries however many jobs it
shows (tests/test_console_views.py counts them): jobs, photos, holds, starts and finished posts are
each read once, never per row.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crosswatch import spend
from crosswatch.config import Config
from crosswatch.errors import CrosswatchError
from crosswatch.journal import Hold, Journal, printable_path
from crosswatch.models import Job, JobState, Photo

# Jobs the queue leaves out: posted, or rejected by a person (those are on Posted, state "rejected").
_SETTLED = frozenset({JobState.DONE, JobState.REJECTED})
_WAITING = (JobState.READY, JobState.IN_FLIGHT, JobState.PENDING)
# A token that expires sooner than this is listed under "needs you".
EXPIRING_SOON_SECONDS = 7 * 86400.0
# Hold kinds that a person has to act on, or at least know about.
_HOLD_WORDS = {"auth": "sign-in needed", "quota": "quota", "budget": "budget", "pacing": "pacing",
               "rate_limit": "rate limit", "paused": "paused"}
# What Posted calls a job that went out because a person said it had (an in-doubt job resolved so).
BY_HAND = "posted (marked by hand)"


def queued(jobs: Iterable[Job]) -> list[Job]:
    """The jobs the queue shows, in the CLI as in the console: every one not posted or rejected."""
    return [job for job in jobs if job.state not in _SETTLED]


def hold_text(hold: Hold) -> str:
    """A hold as the queue and "needs you" say it: what holds the target, until when, and why."""
    return f"{_HOLD_WORDS.get(hold.kind, hold.kind)} hold until {when(hold.until)}: {hold.reason}"


# journal_info: the tokens that nothing can renew and that lapse soon, as the daemon last found them
# (tokenhealth.record_warnings, hourly), so `status` tells of them without reading the keyring.
TOKEN_WARNINGS_KEY = "token_warnings"


def lapse_line(target: str, expires_at: float, now: float) -> str:
    """A token nothing can renew: when it lapses and what to do (status, doctor, audit)."""
    hint = f"run `crosswatch auth login {target}`"
    if expires_at <= now:
        return f"the {target} token has expired and cannot be refreshed; {hint}"
    on = dt.datetime.fromtimestamp(expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"the {target} token lapses in {(expires_at - now) / 86400.0:.1f} days ({on}) and cannot be "
            f"refreshed; {hint} before then")


def token_warning_lines(journal: Journal, now: float) -> list[str]:
    """The daemon's last word on tokens about to lapse (see TOKEN_WARNINGS_KEY)."""
    try:
        recorded = json.loads(journal.info(TOKEN_WARNINGS_KEY) or "[]")
    except ValueError:
        return []
    return [lapse_line(str(item["target"]), float(item["expires_at"]), now) for item in recorded
            if isinstance(item, dict) and isinstance(item.get("expires_at"), int | float)]


def when(timestamp: float, zone: dt.tzinfo | None = None) -> str:
    """A moment as every page of the console and the command line show one ("2026-12-02 16:40:00 CET"):
    in the local time zone, or in ``zone`` (analytics: the schedule's). The console's templates have it
    as the filter ``when``."""
    moment = dt.datetime.fromtimestamp(timestamp, zone) if zone else dt.datetime.fromtimestamp(timestamp).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def when_iso(stamp: str | None, default: str = "") -> str:
    """An ISO 8601 time as kept in a JSON document (``crosswatch audit --json``) as ``when`` shows it."""
    return when(dt.datetime.fromisoformat(stamp).timestamp()) if stamp else default


# ---------------------------------------------------------------------------------------------------
# status


def job_json(job: Job, photo_path: str, hold: Hold | None = None) -> dict[str, Any]:
    waiting = hold is not None and job.state is JobState.READY
    return {
        "id": job.id,
        "photo": printable_path(photo_path),
        "photo_id": job.photo_id,
        "target": job.target,
        "state": job.state.value,
        "step": job.step,
        "attempts": job.attempts,
        "next_attempt_at": max(job.next_attempt_at, hold.until) if waiting and hold else (job.next_attempt_at or None),
        "reason": hold.reason if waiting and hold else job.reason,
        "remote_id": job.remote_id,
        "permalink": job.permalink,
    }


def job_line(job: Job, photo_path: str, now: float, hold: Hold | None = None) -> str:
    head = f"#{job.id} {job.target:<10} {printable_path(photo_path)}"
    if job.state is JobState.READY and hold is not None and hold.until > job.next_attempt_at:
        return f"{head}: waiting until {when(hold.until)} ({hold.reason})"
    if job.state is JobState.READY and job.next_attempt_at > now:
        return f"{head}: waiting until {when(job.next_attempt_at)}" + (f" ({job.reason})" if job.reason else "")
    if job.state is JobState.IN_DOUBT:
        return (f"{head}: in doubt ({job.reason}); check the platform, then run "
                f"`crosswatch resolve {job.id} --posted` or `crosswatch resolve {job.id} --not-posted`")
    if job.state in (JobState.FAILED, JobState.REJECTED):
        return f"{head}: {job.state.value}: {job.reason}; `crosswatch retry {job.id}` to try again"
    if job.state is JobState.DONE:
        return f"{head}: done {job.permalink or job.remote_id or ''}".rstrip()
    return f"{head}: {job.state.value}" + (f" ({job.reason})" if job.reason else "")


def waiting_outside(config: Config, journal: Journal) -> dict[str, Any]:
    """Whether the journal takes writes; if not, why, and how many files in the folders it has not taken."""
    problem = journal.write_problem()
    if problem is None:
        return {"writable": True, "problem": None, "waiting_outside": 0}
    from crosswatch.watcher import Intake

    return {"writable": False, "problem": problem, "waiting_outside": len(Intake(config, journal).untaken())}


def needs_attention(job: Job, now: float, holds: Mapping[str, Hold]) -> bool:
    return (job.state in (JobState.FAILED, JobState.REJECTED, JobState.IN_DOUBT)
            or (job.state is JobState.READY and (job.next_attempt_at > now or job.target in holds)))


def status_document(config: Config, journal: Journal, now: float) -> dict[str, Any]:
    """``status --json``."""
    photos = journal.photos()
    paths = {photo.id: photo.path for photo, _status, _reason in photos}
    holds = journal.holds(now)
    return {
        "journal": waiting_outside(config, journal),
        "photos": [
            {"id": p.id, "hash": p.hash, "path": printable_path(p.path), "status": s, "reason": r,
             "first_seen": p.first_seen}
            for p, s, r in photos
        ],
        "jobs": [job_json(job, paths.get(job.photo_id, ""), holds.get(job.target)) for job in journal.jobs()],
        "targets": {name: {"waiting_until": hold.until, "why": hold.kind, "reason": hold.reason}
                    for name, hold in holds.items()},
        "spend": spend.month_spend(config, journal, now),
        "albums": album_views(config, journal),
    }


def album_views(config: Config, journal: Journal) -> list[dict[str, Any]]:
    """Every album taken (watch[].albums: folder): its photos, those left out or late and why, and per
    target its job: how many posts the album makes there and which photos do not go out, and why."""
    taken = journal.albums()
    if not taken:
        return []  # and nothing heavy imported: `status` starts fast (tests/test_startup.py)
    from crosswatch.jobs import JobContexts

    contexts = JobContexts(config, journal)
    views = []
    for album in taken:
        files: dict[str, list[Any]] = {"member": [], "left_out": [], "late_posted": [], "late_skipped": []}
        for f in album.files:
            files.setdefault(f.role, []).append({"file": printable_path(f.path), "reason": f.reason})
        targets: dict[str, Any] = {}
        for job in journal.jobs_for_photo(album.photo_id):
            data = job.data.get("album")
            if not isinstance(data, Mapping):
                continue
            members = [str(m.get("path")) for m in data.get("members") or () if isinstance(m, Mapping)]
            entry: dict[str, Any] = {
                "job": job.id, "state": job.state.value, "reason": job.reason, "permalink": job.permalink,
                "photos": len(members),
                "left_out": [{"file": printable_path(str(k.get("path"))), "reason": k.get("reason")}
                             for k in data.get("left_out") or () if isinstance(k, Mapping)],
            }
            if job.target in config.targets and members:
                plan = contexts.album_plan(job, data)
                entry["posts"] = len(plan.posts)
                entry["per_post"] = [len(post) for post in plan.posts]
                entry["not_posted"] = [printable_path(members[i]) for i in plan.not_posted]
                entry["why_not_posted"] = plan.why_not
            targets[job.target] = entry
        views.append({"folder": printable_path(album.folder), "photos": len(files["member"]),
                      "left_out": files["left_out"],
                      "late": [{**f, "posted": role == "late_posted"} for role in ("late_posted", "late_skipped")
                               for f in files[role]],
                      "targets": targets})
    return views


def album_lines(config: Config, journal: Journal) -> list[str]:
    """``status``'s albums part as text: one line per album and target, and what is left out or late."""
    lines = []
    for album in album_views(config, journal):
        lines.append(f"album {album['folder']}: {album['photos']} photos")
        for name, entry in album["targets"].items():
            posts = entry.get("posts") or 1
            shape = "one post" if posts == 1 else f"{posts} posts ({' + '.join(map(str, entry['per_post']))})"
            line = f"    {name}: {entry['state']}, {entry['photos']} photos in {shape}"
            if entry.get("not_posted"):
                line += f"; not posted: {', '.join(entry['not_posted'])} ({entry['why_not_posted']})"
            lines.append(line)
            for kept in entry["left_out"]:
                lines.append(f"      left out: {kept['file']}: {kept['reason']}")
        for late in album["late"]:
            lines.append(f"    late: {late['file']}: {late['reason']}")
    return lines


def status_lines(config: Config, journal: Journal, now: float, *, show_all: bool = False) -> list[str]:
    """``status`` as text."""
    photos = journal.photos()
    paths = {photo.id: photo.path for photo, _status, _reason in photos}
    jobs = journal.jobs()
    holds = journal.holds(now)
    outside = waiting_outside(config, journal)
    rejected = sum(1 for _p, s, _r in photos if s != "ok")
    lines = [f"photos: {len(photos)}" + (f" ({rejected} rejected at intake)" if rejected else "")]
    if outside["problem"]:
        lines.append(f"journal: cannot be written: {outside['problem']}; {outside['waiting_outside']} files in the "
                     "watched folders wait outside it (they are taken once it can be written)")
    counts = journal.state_counts()
    spent = spend.month_spend(config, journal, now)
    for target in sorted(set(counts) | set(config.targets)):
        per_state = counts.get(target, {})
        summary = ", ".join(f"{n} {state}" for state, n in sorted(per_state.items())) or "no jobs"
        lines.append(f"  {target}: {summary}")
        if target in spent:
            lines.append(f"    {spend.spend_line(spent[target])}")
        if target in holds:
            lines.append(f"    waiting until {when(holds[target].until)}: {holds[target].reason}")
    for job in jobs:
        if show_all or needs_attention(job, now, holds):
            lines.append("  " + job_line(job, paths.get(job.photo_id, ""), now, holds.get(job.target)))
    lines.extend("  " + line for line in album_lines(config, journal))
    return lines


# ---------------------------------------------------------------------------------------------------
# queue: the plan


@dataclass(frozen=True)
class Plan:
    """When each waiting job is planned to go out, and why not sooner."""

    at: Mapping[int, tuple[float, str | None]]

    def planned(self, job: Job, now: float) -> tuple[float, str | None]:
        return self.at.get(job.id, (now, None))


def plan_queue(config: Config, journal: Journal, jobs: Sequence[Job], holds: Mapping[str, Hold],
               now: float) -> Plan:
    """The schedule's plan for the waiting jobs among ``jobs`` (three queries for any number)."""
    from crosswatch.schedule import Planner

    waiting = [j for j in jobs if j.state in _WAITING]
    if not waiting:
        return Plan({})
    done = journal.done_times(now - 2 * 86400.0)
    posted = {t: done.get(t, []) for t in {j.target for j in waiting}}
    starts = journal.in_flight_starts()
    # For each photo, the starts of its other jobs (as seen from its last waiting job, as before).
    started = {j.photo_id: [at for job_id, at in starts.get(j.photo_id, {}).items() if job_id != j.id]
               for j in waiting}
    not_before = [(j.id, j.target, j.photo_id, max(j.next_attempt_at, holds[j.target].until)
                   if j.target in holds else j.next_attempt_at) for j in waiting if j.state is JobState.READY]
    return Plan(Planner(config).plan(not_before, posted, started, now))


def queue_lines(config: Config, journal: Journal, now: float) -> list[str]:
    """``queue`` as text, the jobs the console's queue shows: those waiting to go out with their planned
    time, then those awaiting approval with their captions, then those in doubt or failed with what to
    run."""
    photos = {photo.id: photo for photo, _s, _r in journal.photos()}
    holds = journal.holds(now)
    jobs = journal.jobs()
    listed = queued(jobs)
    waiting = [j for j in listed if j.state in _WAITING]
    awaiting = [j for j in listed if j.state is JobState.AWAITING_APPROVAL]
    stuck = [j for j in listed if j.state in (JobState.IN_DOUBT, JobState.FAILED)]
    if not listed:
        return ["nothing is waiting"]
    from crosswatch.jobs import JobContexts  # composes captions: only when there are some to show
    plan = plan_queue(config, journal, jobs, holds, now)
    contexts = JobContexts(config, journal)
    siblings = _by_photo(jobs)
    lines = []
    for job in sorted(waiting, key=lambda j: (plan.planned(j, now)[0], j.id)):
        at, why = plan.planned(job, now)
        planned = "now" if at <= now else when(at)
        shown = printable_path(photos[job.photo_id].path)
        reason = holds[job.target].reason if job.target in holds else (why or job.reason)
        cost = spend.job_cost(config, journal, contexts, job, photos[job.photo_id], siblings[job.photo_id])
        lines.append(f"#{job.id} {job.target:<10} {job.state.value:<10} {planned:<26} {shown}"
                     + (f"  {cost}" if cost else "") + (f"  ({reason})" if reason else ""))
    for job in awaiting:
        photo = photos[job.photo_id]
        cost = spend.job_cost(config, journal, contexts, job, photo, siblings[job.photo_id])
        lines.append(f"#{job.id} {job.target:<10} awaiting approval: {printable_path(photo.path)}"
                     + (f"  {cost}" if cost else "")
                     + f"  (`crosswatch approve {job.id}` or `crosswatch reject {job.id}`)")
        try:
            caption = contexts.caption(job, photo, spend.job_link(config, journal, job, siblings[job.photo_id])[0]).text
        except CrosswatchError as exc:
            caption = f"(no caption: {exc})"
        lines.append("    " + caption.replace("\n", "\n    "))
    # In doubt or failed: a person decides (the same jobs the console's queue shows with Resolve/Retry).
    lines += [job_line(job, photos[job.photo_id].path, now) for job in stuck]
    return lines


def _by_photo(jobs: Iterable[Job]) -> dict[int, list[Job]]:
    grouped: dict[int, list[Job]] = {}
    for job in jobs:
        grouped.setdefault(job.photo_id, []).append(job)
    return grouped


# ---------------------------------------------------------------------------------------------------
# the console: queue page


@dataclass(frozen=True)
class CardImage:
    """One image of an album job's card: its number (from 0, over the album's posts on the target:
    ``/images/job/{id}/{number}``) and its alt text."""

    number: int
    alt_text: str


@dataclass(frozen=True)
class JobCard:
    """One job as the queue page shows it."""

    id: int
    target: str
    kind: str
    state: str
    reason: str
    caption: str
    length: int | None
    limit: int | None
    alt_text: str
    cost: str
    planned: str
    edited: bool
    actions: tuple[str, ...]  # which of approve, reject, edit, retry, resolve, post-now apply
    problem: str = ""  # why the caption could not be built
    hold: str = ""  # what holds the target (quota, budget, rate limit, sign-in …), until when, and why
    images: tuple[CardImage, ...] = ()  # an album job's: every image it sends, in order; () for one photo

    @property
    def over(self) -> bool:
        return self.length is not None and self.limit is not None and self.length > self.limit


@dataclass(frozen=True)
class PhotoGroup:
    photo_id: int
    name: str
    path: str
    cards: tuple[JobCard, ...]
    album: str = ""  # the album's folder name when the photo is an album (watch[].albums: folder)


@dataclass(frozen=True)
class QueuePage:
    groups: tuple[PhotoGroup, ...]
    page: int
    pages: int
    total_jobs: int


def actions_for(job: Job) -> tuple[str, ...]:
    """The decisions (decisions.py) that apply to a job in its state."""
    if job.state is JobState.AWAITING_APPROVAL:
        return ("approve", "reject", "edit", "post-now")
    if job.state is JobState.READY:
        return ("post-now", "edit") if job.step is None else ()
    if job.state in (JobState.FAILED, JobState.REJECTED):
        return ("retry", "edit")
    if job.state is JobState.IN_DOUBT:
        return ("resolve",)
    return ()


def queue_page(config: Config, journal: Journal, now: float, *, page: int = 1, per_page: int = 25) -> QueuePage:
    """Every job not done, grouped by photo (``per_page`` photos a page, those with the newest jobs
    first), each with its caption as it will be posted, length and limit, cost, alt text, planned time,
    state and reason."""
    from crosswatch.jobs import JobContexts

    jobs = queued(journal.jobs())
    holds = journal.holds(now)
    grouped = _by_photo(jobs)
    order = sorted(grouped, key=lambda photo_id: -max(j.id for j in grouped[photo_id]))
    pages = max(1, -(-len(order) // per_page))
    page = min(max(1, page), pages)
    shown = order[(page - 1) * per_page:page * per_page]
    photos = journal.photos_by_id(shown)
    plan = plan_queue(config, journal, jobs, holds, now)
    every_sibling = _by_photo(journal.jobs_of_photos(shown))
    contexts = JobContexts(config, journal)
    groups = []
    for photo_id in shown:
        photo = photos.get(photo_id)
        if photo is None:
            continue
        cards = tuple(_card(config, journal, contexts, job, photo, every_sibling.get(photo_id, []), plan, holds, now)
                      for job in grouped[photo_id])
        groups.append(PhotoGroup(photo_id, printable_path(photo.path).rsplit("/", 1)[-1],
                                 printable_path(photo.path), cards, album=album_name(grouped[photo_id])))
    return QueuePage(tuple(groups), page, pages, len(jobs))


def album_name(jobs: Sequence[Job]) -> str:
    """The folder name of the album these jobs post, or "" when they post a single photo."""
    for job in jobs:
        album = job.data.get("album")
        if isinstance(album, Mapping) and album.get("folder"):
            return printable_path(str(album["folder"])).rstrip("/").rsplit("/", 1)[-1]
    return ""


def _card(config: Config, journal: Journal, contexts: Any, job: Job, photo: Photo, siblings: Sequence[Job],
          plan: Plan, holds: Mapping[str, Hold], now: float) -> JobCard:
    target = config.targets.get(job.target)
    reason = job.reason or ""
    # A hold matters to a job that is still to go out; the card says it apart from the job's reason.
    held = holds.get(job.target) if job.state in (*_WAITING, JobState.AWAITING_APPROVAL) else None
    if held is not None and reason == held.reason:
        reason = ""  # the job was parked for the hold's reason: the hold says it once
    planned = ""
    if job.state in _WAITING:
        at, why = plan.planned(job, now)
        planned = "now" if at <= now else when(at)
        reason = reason or (why or "")
    caption_text, length, limit, alt, problem, cost = "", None, None, "", "", ""
    album_images: tuple[CardImage, ...] = ()
    if target is None:
        problem = f"target {job.target} is not in the config"
    else:
        try:
            caption = contexts.caption(job, photo, spend.job_link(config, journal, job, siblings)[0])
            caption_text, length, limit, alt = caption.text, caption.length, caption.limit, caption.alt_text or ""
            cost = spend.job_cost(config, journal, contexts, job, photo, siblings, caption=caption)
            album_images = tuple(CardImage(number, text) for number, text in enumerate(contexts.album_alt_texts(job)))
        except CrosswatchError as exc:
            problem = str(exc)
    return JobCard(id=job.id, target=job.target, kind=target.kind if target else "", state=job.state.value,
                   reason=reason, caption=caption_text, length=length, limit=limit, alt_text=alt, cost=cost,
                   planned=planned, edited=isinstance(job.data.get("edit"), dict), actions=actions_for(job),
                   problem=problem, hold=hold_text(held) if held is not None else "", images=album_images)


# ---------------------------------------------------------------------------------------------------
# the console: posted page


@dataclass(frozen=True)
class PostedRow:
    job_id: int
    photo_id: int
    name: str
    target: str
    kind: str
    posted_at: float
    posted: str
    state: str
    remote_id: str
    permalink: str
    link_state: str  # the last link check: ok, broken, unknown, or "" (never checked)
    link_detail: str
    reason: str = ""  # a rejected job's: who rejected it
    actions: tuple[str, ...] = ()  # the decisions that apply (a rejected job's retry)


@dataclass(frozen=True)
class PostedFilter:
    target: str | None = None
    since: float | None = None  # posted at or after
    until: float | None = None  # posted before
    link_state: str | None = None  # ok, broken, unknown, unchecked
    state: str = "posted"  # one of POSTED_STATES


# The Posted page's state filter: what went out, or what a person rejected (to retry from there).
POSTED_STATES = {"posted": JobState.DONE, "rejected": JobState.REJECTED}


def posted_state(job: Job) -> str:
    """How Posted names a job's outcome: posted, posted (marked by hand) for an in-doubt job a
    person resolved as posted, or rejected."""
    if job.state is JobState.REJECTED:
        return "rejected"
    return BY_HAND if job.data.get("resolved") == "posted" else "posted"


def posted_page(config: Config, journal: Journal, wanted: PostedFilter, *, limit: int = 200) -> list[PostedRow]:
    """What went out (or, with ``state="rejected"``, what was rejected), newest first, with the last
    link check's result."""
    state_wanted = POSTED_STATES.get(wanted.state, JobState.DONE)
    done = [j for j in journal.jobs(state=state_wanted, target=wanted.target)]
    done = [j for j in done if (wanted.since is None or j.updated_at >= wanted.since)
            and (wanted.until is None or j.updated_at < wanted.until)]
    checks = journal.link_checks()
    rows = []
    for job in sorted(done, key=lambda j: (-j.updated_at, -j.id)):
        state, detail = checks.get(job.id, ("", ""))
        if wanted.link_state and (state or "unchecked") != wanted.link_state:
            continue
        target = config.targets.get(job.target)
        rejected = job.state is JobState.REJECTED
        rows.append(PostedRow(job.id, job.photo_id, "", job.target, target.kind if target else "", job.updated_at,
                              when(job.updated_at), posted_state(job), job.remote_id or "", job.permalink or "",
                              state, detail, reason=(job.reason or "") if rejected else "",
                              actions=("retry",) if rejected else ()))
        if len(rows) >= limit:
            break
    photos = journal.photos_by_id(sorted({r.photo_id for r in rows}))
    return [dataclass_replace(r, name=printable_path(photos[r.photo_id].path).rsplit("/", 1)[-1]
                              if r.photo_id in photos else "") for r in rows]


def dataclass_replace(row: PostedRow, **changes: Any) -> PostedRow:
    import dataclasses

    return dataclasses.replace(row, **changes)


# ---------------------------------------------------------------------------------------------------
# the console: accounts and "needs you"


@dataclass(frozen=True)
class AccountView:
    target: str
    kind: str
    account: str
    scopes: str
    expires: str
    expires_in_seconds: int | None
    refreshed: str
    signed_in: bool
    problem: str
    can_sign_in: bool
    renews: bool = False  # the daemon renews the token by itself (auth.state.renews_itself)
    # The terminal command that signs in, where the console's button cannot (an app password is typed
    # in a terminal; a sign-in whose address must be pasted back); "" where the button starts OAuth.
    sign_in_command: str = ""
    # Nothing can renew the token (tokenhealth.can_refresh): its expiry is the end of the sign-in.
    lapses: bool = False

    @property
    def sign_in_text(self) -> str:
        return "signed in" if self.signed_in and not self.problem else "sign-in needed"


def accounts(config: Config, store: Any, holds: Mapping[str, Hold], *, clock: Any = time.time) -> list[AccountView]:
    """Each target's account, scopes, token expiry and last refresh (never a secret)."""
    from crosswatch import auth, tokenhealth
    from crosswatch.auth.tokens import load_tokens
    from crosswatch.platforms import registry

    views = []
    for name, target in config.targets.items():
        if not registry.signs_in(target.kind):
            continue
        command = sign_in_command(target)
        try:
            state = auth.status(target, store, clock=clock)
            tokens = load_tokens(store, name)
        except CrosswatchError as exc:
            views.append(AccountView(name, target.kind, "", "", "", None, "", False, str(exc), True,
                                     sign_in_command=command))
            continue
        problem = state["problem"] or ""
        hold = holds.get(name)
        if not problem and hold is not None and hold.kind == "auth":
            problem = hold.reason
        refreshed = when(tokens.obtained_at) if tokens is not None and tokens.obtained_at else ""
        views.append(AccountView(
            target=name, kind=target.kind, account=state["username"] or state["account_id"] or "",
            scopes=" ".join(state["scopes"]),
            expires=when(tokens.expires_at) if tokens is not None and tokens.expires_at
            else ("never" if state["signed_in"] else ""),
            expires_in_seconds=state["expires_in_seconds"], refreshed=refreshed,
            signed_in=bool(state["signed_in"]) and not problem, problem=problem, can_sign_in=True,
            renews=bool(state["renews_itself"]), sign_in_command=command,
            lapses=tokens is not None and not tokenhealth.can_refresh(target.kind, tokens, clock())))
    return views


def sign_in_command(target: Any) -> str:
    """``crosswatch auth login NAME`` for a target the console's button cannot sign in: one whose
    sign-in is a password (Bluesky's app passwords, SignIn.method) or whose platform sends the browser
    to an address that must be pasted back (``redirect_uri``); "" for the OAuth button."""
    from crosswatch.platforms import registry

    flow = registry.sign_in(target.kind)
    password = flow is not None and getattr(flow, "method", "oauth") == "password"
    return f"crosswatch auth login {target.name}" if password or target.redirect_uri else ""


@dataclass(frozen=True)
class NeedItem:
    kind: str  # awaiting approval, failed, in doubt, sign-in needed, quota, budget, expiring soon
    text: str
    job_id: int | None = None
    target: str | None = None
    actions: tuple[str, ...] = ()  # decisions taken from the list itself (a failed job's retry)


@dataclass(frozen=True)
class NeedsYou:
    items: tuple[NeedItem, ...] = field(default_factory=tuple)

    @property
    def count(self) -> int:
        return len(self.items)


def needs_you(journal: Journal, account_views: Sequence[AccountView], now: float) -> NeedsYou:
    """What waits for a person: jobs awaiting approval, failed or in doubt; targets that need a
    sign-in or are held by a quota or budget; tokens that expire within a week and that nothing
    renews (a token the daemon refreshes by itself needs nobody)."""
    items: list[NeedItem] = []
    for job in journal.jobs_in_states((JobState.AWAITING_APPROVAL, JobState.FAILED, JobState.IN_DOUBT)):
        label = {JobState.AWAITING_APPROVAL: "awaiting approval", JobState.FAILED: "failed",
                 JobState.IN_DOUBT: "in doubt"}[job.state]
        items.append(NeedItem(label, job.reason or "", job.id, job.target,
                              actions=("retry",) if job.state is JobState.FAILED else ()))
    holds = journal.holds(now)
    signing = {a.target for a in account_views if not a.signed_in}
    for account in account_views:
        if not account.signed_in:
            items.append(NeedItem("sign-in needed", account.problem, target=account.target))
        elif (account.lapses and account.expires_in_seconds is not None
              and account.expires_in_seconds < EXPIRING_SOON_SECONDS):
            items.append(NeedItem("expiring soon", f"the token expires {account.expires}", target=account.target))
    for name, hold in sorted(holds.items()):
        if hold.kind in ("quota", "budget") or (hold.kind == "auth" and name not in signing):
            items.append(NeedItem(_HOLD_WORDS.get(hold.kind, hold.kind), f"until {when(hold.until)}: {hold.reason}",
                                  target=name))
    return NeedsYou(tuple(items))


# ---------------------------------------------------------------------------------------------------
# the console: the audit on the accounts page (the same document as `crosswatch audit`)


@dataclass(frozen=True)
class AuditAccount:
    target: str
    needed_scopes: str
    extra_scopes: str
    missing_scopes: str
    refreshable: bool
    used: str
    revoke_page: str | None
    revoke_command: str


@dataclass(frozen=True)
class AuditPage:
    accounts: Mapping[str, AuditAccount]
    stored: tuple[str, ...]
    problems: tuple[str, ...]


def audit_page(config: Config, journal: Journal | None, store: Any, now: float) -> AuditPage | None:
    """The audit for the accounts page; None before there is a journal (the daemon makes it)."""
    from crosswatch import audit

    if journal is None:
        return None
    document = audit.audit(config, journal, store, now)
    accounts = {a["target"]: AuditAccount(
        target=a["target"], needed_scopes=" ".join(a["needed_scopes"]), extra_scopes=" ".join(a["extra_scopes"]),
        missing_scopes=" ".join(a["missing_scopes"]), refreshable=bool(a["refreshable"]),
        used=when_iso(a["used_at"]), revoke_page=a["revoke"]["page"], revoke_command=a["revoke"]["command"],
    ) for a in document["accounts"]}
    return AuditPage(accounts, tuple(line.strip() for line in audit.stored_lines(document)),
                     tuple(document["problems"]))


def revoked_text(target: str, result: Mapping[str, Any]) -> str:
    """What the console says after its revoke button (the result of ``auth.revoke``)."""
    said = "revoked at the platform; " if result.get("revoked_at_platform") else ""
    kept = "tokens deleted from the keyring" if result.get("deleted") else "nothing was stored"
    note = f"; {result['note']}" if result.get("note") else ""
    return f"{target}: {said}{kept}{note}"
