"""The daemon: wires config, journal, intake, watcher and runner together; signals; systemd notify.

Threads: watchdog's observer feeds ``Intake.offer``; the intake thread takes settled files and
rescans now and then; the runner thread performs due jobs; with ``bridge.enabled`` the bridge thread
polls Instagram for new posts to re-share on its targets (bridge.py); the main thread waits for a signal and
pings systemd's watchdog, but only while each of those threads makes progress or waits by choice
(``Liveness``), and stops the daemon if the journal file is removed or replaced under it. Each thread
that writes the journal has its own SQLite connection.

SIGTERM and SIGINT stop gracefully: the runner finishes the step in progress (or leaves the job to
be recovered at the next start), intake stops between files, and the journal lock is released.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import httpx
import structlog

from crosswatch import views
from crosswatch.analytics import DAEMON_TICK_SECONDS as ANALYTICS_TICK_SECONDS
from crosswatch.analytics import Collector, api_bases
from crosswatch.bridge import Bridge
from crosswatch.config import Config
from crosswatch.errors import CrosswatchError, JournalError
from crosswatch.existing import settle_existing_photos
from crosswatch.jobs import JobContexts
from crosswatch.journal import (
    DaemonLock,
    Hold,
    Journal,
    JournalGone,
    JournalStall,
    backup_due,
    backup_interval,
    keep_marker,
)
from crosswatch.models import Job, JobState
from crosswatch.platforms import registry
from crosswatch.platforms.base import JobContext, Target
from crosswatch.platforms.registry import build_targets
from crosswatch.runner import NEVER, Runner, TokenSource
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
# New jobs have their captions composed ahead of `queue` (twitter-text's answers kept) up to this many queued jobs.
COMPOSE_AHEAD_AT_MOST = 50
# Platform requests time out after this long (connect: 10 s); tests shorten it to provoke timeouts.
HTTP_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_ENV = "CROSSWATCH_HTTP_TIMEOUT"


def http_timeout() -> httpx.Timeout:
    seconds = http_timeout_seconds()
    return httpx.Timeout(seconds, connect=min(10.0, seconds))


def http_timeout_seconds() -> float:
    try:
        seconds = float(os.environ.get(HTTP_TIMEOUT_ENV, "") or HTTP_TIMEOUT_SECONDS)
    except ValueError:
        seconds = HTTP_TIMEOUT_SECONDS
    return seconds if seconds > 0 and math.isfinite(seconds) else HTTP_TIMEOUT_SECONDS


# -- liveness: what the systemd watchdog is told -----------------------------------------------------

# Tests only: CROSSWATCH_HANG=intake|runner|bridge makes that thread block as a stuck request would
# (runner, bridge: inside their next platform request; intake: at its next pass) until the daemon
# stops, so the watchdog's reaction can be seen.
HANG_ENV = "CROSSWATCH_HANG"
# The Journal opens SQLite with timeout=30: a write may wait this long for another writer's lock.
JOURNAL_BUSY_SECONDS = 30.0
# Preparing one photo for every target: decoding up to media.max_pixels (120 MP by default),
# resizing and encoding takes a few seconds on a desktop and tens on a small board under load.
IMAGE_PREP_SECONDS = 90.0
# One intake pass: a batch of up to 200 settled files, each read, hashed and decoded at 1/8 scale
# (up to a second each from a slow disk or a network share), then one journal commit; or one
# rescan walking the folders.
INTAKE_PASS_SECONDS = 240.0


@dataclass(frozen=True)
class Allowances:
    """How long each piece of work may keep a thread busy before the thread counts as stuck.

    ``request``: connecting (at most min(10 s, the HTTP timeout)), then sending the body and waiting
    for the answer, each of which httpx lets take up to the timeout. ``answer``: reading the body
    (the timeout again), then committing the outcome (a journal write). ``step``: from one step or
    job to the next platform request: the sign-in (the refresh lock may wait out another process's
    refresh, one request), preparing the image, and the journal writes that record the start.
    """

    request: float
    answer: float
    step: float
    intake: float = INTAKE_PASS_SECONDS

    @classmethod
    def for_timeout(cls, seconds: float) -> Allowances:
        request = 3 * seconds
        return cls(request=request, answer=seconds + JOURNAL_BUSY_SECONDS,
                   step=request + IMAGE_PREP_SECONDS + JOURNAL_BUSY_SECONDS)


class Liveness:
    """Each watched thread is either busy until a deadline or idle (waiting by choice).

    A thread ``beat``s whenever it makes progress, saying how long its next piece of work may take;
    it is ``idle`` while it sleeps or waits for its condition. A thread still busy past its deadline is
    stuck, and the daemon stops pinging systemd's watchdog until it moves again.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}
        self._since: dict[str, float] = {}

    def watch(self, name: str, seconds: float) -> None:
        with self._lock:
            self._due[name] = self._clock() + seconds
            self._since[name] = self._clock()

    def beat(self, seconds: float) -> None:
        """The calling thread made progress; its next piece of work may take ``seconds``."""
        name = threading.current_thread().name
        with self._lock:
            if name in self._due:  # only watched threads (not the main thread, nor `run --once`)
                now = self._clock()
                self._due[name], self._since[name] = now + seconds, now

    def idle(self) -> None:
        """The calling thread waits by choice; it cannot be late until it beats again."""
        self.beat(math.inf)

    def stuck(self) -> dict[str, float]:
        """Watched threads past their deadline, with how long they have been busy."""
        now = self._clock()
        with self._lock:
            return {name: now - self._since[name] for name, due in self._due.items() if now > due}


