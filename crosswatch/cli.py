"""The command line: thin. Parse, call the library, print.

Every error a user can cause is a ``CrosswatchError`` and comes out as one line on stderr with the
exit status it names (2 for config and usage errors, 1 for runtime failures); never a traceback.
Set CROSSWATCH_DEBUG=1 to see the traceback of an unexpected error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from crosswatch import spend
from crosswatch.config import Config, load_config
from crosswatch.errors import CrosswatchError, JournalError, JournalLocked, UsageError
from crosswatch.journal import (
    SCHEMA_VERSION,
    DaemonLock,
    Hold,
    Journal,
    backups_dir,
    check_journal,
    list_backups,
    printable_path,
    read_marker,
    replaced_journal,
    restore_advice,
    restore_journal,
    stall_problem,
)
from crosswatch.models import Job, JobState
from crosswatch.platforms import registry

CONFIG_HELP = "config file (default: $CROSSWATCH_CONFIG, else the user config dir's crosswatch/config.yaml)"


class Obj:
    """What the group passes to commands: the config path, loaded on first use."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


pass_obj = click.make_pass_decorator(Obj)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.version_option(package_name="crosswatch")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """crosswatch: post photos from watched folders to Instagram and X, exactly once."""
    ctx.obj = Obj(config_path)


def _setup_logging(config: Config) -> None:
    from crosswatch import logs

    logs.configure(config.logging.level, config.logging.format)


# -- run ---------------------------------------------------------------------------------------------


@cli.command()
@click.option("--once", is_flag=True, help="scan, post everything due, wait for it, and exit")
@click.option("--existing", type=click.Choice(["post", "skip"]),
              help="when the journal is new where another was before (deleted, lost), or restored from a backup "
                   "older than some photos: post the photos already in the folders (again), or skip them "
                   "(record them as handled); default: intake.existing (ask: stop and say how many)")
@pass_obj
def run(obj: Obj, once: bool, existing: str | None) -> None:
    """Run the daemon: watch the folders and post what lands there."""
    config = obj.config  # config errors first, before anything heavier is imported
    from crosswatch.daemon import Daemon

    _setup_logging(config)
    daemon = Daemon(config, existing=existing)
    code = daemon.run_once() if once else daemon.run_forever()
    sys.exit(code)


# -- status, queue, retry ----------------------------------------------------------------------------


def _open_journal(config: Config) -> Journal:
    return Journal(config.journal_path)


def _job_json(job: Job, photo_path: str, hold: Hold | None = None) -> dict[str, Any]:
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


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _job_line(job: Job, photo_path: str, now: float, hold: Hold | None = None) -> str:
    head = f"#{job.id} {job.target:<10} {printable_path(photo_path)}"
    if job.state is JobState.READY and hold is not None and hold.until > job.next_attempt_at:
        return f"{head}: waiting until {_when(hold.until)} ({hold.reason})"
    if job.state is JobState.READY and job.next_attempt_at > now:
        return f"{head}: waiting until {_when(job.next_attempt_at)}" + (f" ({job.reason})" if job.reason else "")
    if job.state is JobState.IN_DOUBT:
        return (f"{head}: in doubt ({job.reason}); check the platform, then run "
                f"`crosswatch resolve {job.id} --posted` or `crosswatch resolve {job.id} --not-posted`")
    if job.state in (JobState.FAILED, JobState.REJECTED):
        return f"{head}: {job.state.value}: {job.reason}; `crosswatch retry {job.id}` to try again"
    if job.state is JobState.DONE:
        return f"{head}: done {job.permalink or job.remote_id or ''}".rstrip()
    return f"{head}: {job.state.value}" + (f" ({job.reason})" if job.reason else "")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
