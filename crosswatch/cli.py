"""The command line: thin. Parse, call the library, print.

Every error a user can cause is a ``CrosswatchError`` and comes out as one line on stderr with the
exit status it names (2 for config and usage errors, 1 for runtime failures); never a traceback.
Set CROSSWATCH_DEBUG=1 to see the traceback of an unexpected error.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crosswatch.errors import CrosswatchError, JournalError, JournalLocked, UsageError

# Everything else is imported by the command that needs it, so that `--help`, `status` and `queue`
# start fast (bench/bench_startup.py; tests/test_startup.py checks what each one imports).
if TYPE_CHECKING:
    from crosswatch.config import Config
    from crosswatch.journal import Journal

CONFIG_HELP = "config file (default: $CROSSWATCH_CONFIG, else the user config dir's crosswatch/config.yaml)"


class Obj:
    """What the group passes to commands: the config path, loaded on first use."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from crosswatch import twitter_counting
            from crosswatch.config import load_config

            self._config = load_config(self.config_path)
            # X's counting of a caption that may hold a URL, as a process before counted it: `queue`
            # composes the captions awaiting approval without importing twitter-text (0.25 s).
            twitter_counting.remember_in(self._config.twitter_text_answers_path)
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
@click.option("--no-browser", is_flag=True, help="do not open the console in a browser (it is opened only "
                                                    "when run in a terminal)")
@pass_obj
def run(obj: Obj, once: bool, existing: str | None, no_browser: bool) -> None:
    """Run the daemon: watch the folders and post what lands there (and serve the console when
    console.enabled)."""
    config = obj.config  # config errors first, before anything heavier is imported
    from crosswatch.daemon import Daemon

    _setup_logging(config)
    daemon = Daemon(config, existing=existing)
    if once:
        sys.exit(daemon.run_once())
    console = _start_console(config, open_browser=not no_browser and sys.stdout.isatty(),
                             on_decision=daemon.wake_runner.set) if config.console.enabled else None
    try:
        code = daemon.run_forever()
    finally:
        if console is not None:
            console.stop()
    sys.exit(code)


def _start_console(config: Config, *, open_browser: bool, on_decision: Any = None) -> Any:
    """The console next to the daemon, or None (said in one line) when it cannot be served: the
    daemon posts either way."""
    try:
        from crosswatch.console.server import make_console

        console = make_console(config, warn=lambda text: click.echo(text, err=True), on_decision=on_decision)
    except CrosswatchError as exc:
        click.echo(f"crosswatch: the console is not served: {exc}", err=True)
        return None
    console.start_thread()
    _announce(console.signin_url, open_browser)
    return console


def _announce(url: str, open_browser: bool) -> None:
    click.echo(f"console: {url}")
    sys.stdout.flush()
    if open_browser:
        import webbrowser

        webbrowser.open(url)


# -- status, queue, retry ----------------------------------------------------------------------------


def _open_journal(config: Config) -> Journal:
    from crosswatch.journal import Journal

    return Journal(config.journal_path)


def _when(timestamp: float) -> str:
    from crosswatch.views import when

    return when(timestamp)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
@click.option("--all", "show_all", is_flag=True, help="list every job, not only those needing attention")
@pass_obj
def status(obj: Obj, as_json: bool, show_all: bool) -> None:
    """Photos and jobs per target, with their states and last errors."""
    from crosswatch import views

    with _open_journal(obj.config) as journal:
        now = time.time()
        # Tokens that nothing can renew and that lapse soon, as the daemon last found them.
        expiring = views.token_warning_lines(journal, now)
        if as_json:
            document = views.status_document(obj.config, journal, now)
            click.echo(json.dumps({**document, "expiring_tokens": expiring}, indent=2, ensure_ascii=False))
            return
        for line in views.status_lines(obj.config, journal, now, show_all=show_all):
            click.echo(line)
        for line in expiring:
            click.echo(f"token: {line}")
    address = _console_address(obj.config)
    if address:
        click.echo(f"console: {address}")


def _console_address(config: Config) -> str | None:
    """The running console's sign-in address (with a fresh one-time token), if one runs."""
    from crosswatch.console.address import running_address

    return running_address(config)


@cli.command()
@pass_obj
def queue(obj: Obj) -> None:
    """Jobs waiting to go out with the time each is planned for; jobs awaiting approval with their captions;
    jobs in doubt or failed with what to do."""
    from crosswatch import views

    with _open_journal(obj.config) as journal:
        for line in views.queue_lines(obj.config, journal, time.time()):
            click.echo(line)


