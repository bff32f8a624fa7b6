"""Notifications: tell the user when something needs them, through Apprise (e-mail, ntfy, Telegram,
Signal, Slack, desktop and dozens more).

Destinations are Apprise URLs kept in the keyring (``notify:<name>``; they hold secrets), their names
in ``notify:destinations``. Nothing here is called by the runner: the notifier thread reads the
journal — job moves into failed / in doubt / awaiting approval after its mark, target holds (sign-in,
quota, budget) — and the accounts' token expiry, queues one outbox row per thing per destination
(``notices``: each queued once, by key), and sends what a destination has waiting as ONE message once
the oldest has waited ``notify.coalesce_seconds``. A send that fails leaves the rows unsent, logged,
and retried later with backoff; a receiver that is down delays nothing but itself.
Messages name the photo's file and the target, never a token: every text is passed through the log
redaction (known secrets and token-shaped strings) before it is queued.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from crosswatch.config import Config
from crosswatch.errors import CrosswatchError, JournalError
from crosswatch.journal import BUDGET_HOLD, Journal
from crosswatch.logs import redact_text
from crosswatch.models import JobState
from crosswatch.secrets import SecretStore

log = structlog.get_logger("crosswatch.notify")

DESTINATIONS_KEY = "notify:destinations"
MARK_KEY = "notify_events_mark"
HOLDS_SEEN_KEY = "notify_holds_seen"
DIGEST_KEY = "notify_digest_at"
NAME_SHAPE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
POLL_SECONDS = 2.0
DESTINATIONS_READ_SECONDS = 60.0
TOKEN_CHECK_SECONDS = 3600.0
RETRY_FIRST_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
DIGEST_SECONDS = 86400.0
LINES_PER_MESSAGE = 20
SEND_TIMEOUT = 30.0

_STATE_EVENTS = {JobState.FAILED: "failed", JobState.IN_DOUBT: "in_doubt",
                 JobState.AWAITING_APPROVAL: "awaiting_approval", JobState.REJECTED: "failed"}
_HOLD_EVENTS = {"auth": "sign_in_needed", "quota": "quota_or_budget", BUDGET_HOLD: "quota_or_budget"}
_TITLES = {"failed": "post failed", "in_doubt": "post in doubt", "awaiting_approval": "awaiting approval",
           "sign_in_needed": "sign-in needed", "token_expiring": "token expiring",
           "quota_or_budget": "quota or budget reached", "digest": "daily digest", "test": "test"}


class NotifyError(CrosswatchError):
    """A destination name or URL that cannot be used; the message says what to do."""


# -- destinations (the keyring) -------------------------------------------------------------------


def url_key(name: str) -> str:
    return f"notify:{name}"


def destinations(store: SecretStore) -> list[str]:
    names = (store.get_json(DESTINATIONS_KEY) or {}).get("names") or []
    return [n for n in names if isinstance(n, str)]


def check_url(url: str) -> None:
    """NotifyError unless Apprise knows the URL's scheme and can parse it (the URL is never shown)."""
    if not url or any(c.isspace() for c in url):
        raise NotifyError("expected one Apprise URL on standard input (e.g. ntfy://topic, mailto://..., "
                          "json://host:port/path); see https://github.com/caronc/apprise/wiki")
    if not _apprise_for([url]):
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        raise NotifyError(f"Apprise cannot use that URL (scheme {scheme[:20]!r}); check it against "
                          "https://github.com/caronc/apprise/wiki")


def add_destination(store: SecretStore, name: str, url: str) -> bool:
    """Keep ``url`` under ``name``; True when it replaced one of that name."""
    if not NAME_SHAPE.match(name):
        raise NotifyError(f"{name[:40]!r} is not a destination name; use lower-case letters, digits, - and _")
    url = url.strip()
    check_url(url)
    names = destinations(store)
    replaced = name in names
    store.set(url_key(name), url)
    if not replaced:
        store.set_json(DESTINATIONS_KEY, {"names": [*names, name]})
    return replaced