@click.option("--all", "show_all", is_flag=True, help="list every job, not only those needing attention")
@pass_obj
def status(obj: Obj, as_json: bool, show_all: bool) -> None:
    """Photos and jobs per target, with their states and last errors."""
    with _open_journal(obj.config) as journal:
        photos = journal.photos()
        paths = {photo.id: photo.path for photo, _status, _reason in photos}
        jobs = journal.jobs()
        now = time.time()
        holds = journal.holds(now)
        outside = _waiting_outside(obj.config, journal)
        if as_json:
            document = {
                "journal": outside,
                "photos": [
                    {"id": p.id, "hash": p.hash, "path": printable_path(p.path), "status": s, "reason": r,
                     "first_seen": p.first_seen}
                    for p, s, r in photos
                ],
                "jobs": [_job_json(job, paths.get(job.photo_id, ""), holds.get(job.target)) for job in jobs],
                "targets": {name: {"waiting_until": hold.until, "why": hold.kind, "reason": hold.reason}
                            for name, hold in holds.items()},
                "spend": spend.month_spend(obj.config, journal, now),
            }
            click.echo(json.dumps(document, indent=2, ensure_ascii=False))
            return
        rejected = sum(1 for _p, s, _r in photos if s != "ok")
        click.echo(f"photos: {len(photos)}" + (f" ({rejected} rejected at intake)" if rejected else ""))
        if outside["problem"]:
            click.echo(f"journal: cannot be written: {outside['problem']}; {outside['waiting_outside']} files in the "
                       "watched folders wait outside it (they are taken once it can be written)")
        counts = journal.state_counts()
        spent = spend.month_spend(obj.config, journal, now)
        for target in sorted(set(counts) | set(obj.config.targets)):
            per_state = counts.get(target, {})
            summary = ", ".join(f"{n} {state}" for state, n in sorted(per_state.items())) or "no jobs"
            click.echo(f"  {target}: {summary}")
            if target in spent:
                click.echo(f"    {spend.spend_line(spent[target])}")
            if target in holds:
                click.echo(f"    waiting until {_when(holds[target].until)}: {holds[target].reason}")
        attention = [
            j for j in jobs
            if show_all or j.state in (JobState.FAILED, JobState.REJECTED, JobState.IN_DOUBT)
            or (j.state is JobState.READY and (j.next_attempt_at > now or j.target in holds))
        ]
        for job in attention:
            click.echo("  " + _job_line(job, paths.get(job.photo_id, ""), now, holds.get(job.target)))


def _waiting_outside(config: Config, journal: Journal) -> dict[str, Any]:
    """Whether the journal takes writes; if not, why, and how many files in the folders it has not taken."""
    problem = journal.write_problem()
    if problem is None:
        return {"writable": True, "problem": None, "waiting_outside": 0}
    from crosswatch.watcher import Intake

    return {"writable": False, "problem": problem, "waiting_outside": len(Intake(config, journal).untaken())}


@cli.command()
@pass_obj
def queue(obj: Obj) -> None:
    """Jobs waiting to go out with the time each is planned for; jobs awaiting approval with their captions."""
    from crosswatch.jobs import JobContexts
    from crosswatch.schedule import Planner

    config = obj.config
    now = time.time()
    with _open_journal(config) as journal:
        photos = {photo.id: photo for photo, _s, _r in journal.photos()}
        holds = journal.holds(now)
        jobs = journal.jobs()
        waiting = [j for j in jobs if j.state in (JobState.READY, JobState.IN_FLIGHT, JobState.PENDING)]
        awaiting = [j for j in jobs if j.state is JobState.AWAITING_APPROVAL]
        if not waiting and not awaiting:
            click.echo("nothing is waiting")
            return
        planner = Planner(config)
        posted = {t: journal.done_since(t, now - 2 * 86400.0) for t in {j.target for j in waiting}}
        started = {j.photo_id: journal.sibling_starts(j.id) for j in waiting}
        not_before = [(j.id, j.target, j.photo_id, max(j.next_attempt_at, holds[j.target].until)
                       if j.target in holds else j.next_attempt_at) for j in waiting if j.state is JobState.READY]
        plan = planner.plan(not_before, posted, started, now)
        contexts = JobContexts(config, journal)
        for job in sorted(waiting, key=lambda j: (plan.get(j.id, (now, None))[0], j.id)):
            at, why = plan.get(job.id, (now, None))
            planned = "now" if at <= now else _when(at)
            shown = printable_path(photos[job.photo_id].path)
            reason = holds[job.target].reason if job.target in holds else (why or job.reason)
            cost = spend.job_cost(config, journal, contexts, job, photos[job.photo_id])
            click.echo(f"#{job.id} {job.target:<10} {job.state.value:<10} {planned:<26} {shown}"
                       + (f"  {cost}" if cost else "") + (f"  ({reason})" if reason else ""))
        for job in awaiting:
            photo = photos[job.photo_id]
            cost = spend.job_cost(config, journal, contexts, job, photo)
            click.echo(f"#{job.id} {job.target:<10} awaiting approval: {printable_path(photo.path)}"
                       + (f"  {cost}" if cost else "")
                       + f"  (`crosswatch approve {job.id}` or `crosswatch reject {job.id}`)")
            try:
                caption = contexts.caption(job, photo).text
            except CrosswatchError as exc:
                caption = f"(no caption: {exc})"
            click.echo("    " + caption.replace("\n", "\n    "))


