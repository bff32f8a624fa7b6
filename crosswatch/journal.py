"""The journal: the only module that touches sqlite3.

One SQLite file (``state_dir/journal.sqlite3``) in WAL mode with ``synchronous=FULL``: every
transaction that returns has reached the disk. Writes use ``BEGIN IMMEDIATE`` so two writers queue
instead of failing half-way. The schema version lives in ``PRAGMA user_version``; ``MIGRATIONS`` is
the ordered list of steps from an empty file to the current schema.

Tables:
    photos  one row per distinct content (sha256); a file that cannot be read is kept by path
    files   what intake last saw at each path (size, mtime), so rescans skip unchanged files
    jobs    one row per (photo, target): state, step, attempts, next attempt, platform ids
    events  append-only log of every job transition
    holds   per target: no job of it starts before ``until`` (rate limit, quota, sign-in, spam block)
    bridged every post the Instagram bridge has looked at, and what it did with it (bridge.py)
    bridge_sources  per bridged account: when the bridge started and its baseline (older posts are
            not bridged unless backfill asked for them)
    albums  one row per album folder (watch[].albums: folder) and its photos row; album_files: each
            file of an album and what became of it (member, left out, late)
    charges every call a platform bills (X: posts, media calls, each resource read), with its price
            then, for the month's spend and budget (pricing.py); a read resource once per UTC day
    metric_readings, metric_posts, metric_holds  post metrics read over time (analytics.py)

A job is never deleted. Every state change goes through ``transition``, which checks the move against
the state table in models.py and appends the event in the same transaction.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import fcntl
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosswatch.errors import JournalError, JournalLocked
from crosswatch.models import Job, JobState, Photo, check_transition

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE photos (
        id          INTEGER PRIMARY KEY,
        hash        TEXT NOT NULL UNIQUE,
        path        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        mtime       REAL NOT NULL,
        first_seen  REAL NOT NULL,
        status      TEXT NOT NULL DEFAULT 'ok',
        reason      TEXT
    );
    CREATE TABLE files (
        path        TEXT PRIMARY KEY,
        size        INTEGER NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        photo_id    INTEGER REFERENCES photos(id),
        seen_at     REAL NOT NULL
    );
    CREATE TABLE jobs (
        id              INTEGER PRIMARY KEY,
        photo_id        INTEGER NOT NULL REFERENCES photos(id),
        target          TEXT NOT NULL,
        state           TEXT NOT NULL,
        step            TEXT,
        step_index      INTEGER NOT NULL DEFAULT 0,
        intent_at       REAL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        remote_id       TEXT,
        permalink       TEXT,
        reason          TEXT,
        data            TEXT NOT NULL DEFAULT '{}',
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL,
        UNIQUE (photo_id, target)
    );
    CREATE INDEX jobs_by_state ON jobs (state, next_attempt_at);
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY,
        job_id      INTEGER NOT NULL REFERENCES jobs(id),
        at          REAL NOT NULL,
        from_state  TEXT,
        to_state    TEXT NOT NULL,
        step        TEXT,
        detail      TEXT
    );
    CREATE INDEX events_by_job ON events (job_id, id);
    """,
    # 2: target-wide holds (rate limits, quotas, sign-in needed, spam block) that survive a restart
    """
    CREATE TABLE holds (
        target  TEXT PRIMARY KEY,
        until   REAL NOT NULL,
        kind    TEXT NOT NULL,
        reason  TEXT NOT NULL,
        set_at  REAL NOT NULL
    );
    CREATE INDEX events_by_state_time ON events (to_state, at);
    """,
    # 3: the Instagram -> X bridge remembers every post it has looked at, so nothing is bridged twice
    """
    CREATE TABLE bridged (
        source      TEXT NOT NULL,
        remote_id   TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        reason      TEXT,
        photo_id    INTEGER REFERENCES photos(id),
        seen_at     REAL NOT NULL,
        PRIMARY KEY (source, remote_id)
    );
    CREATE TABLE bridge_sources (
        source       TEXT PRIMARY KEY,
        started_at   REAL NOT NULL,
        baseline_at  REAL NOT NULL
    );
    """,
    # 4: what the platforms charge (X pay-per-use): one row per billed call or read resource
    """
    CREATE TABLE charges (
        id        INTEGER PRIMARY KEY,
        target    TEXT NOT NULL,
        at        REAL NOT NULL,
        item      TEXT NOT NULL,
        usd       REAL NOT NULL,
        job_id    INTEGER REFERENCES jobs(id),
        purpose   TEXT,
        resource  TEXT,
        utc_day   TEXT
    );
    CREATE INDEX charges_by_target_time ON charges (target, at);
    CREATE UNIQUE INDEX charges_read_once_a_day ON charges (target, resource, utc_day) WHERE resource IS NOT NULL;
    """,
    # 5: the journal's own identity (also kept in state_dir/journal.id), so a journal started afresh
    # where another was before is noticed, and facts about the journal itself (restored from a backup)
    """
    CREATE TABLE journal_info (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    INSERT INTO journal_info (key, value) VALUES ('id', lower(hex(randomblob(16))));
    """,
    # 6: what a target's server says about itself (Mastodon's /api/v2/instance limits), kept so that
    # compose and media use the server's own limits, read again at most daily
    """
    CREATE TABLE platform_info (
        target     TEXT PRIMARY KEY,
        info_json  TEXT NOT NULL,
        read_at    REAL NOT NULL
    );
    """,
    # 7: the last `crosswatch links check` result of each posted job, for the console's posted page
    """
    CREATE TABLE link_checks (
        job_id  INTEGER PRIMARY KEY REFERENCES jobs(id),
        state   TEXT NOT NULL,
        detail  TEXT NOT NULL,
        at      REAL NOT NULL
    );
    """,
    # 8: the notifications outbox
    # (crosswatch/notify.py). One row per message part per destination; ``key`` says what it is about
    # (a journal event, a hold, a token's expiry) so each is queued once, and a row stays unsent until
    # the destination took it, so a receiver that is down loses nothing across restarts.
    """
    CREATE TABLE notices (
        id           INTEGER PRIMARY KEY,
        destination  TEXT NOT NULL,
        key          TEXT NOT NULL,
        event        TEXT NOT NULL,
        text         TEXT NOT NULL,
        at           REAL NOT NULL,
        sent_at      REAL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_try_at  REAL NOT NULL DEFAULT 0,
        error        TEXT,
        UNIQUE (destination, key)
    );
    CREATE INDEX notices_unsent ON notices (destination, sent_at, next_try_at);
    """,
    # 9: the upload check (crosswatch/uploadcheck.py): every prepared file re-read just before its
    # bytes left for a platform or a media host, and what private metadata it still carried (none, or
    # the traces that blocked the upload), for `crosswatch audit`
    """
    CREATE TABLE upload_checks (
        id       INTEGER PRIMARY KEY,
        job_id   INTEGER NOT NULL REFERENCES jobs(id),
        target   TEXT NOT NULL,
        step     TEXT NOT NULL,
        file     TEXT NOT NULL,
        ok       INTEGER NOT NULL,
        traces   TEXT,
        at       REAL NOT NULL
    );
    CREATE INDEX upload_checks_by_job ON upload_checks (job_id);
    """,
    # 10: post metrics (analytics.py): every reading of a done post's metrics, never overwritten (a time
    # series per job); per post what the platform says of it (when it was made, whether it is gone);
    # per target how long metrics reads wait (a rate limit, a spent budget, a missing scope).
    """
    CREATE TABLE metric_readings (
        id            INTEGER PRIMARY KEY,
        job_id        INTEGER NOT NULL REFERENCES jobs(id),
        at            REAL NOT NULL,
        status        TEXT NOT NULL,
        metrics_json  TEXT NOT NULL DEFAULT '{}',
        detail        TEXT
    );
    CREATE INDEX metric_readings_by_job ON metric_readings (job_id, at);
    CREATE TABLE metric_posts (
        job_id      INTEGER PRIMARY KEY REFERENCES jobs(id),
        posted_at   REAL,
        deleted_at  REAL
    );
    CREATE TABLE metric_holds (
        target  TEXT PRIMARY KEY,
        until   REAL NOT NULL,
        reason  TEXT NOT NULL,
        set_at  REAL NOT NULL
    );
    """,
    # 11: albums (watch[].albums: folder). An album is one photos row (its path the album's folder, its
    # hash over its members' hashes) with one job per target; ``albums`` finds it by folder, so a photo
    # arriving later is known as late, and ``album_files`` says what became of each file in it: a
    # member (with its position), left out (the rules kept it back: why), or late (posted on its own,
    # or skipped, by ``watch[].late``).
    """
    CREATE TABLE albums (
        id        INTEGER PRIMARY KEY,
        folder    TEXT NOT NULL UNIQUE,
        photo_id  INTEGER NOT NULL REFERENCES photos(id),
        taken_at  REAL NOT NULL
    );
    CREATE TABLE album_files (
        album_id  INTEGER NOT NULL REFERENCES albums(id),
        path      TEXT NOT NULL,
        hash      TEXT NOT NULL,
        role      TEXT NOT NULL,
        position  INTEGER,
        reason    TEXT,
        at        REAL NOT NULL,
        PRIMARY KEY (album_id, path)
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
# The first schema with journal_info (the journal's id); older journals and backups have none.
JOURNAL_INFO_SCHEMA = 5
# The hold kind of a target whose monthly budget is spent (runner.py); see ``due_jobs``.
BUDGET_HOLD = "budget"
WAL_SWITCH_SECONDS = 30.0

# Tests make the journal run out of room the way a full disk does (SQLite answers SQLITE_FULL, "database
# or disk is full") by capping its size in pages; unset in normal use.
MAX_PAGES_ENV = "CROSSWATCH_JOURNAL_MAX_PAGES"

# Backups: state_dir/backups/journal-YYYYmmddTHHMMSS.sqlite3 (UTC), one a day while the daemon runs and
# one before each migration; the newest BACKUPS_KEPT are kept (a week of days: enough to go back past
# a damage noticed late, small enough that a photographer's state folder stays small).
BACKUP_INTERVAL_SECONDS = 86400.0
BACKUP_INTERVAL_ENV = "CROSSWATCH_JOURNAL_BACKUP_SECONDS"  # tests: back up every few seconds
BACKUPS_KEPT = 7
_BACKUP_NAME = re.compile(r"journal-(\d{8}T\d{6})(?:-(\d+))?\.sqlite3")
# Below this much free space on its disk the journal cannot be trusted to take the next write.
MIN_FREE_BYTES = 1 << 20

_JOB_COLUMNS = (
    "id, photo_id, target, state, step, step_index, intent_at, attempts, next_attempt_at, remote_id, "
    "permalink, reason, data, created_at, updated_at"
)


@dataclass(frozen=True)
class JobRow:
    """A job as stored, with the journal-only fields the runner needs."""

    job: Job
    step_index: int
    intent_at: float | None


@dataclass(frozen=True)
class Hold:
    target: str
    until: float
    kind: str
    reason: str


@dataclass(frozen=True)
class Spend:
    """What one target's platform charged over a period (see ``Journal.spend``)."""

    usd: float
    posts: int
    reads: int


