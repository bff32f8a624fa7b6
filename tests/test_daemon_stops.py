"""The daemon as a real subprocess, where it must stop or tell: a stuck thread silences the systemd
watchdog, a journal removed under it stops it, and `run --once` ends while a target cannot sign in."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from crosswatch.daemon import IMAGE_PREP_SECONDS, Allowances, Liveness, left_over
from crosswatch.emulator import DEFAULT_X_CLIENT_ID, Emulator, EmulatorServer
from crosswatch.emulator.httputil import x_blank_problem
from crosswatch.journal import Journal, NewFile
from crosswatch.models import JobState
from tests.conftest import REPO, DaemonProcess, cli_env, wait_until, write_config
from tests.test_platforms_e2e import done_count, photo, platform_config, sign_in

StartDaemon = Callable[..., DaemonProcess]


class NotifyListener:
    """The unix datagram socket systemd listens on (NOTIFY_SOCKET): every message, with when it came."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.messages: list[tuple[float, str]] = []
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(address)
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                text = self._socket.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), text))

    def pings(self, since: float = 0.0) -> list[float]:
        return [at for at, text in list(self.messages) if text == "WATCHDOG=1" and at >= since]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@contextmanager
def notify_listener(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(str(tmp_path / "notify.sock"))
    try:
        yield listener
    finally:
        listener.close()


def events(daemon: DaemonProcess, name: str) -> list[dict[str, object]]:
    return [line for line in daemon.log_lines() if line.get("event") == name]


def wait_for_event(daemon: DaemonProcess, name: str, timeout: float) -> float:
    """Wait until the log has ``name``; returns the monotonic time it was seen."""
    wait_until(lambda: bool(events(daemon, name)), timeout=timeout, interval=0.02)
    return time.monotonic()


# ---------------------------------------------------------------------------------------------------
# The watchdog sees a stuck thread

HTTP_TIMEOUT = 1.0
# Allowances.for_timeout: a platform request may take three times the HTTP timeout.
REQUEST_ALLOWANCE = 3 * HTTP_TIMEOUT
# The main thread looks every ping interval (0.2 s here); what a loaded two-core machine adds.
SLACK = 2.5


def test_a_runner_stuck_in_a_request_stops_the_watchdog_pings_and_is_named(
        workspace: dict[str, Path], start_daemon: StartDaemon, live_emulator: Emulator, hosted: Path,
        tmp_path: Path) -> None:
    with EmulatorServer(live_emulator) as server, notify_listener(tmp_path) as systemd:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        daemon = start_daemon(config, env={"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "400000",
                                           "CROSSWATCH_HTTP_TIMEOUT": str(HTTP_TIMEOUT),
                                           "CROSSWATCH_HANG": "runner"})
        daemon.wait_for_log("watching")
        # Healthy: every thread idle by choice, so the pings come (every 0.2 s), for longer than any
        # request allowance.
        healthy_from = time.monotonic()
        time.sleep(REQUEST_ALLOWANCE + 1)
        assert len(systemd.pings(healthy_from)) >= 8, systemd.messages
        assert not events(daemon, "thread stuck")

        (workspace["inbox"] / "p0.jpg").write_bytes(photo(0))
        hung_at = wait_for_event(daemon, "test hook: this thread hangs until the daemon stops", timeout=30)
        stuck_seen = wait_for_event(daemon, "thread stuck", timeout=REQUEST_ALLOWANCE + SLACK + 5)
        assert stuck_seen - hung_at <= REQUEST_ALLOWANCE + SLACK
        last_ping = max(systemd.pings())
        assert last_ping - hung_at <= REQUEST_ALLOWANCE + SLACK
        # Busy within its allowance is not stuck: the pings went on for a while after the hang began.
        assert systemd.pings(since=hung_at + 1.0), "pings stopped before the request's allowance ran out"
        time.sleep(2.0)  # ten ping intervals: none may come while the runner is stuck
        assert systemd.pings(since=stuck_seen + 0.3) == []
        [stuck] = events(daemon, "thread stuck")  # one line, naming the thread
        assert stuck["thread"] == "runner"
        assert "systemd restarts crosswatch" in str(stuck["consequence"])
        assert daemon.process.poll() is None
        assert daemon.stop() == 0


# ---------------------------------------------------------------------------------------------------
# A journal removed under a running daemon


def remove_state_folder(state: Path) -> None:
    shutil.rmtree(state)


def replace_journal(state: Path) -> None:
    journal = state / "journal.sqlite3"
    copy = state / "journal.copy"
    shutil.copy(journal, copy)
    os.replace(copy, journal)


@pytest.mark.parametrize("lose", [remove_state_folder, replace_journal], ids=["folder-removed", "file-replaced"])
def test_a_journal_removed_under_the_daemon_stops_it_and_nothing_more_is_posted(
        lose: Callable[[Path], None], workspace: dict[str, Path], start_daemon: StartDaemon,
        live_emulator: Emulator, hosted: Path) -> None:
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted)
        sign_in(config, live_emulator)
        daemon = start_daemon(config)
        daemon.wait_for_log("watching")
        (workspace["inbox"] / "first.jpg").write_bytes(photo(1))
        wait_until(lambda: done_count(workspace["state"]) == 2, timeout=60)
        lose(workspace["state"])
        for seed in range(2, 5):
            (workspace["inbox"] / f"later-{seed}.jpg").write_bytes(photo(seed))
        assert daemon.process.wait(timeout=30) == 1, daemon.log_path.read_text()[-3000:]
        time.sleep(1.0)  # anything still on its way would have reached the emulator by now
    gone = events(daemon, "the journal is gone; stopping")
    assert len(gone) == 1, daemon.log_path.read_text()[-3000:]
    assert "removed or replaced while crosswatch was running" in str(gone[0]["reason"])
    assert not [line for line in daemon.log_lines() if line.get("level") == "error" and line not in gone]
    assert len(live_emulator.x_posts()) == 1
    assert len(live_emulator.ig_posts()) == 1