def _decide(config: Config, job_id: int, approve: bool) -> Job:
    with _open_journal(config) as journal:
        job = journal.job(job_id)
        if job is None:
            raise UsageError(f"there is no job {job_id}; `crosswatch queue` lists the jobs awaiting approval")
        if job.state is not JobState.AWAITING_APPROVAL:
            raise UsageError(f"job {job_id} is {job.state.value}, not awaiting approval")
        if approve:
            journal.transition(job_id, JobState.READY, next_attempt_at=time.time(), detail="approved")
        else:
            journal.transition(job_id, JobState.REJECTED, reason="rejected by hand (crosswatch reject)")
    return job


@cli.command()
@click.argument("job_id", type=int)
@pass_obj
def approve(obj: Obj, job_id: int) -> None:
    """Let a job that awaits approval go out (at its scheduled time)."""
    job = _decide(obj.config, job_id, approve=True)
    click.echo(f"job {job_id} ({job.target}) is approved and queued")


@cli.command()
@click.argument("job_id", type=int)
@pass_obj
def reject(obj: Obj, job_id: int) -> None:
    """Keep a job that awaits approval from ever going out."""
    job = _decide(obj.config, job_id, approve=False)
    click.echo(f"job {job_id} ({job.target}) is rejected; it will not be posted")


@cli.command()
@click.argument("job_id", type=int)
@pass_obj
def retry(obj: Obj, job_id: int) -> None:
    """Put a failed or rejected job back in the queue, to go out now."""
    with _open_journal(obj.config) as journal:
        job = journal.job(job_id)
        if job is None:
            raise UsageError(f"there is no job {job_id}; `crosswatch status --all` lists them")
        if job.state not in (JobState.FAILED, JobState.REJECTED):
            raise UsageError(f"job {job_id} is {job.state.value}; only failed or rejected jobs can be retried")
        journal.transition(job_id, JobState.READY, step_index=0, next_attempt_at=time.time(),
                           attempts_delta=-job.attempts, detail="retry requested")
    click.echo(f"job {job_id} ({job.target}) is queued again")


def _step_names(config: Config, target: str) -> list[str]:
    """The configured target's steps, in order; empty when the target is gone from the config."""
    from crosswatch.platforms.registry import build_target

    target_cfg = config.targets.get(target)
    if target_cfg is None or not target_cfg.enabled:
        return []
    try:
        return [step.name for step in build_target(target_cfg).steps()]
    except CrosswatchError:
        return []


@cli.command()
@click.argument("job_id", type=int)
@click.option("--posted", "verdict", flag_value="posted", help="it is on the platform: never send it again")
@click.option("--not-posted", "verdict", flag_value="not-posted", help="it is not there: send it again")
@pass_obj
def resolve(obj: Obj, job_id: int, verdict: str | None) -> None:
    """Settle a job crosswatch could not check (in doubt), after looking at the platform yourself."""
    if verdict is None:
        raise UsageError(f"say what you found: `crosswatch resolve {job_id} --posted` or "
                         f"`crosswatch resolve {job_id} --not-posted`")
    config = obj.config
    with _open_journal(config) as journal:
        row = journal.job_row(job_id)
        if row is None:
            raise UsageError(f"there is no job {job_id}; `crosswatch status` lists the jobs in doubt")
        job = row.job
        if job.state is not JobState.IN_DOUBT:
            raise UsageError(f"job {job_id} is {job.state.value}; only a job in doubt can be resolved")
        now = time.time()
        if verdict == "not-posted":
            journal.transition(job_id, JobState.READY, intent=False, next_attempt_at=now,
                               data={"reconcile_checks": 0}, detail="resolved by hand: not posted")
            click.echo(f"job {job_id} ({job.target}) will be sent again")
            return
        names = _step_names(config, job.target)
        following = row.step_index + 1
        data = {"resolved": "posted", "reconcile_checks": 0}
        if following < len(names):
            # The post exists; the steps after it (Instagram: remove the hosted copy) still run.
            journal.transition(job_id, JobState.READY, intent=False, step_index=following, step=names[following],
                               next_attempt_at=now, data=data, detail="resolved by hand: posted")
        else:
            journal.transition(job_id, JobState.DONE, intent=False, data=data, detail="resolved by hand: posted")
        spend.charge_resolved_post(config, journal, job, row.intent_at or job.updated_at)
    click.echo(f"job {job_id} ({job.target}) is marked posted; it will not be sent again")