def remove_destination(store: SecretStore, name: str) -> bool:
    names = destinations(store)
    gone = store.delete(url_key(name))
    if name in names:
        store.set_json(DESTINATIONS_KEY, {"names": [n for n in names if n != name]})
        gone = True
    return gone


# -- sending (Apprise) ----------------------------------------------------------------------------


def _quiet_apprise() -> None:
    # Apprise logs failures with the service's URL, which may hold a password or token: keep its own
    # logger out of ours; the notifier logs the destination's name and the error's kind instead.
    logger = logging.getLogger("apprise")
    logger.propagate = False
    logger.setLevel(logging.CRITICAL + 1)
    # Apprise's e-mail plugin imports the standard library's imghdr, deprecated on 3.11 and 3.12
    # (removed in 3.13, where Apprise shims it): imported once here, silently, it is not warned again.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with contextlib.suppress(ImportError):
            importlib.import_module("imghdr")


def _apprise_for(urls: Sequence[str]) -> Any:
    import apprise

    _quiet_apprise()
    # Memory only (Apprise writes no state of its own into the home folder, read-only under the
    # service's hardening); a destination that hangs gives up after SEND_TIMEOUT seconds.
    asset = apprise.AppriseAsset(app_id="crosswatch", app_desc="crosswatch", async_mode=False,
                                 storage_mode="memory", service_timeout=SEND_TIMEOUT, secure_logging=True)
    sender = apprise.Apprise(asset=asset)
    return sender if all(sender.add(url) for url in urls) else None


Send = Callable[[str, str, str], bool]


def apprise_send(url: str, title: str, body: str) -> bool:
    """One message to one destination; False when Apprise could not deliver it."""
    sender = _apprise_for([url])
    return bool(sender and sender.notify(title=title, body=body))


# -- what a message says -------------------------------------------------------------------------


def _photo_name(path: str) -> str:
    return Path(path).name


def _clean(text: str | None, limit: int = 300) -> str:
    one_line = " ".join((text or "").split())
    return redact_text(one_line[:limit])


def job_line(event: str, path: str, target: str, detail: str | None) -> str:
    why = f": {_clean(detail)}" if detail else ""
    return f"{_TITLES[event]}: {_photo_name(path)} on {target}{why}"


