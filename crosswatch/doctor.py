"""What ``crosswatch doctor`` says about the targets and the bridge, as (ok, line) pairs.

Every target gets the same questions, asked of its platform through the registry, so a new platform
needs nothing here: signed in and until when (``auth.status``, where the platform signs in), any hold
and this month's spend (the journal), the platform's own quota where its target reads one before a
step (the target's ``quota_check``, a ``QuotaCheck``: Instagram's publishing limit; the read also
shows the platform answers), else whether the platform answers and knows the token (the sign-in's
account lookup, where the platform does not charge for it), the media host where the platform fetches images from a URL
(``needs_media_host``), and whatever the platform checks for itself (its package's ``doctor``: the
outbox's folder). The CLI prints them; the console can show the same list.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import httpx

from crosswatch import spend
from crosswatch.config import Config, TargetConfig
from crosswatch.errors import CrosswatchError
from crosswatch.journal import Journal
from crosswatch.platforms import registry
from crosswatch.platforms.base import QuotaCheck, account_context

Check = tuple[bool, str]


def target_checks(config: Config, client: httpx.Client) -> list[Check]:
    results: list[Check] = []
    for target in config.targets.values():
        results += _target_checks(config, target, client)
    return results


def _target_checks(config: Config, target: TargetConfig, client: httpx.Client) -> list[Check]:
    own = registry.doctor(target.kind)
    results = _sign_in(config, target, client) if registry.signs_in(target.kind) else []
    results += _server_limits(config, target)
    if registry.limits(target.kind).needs_media_host:
        results.append(_media_host(target, client))
    return results + (own(target) if own else [])


def _server_limits(config: Config, target: TargetConfig) -> list[Check]:
    """The limits the target's server told (Mastodon's instance), and when; nothing for fixed ones."""
    from crosswatch import platform_info

    if platform_info.reader(target) is None:
        return []
    with Journal(config.journal_path) as journal:
        told = platform_info.describe(journal, target)
    return [(True, f"target {target.name}: {told}")] if told else []


def _sign_in(config: Config, target: TargetConfig, client: httpx.Client) -> list[Check]:
    from crosswatch import auth
    from crosswatch.secrets import SecretStore

    name = target.name
    try:
        state = auth.status(target, SecretStore())
    except CrosswatchError as exc:
        return [(False, f"target {name}: {exc}")]
    if state["problem"]:
        results = [(False, f"target {name}: {state['problem']}")]
    else:
        who = state["username"] or state["account_id"] or "unknown account"
        results = [(True, f"target {name}: signed in as {who}, token expires {state['expires_at'] or 'never'}")]
        results += _token_lapse(config, target)
    if state["analytics_problem"]:
        results.append((False, f"target {name}: {state['analytics_problem']}"))
    with Journal(config.journal_path) as journal:
        hold = journal.holds(time.time()).get(name)
        spent_here = spend.month_spend(config, journal, time.time()).get(name)
    if hold:
        results.append((hold.kind not in ("auth", "paused"),
                        f"target {name}: waiting until {_when(hold.until)}: {hold.reason}"))
    if spent_here is not None:
        results.append((True, f"target {name}: {spend.spend_line(spent_here)}"))
    if not state["problem"]:
        check = _quota_check(target)
        reachable = _quota(target, check, client) if check is not None else _lookup(target, client)
        results += [reachable] if reachable is not None else []
    return results


def _token_lapse(config: Config, target: TargetConfig) -> list[Check]:
    """A token that nothing can renew and that lapses within notify.token_warning_days."""
    from crosswatch import tokenhealth
    from crosswatch.secrets import SecretStore

    now = time.time()
    try:
        found = tokenhealth.health(target, SecretStore(), now)
    except CrosswatchError as exc:
        return [(False, f"target {target.name}: {exc}")]
    if found.lapses_within(now, tokenhealth.warning_seconds(config)):
        return [(False, f"target {target.name}: {tokenhealth.expiring_line(found, now)}")]
    return []


def _lookup(target: TargetConfig, client: httpx.Client) -> Check | None:
    """Whether the platform answers and knows the token: the sign-in's account lookup. Not where the
    platform charges per call (X bills it as a read, $0.010): doctor spends nothing."""
    from crosswatch import auth, pricing
    from crosswatch.secrets import SecretStore

    sign_in = registry.sign_in(target.kind)
    tokens = auth.load_tokens(SecretStore(), target.name)
    if sign_in is None or tokens is None or pricing.charges(target.kind):
        return None
    try:
        account_id, username = sign_in.lookup_account(target, client, tokens.access_token)
    except CrosswatchError as exc:
        return False, f"target {target.name}: the platform refused the token: {exc}"
    except httpx.HTTPError as exc:
        return False, f"target {target.name}: cannot reach the platform ({type(exc).__name__})"
    return True, f"target {target.name}: the platform answers, for {username or account_id}"


def _quota_check(target: TargetConfig) -> QuotaCheck | None:
    try:
        built = registry.build_target(target)
    except CrosswatchError:  # e.g. no media host yet: its own line says so
        return None
    check = getattr(built, "quota_check", None)
    return check if isinstance(check, QuotaCheck) else None


def _quota(target: TargetConfig, check: QuotaCheck, client: httpx.Client) -> Check:
    """The platform's quota as the account stands now (a read; it spends nothing)."""
    from crosswatch import auth
    from crosswatch.secrets import SecretStore

    name = target.name
    label = str(getattr(check, "label", f"{check.step} quota"))
    tokens = auth.load_tokens(SecretStore(), name)
    if tokens is None:
        return False, f"target {name}: not signed in; run `crosswatch auth login {name}`"
    try:
        response = client.send(check.build(account_context(name, tokens.access_token, tokens.account_id)))
        response.read()
    except Exception as exc:  # any transport failure is one line here, never a traceback
        return False, f"target {name}: cannot read the {label} ({type(exc).__name__})"
    quota = check.parse(response)
    if quota is None or quota.total is None:
        return False, f"target {name}: cannot read the {label} (HTTP {response.status_code})"
    hours = (quota.duration or 86400) / 3600
    text = f"target {name}: {label} {quota.used} of {quota.total} used in the last {hours:g} h"
    return True, text + ("; posts wait until it frees" if quota.remaining == 0 else "")