def _release_auth_hold(config: Config, target: str) -> None:
    """After a new sign-in, jobs parked for it may go at once instead of at the daemon's next look."""
    if not config.journal_path.exists():
        return
    # If the journal cannot be written now, no harm: the daemon looks at the token again within a minute.
    with contextlib.suppress(CrosswatchError), _open_journal(config) as journal:
        journal.clear_hold(target, kind="auth")


# -- doctor ------------------------------------------------------------------------------------------


def _check_folders(config: Config) -> list[tuple[bool, str]]:
    results = []
    for folder in config.watch:
        readable = os.access(folder.path, os.R_OK | os.X_OK)
        results.append((readable, f"folder {folder.path} -> {', '.join(folder.targets)}"
                        + ("" if readable else ": not readable by this user")))
    return results


def _check_state_dir(config: Config) -> list[tuple[bool, str]]:
    try:
        config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        writable = os.access(config.state_dir, os.W_OK)
    except OSError as exc:
        return [(False, f"state_dir {config.state_dir}: {exc.strerror}")]
    results = [(writable, f"state_dir {config.state_dir}" + ("" if writable else ": not writable"))]
    results.append(_check_journal(config))
    lock = DaemonLock(config.journal_path)
    try:
        lock.acquire()
        lock.release()
        results.append((True, "daemon: not running"))
    except JournalLocked:
        results.append((True, "daemon: running"))
    return results


def _check_journal(config: Config) -> tuple[bool, str]:
    """The journal opens, passes integrity_check and takes a write (doctor commits one small write)."""
    path = config.journal_path
    try:
        with Journal(path) as journal:
            photos = journal.count_photos()
            replaced = replaced_journal(journal)
    except CrosswatchError as exc:
        return False, str(exc)
    if replaced:
        return False, (f"journal {path}: new, but this state folder had another before it ({replaced}); "
                       "`crosswatch journal restore` puts back its newest backup, else `crosswatch run` asks what "
                       "to do with the photos already in the folders")
    found = check_journal(path, probe=True)
    if found.damage:
        return False, f"journal {path}: damaged ({found.damage[0]}); {restore_advice(path)}"
    problem = found.unwritable or stall_problem(path)
    if problem:
        return False, (f"journal {path}: cannot be written: {problem}; new photos wait outside it and posting "
                       "pauses until it can")
    backups = list_backups(path)
    return True, f"journal {path}: {photos} photos, {len(backups)} backups" + (
        f" (newest {backups[0].name})" if backups else "")


@cli.command()
@pass_obj
def doctor(obj: Obj) -> None:
    """Check the config, folders, state dir, journal, tokens and media host; say what to fix."""
    from crosswatch import doctor as doctor_checks

    config = obj.config
    checks = [(True, f"config {config.source}: valid")]
    with _auth_client() as client:
        targets = doctor_checks.target_checks(config, client)
    checks += _check_folders(config) + _check_state_dir(config) + targets + doctor_checks.bridge_checks(config)
    for ok, text in checks:
        click.echo(("ok    " if ok else "FIX   ") + text)
    if not all(ok for ok, _ in checks):
        sys.exit(1)


# -- metadata and preview ----------------------------------------------------------------------------


def _require_photo_file(file: Path) -> None:
    """A FIFO, socket or device given as FILE is a usage error, said before anything opens it (a
    FIFO would block the command forever)."""
    from crosswatch.photofile import NotRegularFile, require_regular

    try:
        require_regular(file.stat())
    except NotRegularFile as exc:
        raise UsageError(f"{printable_path(str(file))} is {exc.kind}, not a photo file; "
                         "give the path of a regular file") from None
    except OSError:
        return  # missing or unreadable: the reader says so in its own words



