"""``crosswatch audit``: what crosswatch may do on each account and what it keeps, and what needs the
user (extra or missing scopes, a token about to lapse, a copy left on a media host, a blocked upload).

Everything comes from what is already stored: the keyring (token metadata: scopes, times; names of
entries, never a value), the journal (last use, the upload checks, rows), the state dir (the prepared
image cache) and the media-host folders. No platform is asked anything. The document's shape is in
design.md (``audit --json``); the console's accounts page shows the same (views.audit_accounts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crosswatch import notify, service, tokenhealth
from crosswatch.auth.state import extra_scopes, iso_time, missing_scopes, needed_scopes, status
from crosswatch.auth.tokens import app_password_key, client_secret_key, token_key
from crosswatch.config import Config, TargetConfig
from crosswatch.console.security import PASSWORD_KEY
from crosswatch.errors import CrosswatchError
from crosswatch.journal import Journal
from crosswatch.models import JobState
from crosswatch.platforms import registry
from crosswatch.secrets import SecretStore

# The names crosswatch gives media-host copies (platforms.meta_graph.hosted_key): only these are
# looked for in a media-host folder, which may hold the user's own files too.
HOSTED_NAME = re.compile(r"[0-9a-f]{24}-[0-9]+\.jpg")


@dataclass(frozen=True)
class Revoke:
    command: str
    page: str | None


def revoke_for(cfg: TargetConfig) -> Revoke:
    """``crosswatch auth revoke`` and the platform's own connected-apps page (its sign-in says where)."""
    sign_in = registry.sign_in(cfg.kind)
    page = getattr(sign_in, "connected_apps", None)
    return Revoke(f"crosswatch auth revoke {cfg.name}", page(cfg) if callable(page) else page)


def account_entry(config: Config, cfg: TargetConfig, store: SecretStore, now: float,
                  used: dict[str, float]) -> tuple[dict[str, Any], list[str]]:
    """One account's audit and the problems it has (each says what to do)."""
    found = tokenhealth.health(cfg, store, now)
    state = status(cfg, store, clock=lambda: now)
    granted = list(found.scopes)
    extra = extra_scopes(cfg.kind, granted)
    revoke = revoke_for(cfg)
    entry: dict[str, Any] = {
        "target": cfg.name, "platform": cfg.kind, "account": found.account, "signed_in": found.signed_in,
        "scopes": granted, "needed_scopes": list(needed_scopes(cfg.kind)), "extra_scopes": extra,
        "missing_scopes": missing_scopes(cfg.kind, granted),
        "token_expires_at": iso_time(found.expires_at), "refreshable": found.refreshable,
        "refreshed_at": iso_time(found.obtained_at),
        "token_age_seconds": None if found.obtained_at is None else max(0, int(now - found.obtained_at)),
        "used_at": iso_time(used.get(cfg.name)),
        "revoke": {"command": revoke.command, "page": revoke.page},
    }
    problems = []
    if state["problem"]:
        problems.append(f"{cfg.name}: {state['problem']}")
    if extra:
        problems.append(f"{cfg.name}: the token holds scopes crosswatch does not need ({', '.join(extra)}); "
                        f"run `{revoke.command}`, then `crosswatch auth login {cfg.name}` grants only what it needs")
    if found.lapses_within(now, tokenhealth.warning_seconds(config)) and found.expires_at and found.expires_at > now:
        problems.append(f"{cfg.name}: {tokenhealth.expiring_line(found, now)}")
    return entry, problems


def keyring_entries(config: Config, store: SecretStore) -> list[str]:
    """The names of crosswatch's keyring entries that exist (service ``crosswatch``); never values."""
    names = []
    for cfg in config.targets.values():
        if registry.signs_in(cfg.kind):
            names += [token_key(cfg.name), client_secret_key(cfg.name), app_password_key(cfg.name)]
    destinations = notify.destinations(store)
    names += [notify.DESTINATIONS_KEY] + [notify.url_key(name) for name in destinations]
    names.append(PASSWORD_KEY)
    return [name for name in dict.fromkeys(names) if store.get(name) is not None]


def files_under(folder: Path) -> tuple[int, int]:
    """(files, bytes) under ``folder``; (0, 0) when there is none."""
    files = total = 0
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.is_file():
                files += 1
                total += path.stat().st_size
    return files, total


def journal_facts(config: Config, journal: Journal) -> dict[str, Any]:
    path = config.journal_path
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())
    return {"path": str(path), "bytes": size, "rows": journal.row_counts(),
            "oldest_entry": iso_time(journal.oldest_entry())}


def leftover_copies(config: Config, journal: Journal) -> list[dict[str, Any]]:
    """Media-host copies still there after their job ended (there should be none).

    A directory host is looked at (every file crosswatch named, whose job has ended or is unknown);
    for an S3 or command host, the journal's word is taken (a removal that failed after the post)."""
    found: list[dict[str, Any]] = []
    folders: dict[Path, str] = {}
    for cfg in config.targets.values():
        if cfg.media_host is not None and cfg.media_host.type == "directory" and cfg.media_host.path is not None:
            folders.setdefault(Path(cfg.media_host.path), cfg.name)
    kinds = {name: (cfg.media_host.type if cfg.media_host else None) for name, cfg in config.targets.items()}
    for job, key in journal.hosted_copies():
        if kinds.get(job.target) != "directory" and job.data.get("unhost_error"):
            found.append({"target": job.target, "job": job.id, "key": key, "where": str(job.data["unhost_error"])})
    on_the_way = journal.unfinished_hosted_keys()
    for folder, target in folders.items():
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if HOSTED_NAME.fullmatch(path.name) and path.name not in on_the_way:
                job_id = int(path.stem.rsplit("-", 1)[1])
                owner = journal.job(job_id)
                found.append({"target": owner.target if owner else target, "job": job_id, "key": path.name,
                              "where": str(path)})
    return found