@cli.command()
@click.argument("job_id", type=int)
@pass_obj
def approve(obj: Obj, job_id: int) -> None:
    """Let a job that awaits approval go out (at its scheduled time)."""
    from crosswatch import decisions

    with _open_journal(obj.config) as journal:
        job = decisions.approve(journal, job_id)
    click.echo(f"job {job_id} ({job.target}) is approved and queued")


@cli.command()
@click.argument("job_id", type=int)
@pass_obj
def reject(obj: Obj, job_id: int) -> None:
    """Keep a job that awaits approval from ever going out."""
    from crosswatch import decisions

    with _open_journal(obj.config) as journal:
        job = decisions.reject(journal, job_id)
    click.echo(f"job {job_id} ({job.target}) is rejected; it will not be posted")


@cli.command()
@click.argument("job_id", type=int)
@click.option("--caption", help="the caption as it is to be posted (checked against the target's limit)")
@click.option("--alt-text", "alt_text", help="the image's alt text (empty: none)")
@pass_obj
def edit(obj: Obj, job_id: int, caption: str | None, alt_text: str | None) -> None:
    """Change a waiting job's caption or alt text; an approved job needs approval again."""
    from crosswatch import decisions
    from crosswatch.models import JobState

    with _open_journal(obj.config) as journal:
        job = decisions.edit(obj.config, journal, job_id, caption=caption, alt_text=alt_text)
    again = " and awaits approval again" if job.state is JobState.AWAITING_APPROVAL else ""
    click.echo(f"job {job_id} ({job.target}) is changed{again}")


@cli.command()
@click.argument("job_id", type=int)
@pass_obj
def retry(obj: Obj, job_id: int) -> None:
    """Put a failed or rejected job back in the queue, to go out now."""
    from crosswatch import decisions

    with _open_journal(obj.config) as journal:
        job = decisions.retry(journal, job_id)
    click.echo(f"job {job_id} ({job.target}) is queued again")


@cli.command()
@click.argument("job_id", type=int)
@click.option("--posted", "verdict", flag_value="posted", help="it is on the platform: never send it again")
@click.option("--not-posted", "verdict", flag_value="not-posted", help="it is not there: send it again")
@pass_obj
def resolve(obj: Obj, job_id: int, verdict: str | None) -> None:
    """Settle a job crosswatch could not check (in doubt), after looking at the platform yourself."""
    from crosswatch import decisions

    if verdict is None:
        raise UsageError(f"say what you found: `crosswatch resolve {job_id} --posted` or "
                         f"`crosswatch resolve {job_id} --not-posted`")
    with _open_journal(obj.config) as journal:
        job = decisions.resolve(obj.config, journal, job_id, posted=verdict == "posted")
    if verdict == "not-posted":
        click.echo(f"job {job_id} ({job.target}) will be sent again")
    else:
        click.echo(f"job {job_id} ({job.target}) is marked posted; it will not be sent again")


def _release_auth_hold(config: Config, target: str) -> None:
    """After a new sign-in, jobs parked for it may go at once instead of at the daemon's next look."""
    if not config.journal_path.exists():
        return
    # If the journal cannot be written now, no harm: the daemon looks at the token again within a minute.
    from crosswatch import tokenhealth

    with contextlib.suppress(CrosswatchError), _open_journal(config) as journal:
        journal.clear_hold(target, kind="auth")
        tokenhealth.forget_warning(journal, target)


# -- doctor ------------------------------------------------------------------------------------------


def _check_folders(config: Config) -> list[tuple[bool, str]]:
    results = []
    for folder in config.watch:
        readable = os.access(folder.path, os.R_OK | os.X_OK)
        results.append((readable, f"folder {folder.path} -> {', '.join(folder.targets)}"
                        + ("" if readable else ": not readable by this user")))
    return results


def _check_state_dir(config: Config) -> list[tuple[bool, str]]:
    from crosswatch.journal import DaemonLock

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
    from crosswatch.journal import Journal, check_journal, list_backups, replaced_journal, restore_advice, stall_problem

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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
@pass_obj
def audit(obj: Obj, as_json: bool) -> None:
    """Accounts, scopes, token ages and what is stored where; exit 1 when something needs you."""
    from crosswatch import audit as audit_report
    from crosswatch.secrets import SecretStore

    with _open_journal(obj.config) as journal:
        document = audit_report.audit(obj.config, journal, SecretStore(), time.time())
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for line in audit_report.audit_lines(document):
            click.echo(line)
    if audit_report.needs_user(document):
        sys.exit(1)


