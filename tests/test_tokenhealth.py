"""Token health: the daily refresh keeps every refreshable token alive without a post (Instagram,
Threads, X, Bluesky against the emulator, 70 days of platform time on a manual clock); a token nothing
can renew is reported days before it lapses by status, doctor and a notification (once)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from crosswatch import tokenhealth, views
from crosswatch.auth.tokens import TokenSet, load_tokens, save_tokens
from crosswatch.models import JobState
from crosswatch.notify import Notifier, add_destination
from crosswatch.secrets import SecretStore
from tests.conftest import run_cli
from tests.fault_harness import Rig, make_rig
from tests.openapi_check import XOpenAPI
from tests.test_notify import Receiver

DAY = 86400.0
ALL = ("x", "instagram", "threads", "bluesky", "mastodon")


@pytest.fixture
def rig(workspace: dict[str, Path], x_openapi: XOpenAPI) -> Iterator[Rig]:
    made = make_rig(workspace, x_openapi, targets=ALL, config_extra={"notify": {"coalesce_seconds": 30}})
    yield made
    made.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def stored(name: str) -> TokenSet:
    tokens = load_tokens(SecretStore(), name)
    assert tokens is not None
    return tokens


def test_every_refreshable_token_is_renewed_daily_without_a_post(rig: Rig) -> None:
    signed_in = {name: stored(name) for name in ALL}
    ig_expiry = signed_in["instagram"].expires_at
    assert ig_expiry is not None and ig_expiry - rig.clock() > 50 * DAY
    # 70 days, one runner pass a day, nothing to post: longer than an Instagram or Threads token lives.
    for _day in range(70):
        rig.clock.advance(DAY + 60)
        assert rig.runner.run_due() == 0
    now = rig.clock()
    for name in ("x", "instagram", "threads", "bluesky"):
        tokens = stored(name)
        assert tokens.dead is None, (name, tokens.dead)
        assert tokens.access_token != signed_in[name].access_token, f"{name} was never renewed"
        assert now - tokens.obtained_at <= 2 * DAY + 120, f"{name} was last renewed too long ago"
        assert tokenhealth.health(rig.config.targets[name], SecretStore(), now).refreshable
    assert stored("instagram").expires_at is not None and stored("instagram").expires_at > now + 50 * DAY  # type: ignore[operator]
    assert stored("mastodon").access_token == signed_in["mastodon"].access_token  # never expires, never renewed
    # And the tokens work: a photo posted after the 70 days goes out everywhere.
    rig.add_photos(1)
    rig.drive()
    assert {job.target: job.state for job in rig.jobs()} == dict.fromkeys(ALL, JobState.DONE)


def test_an_instagram_token_is_not_renewed_before_it_is_a_day_old(rig: Rig) -> None:
    first = stored("instagram")
    rig.runner.run_due()
    rig.clock.advance(20 * 3600)
    rig.runner.refresh_tokens.every = 3600.0  # look often: the platform's own 24 h rule must hold
    rig.runner.run_due()
    assert stored("instagram").access_token == first.access_token
    rig.clock.advance(5 * 3600)
    rig.runner.run_due()
    assert stored("instagram").access_token != first.access_token


def test_only_unrefreshable_tokens_near_expiry_are_expiring(rig: Rig) -> None:
    now = rig.clock()
    store = SecretStore()
    # Mastodon: no refresh token; expires in 3 days. X's access token expires within hours, but its
    # refresh token renews it: not expiring. Instagram within its 60 days renews itself.
    save_tokens(store, "mastodon", replace(stored("mastodon"), expires_at=now + 3 * DAY))
    save_tokens(store, "x", replace(stored("x"), expires_at=now + 3600))
    found = tokenhealth.expiring(rig.config, store, now=now, within_seconds=7 * DAY)
    assert [f.target for f in found] == ["mastodon"]
    assert tokenhealth.expiring(rig.config, store, now=now, within_seconds=2 * DAY) == []
    # The console's "needs you" agrees: X's access token expiring in an hour is not news.
    needs = views.needs_you(rig.journal, views.accounts(rig.config, store, {}, clock=lambda: now), now)
    assert [(item.kind, item.target) for item in needs.items] == [("expiring soon", "mastodon")]
    # An Instagram token already past its date cannot be renewed any more: expiring (expired).
    save_tokens(store, "instagram", replace(stored("instagram"), expires_at=now - 10))
    assert {f.target for f in tokenhealth.expiring(rig.config, store, now=now)} == {"mastodon", "instagram"}
    line = tokenhealth.expiring_line(found[0], now)
    assert line.startswith("the mastodon token lapses in 3.0 days (") and "crosswatch auth login mastodon" in line


def test_status_doctor_and_one_notification_tell_of_a_token_about_to_lapse(rig: Rig, receiver: Receiver) -> None:
    store = SecretStore()
    tokens = stored("mastodon")
    save_tokens(store, "mastodon", replace(tokens, expires_at=rig.clock() + 3 * DAY))
    # The daemon's runner notes it (hourly); `status` reads only the journal.
    rig.runner.run_due()
    config = rig.config.source
    assert config is not None
    status = run_cli("status", config=Path(config))
    assert status.returncode == 0, status.stderr
    assert "token: the mastodon token lapses in" in status.stdout
    doctor = run_cli("doctor", config=Path(config))
    assert "FIX   target mastodon: the mastodon token lapses in" in doctor.stdout
    assert doctor.returncode == 1
    for output in (status.stdout, status.stderr, doctor.stdout, doctor.stderr):
        assert tokens.access_token not in output
    # The notification, through tokenhealth.expiring: once, however often the notifier looks.
    add_destination(store, "phone", receiver.url)
    notifier = Notifier(rig.config, rig.journal, store, clock=rig.clock)
    for _ in range(4):
        notifier.step()
        rig.clock.advance(3 * 3600)
    lines = [line for line in receiver.lines() if line.startswith("token expiring on mastodon")]
    assert len(lines) == 1, receiver.messages
    assert "lapses in 2." in lines[0] or "lapses in 3.0" in lines[0]
    assert tokens.access_token not in str(receiver.messages)
    # A new sign-in (`auth login` / `auth import` call forget_warning) takes the warning off `status`.
    tokenhealth.forget_warning(rig.journal, "mastodon")
    assert "token:" not in run_cli("status", config=Path(config)).stdout