class _PreparingContexts(JobContexts):
    """Job contexts whose building (preparing the image) gives the runner its image allowance."""

    def __init__(self, config: Config, journal: Journal, liveness: Liveness, allowances: Allowances) -> None:
        super().__init__(config, journal)
        self._liveness = liveness
        self._allowances = allowances

    def build(self, job: Job, *, access_token: str | None = None, account_id: str | None = None,
              username: str | None = None, need_image: bool = True) -> JobContext:
        self._liveness.beat(IMAGE_PREP_SECONDS + JOURNAL_BUSY_SECONDS)
        try:
            return super().build(job, access_token=access_token, account_id=account_id, username=username,
                                 need_image=need_image)
        finally:
            self._liveness.beat(self._allowances.step)


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
            for name, target in config.targets.items() if target.enabled and registry.signs_in(target.kind)}


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
        self.liveness = Liveness()
        self.allowances = Allowances.for_timeout(http_timeout_seconds())
        self._journal_gone: JournalGone | None = None
        self._gone_lock = threading.Lock()

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
                              headers={"User-Agent": "crosswatch/0.1"},
                              # Every request sent and every answer received is progress of the
                              # thread that made it (runner, bridge, their sign-ins).
                              event_hooks={"request": [self._request_sent], "response": [self._answer_received]})
        try:
            targets = self._targets if self._targets is not None else build_targets(self.config)
            tokens = self._token_factory(self.config, client)
            settle_existing_photos(self.config, intake_journal, self._existing)
            intake = Intake(self.config, intake_journal, on_new_jobs=lambda: self._new_jobs(intake_journal))
            contexts = _PreparingContexts(self.config, runner_journal, self.liveness, self.allowances)
            runner = Runner(self.config, runner_journal, targets, client=client, tokens=tokens, contexts=contexts)
            runner.stop_when(self._between_steps)
            with self._backups(intake_journal.journal_id), self._notifications():
                yield intake, runner
        finally:
            client.close()
            runner_journal.close()
            intake_journal.close()
            lock.release()

    def _new_jobs(self, journal: Journal) -> None:
        """New jobs: the runner looks at once; and their captions are composed as `queue` shows them,
        so that twitter-text's answers for them are kept (twitter_counting.remember_in, set by `run`)
        and a `queue` soon after need not import it (0.25 s of its start)."""
        self.wake_runner.set()
        try:
            # Each new photo calls this: past a short queue, composing every waiting caption again
            # would cost intake more than `queue`'s start-up is worth (and `queue` is slow then anyway).
            if len(views.queued(journal.jobs())) <= COMPOSE_AHEAD_AT_MOST:
                views.queue_lines(self.config, journal, time.time())
        except Exception as exc:  # only a head start for `queue`: never a reason for intake to stop
            log.warning("captions not composed ahead of `queue`", error=str(exc))

    # -- liveness ----------------------------------------------------------------------------------

    def _between_steps(self) -> bool:
        """The runner asks this between steps and jobs: progress, and whether to stop."""
        self.liveness.beat(self.allowances.step)
        return self.stop_event.is_set()

    def _request_sent(self, _request: httpx.Request) -> None:
        self.liveness.beat(self.allowances.request)
        self._hang_if_asked()

    def _answer_received(self, _response: httpx.Response) -> None:
        self.liveness.beat(self.allowances.answer)

    def _hang_if_asked(self) -> None:
        """Test hook (CROSSWATCH_HANG): block this thread until the daemon stops."""
        name = threading.current_thread().name
        if os.environ.get(HANG_ENV) == name:
            log.warning("test hook: this thread hangs until the daemon stops", thread=name, hook=HANG_ENV)
            self.stop_event.wait()

    def _rest(self, event: threading.Event, seconds: float, busy_for: float) -> bool:
        """Wait by choice (idle for the watchdog), then be busy for up to ``busy_for``."""
        self.liveness.idle()
        try:
            return event.wait(seconds)
        finally:
            self.liveness.beat(busy_for)

    def _watch_threads(self, journal: Journal) -> None:
        """The main thread's loop until a stop: ping systemd's watchdog while every thread is moving
        (a stuck one stops the pings, so systemd restarts the service) and check that the journal is
        still the file at its path."""
        ping = watchdog_interval()
        tick = max(0.05, min(ping, 1.0)) if ping else 1.0
        next_ping = 0.0
        reported: set[str] = set()
        while not self.stop_event.wait(tick):
            try:
                journal.check_in_place()
            except JournalGone as exc:
                self._lose_journal(exc)
                return
            stuck = self.liveness.stuck()
            for name in sorted(stuck.keys() - reported):
                log.error("thread stuck", thread=name, busy_seconds=round(stuck[name], 1),
                          consequence=("no more watchdog pings: systemd restarts crosswatch" if ping
                                       else "crosswatch does not move on by itself; restart it"))
            for name in sorted(reported - stuck.keys()):
                log.info("thread moving again", thread=name)
            reported = set(stuck)
            if ping and not stuck and time.monotonic() >= next_ping:
                sd_notify("WATCHDOG=1")
                next_ping = time.monotonic() + ping

    def _lose_journal(self, exc: JournalGone) -> None:
        """The journal file was removed or replaced: say so once, and stop taking and posting."""
        with self._gone_lock:
            first = self._journal_gone is None
            self._journal_gone = self._journal_gone or exc
        if first:
            log.error("the journal is gone; stopping", reason=str(exc))
        self.request_stop()

    @contextmanager
    def _backups(self, journal_id: str) -> Iterator[None]:
        """A thread that backs the journal up at once when its newest backup is a day old, then daily.
        At the stop, state_dir/journal.id is put back if it went (the state folder was removed while
        the daemon ran), so the next start sees that its new journal is not the first and asks."""
        try:
            with _background(self._backup_loop, "backup", join_seconds=60):
                yield
        finally:
            self._stall.clear()  # a stopped daemon reports nothing (its pid may be another's later)
            try:
                keep_marker(self.config.journal_path, journal_id)
            except JournalError as exc:
                log.error("cannot keep the journal's marker", error=str(exc))

    @contextmanager
    def _notifications(self) -> Iterator[None]:
        """The notifier's own thread and journal connection: it reads what the runner wrote and
        sends it (crosswatch/notify.py); a slow or dead receiver never holds up posting."""
        from crosswatch.notify import Notifier
        from crosswatch.secrets import SecretStore

        journal = Journal(self.config.journal_path)
        # A send in progress may take its timeout: the stop waits 5 s, the outbox keeps what was unsent.
        notifier = Notifier(self.config, journal, SecretStore())
        thread: threading.Thread | None = None
        try:
            with _background(notifier.run, "notify", join_seconds=5) as thread:
                yield
        finally:
            if thread is None or not thread.is_alive():  # one still sending keeps its connection
                journal.close()

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
            if self.config.analytics.enabled:
                threads.append(threading.Thread(target=self._guard(self._analytics_loop, runner),
                                                name="analytics", daemon=True))
            for thread in threads:
                self.liveness.watch(thread.name, self.allowances.intake if thread.name == "intake"
                                    else self.allowances.step)
                thread.start()
            sd_notify("READY=1\nSTATUS=watching " + ", ".join(str(f.path) for f in self.config.watch))
            log.info("watching", folders=[str(f.path) for f in self.config.watch],
                     targets=sorted(runner.targets))
            self._watch_threads(intake.journal)
            sd_notify("STOPPING=1")
            if watcher:
                watcher.stop()
            for thread in threads:
                thread.join(timeout=60)
        if self._journal_gone is not None:
            return 1
        if self._errors:
            log.error("stopped after an internal error", error=repr(self._errors[0]))
            return 1
        log.info("stopped")
        return 0

    def _guard(self, loop: Callable[[object], None], part: object) -> Callable[[], None]:
        def guarded() -> None:
            try:
                loop(part)
            except JournalGone as exc:
                self._lose_journal(exc)
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
        pass_allowance = self.allowances.intake
        while not self.stop_event.is_set():
            self._hang_if_asked()
            try:
                if intake.process():
                    self._stall.clear()
            except JournalError as exc:
                # The files stay candidates (and the rescan finds them again): nothing is lost.
                log.error("cannot record new photos; will try again", error=str(exc))
                self._stall.report(str(exc))
                self._rest(self.stop_event, JOURNAL_RETRY_SECONDS, pass_allowance)
                continue
            self.liveness.beat(pass_allowance)
            if time.monotonic() >= next_scan:
                found = intake.scan()
                if found:
                    log.info("rescan found files", count=found)
                next_scan = time.monotonic() + self.config.intake.rescan_seconds
            self._rest(self.stop_event, INTAKE_TICK_SECONDS, pass_allowance)

    def _bridge_loop(self, part: object) -> None:
        assert isinstance(part, Runner)
        with Journal(self.config.journal_path) as journal:
            bridge = self._bridge(part, journal)
            while not self.stop_event.is_set():
                if bridge.poll():
                    self.wake_runner.set()
                self._rest(self.stop_event, self.config.bridge.poll_seconds, self.allowances.step)

    def _bridge(self, runner: Runner, journal: Journal) -> Bridge:
        """The bridge shares the runner's HTTP client and token sources, with its own journal connection."""
        assert runner.client is not None
        return Bridge(self.config, journal, runner.client, runner.tokens.get(self.config.bridge.source))

    def _analytics_loop(self, part: object) -> None:
        """Read due post metrics now and then (analytics.py); its own journal connection, the runner's
        HTTP client and token sources. A failed pass is logged and tried again; posting goes on."""
        assert isinstance(part, Runner)
        with Journal(self.config.journal_path) as journal:
            collector = self._collector(part, journal)
            while not self.stop_event.is_set():
                try:
                    collector.collect()
                except CrosswatchError as exc:  # the journal refused a write, a token store failed
                    log.error("cannot read or record metrics; will try again", error=str(exc))
                self._rest(self.stop_event, ANALYTICS_TICK_SECONDS, self.allowances.step)

    def _collector(self, runner: Runner, journal: Journal) -> Collector:
        assert runner.client is not None
        return Collector(self.config, journal, runner.client, runner.tokens, api_bases=api_bases(runner.tokens))

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
            self._rest(self.wake_runner, wait, self.allowances.step)
            self.wake_runner.clear()

    def _wait_for_journal(self, runner: Runner, exc: JournalError) -> None:
        """The journal refused a write (disk full, I/O error): posting pauses until it takes writes
        again. What the failed write would have recorded is recovered as after a crash: a job left in
        flight goes back to ready, or to in doubt (and is checked with the platform) after an unsafe
        step, so nothing is lost and nothing is posted twice."""
        log.error("the journal cannot be written; posting is paused until it can", error=str(exc))
        self._stall.report(str(exc))  # for `status` and `doctor`
        while not self._rest(self.stop_event, JOURNAL_RETRY_SECONDS, self.allowances.step):
            try:
                runner.recover()
            except JournalError as again:
                log.error("the journal still cannot be written", error=str(again))
                self._stall.report(str(again))
                continue
            log.info("trying the journal again; posting resumes")
            self._stall.clear()
            return

    def run_once(self, *, settle_timeout: float = 600.0, report: Callable[[str], None] | None = None) -> int:
        """Scan, take every settled file, perform every due job and the steps that follow soon, exit.

        It ends when nothing left can go out within its window (``settle_timeout``, and steps due
        within ONCE_HORIZON_SECONDS): 0 when nothing is left waiting but photos awaiting approval,
        else 1, with one line per waiting target saying why (``report``; stderr by default)."""
        try:
            lines, unfinished = self._run_once(settle_timeout)
        except JournalGone as exc:
            self._lose_journal(exc)
            return 1
        if self.stop_event.is_set():
            return 0  # stopped by a signal: what is left waits for the next run, as asked
        for line in lines:
            (report or _to_stderr)(line)
        return 1 if unfinished else 0

    def _run_once(self, settle_timeout: float) -> tuple[list[str], bool]:
        window_end = time.time() + settle_timeout
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
            self._post_due(runner, window_end)
            if self.config.analytics.enabled:
                self._collector(runner, runner.journal).collect()
            waiting = runner.journal.jobs(state=JobState.READY)
            if waiting:
                log.info("left waiting for later", jobs=len(waiting))
            return left_over(runner.journal, time.time())

    def _post_due(self, runner: Runner, window_end: float) -> None:
        """Perform what is due, and wait for what becomes due soon: within ONCE_HORIZON_SECONDS and
        before the window ends. A job whose target is held past that, or held for a sign-in, does not
        keep --once running; nor does a job in doubt (its check is made if due while others run)."""
        while not self.stop_event.is_set():
            if runner.run_due():
                continue
            now = time.time()
            next_start = earliest_start(runner.journal, now)
            if next_start is None or next_start - now > ONCE_HORIZON_SECONDS or next_start > window_end:
                return
            self.stop_event.wait(max(0.05, next_start - now))