# -- metadata and preview ----------------------------------------------------------------------------


def _require_photo_file(file: Path) -> None:
    """A FIFO, socket or device given as FILE is a usage error, said before anything opens it (a
    FIFO would block the command forever)."""
    from crosswatch.journal import printable_path
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
@click.argument("file", type=click.Path(path_type=Path, exists=True))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="write the prepared images (<target>.jpg) and preview.json here")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
@pass_obj
def preview(obj: Obj, file: Path, out_dir: Path | None, as_json: bool) -> None:
    """What would be posted, per target: caption, alt text, length and limit, prepared image.

    FILE may be an album folder (watch[].albums: folder): then the album per target, its posts and
    each image's alt text."""
    from crosswatch.preview import build_preview

    if file.is_dir():
        _preview_album(obj, file, as_json)
        return
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


def _preview_album(obj: Obj, folder: Path, as_json: bool) -> None:
    from crosswatch.errors import BadPhoto
    from crosswatch.journal import printable_path
    from crosswatch.preview import build_album_preview

    try:
        document = build_album_preview(obj.config, folder)
    except BadPhoto as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    click.echo(f"album {printable_path(document['album'])}: {document['photos']} photos")
    for name, entry in document["targets"].items():
        posts = entry["posts"]
        shape = " + ".join(str(len(post)) for post in posts)
        click.echo(f"== {name} ({entry['length']} of {entry['limit']}; {len(posts)} post(s): {shape} images)")
        click.echo(entry["text"])
        for number, post in enumerate(posts, start=1):
            for image in post:
                click.echo(f"-- post {number}: {Path(image['file']).name}: {image['alt_text'] or '(no alt text)'}")
        if entry["not_posted"]:
            names = ", ".join(Path(p).name for p in entry["not_posted"])
            click.echo(f"-- not posted: {names} ({entry['why_not_posted']})")
        for kept in entry["left_out"]:
            click.echo(f"-- left out: {Path(kept['file']).name}: {kept['reason']}")
        if entry.get("cost_usd") is not None:
            click.echo(f"-- cost: ${entry['cost_usd']:.3f}")
        click.echo("")


# -- sign-in -----------------------------------------------------------------------------------------


@cli.group("auth")
def auth_group() -> None:
    """Sign in to X, Instagram and Bluesky; tokens live in the OS keyring, never in the config."""


def _platform_target(config: Config, name: str) -> Any:
    from crosswatch.platforms import registry

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
    from crosswatch.platforms import registry
    from crosswatch.secrets import SecretStore

    store = SecretStore()
    states = [auth.status(t, store) for t in obj.config.targets.values() if registry.signs_in(t.kind)]
    if as_json:
        click.echo(json.dumps({"targets": states}, indent=2))
        return
    for state in states:
        if state["signed_in"]:
            granted = state.get("grants") or f"scopes {' '.join(state['scopes']) or '?'}"
            click.echo(f"{state['target']}: {state['username'] or state['account_id']}, {granted}, "
                       f"expires {state['expires_at'] or 'never'}"
                       + (" (crosswatch renews it)" if state["renews_itself"] and not state["problem"] else "")
                       + (f"; {state['problem']}" if state["problem"] else "")
                       + (f"; {state['analytics_problem']}" if state["analytics_problem"] else ""))
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
    from crosswatch.journal import (
        SCHEMA_VERSION,
        backups_dir,
        check_journal,
        list_backups,
        read_marker,
        restore_advice,
        stall_problem,
    )

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
    from crosswatch.journal import Journal

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
    from crosswatch.journal import backups_dir, restore_journal

    path = obj.config.journal_path
    if backup is not None and not backup.exists() and (backups_dir(path) / backup.name).exists():
        backup = backups_dir(path) / backup.name  # named by its file name alone
    result = restore_journal(path, backup)
    click.echo(f"restored {result.backup} as {path}")
    if result.kept_aside:
        click.echo(f"the journal it replaced is kept in {result.kept_aside[0].parent}")


# -- console ---------------------------------------------------------------------------------------