@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
def metadata(file: Path, as_json: bool) -> None:
    """The normalised metadata read from one photo."""
    from crosswatch.metadata import read_metadata

    _require_photo_file(file)
    document = read_metadata(file).as_json()
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for key, value in document.items():
        if value not in (None, [], ""):
            click.echo(f"{key:<22} {', '.join(map(str, value)) if isinstance(value, list) else value}")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="write the prepared images (<target>.jpg) and preview.json here")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
@pass_obj
def preview(obj: Obj, file: Path, out_dir: Path | None, as_json: bool) -> None:
    """What would be posted, per target: caption, alt text, length and limit, prepared image."""
    from crosswatch.preview import build_preview

    _require_photo_file(file)
    document = build_preview(obj.config, file, out_dir)
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for name, entry in document["targets"].items():
        click.echo(f"== {name} ({entry['length']} of {entry['limit']})")
        click.echo(entry["text"])
        if entry.get("alt_text"):
            click.echo(f"-- alt text: {entry['alt_text']}")
        if entry.get("cost"):
            click.echo(f"-- cost: {entry['cost']}")
        if entry.get("shortened"):
            click.echo(f"-- shortened: {', '.join(entry['shortened'])}")
        image = entry.get("image") or {}
        if image.get("error"):
            click.echo(f"-- image: cannot be prepared: {image['error']}")
        elif image:
            click.echo(f"-- image: {image['width']}x{image['height']} {image['format']}, {image['bytes']} bytes")
        click.echo("")


# -- sign-in -----------------------------------------------------------------------------------------


@cli.group("auth")
def auth_group() -> None:
    """Sign in to X, Instagram and Bluesky; tokens live in the OS keyring, never in the config."""


def _platform_target(config: Config, name: str) -> Any:
    target = config.targets.get(name)
    if target is None:
        raise UsageError(f"there is no target {name!r} in {config.source}; known: {', '.join(config.targets)}")
    if not registry.signs_in(target.kind):
        raise UsageError(f"target {name} is an {target.kind} target; it has no sign-in")
    return target


def _auth_client() -> Any:
    import httpx

    return httpx.Client(timeout=30.0, headers={"User-Agent": "crosswatch/0.1"})


@auth_group.command("login")
@click.argument("target")
@click.option("--timeout", default=300.0, show_default=True, help="seconds to wait for the browser")
@click.option("--no-browser", is_flag=True, help="print the sign-in address instead of opening a browser")
@pass_obj
def auth_login(obj: Obj, target: str, timeout: float, no_browser: bool) -> None:
    """Sign in with the browser (OAuth 2.0 code flow with a loopback redirect); Bluesky: with an app
    password, read from standard input when it is not a terminal, else asked without echo."""
    import webbrowser

    from crosswatch import auth
    from crosswatch.secrets import SecretStore

    target_cfg = _platform_target(obj.config, target)

    def open_browser(url: str) -> None:
        click.echo(f"Sign in to {target} at:\n  {url}", err=True)
        if not no_browser:
            webbrowser.open(url)

    def ask_secret(question: str) -> str:
        return str(click.prompt(question, hide_input=True, default="", show_default=False, err=True))

    def ask_password(question: str) -> str:
        # Piped (a password manager, a script): one line from stdin; at a terminal: asked without echo.
        if not sys.stdin.isatty():
            return sys.stdin.readline().strip()
        return str(click.prompt(question, hide_input=True, err=True))

    with _auth_client() as client:
        state = auth.login(target_cfg, SecretStore(), client, open_browser, ask_secret, timeout=timeout,
                           paste_redirect=lambda question: str(click.prompt(question, err=True)),
                           ask_password=ask_password)
        _read_server_limits(obj.config, target_cfg, client)
    _release_auth_hold(obj.config, target)
    click.echo(f"signed in to {target} as {state['username'] or state['account_id']}; "
               f"token expires {state['expires_at'] or 'never'}")


def _platform_info() -> Any:
    from crosswatch import platform_info

    return platform_info


def _read_server_limits(config: Config, target_cfg: Any, client: Any) -> None:
    """A server that tells its own limits (Mastodon) is read at sign-in, so the first posts use them."""
    if _platform_info().reader(target_cfg) is not None:
        with _open_journal(config) as journal:
            _platform_info().read(target_cfg, client, journal)