@contextmanager
def _background(loop: Callable[[threading.Event], None], name: str, *,
                join_seconds: float) -> Iterator[threading.Thread]:
    """``loop(stop)`` on a daemon thread while the block runs; at its end, stop is set and the thread
    given ``join_seconds`` to finish."""
    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(stop,), name=name, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=join_seconds)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def earliest_start(journal: Journal, now: float) -> float | None:
    """When the next ready job may start, its target's hold included; None when none can start by
    itself. A sign-in hold ends at a new sign-in, not at its ``until`` (that is only when crosswatch
    looks at the sign-in again), so its target's jobs cannot start by themselves."""
    holds = journal.holds(now)
    starts = []
    for job in journal.jobs(state=JobState.READY):
        hold = holds.get(job.target)
        if hold is not None and hold.kind == "auth":
            continue
        starts.append(max(job.next_attempt_at, hold.until if hold else 0.0))
    return min(starts, default=None)


def left_over(journal: Journal, now: float) -> tuple[list[str], bool]:
    """One line per target with jobs still waiting (ready, in doubt, awaiting approval) saying why,
    and whether any of them is work not done (anything but photos awaiting someone's approval)."""
    holds = journal.holds(now)
    lines: list[str] = []
    for state, describe in ((JobState.READY, _ready_line), (JobState.IN_DOUBT, _in_doubt_line),
                            (JobState.AWAITING_APPROVAL, _approval_line)):
        by_target: dict[str, list[Job]] = {}
        for job in journal.jobs(state=state):
            by_target.setdefault(job.target, []).append(job)
        lines += [describe(target, jobs, holds.get(target)) for target, jobs in sorted(by_target.items())]
    unfinished = bool(journal.jobs(state=JobState.READY) or journal.jobs(state=JobState.IN_DOUBT))
    return lines, unfinished


