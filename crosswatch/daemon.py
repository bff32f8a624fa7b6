"""The daemon: wires config, journal, intake, watcher and runner together; signals; systemd notify.

Threads: watchdog's observer feeds ``Intake.offer``; the intake thread takes settled files and
rescans now and then; the runner thread performs due jobs; with ``bridge.enabled`` the bridge thread
polls Instagram for new posts to re-share on X (bridge.py); the main thread waits for a signal and
pings systemd's watchdog. Each thread that writes the journal has its own SQLite connection.

SIGTERM and SIGINT stop gracefully: the runner finishes the step in progress (or leaves the job to
be recovered at the next start), intake stops between files, and the journal lock is released.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import httpx
import structlog

from crosswatch.bridge import Bridge
from crosswatch.config import Config
from crosswatch.errors import JournalError
from crosswatch.existing import settle_existing_photos
from crosswatch.journal import DaemonLock, Journal, JournalStall, backup_due, backup_interval, keep_marker
from crosswatch.models import JobState
from crosswatch.runner import Runner, TokenSource
from crosswatch.targets import build_targets
from crosswatch.targets.base import Target
from crosswatch.watcher import Intake, Watcher

log = structlog.get_logger("crosswatch.daemon")

INTAKE_TICK_SECONDS = 0.25
RUNNER_IDLE_SECONDS = 5.0
# run --once waits for steps due within this long (Instagram containers finishing, short retries).
ONCE_HORIZON_SECONDS = 120.0
# While the journal cannot be written (disk full), posting pauses and the journal is tried this often.
JOURNAL_RETRY_SECONDS = 5.0
# The journal is backed up when its newest backup is backup_interval() old (a day); looked at this often.
BACKUP_CHECK_SECONDS = 600.0
# Platform requests time out after this long (connect: 10 s); tests shorten it to provoke timeouts.
HTTP_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_ENV = "CROSSWATCH_HTTP_TIMEOUT"


def http_timeout() -> httpx.Timeout:
    try:
        seconds = float(os.environ.get(HTTP_TIMEOUT_ENV, "") or HTTP_TIMEOUT_SECONDS)
    except ValueError:
        seconds = HTTP_TIMEOUT_SECONDS
    seconds = seconds if seconds > 0 else HTTP_TIMEOUT_SECONDS
    return httpx.Timeout(seconds, connect=min(10.0, seconds))


def sd_notify(message: str) -> bool:
    """Send one sd_notify message when running under systemd (Type=notify); else do nothing."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("sd_notify failed", error=str(exc))
        return False
    return True


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec, if it asked this process for pings."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


TokenFactory = Callable[[Config, httpx.Client], dict[str, TokenSource]]


def platform_tokens(config: Config, client: httpx.Client) -> dict[str, TokenSource]:
    """A token source (keyring-backed, refreshing) for every enabled platform target."""
    from crosswatch.auth import token_provider
    from crosswatch.secrets import SecretStore

    store = SecretStore()
    return {name: token_provider(target, store, client, config.state_dir)
            for name, target in config.targets.items() if target.enabled and target.kind in ("x", "instagram")}