# ---------------------------------------------------------------------------------------------------
# run --once while a target's sign-in is refused


def revoke_x_sign_in(server: EmulatorServer, live_emulator: Emulator, tokens: list[str]) -> None:
    """The user revoked crosswatch's access on X: every token of the consent is dead."""
    answer = httpx.post(f"{server.url}/2/oauth2/revoke", data={"token": tokens[0], "client_id": DEFAULT_X_CLIENT_ID})
    assert answer.status_code == 200


def refuse_x_tokens(server: EmulatorServer, live_emulator: Emulator, tokens: list[str]) -> None:
    """X refuses every access token, even a freshly refreshed one (the app was suspended)."""
    live_emulator.respond_with("x.media.upload", 401, x_blank_problem(401, "Unauthorized"), times=None)


def run_once(config: Path, timeout: float, env: dict[str, str] | None = None
             ) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "crosswatch.cli", "--config", str(config), "run", "--once"],
                            capture_output=True, text=True, timeout=timeout, env=cli_env(env), cwd=REPO)
    return result, time.monotonic() - started


@pytest.mark.parametrize("refuse", [revoke_x_sign_in, refuse_x_tokens], ids=["revoked", "refused"])
def test_run_once_ends_while_x_refuses_the_sign_in_and_says_what_to_do(
        refuse: Callable[[EmulatorServer, Emulator, list[str]], None], workspace: dict[str, Path],
        live_emulator: Emulator, hosted: Path) -> None:
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted, logging={"format": "json", "level": "warning"})
        tokens = sign_in(config, live_emulator)
        refuse(server, live_emulator, tokens)
        for seed in range(2):
            (workspace["inbox"] / f"p{seed}.jpg").write_bytes(photo(seed))
        # The sign-in hold (60 s) is looked at again long before --once's window ends; --once must
        # not wait for it.
        result, took = run_once(config, timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    assert took < 45, took
    plain = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    [x_line] = [line for line in plain if line.startswith("x: ")]
    assert x_line.startswith("x: sign-in needed, 2 photos waiting: ")
    assert x_line.endswith("run `crosswatch auth login x`")
    assert not [line for line in plain if line.startswith("instagram: ")]
    assert live_emulator.x_posts() == []
    assert len(live_emulator.ig_posts()) == 2
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        states = {job.target: job.state for job in journal.jobs()}
        assert states == {"x": JobState.READY, "instagram": JobState.DONE}
        assert journal.holds()["x"].kind == "auth"


def test_run_once_ends_at_a_rate_limit_that_lasts_past_its_window(workspace: dict[str, Path],
                                                                   live_emulator: Emulator, hosted: Path) -> None:
    reset = int(time.time()) + 3600
    with EmulatorServer(live_emulator) as server:
        config = platform_config(workspace, server.url, hosted, logging={"format": "json", "level": "warning"})
        sign_in(config, live_emulator)
        live_emulator.inject("x.media.upload", "respond", status=429, body=x_blank_problem(429),
                             headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                                      "x-rate-limit-reset": str(reset)})
        (workspace["inbox"] / "p0.jpg").write_bytes(photo(0))
        result, took = run_once(config, timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    assert took < 45, took
    plain = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    [x_line] = [line for line in plain if line.startswith("x: ")]
    assert x_line.startswith("x: 1 photo waiting until ") and "(rate limited: X answered 429" in x_line, x_line
    assert len(live_emulator.ig_posts()) == 1 and live_emulator.x_posts() == []


def test_run_once_ends_before_a_schedule_window_and_says_when(workspace: dict[str, Path]) -> None:
    opens = (time.gmtime().tm_hour + 3) % 24
    schedule = {"timezone": "UTC", "targets": {"outbox": {"windows": [f"daily {opens:02d}:00-{opens:02d}:30"]}}}
    config = write_config(workspace, schedule=schedule)
    for seed in range(2):
        (workspace["inbox"] / f"p{seed}.jpg").write_bytes(photo(seed))
    result, _took = run_once(config, timeout=120, env={"TZ": "UTC"})  # the line gives local time
    assert result.returncode == 1, result.stderr[-3000:]
    plain = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert plain == [line for line in plain if line.startswith("outbox: 2 photos waiting, the next until ")]
    assert len(plain) == 1 and f"{opens:02d}:00:00" in plain[0] and "scheduled" in plain[0], plain
    assert not list(workspace["outbox"].glob("*.jpg"))


def test_liveness_counts_a_thread_stuck_only_when_busy_past_its_own_allowance() -> None:
    now = [100.0]
    liveness = Liveness(clock=lambda: now[0])
    liveness.watch("intake", Allowances.for_timeout(30.0).intake)
    liveness.watch("worker", 5.0)
    assert liveness.stuck() == {}
    now[0] += 6.0
    assert liveness.stuck() == {"worker": 6.0}  # its own 5 s passed; intake's 240 s have not

    def in_worker(action: Callable[[], None]) -> None:
        thread = threading.Thread(target=action, name="worker")
        thread.start()
        thread.join()

    in_worker(liveness.idle)  # waiting by choice: never late, however long
    now[0] += 3600.0
    assert liveness.stuck() == {"intake": 3606.0}
    in_worker(lambda: liveness.beat(2.0))
    liveness.beat(0.0)  # the main thread is not watched: no effect
    now[0] += 1.0
    assert set(liveness.stuck()) == {"intake"}
    now[0] += 1.5
    assert liveness.stuck()["worker"] == 2.5


def test_allowances_follow_the_http_timeout() -> None:
    default = Allowances.for_timeout(30.0)
    assert default.request == 90.0  # connect, send, answer: each may take the whole timeout
    assert default.answer == 60.0  # the body, then the journal commit (SQLite waits up to 30 s)
    assert default.step > IMAGE_PREP_SECONDS  # preparing the image fits between two steps
    assert Allowances.for_timeout(1.0).request == 3.0


def test_what_run_once_leaves_is_said_per_target_and_only_work_not_done_fails_it(tmp_path: Path) -> None:
    now = time.time()
    with Journal(tmp_path / "journal.sqlite3") as journal:
        journal.add_files([NewFile(path=str(tmp_path / f"p{n}.jpg"), size=1, mtime_ns=n, content_hash=f"h{n}",
                                   targets=("x", "instagram", "feed"), approval=frozenset({"feed"}))
                           for n in range(2)])
        assert left_over(journal, now)[1]  # ready jobs left: not done
        for job in journal.jobs(state=JobState.READY):
            journal.transition(job.id, JobState.IN_FLIGHT)
            if job.target == "x":
                journal.transition(job.id, JobState.IN_DOUBT, reason="no answer from api.x.com to post",
                                   next_attempt_at=now + 5)
            else:
                journal.transition(job.id, JobState.DONE)
        lines, unfinished = left_over(journal, now)
        assert unfinished
        assert lines == [
            "x: 2 photos in doubt (no answer from api.x.com to post); checked with the platform at the next "
            "run: `crosswatch status` shows how to settle each",
            "feed: 2 photos awaiting approval; `crosswatch queue` lists them, `crosswatch approve ID` sends one",
        ]
        for job in journal.jobs(state=JobState.IN_DOUBT):
            journal.transition(job.id, JobState.DONE)
        lines, unfinished = left_over(journal, now)
        assert not unfinished and len(lines) == 1 and lines[0].startswith("feed: 2 photos awaiting approval")