def log_location() -> str:
    if service.is_macos():
        return f"{service.launchd_log_path()} (the launchd agent); stderr of `crosswatch run` otherwise"
    return f"journalctl --user -u {service.UNIT_NAME} (the systemd user service); stderr of `crosswatch run` otherwise"


def privacy_facts(journal: Journal) -> tuple[dict[str, Any], list[str]]:
    counts = journal.upload_check_counts()
    failures = journal.failed_upload_checks()
    problems = []
    for failure in failures:
        job = journal.job(int(failure["job_id"]))
        if job is not None and job.state is JobState.FAILED:
            problems.append(f"{failure['target']}: job {job.id}'s upload was blocked, its image {failure['file']} "
                            f"carried {failure['traces']}; report it, then `crosswatch retry {job.id}`")
    return {"uploads_checked": counts["checked"], "uploads_failed": counts["failed"],
            "failures": [{"job": f["job_id"], "target": f["target"], "file": f["file"], "traces": f["traces"],
                          "at": iso_time(f["at"])} for f in failures]}, problems


def audit(config: Config, journal: Journal, store: SecretStore, now: float) -> dict[str, Any]:
    """The ``audit --json`` document: accounts, what is stored where, privacy, problems."""
    problems: list[str] = []
    accounts: list[dict[str, Any]] = []
    used = journal.last_attempts()
    try:
        for cfg in config.targets.values():
            if cfg.enabled and registry.signs_in(cfg.kind):
                entry, found = account_entry(config, cfg, store, now, used)
                accounts.append(entry)
                problems += found
        entries = keyring_entries(config, store)
    except CrosswatchError as exc:  # the keyring is locked or missing: say so, show the rest
        problems.append(f"cannot read the keyring: {exc}")
        entries = []
    files, size = files_under(config.media_cache_dir)
    leftovers = leftover_copies(config, journal)
    problems += [f"{c['target']}: a copy of job {c['job']}'s image is still on the media host ({c['where']}) "
                 "after the job ended; remove it there" for c in leftovers]
    privacy, blocked = privacy_facts(journal)
    problems += blocked
    return {
        "accounts": accounts,
        "stored": {
            "keyring": {"service": store.service, "entries": entries},
            "journal": journal_facts(config, journal),
            "prepared_images": {"path": str(config.media_cache_dir), "files": files, "bytes": size},
            "media_host_copies": leftovers,
            "log": log_location(),
        },
        "privacy": privacy,
        "problems": problems,
    }


def audit_lines(document: dict[str, Any]) -> list[str]:
    """``crosswatch audit`` as text."""
    lines = ["accounts:", *account_lines(document), "stored:", *stored_lines(document)]
    lines += [f"problem: {p}" for p in document["problems"]] or ["no problems"]
    return lines


def account_lines(document: dict[str, Any]) -> list[str]:
    lines = []
    for a in document["accounts"]:
        lines.append(f"  {a['target']} ({a['platform']}): " + (f"signed in as {a['account'] or 'unknown'}"
                                                               if a["signed_in"] else "not signed in"))
        lines.append(f"    scopes: {' '.join(a['scopes']) or '(the platform does not say)'}; needed: "
                     f"{' '.join(a['needed_scopes']) or '(none named)'}"
                     + (f"; extra: {' '.join(a['extra_scopes'])}" if a["extra_scopes"] else "")
                     + (f"; missing: {' '.join(a['missing_scopes'])}" if a["missing_scopes"] else ""))
        lines.append(f"    token: expires {a['token_expires_at'] or 'never'}, "
                     f"{'refreshable' if a['refreshable'] else 'cannot be refreshed'}, "
                     f"obtained or refreshed {a['refreshed_at'] or 'never'}, last used {a['used_at'] or 'never'}")
        lines.append(f"    revoke: `{a['revoke']['command']}`" +
                     (f", or on the platform: {a['revoke']['page']}" if a["revoke"]["page"] else ""))
    return lines


def stored_lines(document: dict[str, Any]) -> list[str]:
    """What is stored where, and the upload checks: one line each, indented for the CLI."""
    from crosswatch.views import when_iso  # as the console shows times (its accounts page lists these)

    stored = document["stored"]
    journal = stored["journal"]
    return [
        f"  keyring ({stored['keyring']['service']}): {', '.join(stored['keyring']['entries']) or 'nothing'}",
        f"  journal {journal['path']}: {journal['bytes']} bytes, {sum(journal['rows'].values())} rows, "
        f"oldest entry {when_iso(journal['oldest_entry'], 'none')}",
        f"  prepared images {stored['prepared_images']['path']}: {stored['prepared_images']['files']} files, "
        f"{stored['prepared_images']['bytes']} bytes",
        f"  media host copies after their post: {len(stored['media_host_copies'])}",
        f"  log: {stored['log']}",
        f"  privacy: {document['privacy']['uploads_checked']} uploads checked before they left, "
        f"{document['privacy']['uploads_failed']} blocked",
    ]


def needs_user(document: dict[str, Any]) -> bool:
    return bool(document["problems"])