def _photos(jobs: list[Job]) -> str:
    return f"{len(jobs)} photo{'' if len(jobs) == 1 else 's'}"


def _ready_line(target: str, jobs: list[Job], hold: Hold | None) -> str:
    if hold is not None and hold.kind == "auth":
        hint = "" if "auth login" in hold.reason else f"; run `crosswatch auth login {target}`"
        return f"{target}: sign-in needed, {_photos(jobs)} waiting: {hold.reason}{hint}"
    if hold is not None:
        kind = hold.kind.replace("_", " ")
        return f"{target}: {_photos(jobs)} waiting until {views.when(hold.until)} ({kind}: {hold.reason})"
    first = min(jobs, key=lambda job: job.next_attempt_at)
    why = f" ({first.reason})" if first.reason else ""
    return f"{target}: {_photos(jobs)} waiting, the next until {views.when(first.next_attempt_at)}{why}"


def _in_doubt_line(target: str, jobs: list[Job], _hold: Hold | None) -> str:
    first = jobs[0]
    why = f" ({first.reason})" if first.reason else ""
    later = "checked with the platform at the next run" if first.next_attempt_at < NEVER else "left to you"
    return f"{target}: {_photos(jobs)} in doubt{why}; {later}: `crosswatch status` shows how to settle each"


def _approval_line(target: str, jobs: list[Job], _hold: Hold | None) -> str:
    return (f"{target}: {_photos(jobs)} awaiting approval; `crosswatch queue` lists them, "
            "`crosswatch approve ID` sends one")