@auth_group.command("import")
@click.argument("target")
@pass_obj
def auth_import(obj: Obj, target: str) -> None:
    """Store a platform token response (JSON) read from standard input, never from the command line."""
    from crosswatch import auth
    from crosswatch.secrets import SecretStore

    target_cfg = _platform_target(obj.config, target)
    text = sys.stdin.read()
    with _auth_client() as client:
        state = auth.import_tokens(target_cfg, SecretStore(), text, client)
        _read_server_limits(obj.config, target_cfg, client)
    _release_auth_hold(obj.config, target)
    click.echo(f"stored the token for {target} ({state['username'] or state['account_id'] or 'account unknown'})")


@auth_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
@pass_obj
def auth_status(obj: Obj, as_json: bool) -> None:
    """Per target: account, scopes and expiry (never the secret)."""
    from crosswatch import auth
    from crosswatch.secrets import SecretStore

    store = SecretStore()
    states = [auth.status(t, store) for t in obj.config.targets.values() if registry.signs_in(t.kind)]
    if as_json:
        click.echo(json.dumps({"targets": states}, indent=2))
        return
    for state in states:
        if state["signed_in"]:
            click.echo(f"{state['target']}: {state['username'] or state['account_id']}, scopes "
                       f"{' '.join(state['scopes']) or '?'}, expires {state['expires_at'] or 'never'}"
                       + (f"; {state['problem']}" if state["problem"] else ""))
        else:
            click.echo(f"{state['target']}: not signed in; run `crosswatch auth login {state['target']}`")


@auth_group.command("revoke")
@click.argument("target")
@pass_obj
def auth_revoke(obj: Obj, target: str) -> None:
    """Revoke the token at the platform (where it can) and delete it from the keyring."""
    from crosswatch import auth
    from crosswatch.secrets import SecretStore

    target_cfg = _platform_target(obj.config, target)
    with _auth_client() as client:
        result = auth.revoke(target_cfg, SecretStore(), client)
    click.echo(f"{target}: " + ("revoked at the platform; " if result["revoked_at_platform"] else "")
               + ("deleted from the keyring" if result["deleted"] else "nothing stored")
               + (f" ({result['note']})" if result["note"] else ""))


# -- links ---------------------------------------------------------------------------------------------


@cli.group("links")
def links_group() -> None:
    """Check the posts crosswatch made."""


@links_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
@pass_obj
def links_check(obj: Obj, as_json: bool) -> None:
    """Read back every posted link through the platform's API; exit 1 if any no longer resolves."""
    from crosswatch.daemon import platform_tokens
    from crosswatch.linkcheck import check_links

    config = obj.config
    with _open_journal(config) as journal, _auth_client() as client:
        results = check_links(config, journal, client, platform_tokens(config, client))
    broken = [r for r in results if r.state == "broken"]
    unknown = [r for r in results if r.state == "unknown"]
    if as_json:
        click.echo(json.dumps({"links": [r.as_json() for r in results], "broken": len(broken),
                               "unknown": len(unknown)}, indent=2, ensure_ascii=False))
    else:
        for result in results:
            label = {"ok": "ok     ", "broken": "BROKEN ", "unknown": "UNKNOWN"}[result.state]
            where = result.permalink or result.remote_id
            line = f"{label} #{result.job_id} {result.target:<10} {where}"
            click.echo(line if result.state == "ok" else f"{line}: {result.detail}")
        click.echo(f"{len(results)} links checked: {len(broken)} broken, {len(unknown)} could not be checked"
                   if results else "no posted links to check")
    if broken or unknown:
        sys.exit(1)


# -- journal -------------------------------------------------------------------------------------------


@cli.group("journal")
def journal_group() -> None:
    """Check, back up and restore the journal (state_dir/journal.sqlite3, backups in state_dir/backups)."""