@cli.command()
@click.option("--host", help="address to listen on (default console.host, 127.0.0.1; beyond loopback a "
                             "password is needed)")
@click.option("--port", type=click.IntRange(0, 65535), help="port (default console.port, or the next free one; "
                                                            "0: any free port)")
@click.option("--no-browser", is_flag=True, help="print the sign-in address without opening a browser")
@click.option("--set-password", is_flag=True, help="store the console password (read from standard input) in "
                                                   "the keyring, and exit")
@pass_obj
def console(obj: Obj, host: str | None, port: int | None, no_browser: bool, set_password: bool) -> None:
    """Serve the local web console until stopped (SIGTERM or Ctrl-C)."""
    import signal
    import threading

    from crosswatch.console.security import PASSWORD_KEY, hash_password
    from crosswatch.console.server import make_console
    from crosswatch.secrets import SecretStore

    if set_password:
        if sys.stdin.isatty():
            password = str(click.prompt("console password", hide_input=True, confirmation_prompt=True, err=True))
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < 8:
            raise UsageError("the console password must have at least 8 characters")
        SecretStore().set(PASSWORD_KEY, hash_password(password))
        click.echo("stored the console password (its scrypt hash) in the keyring")
        return
    served = make_console(obj.config, host=host, port=port, warn=lambda text: click.echo(text, err=True))
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda _n, _f: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        thread = served.start_thread()
        _announce(served.signin_url, not no_browser)
        while not stop.wait(0.5) and thread.is_alive():
            pass
        served.stop()
        thread.join(timeout=10.0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


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
@click.option("--keep-serving/--exit", default=True,
              help="keep crosswatch, its console and the emulator running until Ctrl-C, to approve the waiting "
                   "photo in the console and look at the timelines (the default), or exit once the posts are "
                   "made (for scripts)")
def demo(keep_serving: bool) -> None:
    """Post the bundled sample photos to a bundled emulator of X, Instagram, Mastodon, Bluesky and Threads, and serve
    the console beside it."""
    from crosswatch.demo import run_demo

    sys.exit(run_demo(keep_serving=keep_serving, out=click.echo))


# -- notify: where to say that something needs the user (crosswatch/notify.py) --------------------


@cli.group("notify")
def notify_group() -> None:
    """Notifications through Apprise: destinations in the keyring, what to send in notify.events."""


@notify_group.command("add")
@click.argument("name")
def notify_add(name: str) -> None:
    """Read an Apprise URL from standard input and keep it in the keyring as destination NAME."""
    from crosswatch import notify
    from crosswatch.secrets import SecretStore

    # The URL holds secrets (passwords, tokens): read from stdin, never an argument, never echoed.
    url = sys.stdin.readline().strip()
    replaced = notify.add_destination(SecretStore(), name, url)
    click.echo(f"{'replaced' if replaced else 'added'} notification destination {name} (kept in the keyring); "
               "`crosswatch notify test` sends one")


@notify_group.command("remove")
@click.argument("name")
def notify_remove(name: str) -> None:
    """Forget destination NAME (its URL leaves the keyring)."""
    from crosswatch import notify
    from crosswatch.secrets import SecretStore

    if not notify.remove_destination(SecretStore(), name):
        raise UsageError(f"there is no notification destination {name}; `crosswatch notify list` names them")
    click.echo(f"removed notification destination {name}")


@notify_group.command("list")
@pass_obj
def notify_list(obj: Obj) -> None:
    """The destinations (names only) and what is sent to them."""
    from crosswatch import notify
    from crosswatch.secrets import SecretStore

    names = notify.destinations(SecretStore())
    if not names:
        click.echo("no notification destinations; add one: echo URL | crosswatch notify add NAME")
        return
    counts: dict[str, dict[str, int]] = {}
    if obj.config.journal_path.exists():
        with _open_journal(obj.config) as journal:
            counts = journal.notice_counts()
    for name in names:
        c = counts.get(name, {})
        click.echo(f"{name}: {c.get('sent', 0)} sent, {c.get('waiting', 0)} waiting")
    click.echo("events: " + ", ".join(obj.config.notify.events))


@notify_group.command("test")
@click.argument("name", required=False)
def notify_test(name: str | None) -> None:
    """Send one test message to NAME (default: every destination)."""
    from crosswatch import notify
    from crosswatch.secrets import SecretStore

    store = SecretStore()
    names = [name] if name else notify.destinations(store)
    if not names:
        raise UsageError("no notification destinations; add one: echo URL | crosswatch notify add NAME")
    results = notify.send_test(store, names)
    for each, delivered in results.items():
        click.echo(f"{each}: {'sent' if delivered else 'NOT sent (check the URL: crosswatch notify add ' + each + ')'}")
    if not all(results.values()):
        sys.exit(1)


# -- service: install the daemon as a user service (crosswatch/service.py) ---------------------------


@cli.group("service")
def service_group() -> None:
    """Keep the daemon running: a systemd user unit (Linux) or a launchd agent (macOS)."""


@service_group.command("install")
@click.option("--dry-run", is_flag=True, help="print the file and the commands instead of running them")
@pass_obj
def service_install(obj: Obj, dry_run: bool) -> None:
    """Write the unit from the config (its folders writable, watched folders read-only) and start it."""
    from crosswatch import service

    if dry_run:
        click.echo(service.install_plan(obj.config).describe())
        return
    plan = service.install(obj.config)
    click.echo(f"installed {plan.path} and started it")
    for note in plan.notes:
        click.echo(note)


@service_group.command("uninstall")
@click.option("--dry-run", is_flag=True, help="print what would be removed and the commands")
def service_uninstall(dry_run: bool) -> None:
    """Stop the service and remove its unit (the journal and the keyring are kept)."""
    from crosswatch import service

    if dry_run:
        click.echo(service.uninstall_plan().describe())
        return
    plan = service.uninstall()
    click.echo("\n".join(plan.notes) if plan.notes else f"stopped and removed {plan.path}")


@service_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
def service_status(as_json: bool) -> None:
    """Whether the service is installed, enabled and running, and where its log is."""
    from crosswatch import service

    state = service.status()
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    click.echo(f"{state['manager']}: {state['file']}: "
               f"{'installed' if state['installed'] else 'not installed (crosswatch service install)'}, "
               f"{'enabled' if state['enabled'] else 'not enabled'}, "
               f"{'running' if state['running'] else 'not running'}")
    click.echo(f"log: {state['log']}")


# -- entry point -------------------------------------------------------------------------------------


@cli.command()
@click.option("--refresh", is_flag=True,
              help="read metrics now (posts not read in the last hour, up to their last scheduled reading)")
@click.option("--since", "since", metavar="DATE", help="only posts made on or after DATE (YYYY-MM-DD)")
@click.option("--by", "by", type=click.Choice(["hour", "weekday", "keyword", "lens", "camera", "target"]),
              help="group the posts: engagement rate where reach or views are known, else counts")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of text")
@click.option("--csv", "as_csv", is_flag=True, help="print CSV for a spreadsheet (columns: see the README)")
@pass_obj
def report(obj: Obj, refresh: bool, since: str | None, by: str | None, as_json: bool, as_csv: bool) -> None:
    """Engagement per post (latest metrics, with the photo's keywords, camera and lens), grouped with
    --by, and per target the posting windows that did best, as a schedule snippet to copy."""
    import datetime as dt

    from crosswatch.report import build_report, zone_of

    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be combined; choose one")
    config = obj.config
    since_at = None
    if since is not None:
        try:
            day = dt.date.fromisoformat(since)
        except ValueError:
            raise UsageError(f"--since {since!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-01") from None
        since_at = dt.datetime.combine(day, dt.time(), zone_of(config)).timestamp()
    with _open_journal(config) as journal:
        if refresh:
            from crosswatch.analytics import refresh_now

            if not any(t.analytics for t in config.targets.values()):
                raise UsageError("no target reads metrics: set analytics.enabled: true in the config")
            _setup_logging(config)
            for line in refresh_now(config, journal).waiting_lines():
                click.echo(f"crosswatch: {line}", err=True)
        built = build_report(config, journal, since=since_at, by=by)
    if as_json:
        click.echo(json.dumps(built.json(), indent=2, ensure_ascii=False))
    elif as_csv:
        click.echo(built.csv(), nl=False)
    else:
        for line in built.lines():
            click.echo(line)


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
            import traceback

            traceback.print_exc()
        from crosswatch.logs import redact_text

        click.echo(f"crosswatch: internal error: {redact_text(f'{type(exc).__name__}: {exc}')} "
                   "(this is a bug; run again with CROSSWATCH_DEBUG=1 and report it)", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