class Daemon:
    def __init__(self, config: Config, *, token_factory: TokenFactory | None = None,
                 targets: dict[str, Target] | None = None, existing: str | None = None) -> None:
        self.config = config
        # What to do with the photos in the folders when the journal is new where another was (existing.py).
        self._existing = existing or config.intake.existing
        self._stall = JournalStall(config.journal_path)
        self.stop_event = threading.Event()
        self.wake_runner = threading.Event()
        self._token_factory = token_factory or platform_tokens
        self._targets = targets
        self._errors: list[BaseException] = []

    def request_stop(self) -> None:
        """Stop as SIGTERM would (for embedding, e.g. `crosswatch demo`)."""
        self.stop_event.set()
        self.wake_runner.set()

    # -- signals -----------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        self.request_stop()

    @contextmanager
    def _signals(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    # -- wiring ------------------------------------------------------------------------------------

    @contextmanager
    def _parts(self) -> Iterator[tuple[Intake, Runner]]:
        lock = DaemonLock(self.config.journal_path)
        lock.acquire()
        intake_journal = Journal(self.config.journal_path)
        runner_journal = Journal(self.config.journal_path)
        client = httpx.Client(timeout=http_timeout(),
                              headers={"User-Agent": "crosswatch/0.1"})
        try:
            targets = self._targets if self._targets is not None else build_targets(self.config)
            tokens = self._token_factory(self.config, client)
            settle_existing_photos(self.config, intake_journal, self._existing)
            intake = Intake(self.config, intake_journal, on_new_jobs=self.wake_runner.set)
            runner = Runner(self.config, runner_journal, targets, client=client, tokens=tokens)
            runner.stop_when(self.stop_event.is_set)
            with self._backups(intake_journal.journal_id):
                yield intake, runner
        finally:
            client.close()
            runner_journal.close()
            intake_journal.close()
            lock.release()

    @contextmanager
    def _backups(self, journal_id: str) -> Iterator[None]:
        """A thread that backs the journal up at once when its newest backup is a day old, then daily.
        At the stop, state_dir/journal.id is put back if it went (the state folder was removed while
        the daemon ran), so the next start sees that its new journal is not the first and asks."""
        stop = threading.Event()
        thread = threading.Thread(target=self._backup_loop, args=(stop,), name="backup", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=60)
            self._stall.clear()  # a stopped daemon reports nothing (its pid may be another's later)
            try:
                keep_marker(self.config.journal_path, journal_id)
            except JournalError as exc:
                log.error("cannot keep the journal's marker", error=str(exc))

    def _backup_loop(self, stop: threading.Event) -> None:
        interval = backup_interval()
        while True:
            # A journal gone from its path is not recreated here (an empty one would be backed up).
            if self.config.journal_path.exists() and backup_due(self.config.journal_path, interval):
                try:
                    with Journal(self.config.journal_path) as journal:
                        log.info("journal backed up", backup=str(journal.backup()))
                except JournalError as exc:
                    log.error("cannot back up the journal; will try again", error=str(exc))
            if stop.wait(min(interval, BACKUP_CHECK_SECONDS)):
                return

    # -- modes -------------------------------------------------------------------------------------

    def run_forever(self) -> int:
        with self._signals(), self._parts() as (intake, runner):
            runner.recover()
            watcher = Watcher(self.config, intake) if self.config.intake.use_events else None
            if watcher:
                watcher.start()
            threads = [
                threading.Thread(target=self._guard(self._intake_loop, intake), name="intake", daemon=True),
                threading.Thread(target=self._guard(self._runner_loop, runner), name="runner", daemon=True),
            ]
            if self.config.bridge.enabled:
                threads.append(threading.Thread(target=self._guard(self._bridge_loop, runner), name="bridge",
                                                daemon=True))
            for thread in threads:
                thread.start()
            sd_notify("READY=1\nSTATUS=watching " + ", ".join(str(f.path) for f in self.config.watch))
            log.info("watching", folders=[str(f.path) for f in self.config.watch],
                     targets=sorted(runner.targets))
            ping = watchdog_interval()
            while not self.stop_event.wait(ping or 1.0):
                if ping:
                    sd_notify("WATCHDOG=1")
            sd_notify("STOPPING=1")
            if watcher:
                watcher.stop()
            for thread in threads:
                thread.join(timeout=60)
        if self._errors:
            log.error("stopped after an internal error", error=repr(self._errors[0]))
            return 1
        log.info("stopped")
        return 0

    def _guard(self, loop: Callable[[object], None], part: object) -> Callable[[], None]:
        def guarded() -> None:
            try:
                loop(part)
            except BaseException as exc:  # a dead thread must stop the daemon, not leave it half-alive
                log.exception("internal error", thread=threading.current_thread().name)
                self._errors.append(exc)
                self.stop_event.set()
                self.wake_runner.set()

        return guarded

    def _intake_loop(self, part: object) -> None:
        assert isinstance(part, Intake)
        intake = part
        intake.scan()
        next_scan = time.monotonic() + self.config.intake.rescan_seconds
        while not self.stop_event.is_set():
            try:
                if intake.process():
                    self._stall.clear()
            except JournalError as exc:
                # The files stay candidates (and the rescan finds them again): nothing is lost.
                log.error("cannot record new photos; will try again", error=str(exc))
                self._stall.report(str(exc))
                self.stop_event.wait(JOURNAL_RETRY_SECONDS)
                continue
            if time.monotonic() >= next_scan:
                found = intake.scan()
                if found:
                    log.info("rescan found files", count=found)
                next_scan = time.monotonic() + self.config.intake.rescan_seconds
            self.stop_event.wait(INTAKE_TICK_SECONDS)

    def _bridge_loop(self, part: object) -> None:
        assert isinstance(part, Runner)
        with Journal(self.config.journal_path) as journal:
            bridge = self._bridge(part, journal)
            while not self.stop_event.is_set():
                if bridge.poll():
                    self.wake_runner.set()
                self.stop_event.wait(self.config.bridge.poll_seconds)

    def _bridge(self, runner: Runner, journal: Journal) -> Bridge:
        """The bridge shares the runner's HTTP client and token sources, with its own journal connection."""
        assert runner.client is not None
        return Bridge(self.config, journal, runner.client, runner.tokens.get(self.config.bridge.source))

    def _runner_loop(self, part: object) -> None:
        assert isinstance(part, Runner)
        runner = part
        while not self.stop_event.is_set():
            try:
                if runner.run_due():
                    continue
            except JournalError as exc:
                self._wait_for_journal(runner, exc)
                continue
            next_due = runner.journal.next_due_at()
            wait = RUNNER_IDLE_SECONDS if next_due is None else max(0.05, min(RUNNER_IDLE_SECONDS,
                                                                              next_due - time.time()))
            self.wake_runner.wait(wait)
            self.wake_runner.clear()

    def _wait_for_journal(self, runner: Runner, exc: JournalError) -> None:
        """The journal refused a write (disk full, I/O error): posting pauses until it takes writes
        again. What the failed write would have recorded is recovered as after a crash: a job left in
        flight goes back to ready, or to in doubt (and is checked with the platform) after an unsafe
        step, so nothing is lost and nothing is posted twice."""
        log.error("the journal cannot be written; posting is paused until it can", error=str(exc))
        self._stall.report(str(exc))  # for `status` and `doctor`
        while not self.stop_event.wait(JOURNAL_RETRY_SECONDS):
            try:
                runner.recover()
            except JournalError as again:
                log.error("the journal still cannot be written", error=str(again))
                self._stall.report(str(again))
                continue
            log.info("trying the journal again; posting resumes")
            self._stall.clear()
            return

    def run_once(self, *, settle_timeout: float = 600.0) -> int:
        """Scan, take every settled file, perform every due job and the steps that follow soon, exit."""
        with self._signals(), self._parts() as (intake, runner):
            runner.recover()
            intake.scan()
            deadline = time.monotonic() + settle_timeout
            while intake.pending() and time.monotonic() < deadline and not self.stop_event.is_set():
                intake.process()
                if intake.pending():
                    self.stop_event.wait(INTAKE_TICK_SECONDS)
            if self.config.bridge.enabled:
                self._bridge(runner, runner.journal).poll()
            while not self.stop_event.is_set():
                if runner.run_due():
                    continue
                next_due = runner.journal.next_due_at()
                if next_due is None or next_due - time.time() > ONCE_HORIZON_SECONDS:
                    break
                self.stop_event.wait(max(0.05, next_due - time.time()))
            waiting = runner.journal.jobs(state=JobState.READY)
            if waiting:
                log.info("left waiting for later", jobs=len(waiting))
        return 0