@journal_group.command("check")
@pass_obj
def journal_check(obj: Obj) -> None:
    """SQLite's integrity_check, the schema version, photos, jobs and backups; exit 1 when damaged or unwritable."""
    path = obj.config.journal_path
    found = check_journal(path)
    backups = list_backups(path)
    if not found.exists:
        if backups or read_marker(path) is not None:
            raise JournalError(f"there is no journal at {path}, but this state folder had one; "
                               + (f"`crosswatch journal restore` puts back the newest backup ({backups[0]})"
                                  if backups else "`crosswatch run` asks before posting the photos in the folders"))
        click.echo(f"no journal yet at {path}; `crosswatch run` creates it")
        return
    for finding in found.damage[:20]:
        click.echo(f"damaged: {finding}")
    if found.damage:
        raise JournalError(f"the journal {path} is damaged; {restore_advice(path)}")
    if found.schema is not None and found.schema > SCHEMA_VERSION:
        raise JournalError(f"the journal {path} was written by a newer crosswatch (schema {found.schema}); upgrade")
    jobs = ", ".join(f"{n} {state}" for state, n in found.jobs.items()) or "none"
    click.echo(f"journal {path}: integrity ok, schema {found.schema} (this crosswatch: {SCHEMA_VERSION}), "
               f"id {found.journal_id or 'none yet'}")
    click.echo(f"photos: {found.photos}; jobs: {jobs}")
    click.echo(f"backups: {len(backups)} in {backups_dir(path)}" + (f", newest {backups[0].name}" if backups else ""))
    problem = found.unwritable or stall_problem(path)
    if problem:
        raise JournalError(f"the journal {path} cannot be written: {problem}")


@journal_group.command("backup")
@pass_obj
def journal_backup(obj: Obj) -> None:
    """Back the journal up now into state_dir/backups (the daemon also does, daily; the newest 7 are kept)."""
    path = obj.config.journal_path
    if not path.exists():
        raise UsageError(f"there is no journal at {path} to back up")
    with Journal(path) as journal:
        backup = journal.backup()
    click.echo(f"backed up the journal to {backup}")


@journal_group.command("restore")
@click.argument("backup", required=False, type=click.Path(path_type=Path, dir_okay=False))
@pass_obj
def journal_restore(obj: Obj, backup: Path | None) -> None:
    """Put BACKUP (default: the newest in state_dir/backups) back as the journal; the daemon must be stopped.

    The journal it replaces is moved to state_dir/damaged, not deleted. At its next start the daemon
    asks before posting photos in the folders that the backup does not know.
    """
    path = obj.config.journal_path
    if backup is not None and not backup.exists() and (backups_dir(path) / backup.name).exists():
        backup = backups_dir(path) / backup.name  # named by its file name alone
    result = restore_journal(path, backup)
    click.echo(f"restored {result.backup} as {path}")
    if result.kept_aside:
        click.echo(f"the journal it replaced is kept in {result.kept_aside[0].parent}")


# -- emulator and demo -------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (keep it loopback)")
@click.option("--port", default=0, show_default=True, help="port; 0 picks a free one")
@click.option("--x-token-lifetime", type=float, help="seconds an X access token lives (default 7200)")
@click.option("--container-seconds", type=float, help="seconds an Instagram container stays IN_PROGRESS")
@click.option("--hosted-dir", type=click.Path(path_type=Path, file_okay=False),
              help="serve this folder at /_emulator/hosted/ (a directory media host for Instagram)")
def emulator(host: str, port: int, x_token_lifetime: float | None, container_seconds: float | None,
             hosted_dir: Path | None) -> None:
    """Run the bundled fake of X's and Instagram's APIs (for trying crosswatch and for tests)."""
    import dataclasses

    from crosswatch.emulator import EmulatorSettings, run_emulator

    settings = EmulatorSettings()
    if x_token_lifetime is not None:
        settings = dataclasses.replace(settings, x_access_token_lifetime=x_token_lifetime)
    if container_seconds is not None:
        settings = dataclasses.replace(settings, ig_container_processing_seconds=container_seconds)
    run_emulator(host, port, settings=settings, hosted_dir=hosted_dir)


@cli.command()
@click.option("--keep-serving/--exit", default=None,
              help="keep the emulator up afterwards to look at it (default: when run in a terminal)")
def demo(keep_serving: bool | None) -> None:
    """Post the bundled sample photos to a bundled emulator of X and Instagram, and show the result."""
    from crosswatch.demo import run_demo

    if keep_serving is None:
        keep_serving = sys.stdin.isatty() and sys.stdout.isatty()
    sys.exit(run_demo(keep_serving=keep_serving, out=click.echo))


# -- entry point -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="crosswatch",
                          standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("crosswatch: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CrosswatchError as exc:
        click.echo(f"crosswatch: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("CROSSWATCH_DEBUG"):
            traceback.print_exc()
        from crosswatch.logs import redact_text

        click.echo(f"crosswatch: internal error: {redact_text(f'{type(exc).__name__}: {exc}')} "
                   "(this is a bug; run again with CROSSWATCH_DEBUG=1 and report it)", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