def _media_host(target: TargetConfig, client: httpx.Client) -> Check:
    from crosswatch.hosting import build_host, verify_host

    name, media_host = target.name, target.media_host
    if media_host is None:
        label = registry.limits(target.kind).image.label
        return False, f"target {name}: no media_host; {label} fetches images from a public URL"
    try:
        with tempfile.TemporaryDirectory(prefix="crosswatch-doctor-") as scratch:
            url = verify_host(build_host(media_host), client, Path(scratch))
    except CrosswatchError as exc:
        return False, f"target {name}: media host ({media_host.type}): {exc}"
    return True, f"target {name}: media host ({media_host.type}) serves files at {url.split('?')[0]}"


def bridge_checks(config: Config) -> list[Check]:
    bridge = config.bridge
    if not bridge.enabled:
        return []
    head = f"bridge {bridge.source} -> {', '.join(bridge.targets)}"
    with Journal(config.journal_path) as journal:
        baseline = journal.bridge_baseline(bridge.source)
        counts = journal.bridge_counts(bridge.source)
    if baseline is None:
        platform = registry.limits(config.targets[bridge.source].kind).image.label
        return [(True, f"{head}: starts with the daemon (posts already on {platform} are left alone"
                       + (f", but the last {bridge.backfill}" if bridge.backfill else "") + ")")]
    return [(True, f"{head}: re-shared {counts.get('bridged', 0)}, left alone {counts.get('skipped', 0)}")]


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
