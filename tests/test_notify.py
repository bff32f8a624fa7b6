"""Notifications end to end: real posts against the emulator (Mastodon, in-process), the real journal,
the notifier reading it, and Apprise's json:// plugin posting to a real local HTTP receiver."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crosswatch.auth.tokens import load_tokens, save_tokens
from crosswatch.cli import cli
from crosswatch.models import JobState
from crosswatch.notify import Notifier, NotifyError, add_destination, destinations, remove_destination
from crosswatch.secrets import SecretStore
from tests.conftest import run_cli
from tests.fault_harness import Rig, make_rig
from tests.openapi_check import XOpenAPI

COALESCE = 30.0


class Receiver:
    """A tiny HTTP server that keeps every JSON body posted to it; ``mode``: ok, down (503), hang."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.requests = 0
        self.mode = "ok"
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests += 1
                if receiver.mode == "hang":
                    receiver.release.wait(10)
                if receiver.mode == "down":
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.messages.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        # rto: Apprise's read timeout, short so a hanging receiver costs the test little.
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook?rto=2"

    def lines(self) -> list[str]:
        return [line for m in self.messages for line in m["message"].splitlines()]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def rig(workspace: dict[str, Path], x_openapi: XOpenAPI) -> Iterator[Rig]:
    made = make_rig(workspace, x_openapi, targets=("mastodon",),
                    config_extra={"notify": {"coalesce_seconds": COALESCE}})
    yield made
    made.close()


def notifier_for(rig: Rig, receiver: Receiver) -> Notifier:
    store = SecretStore()
    add_destination(store, "phone", receiver.url)
    notifier = Notifier(rig.config, rig.journal, store, clock=rig.clock)
    notifier.step()  # the first pass sets the mark: what was in the journal before is not news
    return notifier


def settle(rig: Rig, notifier: Notifier) -> None:
    """As the notifier's loop does: a pass reads what is new, the next (past the gathering time) sends."""
    notifier.step()
    rig.clock.advance(COALESCE + 1)
    notifier.step()


def test_failed_in_doubt_sign_in_and_expiring_token_each_arrive_once(rig: Rig, receiver: Receiver) -> None:
    # A token that cannot be refreshed and lapses in 3 days.
    tokens = load_tokens(SecretStore(), "mastodon")
    assert tokens is not None and tokens.refresh_token is None
    save_tokens(SecretStore(), "mastodon", replace(tokens, expires_at=rig.clock() + 3 * 86400))
    notifier = notifier_for(rig, receiver)
    # A post the platform refuses: failed.
    rig.emulator.respond_with("mastodon.statuses.create", 422,
                              {"error": "Validation failed: Text character limit of 500 exceeded"})
    rig.add_photos(1, first_seed=0)
    rig.drive()
    # A post whose answer was lost: in doubt.
    rig.emulator.stall("mastodon.statuses.create", 0.0, after_applying=True)
    rig.add_photos(1, first_seed=1)
    rig.drive(until=lambda: any(j.state is JobState.IN_DOUBT for j in rig.jobs()))
    notifier.step()
    assert receiver.messages == [], "sent before the burst was gathered"
    # The token refused: sign-in needed (a hold on the target).
    for issued in rig.emulator.state.mastodon.tokens.values():
        issued.revoked = True
    rig.add_photos(1, first_seed=2)
    rig.drive(until=lambda: "auth" in {h.kind for h in rig.journal.holds().values()})
    settle(rig, notifier)
    for _ in range(3):
        settle(rig, notifier)  # nothing is sent twice

    lines = receiver.lines()
    assert len(receiver.messages) == 1, receiver.messages
    failed = [ln for ln in lines if ln.startswith("post failed:")]
    in_doubt = [ln for ln in lines if ln.startswith("post in doubt:")]
    sign_in = [ln for ln in lines if ln.startswith("sign-in needed on mastodon")]
    expiring = [ln for ln in lines if ln.startswith("token expiring on mastodon")]
    assert len(failed) == len(in_doubt) == len(sign_in) == len(expiring) == 1, lines
    assert "photo-0000.jpg on mastodon" in failed[0] and "character limit of 500" in failed[0]
    assert "photo-0001.jpg on mastodon" in in_doubt[0]
    assert "crosswatch auth login mastodon" in sign_in[0]
    assert "lapses in 3.0 days" in expiring[0]
    stored = load_tokens(SecretStore(), "mastodon")
    assert stored is not None
    body = json.dumps(receiver.messages)
    assert stored.access_token not in body and receiver.url.split("?")[0] not in body
    assert receiver.messages[0]["title"] == "crosswatch: 4 things need you"


def test_fifty_failures_in_a_burst_arrive_as_a_few_messages(rig: Rig, receiver: Receiver) -> None:
    notifier = notifier_for(rig, receiver)
    rig.emulator.respond_with("mastodon.statuses.create", 422,
                              {"error": "Validation failed: Text character limit of 500 exceeded"}, times=None)
    rig.add_photos(50)
    rig.drive(on_round=notifier.step)  # the notifier runs beside the runner as the burst happens
    assert sum(j.state is JobState.REJECTED for j in rig.jobs()) == 50  # refused for good
    settle(rig, notifier)
    settle(rig, notifier)
    assert 1 <= len(receiver.messages) <= 3, [m["title"] for m in receiver.messages]
    listed = [ln for ln in receiver.lines() if ln.startswith("post failed:")]
    more = sum(int(m) for m in re.findall(r"\.\.\. and (\d+) more", "\n".join(receiver.lines())))
    assert len(listed) + more == 50
    assert len(set(listed)) == len(listed)