@dataclass(frozen=True)
class NewFile:
    """A file intake has settled and read: its content hash, or a rejection reason."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    targets: tuple[str, ...]
    reason: str | None = None  # set: the file cannot be posted; its jobs are rejected
    # Per target the rules keep the photo back from, why (its job is created rejected).
    skipped: Mapping[str, str] = field(default_factory=dict)
    # Targets whose job waits in awaiting_approval until `crosswatch approve`.
    approval: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NewAlbum:
    """An album intake has settled and read (watch[].albums: folder): its members in album order,
    the files left out and why, and per target its job's data, or why its job is rejected."""

    folder: str
    content_hash: str
    size: int
    mtime_ns: int
    members: Sequence[NewFile]
    left_out: Sequence[tuple[NewFile, str]]
    targets: tuple[str, ...]
    data: Mapping[str, Mapping[str, Any]]
    rejected: Mapping[str, str] = field(default_factory=dict)
    approval: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AlbumFile:
    """One file of an album and what became of it: ``member`` (at ``position``), ``left_out``,
    ``late_posted`` or ``late_skipped``, with why."""

    path: str
    role: str
    position: int | None
    reason: str | None


@dataclass(frozen=True)
class Album:
    folder: str
    photo_id: int
    taken_at: float
    files: tuple[AlbumFile, ...]


@dataclass(frozen=True)
class IntakeResult:
    """What adding a file did: ``new`` photo, ``duplicate`` content, or ``changed`` path skipped."""

    outcome: str
    photo_id: int


class JournalGone(Exception):
    """The open journal is no longer the file at its path: deleted, or replaced, under the process.

    Deliberately not a ``JournalError`` (nor a ``CrosswatchError``): the handlers that wait and try a
    write again (disk full) or log and carry on must not swallow it. Going on would record into a
    file nobody will ever read again, so the daemon stops.
    """