def message(items: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(title, body) of one message for all of ``items`` (rows of the outbox), most urgent first."""
    kinds = sorted({i["event"] for i in items})
    title = "crosswatch: " + (_TITLES[kinds[0]] if len(kinds) == 1 else f"{len(items)} things need you")
    if len(items) == 1:
        title = "crosswatch: " + _TITLES[items[0]["event"]]
    lines = [i["text"] for i in items[:LINES_PER_MESSAGE]]
    if len(items) > LINES_PER_MESSAGE:
        lines.append(f"... and {len(items) - LINES_PER_MESSAGE} more (crosswatch status)")
    return title, "\n".join(lines)


# -- token expiry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expiring:
    target: str
    expires_at: float


def expiring_tokens(config: Config, store: SecretStore, now: float, within_seconds: float) -> list[Expiring]:
    """Accounts whose token cannot be refreshed and lapses within ``within_seconds``. Uses the token
    health module when it is there (crosswatch.tokenhealth.expiring); else reads auth.status."""
    # The token-health module (issue 16, items 1-2) is merged separately: use it once it is there.
    try:
        tokenhealth: Any = importlib.import_module("crosswatch.tokenhealth")
    except ImportError:
        tokenhealth = None
    finder = getattr(tokenhealth, "expiring", None)
    if finder is not None:
        return [Expiring(str(getattr(e, "target", e)), float(getattr(e, "expires_at", 0.0)))
                for e in finder(config, store, now=now, within_seconds=within_seconds)]
    return _expiring_from_status(config, store, now, within_seconds)


def _expiring_from_status(config: Config, store: SecretStore, now: float, within_seconds: float) -> list[Expiring]:
    from crosswatch import auth
    from crosswatch.platforms import registry

    found = []
    for cfg in config.targets.values():
        if not cfg.enabled or not registry.signs_in(cfg.kind):
            continue
        state = auth.status(cfg, store, clock=lambda: now)
        remaining = state.get("expires_in_seconds")
        sign_in = registry.sign_in(cfg.kind)
        refreshes = bool(state.get("has_refresh_token")) and (sign_in is None or sign_in.refreshes_expired)
        if state.get("signed_in") and remaining is not None and remaining <= within_seconds and not refreshes:
            found.append(Expiring(cfg.name, now + float(remaining)))
    return found


# -- the notifier --------------------------------------------------------------------------------


TokenCheck = Callable[[float], list[Expiring]]
# (key, event, text, at): what the outbox keeps; the key makes it once per thing.
Item = tuple[str, str, str, float]


class Notifier:
    """Collects what needs the user from the journal into the outbox and sends it, coalesced."""

    def __init__(self, config: Config, journal: Journal, store: SecretStore, *,
                 send: Send = apprise_send, clock: Callable[[], float] = time.time,
                 token_check: TokenCheck | None = None) -> None:
        self.config = config
        self.journal = journal
        self.store = store
        self.send = send
        self.clock = clock
        self.events = set(config.notify.events)
        within = config.notify.token_warning_days * 86400.0
        self.token_check = token_check or (lambda now: expiring_tokens(config, store, now, within))
        self._tokens_checked_at = float("-inf")
        self._new_mark: int | None = None
        self._names: list[str] = []
        self._names_read_at = float("-inf")

    # one pass: collect, then send what is due ---------------------------------------------------

    def step(self) -> None:
        now = self.clock()
        if now - self._names_read_at >= DESTINATIONS_READ_SECONDS:
            # The keyring (D-Bus, a file) is asked once a minute, not every pass: `notify add` while
            # the daemon runs takes effect within the minute.
            self._names_read_at = now
            self._names = destinations(self.store)
        names = self._names
        if not names:
            return
        queued = self.collect(names)
        if queued:
            log.info("notifications queued", count=queued)
        for name in names:
            self.deliver(name)

    def collect(self, names: Sequence[str]) -> int:
        items = [*self._job_items(), *self._hold_items(), *self._token_items(), *self._digest_items()]
        wanted = [(name, key, event, text, at) for key, event, text, at in items if event in self.events
                  for name in names]
        queued = self.journal.queue_notices(wanted) if wanted else 0
        # The mark moves only once the rows are queued: a crash in between queues them again, and
        # their keys keep each one once.
        if self._new_mark is not None:
            self.journal.set_info(MARK_KEY, str(self._new_mark))
            self._new_mark = None
        return queued

    def _job_items(self) -> Iterable[Item]:
        mark_text = self.journal.info(MARK_KEY)
        if mark_text is None:
            # The first start with notifications: from now on, not the journal's whole history.
            self.journal.set_info(MARK_KEY, str(self.journal.last_event_id()))
            return []
        mark = int(mark_text)
        found = []
        while True:
            rows = self.journal.events_after(mark, list(_STATE_EVENTS))
            for row in rows:
                # Rejected in flight: the platform refused the post for good (a person's reject is
                # from pending, awaiting approval or ready, and is not news to them).
                if row["state"] == JobState.REJECTED.value and row["from"] != JobState.IN_FLIGHT.value:
                    continue
                event = _STATE_EVENTS[JobState(row["state"])]
                # The event's own time: a burst is gathered from when it happened, not when read.
                found.append((f"event:{row['id']}", event,
                              job_line(event, row["path"], row["target"], row["detail"]), float(row["at"])))
            if not rows:
                break
            mark = rows[-1]["id"]
        self._new_mark = mark
        return found

    def _hold_items(self) -> list[Item]:
        holds = {f"{h.target}:{h.kind}": h for h in self.journal.holds().values() if h.kind in _HOLD_EVENTS}
        seen = set(json.loads(self.journal.info(HOLDS_SEEN_KEY) or "[]"))
        now = self.clock()
        found = []
        for key in sorted(set(holds) - seen):
            hold = holds[key]
            event = _HOLD_EVENTS[hold.kind]
            found.append((f"hold:{key}:{int(now)}", event,
                          f"{_TITLES[event]} on {hold.target}: {_clean(hold.reason)}", now))
        # A hold lifted (a new sign-in, a new month) is forgotten, so the next one is told again.
        if set(holds) != seen:
            self.journal.set_info(HOLDS_SEEN_KEY, json.dumps(sorted(holds)))
        return found

    def _token_items(self) -> list[Item]:
        now = self.clock()
        if now - self._tokens_checked_at < TOKEN_CHECK_SECONDS:
            return []
        self._tokens_checked_at = now
        found = []
        try:
            for item in self.token_check(now):
                days = max(0.0, (item.expires_at - now) / 86400.0)
                when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(item.expires_at))
                found.append((f"token:{item.target}:{int(item.expires_at)}", "token_expiring",
                              f"token expiring on {item.target}: it lapses in {days:.1f} days ({when}) and "
                              f"cannot be refreshed; run `crosswatch auth login {item.target}` before then", now))
        except CrosswatchError as exc:  # the keyring locked: try again next hour
            log.warning("cannot read the accounts' tokens for notifications", error=str(exc))
        return found

    def _digest_items(self) -> list[Item]:
        if "digest" not in self.events:
            return []
        now = self.clock()
        last = self.journal.info(DIGEST_KEY)
        if last is None:
            self.journal.set_info(DIGEST_KEY, str(now))
            return []
        since = float(last)
        if now - since < DIGEST_SECONDS:
            return []
        done = self.journal.done_between(since, now)
        self.journal.set_info(DIGEST_KEY, str(now))
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        lines = [f"daily digest: {len(done)} posted since {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(since))}"]
        lines += [f"{_photo_name(d['path'])} on {d['target']}" + (f": {d['permalink']}" if d["permalink"] else "")
                  for d in done[:LINES_PER_MESSAGE]]
        return [(f"digest:{day}", "digest", "\n".join(lines), now)]

    def deliver(self, name: str) -> bool | None:
        """Send what ``name`` has waiting as one message once the oldest has waited the coalescing
        time; None when nothing was due."""
        now = self.clock()
        waiting = self.journal.unsent_notices(name)
        if not waiting:
            return None
        if now - min(w["at"] for w in waiting) < self.config.notify.coalesce_seconds:
            return None
        if now < max(w["next_try_at"] for w in waiting):
            return None
        url = self.store.get(url_key(name))
        ids = [w["id"] for w in waiting]
        if url is None:
            self.journal.notices_failed(ids, now + RETRY_MAX_SECONDS, "no URL in the keyring")
            log.error("notification destination has no URL; run `crosswatch notify add NAME`", destination=name)
            return False
        title, body = message(waiting)
        try:
            sent = self.send(url, title, body)
            error = "the destination did not take it"
        except Exception as exc:  # a plugin's own failure; its text may hold the URL, so only its kind
            sent, error = False, type(exc).__name__
        if sent:
            self.journal.notices_sent(ids)
            log.info("notification sent", destination=name, items=len(ids))
            return True
        attempts = max(w["attempts"] for w in waiting)
        delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** attempts)
        self.journal.notices_failed(ids, now + delay, error)
        log.warning("notification failed; will try again", destination=name, items=len(ids),
                    error=error, retry_seconds=round(delay))
        return False

    # the thread ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event, poll_seconds: float = POLL_SECONDS) -> None:
        while not stop.is_set():
            try:
                self.step()
            except (JournalError, CrosswatchError) as exc:
                log.error("notifications paused; will try again", error=str(exc))
            stop.wait(poll_seconds)


def send_test(store: SecretStore, names: Sequence[str], send: Send = apprise_send) -> dict[str, bool]:
    """One test message to each of ``names``; name -> delivered."""
    results = {}
    for name in names:
        url = store.get(url_key(name))
        if url is None:
            results[name] = False
            continue
        try:
            results[name] = send(url, "crosswatch: test",
                                 f"a test from crosswatch to destination {name}: notifications work")
        except Exception:
            results[name] = False
    return results