def test_a_receiver_that_is_down_loses_nothing_and_delays_no_post(rig: Rig, receiver: Receiver) -> None:
    notifier = notifier_for(rig, receiver)
    rig.emulator.respond_with("mastodon.statuses.create", 422, {"error": "Validation failed: nope"})
    rig.add_photos(1)
    rig.drive()
    rig.clock.advance(COALESCE + 1)
    # The receiver hangs: the notifier's own thread waits on it while the runner posts.
    receiver.mode = "hang"
    stop = threading.Event()
    thread = threading.Thread(target=notifier.run, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while receiver.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.requests >= 1
        started = time.monotonic()
        rig.add_photos(3, first_seed=10)
        rig.drive()
        posting_took = time.monotonic() - started
    finally:
        stop.set()
        thread.join(10)
    assert sum(j.state is JobState.DONE for j in rig.jobs()) == 3
    assert posting_took < 1.5, posting_took
    assert receiver.messages == []
    # It is down now (503): still nothing lost, and the next try waits its backoff.
    receiver.mode = "down"
    receiver.release.set()
    rig.clock.advance(3600)
    notifier.step()
    waiting = rig.journal.unsent_notices("phone")
    assert len(waiting) == 1 and waiting[0]["attempts"] >= 2
    # Back up: the failure arrives, once.
    receiver.mode = "ok"
    rig.clock.advance(3600)
    notifier.step()
    notifier.step()
    assert len(receiver.messages) == 1 and "photo-0000.jpg on mastodon" in receiver.messages[0]["message"]
    assert rig.journal.unsent_notices("phone") == []


def test_the_outbox_survives_a_restart(rig: Rig, receiver: Receiver) -> None:
    notifier = notifier_for(rig, receiver)
    receiver.mode = "down"
    rig.emulator.respond_with("mastodon.statuses.create", 422, {"error": "Validation failed: nope"})
    rig.add_photos(1)
    rig.drive()
    settle(rig, notifier)
    assert receiver.messages == [] and len(rig.journal.unsent_notices("phone")) == 1
    # A new notifier (the daemon restarted) sends what the old one could not, and nothing again.
    receiver.mode = "ok"
    again = Notifier(rig.config, rig.journal, SecretStore(), clock=rig.clock)
    rig.clock.advance(3600)
    again.step()
    again.step()
    assert len(receiver.messages) == 1 and receiver.lines()[0].startswith("post failed: photo-0000.jpg")


def test_destinations_live_in_the_keyring_and_bad_ones_are_refused() -> None:
    store = SecretStore()
    assert add_destination(store, "ntfy", "ntfys://example.invalid/crosswatch-topic") is False
    assert add_destination(store, "ntfy", "ntfys://example.invalid/other") is True
    assert destinations(store) == ["ntfy"]
    with pytest.raises(NotifyError, match="not a destination name"):
        add_destination(store, "Bad Name", "json://localhost")
    with pytest.raises(NotifyError, match="Apprise cannot use that URL"):
        add_destination(store, "nope", "nosuchscheme://secret-value")
    assert remove_destination(store, "ntfy") and destinations(store) == []
    assert not remove_destination(store, "ntfy")


def test_notify_commands_never_echo_the_url(workspace: dict[str, Path], receiver: Receiver) -> None:
    from tests.conftest import write_config

    config = write_config(workspace)
    secret_url = receiver.url.replace("json://", "json://user:Sekr3tPassw0rd@")
    added = run_cli("notify", "add", "hook", config=config, input=secret_url + "\n")
    assert added.returncode == 0, added.stderr
    tested = run_cli("notify", "test", config=config)
    assert tested.returncode == 0, tested.stderr
    assert "hook: sent" in tested.stdout
    bad = run_cli("notify", "add", "other", config=config, input="nosuchscheme://Sekr3tPassw0rd\n")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    # The rest in-process (each subprocess pays for importing Apprise).
    listed = CliRunner().invoke(cli, ["--config", str(config), "notify", "list"])
    assert "hook: 0 sent, 0 waiting" in listed.output
    removed = CliRunner().invoke(cli, ["notify", "remove", "hook"])
    assert removed.exit_code == 0 and "removed notification destination hook" in removed.output
    for output in (added.stdout + added.stderr, tested.stdout + tested.stderr, bad.stdout + bad.stderr,
                   listed.output, removed.output):
        assert "Sekr3tPassw0rd" not in output
    assert receiver.messages[0]["title"] == "crosswatch: test"


def test_a_budget_hold_and_the_daily_digest(workspace: dict[str, Path], x_openapi: XOpenAPI,
                                            receiver: Receiver) -> None:
    rig = make_rig(workspace, x_openapi, targets=("mastodon",),
                   config_extra={"notify": {"coalesce_seconds": COALESCE,
                                            "events": ["quota_or_budget", "digest", "failed"]}})
    try:
        notifier = notifier_for(rig, receiver)
        rig.add_photos(2)
        rig.drive()
        assert all(j.state is JobState.DONE for j in rig.jobs())
        rig.journal.set_hold("mastodon", rig.clock() + 86400, "budget", "the monthly budget is spent")
        rig.journal.set_hold("mastodon", rig.clock() + 2 * 86400, "budget", "the monthly budget is spent")
        settle(rig, notifier)
        assert receiver.lines() == ["quota or budget reached on mastodon: the monthly budget is spent"]
        rig.clock.advance(86400)
        settle(rig, notifier)
        digest = receiver.messages[-1]
        assert digest["title"] == "crosswatch: daily digest"
        lines = digest["message"].splitlines()
        assert lines[0].startswith("daily digest: 2 posted since")
        assert sorted(ln.split(":")[0] for ln in lines[1:]) == ["photo-0000.jpg on mastodon",
                                                                 "photo-0001.jpg on mastodon"]
        settle(rig, notifier)
        assert len(receiver.messages) == 2
    finally:
        rig.close()