class Journal:
    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        try:
            _make_private(path)
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0,
                                       check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}; check state_dir") from None
        self._db.row_factory = sqlite3.Row
        self._identity: tuple[int, int] | None = None
        try:
            self._use_wal()
            self._identity = _file_identity(path)  # the file exists from the first statement on
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            max_pages = os.environ.get(MAX_PAGES_ENV, "")
            if max_pages.isdigit():
                self._db.execute(f"PRAGMA max_page_count = {int(max_pages)}")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"the journal {path} is unusable: {exc}; {restore_advice(path)}") from None

    def _use_wal(self) -> None:
        """Switch a new journal to WAL (the mode is kept in the file, so later opens only read it).

        Switching needs an exclusive lock, and SQLite answers "database is locked" at once rather than
        waiting when another connection is opening the same new file (the daemon's threads and a
        `crosswatch status` at start-up): try again for a while.
        """
        deadline = time.monotonic() + WAL_SWITCH_SECONDS
        while True:
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    # -- lifecycle ---------------------------------------------------------------------------------

    def trace(self, callback: Any) -> None:
        """Call ``callback(sql)`` for every statement this connection runs (None: stop); for counting
        the queries a page costs (bench/bench_console.py, tests)."""
        self._db.set_trace_callback(callback)

    def check_in_place(self) -> None:
        """Raise JournalGone when the file at the journal's path is not the one this connection has
        open (the state folder was removed, the file deleted or replaced). One stat: cheap enough to
        ask before every write."""
        if self._identity is not None and _file_identity(self.path) != self._identity:
            raise JournalGone(
                f"the journal {self.path} was removed or replaced while crosswatch was running; stopped so "
                "that nothing is taken or posted without a record; restore the state folder, or start "
                "crosswatch again")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # Before every write: an intent recorded in a deleted file would not stop a repost later.
        self.check_in_place()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise JournalError(f"cannot write the journal {self.path}: {exc}") from None
        try:
            yield self._db
        except sqlite3.OperationalError as exc:
            # Disk full or I/O error inside the transaction (SQLite may have rolled back already).
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise JournalError(self._write_failure(exc)) from None
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            # Disk full or I/O error at commit: nothing of this transaction is kept.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise JournalError(self._write_failure(exc)) from None

    def _write_failure(self, exc: sqlite3.Error) -> str:
        text = f"cannot write the journal {self.path}: {exc}"
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "full" in str(exc):
            text += f"; free some space on the disk holding {self.path.parent}"
        return text

    def _migrate(self) -> None:
        # A journal with history (not a new, empty file) is copied before its schema changes.
        backed_up = self._db.execute("PRAGMA user_version").fetchone()[0] == 0
        while True:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"the journal {self.path} was written by a newer crosswatch (schema {version}); upgrade"
                )
            if version == SCHEMA_VERSION:
                return
            if not backed_up:
                # So that a migration that goes wrong (or a downgrade) can go back to it.
                self.backup()
                backed_up = True
            with self._write() as db:
                # Another process (a second connection, `crosswatch status`) may have migrated between
                # the read above and this transaction: read the version again under the write lock.
                if db.execute("PRAGMA user_version").fetchone()[0] != version:
                    continue
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")

    # -- identity and backups ----------------------------------------------------------------------

    @property
    def journal_id(self) -> str:
        """This journal's own random id, made when it was created (see state_dir/journal.id)."""
        return self.info("id") or ""

    def info(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM journal_info WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_info(self, key: str, value: str | None) -> None:
        with self._write() as db:
            if value is None:
                db.execute("DELETE FROM journal_info WHERE key = ?", (key,))
            else:
                db.execute("INSERT INTO journal_info (key, value) VALUES (?, ?) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def backup(self) -> Path:
        """Copy the journal, as of now, into state_dir/backups with SQLite's online backup (the daemon
        keeps writing meanwhile), atomically and private; keep the newest BACKUPS_KEPT. Returns it."""
        folder = backups_dir(self.path)
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            _remove_abandoned_backups(folder)
            scratch = folder / f".journal-{os.getpid()}-{time.monotonic_ns()}.partial"
            os.close(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            try:
                with contextlib.closing(sqlite3.connect(str(scratch), isolation_level=None)) as copy:
                    self._db.backup(copy)
                    # A backup is one self-contained file: no -wal beside it to lose on the way.
                    copy.execute("PRAGMA journal_mode=DELETE")
                _fsync_path(scratch)
                final = _link_as_new_backup(scratch, folder, self._clock())
            finally:
                scratch.unlink(missing_ok=True)
            _fsync_path(folder)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot back up the journal {self.path} into {folder}: {exc}") from None
        for old in list_backups(self.path)[BACKUPS_KEPT:]:
            old.unlink(missing_ok=True)
        return final

    def write_problem(self) -> str | None:
        """Why a write to this journal would fail now (read-only, immutable, disk full), or what a
        running daemon reported when its last write failed; None when nothing says so."""
        return _write_blocker(self.path, self._db) or stall_problem(self.path)

    # -- intake ------------------------------------------------------------------------------------

    def files_seen(self) -> dict[str, tuple[int, int]]:
        """Every path intake has taken, with the size and mtime it had then."""
        rows = self._db.execute("SELECT path, size, mtime_ns FROM files")
        return {_path_from_db(r[0]): (r[1], r[2]) for r in rows}

    def add_files(self, files: Sequence[NewFile], *, on_change: str = "skip") -> list[IntakeResult]:
        """Record files taken by intake, and create their jobs, in one transaction.

        Same content already known: a duplicate, nothing new. New content at a path that already had
        a posted photo: ``on_change`` decides (``skip`` records the file only; ``repost`` makes jobs).
        A file with a ``reason`` gets its jobs straight in the rejected state, so status shows why.
        """
        now = self._clock()
        with self._write() as db:
            return [self._add_file(db, f, on_change, now) for f in files]

    def _add_file(self, db: sqlite3.Connection, new: NewFile, on_change: str, now: float) -> IntakeResult:
        path = _path_to_db(new.path)
        existing = db.execute("SELECT id FROM photos WHERE hash = ?", (new.content_hash,)).fetchone()
        if existing is not None:
            self._record_file(db, path, new.size, new.mtime_ns, existing["id"], now)
            return IntakeResult("duplicate", existing["id"])
        previous = db.execute(
            "SELECT p.status FROM files f JOIN photos p ON p.id = f.photo_id WHERE f.path = ?", (path,)
        ).fetchone()
        cursor = db.execute(
            "INSERT INTO photos (hash, path, size, mtime, first_seen, status, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (new.content_hash, path, new.size, new.mtime_ns / 1e9, now,
             "rejected" if new.reason else "ok", new.reason),
        )
        photo_id = int(cursor.lastrowid or 0)
        self._record_file(db, path, new.size, new.mtime_ns, photo_id, now)
        if previous is not None and previous["status"] == "ok" and on_change == "skip":
            return IntakeResult("changed", photo_id)
        for target in new.targets:
            self._create_job(db, photo_id, target, now, rejected_reason=new.reason or new.skipped.get(target),
                             approval=target in new.approval)
        return IntakeResult("new", photo_id)

    @staticmethod
    def _record_file(db: sqlite3.Connection, path: str, size: int, mtime_ns: int, photo_id: int,
                     now: float) -> None:
        db.execute(
            "INSERT INTO files (path, size, mtime_ns, photo_id, seen_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "photo_id = excluded.photo_id, seen_at = excluded.seen_at",
            (path, size, mtime_ns, photo_id, now),
        )

    def _create_job(self, db: sqlite3.Connection, photo_id: int, target: str, now: float, *,
                    rejected_reason: str | None, approval: bool = False) -> None:
        cursor = db.execute(
            "INSERT INTO jobs (photo_id, target, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (photo_id, target) DO NOTHING",
            (photo_id, target, JobState.PENDING.value, now, now),
        )
        if not cursor.rowcount:
            return
        job_id = int(cursor.lastrowid or 0)
        self._event(db, job_id, None, JobState.PENDING, None, None, now)
        new_state = JobState.READY
        if rejected_reason:
            new_state = JobState.REJECTED
        elif approval:
            new_state = JobState.AWAITING_APPROVAL
        self._move(db, job_id, JobState.PENDING, new_state, now, reason=rejected_reason)

    # -- transitions -------------------------------------------------------------------------------

    @staticmethod
    def _event(db: sqlite3.Connection, job_id: int, old: JobState | None, new: JobState,
               step: str | None, detail: str | None, now: float) -> None:
        db.execute(
            "INSERT INTO events (job_id, at, from_state, to_state, step, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, now, old.value if old else None, new.value, step, detail),
        )

    def _move(self, db: sqlite3.Connection, job_id: int, old: JobState, new: JobState, now: float, *,
              reason: str | None = None, detail: str | None = None) -> None:
        check_transition(old, new)
        db.execute("UPDATE jobs SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                   (new.value, reason, now, job_id))
        self._event(db, job_id, old, new, None, detail or reason, now)

    @staticmethod
    def _current(db: sqlite3.Connection, job_id: int, expect: JobState | None) -> tuple[sqlite3.Row, JobState]:
        """The job's row and state inside a write; JournalError when it is missing or not ``expect``."""
        row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JournalError(f"there is no job {job_id}")
        old = JobState(row["state"])
        if expect is not None and old is not expect:
            raise JournalError(f"job {job_id} is {old.value}, not {expect.value}")
        return row, old

    def transition(self, job_id: int, new_state: JobState, *, expect: JobState | None = None,
                   step: str | None = None, step_index: int | None = None,
                   data: dict[str, Any] | None = None, remote_id: str | None = None,
                   permalink: str | None = None, reason: str | None = None,
                   next_attempt_at: float | None = None, attempts_delta: int = 0,
                   intent: bool | None = None, detail: str | None = None) -> JobRow:
        """Move a job to ``new_state`` and record the event, atomically.

        ``expect`` guards against a race (the job must still be in that state). ``data`` is merged
        into the job's stored data. ``intent=True`` marks that an unsafe step is about to be sent;
        ``intent=False`` clears the mark once its outcome is known.
        """
        now = self._clock()
        with self._write() as db:
            row, old = self._current(db, job_id, expect)
            check_transition(old, new_state)
            merged = json.loads(row["data"])
            if data:
                merged.update(data)
            intent_at = row["intent_at"]
            if intent is True:
                intent_at = now
            elif intent is False:
                intent_at = None
            db.execute(
                "UPDATE jobs SET state = ?, step = ?, step_index = ?, intent_at = ?, attempts = attempts + ?, "
                "next_attempt_at = ?, remote_id = ?, permalink = ?, reason = ?, data = ?, updated_at = ? "
                "WHERE id = ?",
                (
                    new_state.value,
                    step if step is not None else row["step"],
                    step_index if step_index is not None else row["step_index"],
                    intent_at,
                    attempts_delta,
                    next_attempt_at if next_attempt_at is not None else row["next_attempt_at"],
                    remote_id if remote_id is not None else row["remote_id"],
                    permalink if permalink is not None else row["permalink"],
                    reason,
                    json.dumps(merged, sort_keys=True),
                    now,
                    job_id,
                ),
            )
            self._event(db, job_id, old, new_state, step if step is not None else row["step"],
                        detail or reason, now)
        result = self.job_row(job_id)
        assert result is not None
        return result

    def edit_job(self, job_id: int, edit: Mapping[str, Any], *, expect: JobState, new_state: JobState,
                 detail: str) -> JobRow:
        """Store a caption / alt text written by hand (``data["edit"]``) and move the job to
        ``new_state`` (which may be the state it is in), atomically, with an event."""
        now = self._clock()
        with self._write() as db:
            row, old = self._current(db, job_id, expect)
            if new_state is not old:
                check_transition(old, new_state)
            merged = json.loads(row["data"])
            merged["edit"] = dict(edit)
            merged.pop("post_now", None)  # a changed post is not what "post now" was asked for
            db.execute("UPDATE jobs SET state = ?, data = ?, reason = ?, updated_at = ? WHERE id = ?",
                       (new_state.value, json.dumps(merged, sort_keys=True),
                        row["reason"] if new_state is old else None, now, job_id))
            self._event(db, job_id, old, new_state, row["step"], detail, now)
        result = self.job_row(job_id)
        assert result is not None
        return result

    def in_flight_starts(self) -> dict[int, dict[int, float]]:
        """photo id -> job id -> when that job first went in flight, for every job that has (the
        stagger of the queue's plan, in one query instead of one per job)."""
        rows = self._db.execute(
            "SELECT j.photo_id, j.id, MIN(e.at) FROM events e JOIN jobs j ON j.id = e.job_id "
            "WHERE e.to_state = ? GROUP BY j.id", (JobState.IN_FLIGHT.value,))
        starts: dict[int, dict[int, float]] = {}
        for photo_id, job_id, at in rows:
            if at is not None:
                starts.setdefault(int(photo_id), {})[int(job_id)] = float(at)
        return starts

    def done_times(self, since: float) -> dict[str, list[float]]:
        """target -> when its jobs finished since ``since``, oldest first (``done_since`` for every
        target in one query)."""
        rows = self._db.execute(
            "SELECT j.target, e.at FROM events e JOIN jobs j ON j.id = e.job_id "
            "WHERE e.to_state = ? AND e.at >= ? ORDER BY e.at", (JobState.DONE.value, since))
        times: dict[str, list[float]] = {}
        for target, at in rows:
            times.setdefault(str(target), []).append(float(at))
        return times

    def recover_in_flight(self) -> list[tuple[JobRow, JobState]]:
        """At start-up: jobs left in flight by a crash go back to ready, or to in-doubt when an
        unsafe step's intent was committed and no outcome was. Returns each job with its new state.
        """
        moved: list[tuple[JobRow, JobState]] = []
        rows = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = ?", (JobState.IN_FLIGHT.value,)
        ).fetchall()
        for row in rows:
            job_row = _job_row(row)
            if job_row.intent_at is not None:
                new = JobState.IN_DOUBT
                reason = f"crosswatch stopped while '{job_row.job.step}' was being sent"
            else:
                new = JobState.READY
                reason = None
            moved.append((self.transition(job_row.job.id, new, reason=reason,
                                          detail="recovered at start-up"), new))
        return moved

    # -- reading -----------------------------------------------------------------------------------

    def job_row(self, job_id: int) -> JobRow | None:
        row = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job_row(row) if row else None

    def job(self, job_id: int) -> Job | None:
        row = self.job_row(job_id)
        return row.job if row else None

    def due_jobs(self, now: float, limit: int = 50, state: JobState = JobState.READY) -> list[JobRow]:
        """Jobs in ``state`` whose time has come and whose target is not held. A budget hold keeps
        no in-doubt job from being checked: asking costs a read, posting again by mistake far more."""
        rows = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = ? AND next_attempt_at <= ? "
            "AND target NOT IN (SELECT target FROM holds WHERE until > ? AND NOT (kind = ? AND ? = ?)) "
            "ORDER BY next_attempt_at, id LIMIT ?",
            (state.value, now, now, BUDGET_HOLD, state.value, JobState.IN_DOUBT.value, limit),
        ).fetchall()
        return [_job_row(r) for r in rows]

    def next_due_at(self) -> float | None:
        """When the next ready (or in-doubt, to be checked) job may start, holds included (a budget
        hold does not delay a check, as in ``due_jobs``)."""
        row = self._db.execute(
            "SELECT MIN(MAX(j.next_attempt_at, CASE WHEN j.state = ? AND h.kind = ? THEN 0 "
            "ELSE COALESCE(h.until, 0) END)) FROM jobs j "
            "LEFT JOIN holds h ON h.target = j.target WHERE j.state IN (?, ?)",
            (JobState.IN_DOUBT.value, BUDGET_HOLD, JobState.READY.value, JobState.IN_DOUBT.value),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    # -- holds -------------------------------------------------------------------------------------

    def set_hold(self, target: str, until: float, kind: str, reason: str) -> None:
        """Hold every job of ``target`` until ``until``; a longer hold already set is kept."""
        with self._write() as db:
            db.execute(
                "INSERT INTO holds (target, until, kind, reason, set_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (target) DO UPDATE SET until = excluded.until, kind = excluded.kind, "
                "reason = excluded.reason, set_at = excluded.set_at "
                "WHERE excluded.until > holds.until OR holds.until <= excluded.set_at",
                (target, until, kind, reason, self._clock()),
            )

    def clear_hold(self, target: str, kind: str | None = None) -> None:
        with self._write() as db:
            if kind is None:
                db.execute("DELETE FROM holds WHERE target = ?", (target,))
            else:
                db.execute("DELETE FROM holds WHERE target = ? AND kind = ?", (target, kind))

    def holds(self, now: float | None = None) -> dict[str, Hold]:
        """Holds in force (``until`` after ``now``; every hold when now is None)."""
        rows = self._db.execute("SELECT target, until, kind, reason FROM holds WHERE until > ?",
                                (now if now is not None else float("-inf"),))
        return {r["target"]: Hold(r["target"], r["until"], r["kind"], r["reason"]) for r in rows}

    # -- notifications outbox (crosswatch/notify.py) -----------------------------------------------

    def events_after(self, mark: int, to_states: Sequence[JobState], limit: int = 500) -> list[dict[str, Any]]:
        """Job moves into ``to_states`` after event id ``mark`` (a move to the same state is not one),
        with the photo's path and the target, oldest first."""
        marks = ", ".join("?" for _ in to_states)
        rows = self._db.execute(
            "SELECT e.id, e.job_id, e.at, e.from_state, e.to_state, e.detail, j.target, p.path FROM events e "
            "JOIN jobs j ON j.id = e.job_id JOIN photos p ON p.id = j.photo_id "
            f"WHERE e.id > ? AND e.to_state IN ({marks}) AND e.to_state IS NOT e.from_state "
            "ORDER BY e.id LIMIT ?",
            (mark, *(s.value for s in to_states), limit))
        return [{"id": r["id"], "job_id": r["job_id"], "at": r["at"], "state": r["to_state"], "from": r["from_state"],
                 "detail": r["detail"], "target": r["target"], "path": _path_from_db(r["path"])} for r in rows]

    def last_event_id(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def done_between(self, since: float, until: float) -> list[dict[str, Any]]:
        """Jobs that reached done in [since, until): target, photo path, permalink (the daily digest)."""
        rows = self._db.execute(
            "SELECT j.target, p.path, j.permalink FROM events e JOIN jobs j ON j.id = e.job_id "
            "JOIN photos p ON p.id = j.photo_id WHERE e.to_state = ? AND e.at >= ? AND e.at < ? ORDER BY e.id",
            (JobState.DONE.value, since, until))
        return [{"target": r["target"], "path": _path_from_db(r["path"]), "permalink": r["permalink"]}
                for r in rows]

    def queue_notices(self, notices: Sequence[tuple[str, str, str, str, float]]) -> int:
        """Queue (destination, key, event, text, at) rows; one already queued under its key is kept as
        it is. Returns how many were new."""
        with self._write() as db:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO notices (destination, key, event, text, at) "
                           "VALUES (?, ?, ?, ?, ?)", notices)
            return db.total_changes - before

    def unsent_notices(self, destination: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT id, event, text, at, attempts, next_try_at FROM notices "
            "WHERE destination = ? AND sent_at IS NULL ORDER BY id", (destination,))
        return [dict(r) for r in rows]

    def notices_sent(self, ids: Sequence[int]) -> None:
        now = self._clock()
        with self._write() as db:
            db.executemany("UPDATE notices SET sent_at = ?, error = NULL WHERE id = ?", [(now, i) for i in ids])

    def notices_failed(self, ids: Sequence[int], next_try_at: float, error: str) -> None:
        with self._write() as db:
            db.executemany("UPDATE notices SET attempts = attempts + 1, next_try_at = ?, error = ? WHERE id = ?",
                           [(next_try_at, error, i) for i in ids])

    def notice_counts(self) -> dict[str, dict[str, int]]:
        """Per destination: how many were sent and how many wait (``notify status``)."""
        counts: dict[str, dict[str, int]] = {}
        for r in self._db.execute("SELECT destination, sent_at IS NOT NULL AS sent, count(*) AS n FROM notices "
                                  "GROUP BY destination, sent"):
            counts.setdefault(r["destination"], {"sent": 0, "waiting": 0})["sent" if r["sent"] else "waiting"] = r["n"]
        return counts

    # -- the upload check (uploadcheck.py) ---------------------------------------------------------

    def record_upload_check(self, job_id: int, target: str, step: str, file: str, traces: Sequence[str]) -> None:
        """One prepared file read again before it left: ``traces`` is what private metadata it still
        carried ([] when none; then it was sent)."""
        with self._write() as db:
            db.execute("INSERT INTO upload_checks (job_id, target, step, file, ok, traces, at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (job_id, target, step, file, 0 if traces else 1, "; ".join(traces) or None, self._clock()))

    def upload_check_counts(self) -> dict[str, int]:
        """How many uploads were checked and how many the check blocked."""
        row = self._db.execute("SELECT count(*) AS checked, coalesce(sum(ok = 0), 0) AS failed "
                               "FROM upload_checks").fetchone()
        return {"checked": int(row["checked"]), "failed": int(row["failed"])}

    def failed_upload_checks(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest blocked uploads: job, target, file, traces, at."""
        rows = self._db.execute("SELECT job_id, target, step, file, traces, at FROM upload_checks WHERE ok = 0 "
                                "ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # -- what the journal holds (audit.py) --------------------------------------------------------

    def last_attempts(self) -> dict[str, float]:
        """Per target, when a job last started its steps: the last time its token was used to post."""
        rows = self._db.execute("SELECT j.target AS target, max(e.at) AS at FROM events e JOIN jobs j "
                                "ON j.id = e.job_id WHERE e.to_state = 'in_flight' GROUP BY j.target")
        return {r["target"]: float(r["at"]) for r in rows}

    def row_counts(self) -> dict[str, int]:
        """Rows per table (the audit's "what is stored")."""
        tables = [r[0] for r in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        # The names come from sqlite_master itself, never from outside.
        return {t: int(self._db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}

    def oldest_entry(self) -> float | None:
        """When the oldest thing in the journal was recorded (a photo first seen, a job event)."""
        row = self._db.execute("SELECT min(at) FROM (SELECT min(first_seen) AS at FROM photos "
                               "UNION ALL SELECT min(at) FROM events)").fetchone()
        return None if row[0] is None else float(row[0])

    def hosted_copies(self) -> list[tuple[Job, str]]:
        """Finished jobs whose data names a media-host copy (``hosted_key``): each should be gone."""
        finished = (JobState.DONE.value, JobState.FAILED.value, JobState.REJECTED.value)
        rows = self._db.execute("SELECT * FROM jobs WHERE state IN (?, ?, ?) AND json_extract(data, '$.hosted_key') "
                                "IS NOT NULL ORDER BY id", finished)
        return [(row.job, str(row.job.data["hosted_key"])) for row in map(_job_row, rows)]

    def unfinished_hosted_keys(self) -> set[str]:
        """Media-host keys of jobs still on their way (their copies are meant to be there)."""
        rows = self._db.execute("SELECT json_extract(data, '$.hosted_key') AS key FROM jobs WHERE state NOT IN "
                                "(?, ?, ?) AND key IS NOT NULL",
                                (JobState.DONE.value, JobState.FAILED.value, JobState.REJECTED.value))
        return {str(r["key"]) for r in rows}

    # -- what a target's server says about itself (platform_info) ---------------------------------

    def set_platform_info(self, target: str, info: Mapping[str, Any]) -> None:
        with self._write() as db:
            db.execute("INSERT INTO platform_info (target, info_json, read_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (target) DO UPDATE SET info_json = excluded.info_json, "
                       "read_at = excluded.read_at", (target, json.dumps(dict(info), sort_keys=True), self._clock()))

    def platform_info(self, target: str) -> tuple[dict[str, Any], float] | None:
        """What the target's server said last and when (epoch seconds); None if never read."""
        row = self._db.execute("SELECT info_json, read_at FROM platform_info WHERE target = ?",
                               (target,)).fetchone()
        if row is None:
            return None
        try:
            info = json.loads(row["info_json"])
        except ValueError:
            return None
        return (info if isinstance(info, dict) else {}), float(row["read_at"])

    # -- post metrics (analytics.py) ----------------------------------------------------------------

    def metric_posts(self, targets: Sequence[str]) -> list[dict[str, Any]]:
        """Done posts of ``targets`` with a platform id: when they went out (the platform's own time when
        a reading said it, else when the job became done), whether they are gone, their last reading."""
        if not targets:
            return []
        marks = ",".join("?" * len(targets))
        rows = self._db.execute(
            "SELECT j.id, j.target, j.remote_id, j.permalink, j.photo_id, "
            "(SELECT MIN(e.at) FROM events e WHERE e.job_id = j.id AND e.to_state = ?) AS done_at, "
            "m.posted_at, m.deleted_at, "
            "(SELECT MAX(r.at) FROM metric_readings r WHERE r.job_id = j.id) AS read_at "
            f"FROM jobs j LEFT JOIN metric_posts m ON m.job_id = j.id "
            f"WHERE j.state = ? AND j.remote_id IS NOT NULL AND j.target IN ({marks}) ORDER BY j.id",
            (JobState.DONE.value, JobState.DONE.value, *targets))
        return [{"job_id": r["id"], "target": r["target"], "remote_id": r["remote_id"], "permalink": r["permalink"],
                 "photo_id": r["photo_id"], "posted_at": r["posted_at"] if r["posted_at"] is not None else r["done_at"],
                 "deleted_at": r["deleted_at"], "read_at": r["read_at"]} for r in rows if r["done_at"] is not None]

    def record_readings(self, readings: Sequence[tuple[int, str, Mapping[str, int], str | None, float | None]],
                        at: float | None = None) -> None:
        """(job id, status, metrics, detail, the platform's posting time) per post, read at ``at`` (now):
        appended, never replacing an earlier reading; a "deleted" status marks the post gone."""
        now = self._clock() if at is None else at
        with self._write() as db:
            for job_id, status, metrics, detail, posted_at in readings:
                db.execute("INSERT INTO metric_readings (job_id, at, status, metrics_json, detail) "
                           "VALUES (?, ?, ?, ?, ?)", (job_id, now, status, json.dumps(dict(metrics)), detail))
                if posted_at is not None or status == "deleted":
                    db.execute("INSERT INTO metric_posts (job_id, posted_at, deleted_at) VALUES (?, ?, ?) "
                               "ON CONFLICT (job_id) DO UPDATE SET posted_at = COALESCE(excluded.posted_at, "
                               "metric_posts.posted_at), deleted_at = COALESCE(metric_posts.deleted_at, "
                               "excluded.deleted_at)", (job_id, posted_at, now if status == "deleted" else None))

    def metric_readings(self, job_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Every reading (of ``job_ids``, or all), oldest first: job_id, at, status, metrics, detail."""
        query = "SELECT job_id, at, status, metrics_json, detail FROM metric_readings"
        params: tuple[Any, ...] = ()
        if job_ids is not None:
            query += f" WHERE job_id IN ({','.join('?' * len(job_ids))})" if job_ids else " WHERE 0"
            params = tuple(job_ids)
        rows = self._db.execute(query + " ORDER BY at, id", params)
        return [{"job_id": r["job_id"], "at": r["at"], "status": r["status"],
                 "metrics": json.loads(r["metrics_json"]), "detail": r["detail"]} for r in rows]

    def set_metrics_hold(self, target: str, until: float, reason: str) -> None:
        with self._write() as db:
            db.execute("INSERT INTO metric_holds (target, until, reason, set_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (target) DO UPDATE SET until = excluded.until, reason = excluded.reason, "
                       "set_at = excluded.set_at", (target, until, reason, self._clock()))

    def metrics_holds(self, now: float) -> dict[str, tuple[float, str]]:
        """Targets whose metrics reads wait: target -> (until, why)."""
        rows = self._db.execute("SELECT target, until, reason FROM metric_holds WHERE until > ?", (now,))
        return {r["target"]: (r["until"], r["reason"]) for r in rows}

    # -- charges (pricing.py) ----------------------------------------------------------------------

    def record_charge(self, target: str, item: str, usd: float, *, job_id: int | None = None,
                      purpose: str | None = None, at: float | None = None) -> None:
        """One billed call (a post, a media call) made for ``target`` (now, or ``at``), at its price now."""
        with self._write() as db:
            db.execute("INSERT INTO charges (target, at, item, usd, job_id, purpose) VALUES (?, ?, ?, ?, ?, ?)",
                       (target, self._clock() if at is None else at, item, usd, job_id, purpose))

    def record_reads(self, target: str, resources: Sequence[str], usd_each: float, *,
                     job_id: int | None = None, purpose: str | None = None) -> int:
        """Resources a read returned; one already read on the same UTC day is not charged again (X's
        deduplication). Returns how many were new, i.e. charged."""
        now = self._clock()
        utc_day = time.strftime("%Y-%m-%d", time.gmtime(now))
        added = 0
        with self._write() as db:
            for resource in dict.fromkeys(resources):
                cursor = db.execute(
                    "INSERT INTO charges (target, at, item, usd, job_id, purpose, resource, utc_day) "
                    "VALUES (?, ?, 'read', ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (target, now, usd_each, job_id, purpose, resource, utc_day))
                added += cursor.rowcount
        return added

    def spend(self, target: str, since: float, until: float) -> Spend:
        """What ``target``'s platform charged from ``since`` to before ``until``."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(usd), 0), COALESCE(SUM(item IN ('post', 'post_with_url')), 0), "
            "COALESCE(SUM(item = 'read'), 0) FROM charges WHERE target = ? AND at >= ? AND at < ?",
            (target, since, until)).fetchone()
        return Spend(round(float(row[0]), 6), int(row[1]), int(row[2]))

    def has_started(self, job_id: int) -> bool:
        """Whether the job has ever been in flight."""
        row = self._db.execute("SELECT 1 FROM events WHERE job_id = ? AND to_state = ? LIMIT 1",
                               (job_id, JobState.IN_FLIGHT.value)).fetchone()
        return row is not None

    def sibling_starts(self, job_id: int) -> list[float]:
        """When the other jobs of this job's photo first went in flight (for the stagger)."""
        rows = self._db.execute(
            "SELECT MIN(e.at) FROM events e JOIN jobs j ON j.id = e.job_id "
            "WHERE j.photo_id = (SELECT photo_id FROM jobs WHERE id = ?) AND j.id != ? AND e.to_state = ? "
            "GROUP BY j.id",
            (job_id, job_id, JobState.IN_FLIGHT.value),
        )
        return [float(r[0]) for r in rows if r[0] is not None]

    # -- the bridge (see bridge.py) ----------------------------------------------------------------

    def bridge_baseline(self, source: str) -> float | None:
        """Posts older than this were on the account before the bridge started; None: not started."""
        row = self._db.execute("SELECT baseline_at FROM bridge_sources WHERE source = ?", (source,)).fetchone()
        return None if row is None else float(row[0])

    def bridge_seen(self, source: str, remote_ids: Sequence[str]) -> set[str]:
        """Which of ``remote_ids`` the bridge has already dealt with."""
        seen: set[str] = set()
        for start in range(0, len(remote_ids), 500):
            chunk = list(remote_ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT remote_id FROM bridged WHERE source = ? AND remote_id IN ({marks})", (source, *chunk))
            seen.update(r[0] for r in rows)
        return seen

    def start_bridge(self, source: str, baseline_at: float, skipped: Mapping[str, str]) -> None:
        """Record the bridge's start on ``source``: its baseline, and the posts it leaves alone
        (remote id -> why), in one transaction."""
        now = self._clock()
        with self._write() as db:
            db.execute("INSERT INTO bridge_sources (source, started_at, baseline_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (source) DO NOTHING", (source, now, baseline_at))
            for remote_id, reason in skipped.items():
                self._bridge_mark(db, source, remote_id, "skipped", reason, None, now)

    def bridge_counts(self, source: str) -> dict[str, int]:
        """How many posts of ``source`` the bridge has bridged and skipped."""
        rows = self._db.execute("SELECT outcome, COUNT(*) FROM bridged WHERE source = ? GROUP BY outcome", (source,))
        return {str(r[0]): int(r[1]) for r in rows}

    def skip_bridged(self, source: str, remote_id: str, reason: str) -> None:
        """A post the bridge will never re-share (not a photo, crosswatch's own post)."""
        with self._write() as db:
            self._bridge_mark(db, source, remote_id, "skipped", reason, None, self._clock())

    def add_bridged_post(self, source: str, remote_id: str, *, content_hash: str, path: str, size: int,
                         targets: Sequence[str], data: dict[str, Any], approval: Collection[str] = ()) -> list[int]:
        """A post to re-share: its photo (by ``content_hash``), one job per target in ``targets``
        carrying ``data`` (ready, or awaiting approval for the targets in ``approval``), and the
        bridged mark, in one transaction: a post is marked once with all its jobs, so a restart never
        makes them again. Returns the job ids, in the order of ``targets``."""
        now = self._clock()
        with self._write() as db:
            existing = db.execute("SELECT id FROM photos WHERE hash = ?", (content_hash,)).fetchone()
            if existing is not None:
                photo_id = int(existing["id"])
            else:
                cursor = db.execute(
                    "INSERT INTO photos (hash, path, size, mtime, first_seen, status, reason) "
                    "VALUES (?, ?, ?, ?, ?, 'ok', NULL)", (content_hash, _path_to_db(path), size, now, now))
                photo_id = int(cursor.lastrowid or 0)
            job_ids = []
            for target in targets:
                self._create_job(db, photo_id, target, now, rejected_reason=None, approval=target in approval)
                db.execute("UPDATE jobs SET data = ? WHERE photo_id = ? AND target = ?",
                           (json.dumps(data, sort_keys=True), photo_id, target))
                job = db.execute("SELECT id FROM jobs WHERE photo_id = ? AND target = ?",
                                 (photo_id, target)).fetchone()
                job_ids.append(int(job["id"]))
            self._bridge_mark(db, source, remote_id, "bridged", None, photo_id, now)
        return job_ids

    # -- albums ------------------------------------------------------------------------------------

    def add_album(self, new: NewAlbum) -> IntakeResult:
        """Record an album: its photos row, its files (taken, so rescans skip them), what became of
        each, and one job per target, in one transaction. A folder already taken is a duplicate."""
        now = self._clock()
        folder = _path_to_db(new.folder)
        with self._write() as db:
            known = db.execute("SELECT photo_id FROM albums WHERE folder = ?", (folder,)).fetchone()
            if known is None:
                known = db.execute("SELECT id AS photo_id FROM photos WHERE hash = ?", (new.content_hash,)).fetchone()
            if known is not None:
                return IntakeResult("duplicate", int(known["photo_id"]))
            cursor = db.execute(
                "INSERT INTO photos (hash, path, size, mtime, first_seen, status, reason) "
                "VALUES (?, ?, ?, ?, ?, 'ok', NULL)", (new.content_hash, folder, new.size, new.mtime_ns / 1e9, now))
            photo_id = int(cursor.lastrowid or 0)
            album_id = int(db.execute("INSERT INTO albums (folder, photo_id, taken_at) VALUES (?, ?, ?)",
                                      (folder, photo_id, now)).lastrowid or 0)
            files: list[tuple[NewFile, str, int | None, str | None]] = [
                (f, "member", i, None) for i, f in enumerate(new.members)]
            files += [(f, "left_out", None, why) for f, why in new.left_out]
            for file, role, position, why in files:
                self._record_file(db, _path_to_db(file.path), file.size, file.mtime_ns, photo_id, now)
                db.execute("INSERT INTO album_files (album_id, path, hash, role, position, reason, at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (album_id, path) DO NOTHING",
                           (album_id, _path_to_db(file.path), file.content_hash, role, position, why, now))
            for target in new.targets:
                self._create_job(db, photo_id, target, now, rejected_reason=new.rejected.get(target),
                                 approval=target in new.approval)
                db.execute("UPDATE jobs SET data = ? WHERE photo_id = ? AND target = ?",
                           (json.dumps(dict(new.data.get(target, {})), sort_keys=True), photo_id, target))
        return IntakeResult("new", photo_id)

    def album_taken(self, folder: str) -> bool:
        """Whether the album in ``folder`` has been taken (its jobs exist)."""
        return self._db.execute("SELECT 1 FROM albums WHERE folder = ?", (_path_to_db(folder),)).fetchone() is not None

    def add_late_file(self, folder: str, new: NewFile, *, post: bool, on_change: str = "skip") -> IntakeResult:
        """A file that arrived in an album's folder after the album was taken: posted on its own
        (``post``) or only recorded as skipped; either way the album says what became of it."""
        now = self._clock()
        with self._write() as db:
            album = db.execute("SELECT id, photo_id FROM albums WHERE folder = ?", (_path_to_db(folder),)).fetchone()
            if album is None:
                raise JournalError(f"no album was taken from {folder}")
            if post:
                result = self._add_file(db, new, on_change, now)
                role = "late_posted"
                why = "arrived after the album was taken; posted on its own (watch[].late: new_post)"
            else:
                self._record_file(db, _path_to_db(new.path), new.size, new.mtime_ns, int(album["photo_id"]), now)
                result = IntakeResult("late", int(album["photo_id"]))
                role, why = "late_skipped", "arrived after the album was taken; not posted (watch[].late: skip)"
            db.execute("INSERT INTO album_files (album_id, path, hash, role, position, reason, at) "
                       "VALUES (?, ?, ?, ?, NULL, ?, ?) ON CONFLICT (album_id, path) DO UPDATE SET "
                       "hash = excluded.hash, role = excluded.role, reason = excluded.reason, at = excluded.at",
                       (album["id"], _path_to_db(new.path), new.content_hash, role, why, now))
        return result

    def albums(self) -> list[Album]:
        """Every album taken, oldest first, with what became of each of its files."""
        files: dict[int, list[AlbumFile]] = {}
        for r in self._db.execute("SELECT album_id, path, role, position, reason FROM album_files "
                                  "ORDER BY album_id, position IS NULL, position, path"):
            files.setdefault(int(r[0]), []).append(AlbumFile(_path_from_db(r[1]), str(r[2]), r[3], r[4]))
        return [Album(_path_from_db(r[1]), int(r[2]), float(r[3]), tuple(files.get(int(r[0]), ())))
                for r in self._db.execute("SELECT id, folder, photo_id, taken_at FROM albums ORDER BY id")]

    @staticmethod
    def _bridge_mark(db: sqlite3.Connection, source: str, remote_id: str, outcome: str, reason: str | None,
                     photo_id: int | None, now: float) -> None:
        db.execute("INSERT INTO bridged (source, remote_id, outcome, reason, photo_id, seen_at) "
                   "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, remote_id) DO NOTHING",
                   (source, remote_id, outcome, reason, photo_id, now))

    def posted_remote_ids(self, target: str) -> set[str]:
        """Every platform id crosswatch's own jobs for ``target`` have recorded (the post's id once
        done, and the media id a publish step returned before the job finished)."""
        ids: set[str] = set()
        for row in self._db.execute("SELECT remote_id, data FROM jobs WHERE target = ?", (target,)):
            if row["remote_id"]:
                ids.add(str(row["remote_id"]))
            media_id = json.loads(row["data"]).get("media_id")
            if media_id:
                ids.add(str(media_id))
        return ids

    def publishing(self, target: str) -> list[int]:
        """Jobs of ``target`` whose post may exist on the platform while the journal does not know
        its id yet: an unsafe step sent (intent recorded, no outcome), or in doubt."""
        rows = self._db.execute(
            "SELECT id FROM jobs WHERE target = ? AND (state = ? OR (state = ? AND intent_at IS NOT NULL)) "
            "ORDER BY id", (target, JobState.IN_DOUBT.value, JobState.IN_FLIGHT.value))
        return [int(r[0]) for r in rows]

    def count_started(self, target: str, steps: Sequence[str]) -> int:
        """How many of ``target``'s unfinished jobs stand at one of ``steps`` (for quota planning)."""
        if not steps:
            return 0
        marks = ", ".join("?" * len(steps))
        row = self._db.execute(
            f"SELECT COUNT(*) FROM jobs WHERE target = ? AND state IN (?, ?, ?) AND step IN ({marks})",
            (target, JobState.READY.value, JobState.IN_FLIGHT.value, JobState.IN_DOUBT.value, *steps),
        ).fetchone()
        return int(row[0])

    def done_since(self, target: str, since: float) -> list[float]:
        """When each job of ``target`` became done at or after ``since``, oldest first (for pacing)."""
        rows = self._db.execute(
            "SELECT e.at FROM events e JOIN jobs j ON j.id = e.job_id "
            "WHERE e.to_state = ? AND e.at >= ? AND j.target = ? ORDER BY e.at",
            (JobState.DONE.value, since, target),
        )
        return [float(r[0]) for r in rows]

    def jobs(self, *, state: JobState | None = None, target: str | None = None) -> list[Job]:
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs"
        clauses, args = [], []
        if state is not None:
            clauses.append("state = ?")
            args.append(state.value)
        if target is not None:
            clauses.append("target = ?")
            args.append(target)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id"
        return [_job_row(r).job for r in self._db.execute(sql, args)]

    def jobs_in_states(self, states: Sequence[JobState]) -> list[Job]:
        marks = ", ".join("?" * len(states))
        rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY id",
                                [s.value for s in states])
        return [_job_row(r).job for r in rows]

    def jobs_of_photos(self, photo_ids: Sequence[int]) -> list[Job]:
        """Every job of these photos, in one query (a page's worth: SQLite takes 32,766 parameters)."""
        if not photo_ids:
            return []
        marks = ", ".join("?" * len(photo_ids))
        rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE photo_id IN ({marks}) ORDER BY id",
                                list(photo_ids))
        return [_job_row(r).job for r in rows]

    def photos_by_id(self, photo_ids: Sequence[int]) -> dict[int, Photo]:
        if not photo_ids:
            return {}
        marks = ", ".join("?" * len(photo_ids))
        rows = self._db.execute(f"SELECT * FROM photos WHERE id IN ({marks})", list(photo_ids))
        return {int(r["id"]): _photo(r) for r in rows}

    def record_link_check(self, job_id: int, state: str, detail: str) -> None:
        with self._write() as db:
            db.execute("INSERT INTO link_checks (job_id, state, detail, at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, detail = excluded.detail, "
                       "at = excluded.at", (job_id, state, detail, self._clock()))

    def link_checks(self) -> dict[int, tuple[str, str]]:
        """job id -> (state, detail) of its last link check."""
        return {int(r[0]): (str(r[1]), str(r[2]))
                for r in self._db.execute("SELECT job_id, state, detail FROM link_checks")}

    def jobs_for_photo(self, photo_id: int) -> list[Job]:
        rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE photo_id = ? ORDER BY id",
                                (photo_id,))
        return [_job_row(r).job for r in rows]

    def photo(self, photo_id: int) -> Photo | None:
        row = self._db.execute("SELECT * FROM photos WHERE id = ?", (photo_id,)).fetchone()
        return _photo(row) if row else None

    def photos(self) -> list[tuple[Photo, str, str | None]]:
        """Every photo with its intake status ('ok' or 'rejected') and reason."""
        rows = self._db.execute("SELECT * FROM photos ORDER BY id").fetchall()
        return [(_photo(r), r["status"], r["reason"]) for r in rows]

    def count_photos(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM photos").fetchone()[0])

    def events(self, job_id: int) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM events WHERE job_id = ? ORDER BY id", (job_id,))
        return [dict(r) for r in rows]

    def state_counts(self) -> dict[str, dict[str, int]]:
        """target -> state -> number of jobs."""
        counts: dict[str, dict[str, int]] = {}
        for target, state, n in self._db.execute(
            "SELECT target, state, COUNT(*) FROM jobs GROUP BY target, state ORDER BY target, state"
        ):
            counts.setdefault(target, {})[state] = n
        return counts


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _job_row(row: sqlite3.Row) -> JobRow:
    job = Job(
        id=row["id"],
        photo_id=row["photo_id"],
        target=row["target"],
        state=JobState(row["state"]),
        step=row["step"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        remote_id=row["remote_id"],
        permalink=row["permalink"],
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        data=json.loads(row["data"]),
    )
    return JobRow(job=job, step_index=row["step_index"], intent_at=row["intent_at"])


def _photo(row: sqlite3.Row) -> Photo:
    return Photo(id=row["id"], hash=row["hash"], path=_path_from_db(row["path"]), size=row["size"], mtime=row["mtime"],
                 first_seen=row["first_seen"])


_UNDECODABLE = "undecodable-path:"


def _path_to_db(path: str) -> str:
    """File names need not be UTF-8 (Python keeps the bytes as surrogates); SQLite text must be.
    Such a name is stored reversibly as base64 of its bytes."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return _UNDECODABLE + base64.urlsafe_b64encode(os.fsencode(path)).decode("ascii")


def _path_from_db(stored: str) -> str:
    if stored.startswith(_UNDECODABLE):
        return os.fsdecode(base64.urlsafe_b64decode(stored[len(_UNDECODABLE):]))
    return stored


def printable_path(path: str) -> str:
    """A file name fit for one line of output: undecodable bytes and control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


class DaemonLock:
    """An exclusive lock beside the journal so two daemons never share one journal.

    flock is released by the kernel when the process dies, so a SIGKILLed daemon leaves no stale lock.
    """

    def __init__(self, journal_path: Path) -> None:
        self.path = journal_path.with_name(journal_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the state folder is private
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise JournalLocked(
                f"another crosswatch daemon (pid {holder}) is using the journal {self.path.parent}; "
                "stop it first, or give this one its own state_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- the state folder: private modes, backups, the journal's marker, checks, restore -------------------


def _sidecar(journal_path: Path, suffix: str) -> Path:
    return journal_path.with_name(journal_path.name + suffix)


def _make_private(journal_path: Path) -> None:
    """The state folder is created 0700 and the journal 0600 (it holds captions of photos not yet
    public); SQLite gives the -wal and -shm files the journal's own mode. A laxer older one is tightened."""
    journal_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not journal_path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(journal_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    for file in (journal_path, _sidecar(journal_path, "-wal"), _sidecar(journal_path, "-shm")):
        with contextlib.suppress(OSError):  # absent, or not ours to change (immutable, another owner)
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_private(path: Path, data: bytes) -> None:
    """Write a small file atomically (temporary name, fsync, rename), mode 0600."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(scratch, path)
    _fsync_path(path.parent)


def _copy_private(source: Path, destination: Path) -> None:
    """Copy a file atomically (temporary name beside the destination, fsync, rename), mode 0600."""
    scratch = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, destination)
    finally:
        scratch.unlink(missing_ok=True)
    _fsync_path(destination.parent)


def backups_dir(journal_path: Path) -> Path:
    return journal_path.parent / "backups"


def list_backups(journal_path: Path) -> list[Path]:
    """The journal's backups, newest first."""
    folder = backups_dir(journal_path)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        match = _BACKUP_NAME.fullmatch(name)
        if match:
            found.append(((match[1], int(match[2] or 1)), folder / name))
    return [path for _key, path in sorted(found, reverse=True)]


def backup_taken_at(backup: Path) -> float:
    match = _BACKUP_NAME.fullmatch(backup.name)
    if match is None:
        return backup.stat().st_mtime
    return float(calendar.timegm(time.strptime(match[1], "%Y%m%dT%H%M%S")))


def backup_interval() -> float:
    """Seconds between the daemon's backups: a day (tests shorten it)."""
    try:
        seconds = float(os.environ.get(BACKUP_INTERVAL_ENV, "") or BACKUP_INTERVAL_SECONDS)
    except ValueError:
        return BACKUP_INTERVAL_SECONDS
    return seconds if seconds > 0 else BACKUP_INTERVAL_SECONDS


def backup_due(journal_path: Path, interval: float) -> bool:
    newest = list_backups(journal_path)[:1]
    return not newest or time.time() - backup_taken_at(newest[0]) >= interval


def _remove_abandoned_backups(folder: Path) -> None:
    """Half-written backups of processes that died while writing them (.journal-PID-N.partial)."""
    for leftover in folder.glob(".journal-*.partial"):
        pid = leftover.name.split("-")[1]
        try:
            os.kill(int(pid), 0)
        except (ProcessLookupError, ValueError):
            leftover.unlink(missing_ok=True)
        except OSError:
            continue  # alive, another user's


def _link_as_new_backup(scratch: Path, folder: Path, now: float) -> Path:
    """Give a finished backup its final name (journal-<UTC time>.sqlite3, -2, -3 within one second)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    number = 1
    while True:
        final = folder / (f"journal-{stamp}.sqlite3" if number == 1 else f"journal-{stamp}-{number}.sqlite3")
        if not final.exists():
            os.replace(scratch, final)
            return final
        number += 1


def marker_path(journal_path: Path) -> Path:
    """state_dir/journal.id: the id of the journal this state folder uses (written at its first start)."""
    return journal_path.parent / "journal.id"


def read_marker(journal_path: Path) -> str | None:
    """The id in state_dir/journal.id; None when there is none ('' when it cannot be read)."""
    try:
        return marker_path(journal_path).read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError:
        return ""


def remember_journal(journal_path: Path, journal_id: str) -> None:
    """Record ``journal_id`` as the journal of this state folder (state_dir/journal.id)."""
    try:
        _write_private(marker_path(journal_path), (journal_id + "\n").encode("ascii"))
    except OSError as exc:
        raise JournalError(f"cannot write {marker_path(journal_path)}: {exc.strerror or exc}") from None


def keep_marker(journal_path: Path, journal_id: str) -> None:
    """Write state_dir/journal.id again (and the state folder, private) if it is gone."""
    if read_marker(journal_path) is None:
        try:
            journal_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"cannot recreate {journal_path.parent}: {exc.strerror or exc}") from None
        remember_journal(journal_path, journal_id)


def _connect_existing(path: Path) -> sqlite3.Connection:
    """A connection to an existing journal or backup that never creates one (read-only if it must)."""
    return sqlite3.connect(path.resolve().as_uri() + "?mode=rw", uri=True, isolation_level=None, timeout=30.0)


def _backup_journal_id(backup: Path) -> str | None:
    try:
        with contextlib.closing(_connect_existing(backup)) as db:
            row = db.execute("SELECT value FROM journal_info WHERE key = 'id'").fetchone()
    except sqlite3.Error:
        return None  # older than journal ids, or unreadable
    return None if row is None else str(row[0])


def _backup_holds_photos(backup: Path) -> bool:
    """Whether a backup knows of any photo (one taken of a journal whose first creation was cut short,
    by a kill before its schema was whole, knows none and has no id yet)."""
    try:
        with contextlib.closing(_connect_existing(backup)) as db:
            return db.execute("SELECT 1 FROM photos LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return True  # unreadable: it may have been a journal in use


def replaced_journal(journal: Journal) -> str | None:
    """When ``journal`` is not the one this state folder used before (that one was deleted or lost),
    what says so; None when it is the same journal, or the first."""
    marker = read_marker(journal.path)
    if marker is not None:
        if marker == journal.journal_id:
            return None
        return f"{marker_path(journal.path)} names another journal"
    if journal.count_photos():
        return None  # in use since before journal.id existed (an older crosswatch)
    for backup in list_backups(journal.path)[:1]:
        backup_id = _backup_journal_id(backup)
        # Without an id and without photos it is this journal before its first creation was finished.
        if backup_id != journal.journal_id and (backup_id is not None or _backup_holds_photos(backup)):
            return f"the backup {backup} is of another journal"
    return None


def restore_advice(journal_path: Path) -> str:
    """What to do about an unusable journal, and what starting empty would do."""
    backups = list_backups(journal_path)
    if backups or read_marker(journal_path) is not None:
        empty = ("moving it away to start an empty journal forgets what was posted: `crosswatch run` then stops "
                 "and asks before posting the photos already in the folders again")
    else:
        empty = ("moving it away to start an empty journal forgets what was posted: every photo already in the "
                 "folders would be posted again")
    if backups:
        taken = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(backup_taken_at(backups[0])))
        return (f"`crosswatch journal restore` puts back the newest backup ({backups[0]}, taken {taken}) and "
                f"keeps this file aside; `crosswatch journal check` says what is wrong; {empty}")
    return (f"there is no backup in {backups_dir(journal_path)}; `crosswatch journal check` says what is wrong; "
            f"{empty}")


@dataclass(frozen=True)
class JournalCheck:
    """What `crosswatch journal check` and `doctor` found."""

    path: Path
    exists: bool
    damage: tuple[str, ...] = ()  # integrity_check's findings, or why the file cannot be read at all
    schema: int | None = None
    journal_id: str | None = None
    photos: int = 0
    jobs: Mapping[str, int] = field(default_factory=dict)
    unwritable: str | None = None  # why a write would fail now


def check_journal(path: Path, *, probe: bool = False) -> JournalCheck:
    """integrity_check, schema version and counts of a journal (or a backup), without creating or
    migrating it. ``probe``: also commit one small write, the only sure test that writes get through."""
    if not path.exists():
        return JournalCheck(path, exists=False)
    try:
        db = _connect_existing(path)
    except sqlite3.Error as exc:
        return JournalCheck(path, True, damage=(str(exc),))
    with contextlib.closing(db):
        try:
            damage = tuple(str(r[0]) for r in db.execute("PRAGMA integrity_check") if r[0] != "ok")
            schema = int(db.execute("PRAGMA user_version").fetchone()[0])
            if damage:
                return JournalCheck(path, True, damage=damage, schema=schema)
            photos, jobs, journal_id = _journal_counts(db, schema)
        except sqlite3.DatabaseError as exc:
            return JournalCheck(path, True, damage=(str(exc),))
        unwritable = _write_blocker(path, db)
        if unwritable is None and probe and schema >= JOURNAL_INFO_SCHEMA:
            unwritable = _probe_write(db)
    return JournalCheck(path, True, schema=schema, journal_id=journal_id, photos=photos, jobs=jobs,
                        unwritable=unwritable)


def _journal_counts(db: sqlite3.Connection, schema: int) -> tuple[int, dict[str, int], str | None]:
    if schema < 1:
        return 0, {}, None
    photos = int(db.execute("SELECT COUNT(*) FROM photos").fetchone()[0])
    jobs = {str(r[0]): int(r[1]) for r in db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")}
    journal_id = None
    if schema >= JOURNAL_INFO_SCHEMA:
        row = db.execute("SELECT value FROM journal_info WHERE key = 'id'").fetchone()
        journal_id = None if row is None else str(row[0])
    return photos, jobs, journal_id


def _write_blocker(path: Path, db: sqlite3.Connection) -> str | None:
    """Why a write to the journal would fail now, with what to do; None when nothing says it would."""
    for file in (path, _sidecar(path, "-wal"), _sidecar(path, "-shm")):
        if file.exists() and not os.access(file, os.W_OK):
            return (f"{file} cannot be written (read-only or immutable); make it writable "
                    f"(`chmod u+w`, `chattr -i`)")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"the folder {path.parent} cannot be written; make it writable (`chmod u+w`, `chattr -i`)"
    free = shutil.disk_usage(path.parent).free
    if free < MIN_FREE_BYTES:
        return f"the disk holding {path.parent} is full ({free} bytes free); free some space"
    cap = os.environ.get(MAX_PAGES_ENV, "")
    if cap.isdigit():  # the tests' full disk: the journal may not grow past this many pages
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        unused = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        if unused == 0 and pages >= int(cap):
            return f"the disk holding {path.parent} is full (the journal cannot grow); free some space"
    return None


def _probe_write(db: sqlite3.Connection) -> str | None:
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO journal_info (key, value) VALUES ('checked_at', ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (repr(time.time()),))
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        return f"a test write failed: {exc}"
    return None


@dataclass(frozen=True)
class Restored:
    backup: Path
    kept_aside: tuple[Path, ...]  # the journal it replaced (and its -wal, -shm), moved, not deleted


def restore_journal(journal_path: Path, backup: Path | None = None) -> Restored:
    """Put a backup back as the journal, while no daemon holds it. The journal it replaces is moved
    to state_dir/damaged. The restored journal is marked, so the daemon's next start asks about the
    photos in the folders that the backup does not know (they may have been posted after it was taken)."""
    backups = list_backups(journal_path)
    if backup is None:
        if not backups:
            raise JournalError(f"there is no backup of the journal in {backups_dir(journal_path)}")
        backup = backups[0]
    found = check_journal(backup)
    if not found.exists:
        raise JournalError(f"there is no backup {backup}; the backups are in {backups_dir(journal_path)}")
    if found.damage:
        older = [b for b in backups if b != backup]
        hint = f"; try an older one: `crosswatch journal restore {older[0]}`" if older else ""
        raise JournalError(f"the backup {backup} is damaged too ({found.damage[0]}){hint}")
    lock = DaemonLock(journal_path)
    try:
        lock.acquire()
    except JournalLocked:
        raise JournalLocked(f"a crosswatch daemon is using the journal {journal_path}; stop it first, then "
                            "run `crosswatch journal restore` again") from None
    try:
        kept = _set_aside(journal_path)
        try:
            _copy_private(backup, journal_path)
        except OSError as exc:
            raise JournalError(f"cannot restore {backup} as {journal_path}: {exc.strerror or exc}; the replaced "
                               f"journal is kept in {journal_path.parent / 'damaged'}") from None
        with Journal(journal_path) as journal:
            journal.set_info("restored_from", backup.name)
            remember_journal(journal_path, journal.journal_id)
    finally:
        lock.release()
    return Restored(backup, kept)


def _set_aside(journal_path: Path) -> tuple[Path, ...]:
    """Move the journal and its -wal and -shm into state_dir/damaged (a WAL left beside the restored
    file would be applied to it)."""
    folder = journal_path.parent / "damaged"
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    moved = []
    for suffix in ("", "-wal", "-shm"):
        source = _sidecar(journal_path, suffix)
        if source.exists():
            folder.mkdir(mode=0o700, exist_ok=True)
            destination = folder / f"journal-{stamp}.sqlite3{suffix}"
            os.replace(source, destination)
            moved.append(destination)
    return tuple(moved)


class JournalStall:
    """state_dir/journal.stalled: written by the daemon while the journal refuses its writes (disk
    full, immutable file), so `status` and `doctor`, in other processes, can say so; removed once
    writes get through again. A file left by a daemon that is gone is ignored."""

    def __init__(self, journal_path: Path) -> None:
        self.path = journal_path.parent / "journal.stalled"
        self._since: float | None = None

    def report(self, error: str) -> None:
        if self._since is None:
            self._since = time.time()
        document = {"pid": os.getpid(), "since": self._since, "error": error}
        with contextlib.suppress(OSError):  # the disk may be full for this file too
            _write_private(self.path, json.dumps(document).encode())

    def clear(self) -> None:
        if self._since is not None:
            self._since = None
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)

    @staticmethod
    def read(journal_path: Path) -> dict[str, Any] | None:
        """What a running daemon reported, or None."""
        try:
            document = json.loads((journal_path.parent / "journal.stalled").read_text())
            os.kill(int(document["pid"]), 0)
        except PermissionError:
            return dict(document)  # alive, but another user's
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return dict(document)


def stall_problem(journal_path: Path) -> str | None:
    """What a running daemon reported when its last journal write failed, or None."""
    stalled = JournalStall.read(journal_path)
    return None if stalled is None else f"the daemon's writes fail: {stalled.get('error')}"
