"""The journal's safety nets: backups, check and restore, a lost journal that asks before reposting,
an unwritable journal that doctor and status report, and private modes (issue 11, defects 6 and 8)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crosswatch.journal import (
    BACKUPS_KEPT,
    MIGRATIONS,
    SCHEMA_VERSION,
    Journal,
    NewFile,
    check_journal,
    list_backups,
    read_marker,
)
from crosswatch.models import JobState
from tests.conftest import REPO, DaemonProcess, cli_env, jpeg_bytes, run_cli, wait_until, write_config

StartDaemon = Callable[..., DaemonProcess]
SKIP_REASON = "present before the journal was restarted"


def posted(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.glob("*.jpg")) if outbox.exists() else []


def writes(outbox: Path) -> dict[str, int]:
    """Each posted image with its inode: posting a photo again replaces its file (a new inode), since
    the outbox writes under a name made from the content, atomically."""
    return {p.name: p.stat().st_ino for p in posted(outbox)}


def drop(inbox: Path, count: int, first: int = 0) -> None:
    for index in range(first, first + count):
        (inbox / f"photo-{index}.jpg").write_bytes(jpeg_bytes(5000 + index))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("crosswatch: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def run_once_asks(config: Path, question: str) -> None:
    """`run --once` stops with exit 2 and one line saying ``question``, posting nothing."""
    result = run_cli("run", "--once", config=config)
    assert result.returncode == 2, result.stderr
    assert question in one_line(result)


def delete_journal(state: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (state / f"journal.sqlite3{suffix}").unlink(missing_ok=True)


def jobs_by_state(state: Path) -> dict[str, int]:
    with Journal(state / "journal.sqlite3") as journal:
        counts: dict[str, int] = {}
        for per_state in journal.state_counts().values():
            for name, n in per_state.items():
                counts[name] = counts.get(name, 0) + n
        return counts


class RunProcess(DaemonProcess):
    """`crosswatch run` with options, as a real subprocess (its log in a file)."""

    def __init__(self, config: Path, log_path: Path, *options: str) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crosswatch.cli", "--config", str(config), "run", *options],
            stdout=self._log, stderr=self._log, env=cli_env(), cwd=REPO)


# -- defect 6, part 2: a journal started afresh asks before posting what is already there ------------


def test_a_deleted_journal_makes_run_stop_and_ask_and_skip_posts_only_new_photos(
        workspace: dict[str, Path], start_daemon: StartDaemon, tmp_path: Path) -> None:
    config = write_config(workspace)
    drop(workspace["inbox"], 3)
    # The very first start posts what is there, and says how many it found.
    daemon = start_daemon(config)
    wait_until(lambda: len(posted(workspace["outbox"])) == 3, timeout=60)
    assert daemon.stop() == 0
    [first] = [line for line in daemon.log_lines() if line.get("event", "").startswith("first start")]
    assert first["count"] == 3
    assert read_marker(workspace["state"] / "journal.sqlite3")

    before = writes(workspace["outbox"])
    delete_journal(workspace["state"])
    doctor = run_cli("doctor", config=config)
    assert doctor.returncode == 1 and "new, but this state folder had another before it" in doctor.stdout
    for args in (("run",), ("run", "--once")):
        result = run_cli(*args, config=config, timeout=60)
        assert result.returncode == 2, result.stderr
        line = one_line(result)
        assert "3 photos already in the watched folders" in line
        assert "--existing skip" in line and "--existing post" in line
    assert writes(workspace["outbox"]) == before, "nothing may be posted before the user chooses"

    daemon = RunProcess(config, tmp_path / "skip.log", "--existing", "skip")
    try:
        daemon.wait_for_log("watching")
        drop(workspace["inbox"], 1, first=3)  # a new photo, after the start: posted
        wait_until(lambda: len(posted(workspace["outbox"])) == 4, timeout=60)
    finally:
        assert daemon.stop() == 0
    skipped_log = [line for line in daemon.log_lines() if line.get("reason") == SKIP_REASON]
    assert skipped_log[0]["count"] == 3
    assert {name: writes(workspace["outbox"])[name] for name in before} == before, "nothing old is posted"
    status = run_cli("status", config=config)
    assert status.stdout.count(SKIP_REASON) == 3, status.stdout
    document = json.loads(run_cli("status", "--json", config=config).stdout)
    skipped = [job for job in document["jobs"] if job["reason"] == SKIP_REASON]
    assert [job["state"] for job in skipped] == ["rejected"] * 3
    # Skipped is a decision, not a loss: retry posts one after all.
    assert run_cli("retry", str(skipped[0]["id"]), config=config).returncode == 0
    assert run_cli("run", "--once", config=config).returncode == 0
    assert jobs_by_state(workspace["state"]) == {"done": 2, "rejected": 2}
    # From now on this journal is the state folder's own: no more questions.
    assert run_cli("run", "--once", config=config).returncode == 0


def test_existing_post_and_the_config_key_decide_without_asking(workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    drop(workspace["inbox"], 2)
    assert run_cli("run", "--once", config=config).returncode == 0
    first = writes(workspace["outbox"])
    delete_journal(workspace["state"])
    result = run_cli("run", "--once", "--existing", "post", config=config)
    assert result.returncode == 0, result.stderr
    again = writes(workspace["outbox"])
    assert again.keys() == first.keys() and not set(again.values()) & set(first.values())  # posted again
    assert jobs_by_state(workspace["state"]) == {"done": 2}
    delete_journal(workspace["state"])
    config = write_config(workspace, intake={"rescan_seconds": 2, "existing": "skip"})
    assert run_cli("run", "--once", config=config).returncode == 0
    assert writes(workspace["outbox"]) == again
    assert jobs_by_state(workspace["state"]) == {"rejected": 2}


def test_a_journal_and_marker_both_deleted_are_noticed_by_the_backups(workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    drop(workspace["inbox"], 2)
    assert run_cli("run", "--once", config=config).returncode == 0
    assert list_backups(workspace["state"] / "journal.sqlite3")
    delete_journal(workspace["state"])
    (workspace["state"] / "journal.id").unlink()
    run_once_asks(config, "2 photos already in the watched folders")


def test_a_state_folder_removed_under_the_daemon_makes_the_next_start_ask(
        workspace: dict[str, Path], start_daemon: StartDaemon) -> None:
    config = write_config(workspace)
    drop(workspace["inbox"], 2)
    daemon = start_daemon(config)
    wait_until(lambda: len(posted(workspace["outbox"])) == 2, timeout=60)
    before = writes(workspace["outbox"])
    shutil.rmtree(workspace["state"])
    daemon.stop()  # whatever its exit status: what matters here is what the next start does
    assert read_marker(workspace["state"] / "journal.sqlite3"), "the stopping daemon puts journal.id back"
    assert mode(workspace["state"]) == 0o700
    run_once_asks(config, "2 photos already in the watched folders")
    assert writes(workspace["outbox"]) == before


def test_intake_existing_must_be_ask_post_or_skip(workspace: dict[str, Path]) -> None:
    config = write_config(workspace, intake={"existing": "sometimes"})
    result = run_cli("status", config=config)
    assert result.returncode == 2
    assert "intake.existing" in one_line(result)


# -- defect 6, part 1: backups, check, restore ---------------------------------------------------------


def test_an_unusable_journal_is_restored_from_the_automatic_backup_and_nothing_is_reposted(
        workspace: dict[str, Path], start_daemon: StartDaemon) -> None:
    config = write_config(workspace)
    drop(workspace["inbox"], 3)
    # Backups every second instead of every day, so one is taken after the posts.
    daemon = start_daemon(config, env={"CROSSWATCH_JOURNAL_BACKUP_SECONDS": "1"})
    wait_until(lambda: len(posted(workspace["outbox"])) == 3, timeout=60)

    def backed_up_done() -> bool:
        backups = list_backups(workspace["state"] / "journal.sqlite3")
        return bool(backups) and check_journal(backups[0]).jobs.get("done") == 3

    wait_until(backed_up_done, timeout=30)
    assert daemon.stop() == 0
    before = writes(workspace["outbox"])
    backups = list_backups(workspace["state"] / "journal.sqlite3")
    assert 1 < len(backups) <= BACKUPS_KEPT
    assert any(line.get("event") == "journal backed up" for line in daemon.log_lines())

    journal = workspace["state"] / "journal.sqlite3"
    journal.write_bytes(b"this is not what it was " * 400)  # the disk mangled it
    result = run_cli("status", config=config)
    assert result.returncode == 1
    line = one_line(result)
    assert "is unusable" in line and "crosswatch journal restore" in line and str(backups[0]) in line
    assert "forgets what was posted" in line
    check = run_cli("journal", "check", config=config)
    assert check.returncode == 1 and "damaged" in check.stdout + check.stderr

    restore = run_cli("journal", "restore", config=config)
    assert restore.returncode == 0, restore.stderr
    assert str(backups[0]) in restore.stdout
    [kept] = (workspace["state"] / "damaged").glob("journal-*.sqlite3")
    assert kept.read_bytes().startswith(b"this is not what it was")
    check = run_cli("journal", "check", config=config)
    assert check.returncode == 0, check.stderr
    assert "integrity ok" in check.stdout and f"schema {SCHEMA_VERSION}" in check.stdout
    assert "3 done" in check.stdout

    result = run_cli("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert writes(workspace["outbox"]) == before, "nothing may be posted twice"
    assert jobs_by_state(workspace["state"]) == {"done": 3}


def test_a_restored_backup_older_than_some_photos_asks_about_them(workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    drop(workspace["inbox"], 2)
    assert run_cli("run", "--once", config=config).returncode == 0
    backup = run_cli("journal", "backup", config=config)
    assert backup.returncode == 0, backup.stderr
    name = Path(backup.stdout.strip().rsplit(" ", 1)[-1]).name
    drop(workspace["inbox"], 1, first=2)
    assert run_cli("run", "--once", config=config).returncode == 0
    before = writes(workspace["outbox"])
    assert len(before) == 3
    # The backup (named by its file name alone) does not know the third photo, which was posted.
    assert run_cli("journal", "restore", name, config=config).returncode == 0
    run_once_asks(config, "1 photos in the watched folders are not in it")
    assert run_cli("run", "--once", "--existing", "skip", config=config).returncode == 0
    assert writes(workspace["outbox"]) == before
    assert jobs_by_state(workspace["state"]) == {"done": 2, "rejected": 1}


def test_restore_refuses_while_a_daemon_holds_the_journal(workspace: dict[str, Path],
                                                          start_daemon: StartDaemon) -> None:
    config = write_config(workspace)
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    wait_until(lambda: bool(list_backups(workspace["state"] / "journal.sqlite3")), timeout=30)
    before = (workspace["state"] / "journal.sqlite3").stat().st_ino
    result = run_cli("journal", "restore", config=config)
    assert result.returncode == 2
    assert "stop it first" in one_line(result)
    assert (workspace["state"] / "journal.sqlite3").stat().st_ino == before
    assert not (workspace["state"] / "damaged").exists()
    assert daemon.stop() == 0


def test_restore_without_a_backup_and_check_without_a_journal_say_so(workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    check = run_cli("journal", "check", config=config)
    assert check.returncode == 0 and "no journal yet" in check.stdout
    result = run_cli("journal", "restore", config=config)
    assert result.returncode == 1
    assert "there is no backup" in one_line(result)
    for command in ("check", "backup", "restore"):
        assert run_cli("journal", command, "--help").returncode == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_backups_are_complete_private_single_files_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "state" / "journal.sqlite3"
    with Journal(path, clock=clock) as journal:
        journal.add_files([NewFile(path="/p/a.jpg", size=1, mtime_ns=1, content_hash="a", targets=("x",))])
        made = [journal.backup()]
        # A backup half-written by a process that died meanwhile (SIGKILL) is cleared away.
        (made[0].parent / ".journal-999999999-1.partial").write_bytes(b"half")
        for _day in range(BACKUPS_KEPT + 1):
            clock.now += 86400
            made.append(journal.backup())
        journal_id = journal.journal_id
    backups = list_backups(path)
    assert backups == made[::-1][:BACKUPS_KEPT]
    assert sorted(os.listdir(backups[0].parent)) == sorted(b.name for b in backups)  # no temporary left
    assert mode(backups[0].parent) == 0o700
    for backup in backups:
        assert mode(backup) == 0o600
        found = check_journal(backup)
        assert (found.damage, found.schema, found.photos, found.journal_id) == ((), SCHEMA_VERSION, 1, journal_id)
        with sqlite3.connect(backup) as db:  # one file, no -wal needed beside it
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_journal_is_backed_up_before_it_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        for statement in "".join(MIGRATIONS[:3]).split(";"):
            db.execute(statement)
        db.execute("INSERT INTO photos (hash, path, size, mtime, first_seen) VALUES ('h', '/p/a.jpg', 1, 1, 1)")
        db.execute("PRAGMA user_version = 3")
    db.close()
    with Journal(path) as journal:
        assert journal.journal_id
    [backup] = list_backups(path)
    found = check_journal(backup)
    assert (found.schema, found.photos, found.journal_id) == (3, 1, None)
    assert check_journal(path).schema == SCHEMA_VERSION


# -- defect 8: an unwritable journal is reported; private modes ----------------------------------------


@pytest.fixture
def immutable(workspace: dict[str, Path]) -> Iterator[Path]:
    """The journal made immutable (chattr +i), undone afterwards; skipped where chattr is refused."""
    config = write_config(workspace)
    assert run_cli("run", "--once", config=config).returncode == 0
    journal = workspace["state"] / "journal.sqlite3"
    if shutil.which("chattr") is None:
        pytest.skip("no chattr here")
    made = subprocess.run(["chattr", "+i", str(journal)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i refused here: {made.stderr.strip()}")
    try:
        yield journal
    finally:
        subprocess.run(["chattr", "-i", str(journal)], capture_output=True, check=False)


def test_doctor_and_status_say_an_immutable_journal_cannot_be_written(
        workspace: dict[str, Path], immutable: Path) -> None:
    config = workspace["config"]
    drop(workspace["inbox"], 2)
    doctor = run_cli("doctor", config=config)
    assert doctor.returncode == 1
    assert f"FIX   journal {immutable}: cannot be written" in doctor.stdout, doctor.stdout
    assert "chattr -i" in doctor.stdout
    status = run_cli("status", config=config)
    assert status.returncode == 0, status.stderr
    assert "journal: cannot be written" in status.stdout
    assert "2 files in the watched folders wait outside it" in status.stdout
    document = json.loads(run_cli("status", "--json", config=config).stdout)
    assert document["journal"]["writable"] is False and document["journal"]["waiting_outside"] == 2
    assert run_cli("journal", "check", config=config).returncode == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files anyway")
def test_doctor_and_status_say_a_read_only_journal_cannot_be_written(workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    assert run_cli("run", "--once", config=config).returncode == 0
    journal = workspace["state"] / "journal.sqlite3"
    journal.chmod(0o400)
    drop(workspace["inbox"], 1)
    try:
        doctor = run_cli("doctor", config=config)
        assert doctor.returncode == 1 and f"FIX   journal {journal}: cannot be written" in doctor.stdout
        assert "1 files in the watched folders wait outside it" in run_cli("status", config=config).stdout
    finally:
        journal.chmod(0o600)


def test_a_daemon_on_a_full_journal_makes_doctor_and_status_say_so(
        workspace: dict[str, Path], start_daemon: StartDaemon) -> None:
    config = write_config(workspace)
    drop(workspace["inbox"], 1)
    assert run_cli("run", "--once", config=config).returncode == 0
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    doctor = run_cli("doctor", config=config)
    assert doctor.returncode == 0 and "ok    journal" in doctor.stdout, doctor.stdout
    # The disk fills up under the daemon: its journal cannot grow by more than a page.
    daemon = start_daemon(config, env={"CROSSWATCH_JOURNAL_MAX_PAGES": str(pages + 1)})
    daemon.wait_for_log("watching")
    drop(workspace["inbox"], 30, first=1)
    wait_until(lambda: (workspace["state"] / "journal.stalled").exists(), timeout=60)
    status = run_cli("status", config=config)  # another process, which does not know of the cap
    assert "journal: cannot be written: the daemon's writes fail" in status.stdout, status.stdout
    assert "full" in status.stdout
    assert " files in the watched folders wait outside it" in status.stdout
    doctor = run_cli("doctor", config=config)
    assert doctor.returncode == 1 and "cannot be written" in doctor.stdout
    assert daemon.process.poll() is None
    assert daemon.stop() == 0
    # A report left by a daemon that is gone says nothing any more.
    assert "journal: cannot be written" not in run_cli("status", config=config).stdout


def test_the_state_folder_the_journal_and_its_files_are_private(workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    drop(workspace["inbox"], 1)
    old_umask = os.umask(0o022)
    try:
        result = run_cli("run", "--once", config=config)
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    state = workspace["state"]
    assert mode(state) == 0o700
    assert mode(state / "backups") == 0o700
    for private in (state / "journal.sqlite3", state / "journal.id", *list_backups(state / "journal.sqlite3")):
        assert mode(private) == 0o600, private
    with Journal(state / "journal.sqlite3") as journal:  # open: the -wal and -shm exist now
        journal.set_hold("x", 1.0, "test", "test")
        for suffix in ("-wal", "-shm"):
            assert mode(state / f"journal.sqlite3{suffix}") == 0o600
    # A journal made by an older, laxer crosswatch is tightened when opened.
    (state / "journal.sqlite3").chmod(0o644)
    with Journal(state / "journal.sqlite3") as journal:
        assert journal.jobs()[0].state is JobState.DONE
    assert mode(state / "journal.sqlite3") == 0o600


def test_skip_records_a_link_to_a_photo_inside_the_folder_like_any_photo(tmp_path: Path) -> None:
    """Intake takes links that stay inside the folder, so `--existing skip` must record them too:
    a link it passed over would be posted by intake right after, unasked."""
    from crosswatch.config import WatchFolder
    from crosswatch.existing import _skipped_file

    inbox = tmp_path / "inbox"
    (inbox / "originals").mkdir(parents=True)
    photo = inbox / "originals" / "a.jpg"
    photo.write_bytes(jpeg_bytes(7001))
    os.utime(photo, (1_700_000_000, 1_700_000_000))
    (inbox / "link.jpg").symlink_to(photo)
    folder = WatchFolder(path=inbox, targets=("outbox",), settle_seconds=0.0)
    found = _skipped_file(str(inbox / "link.jpg"), folder)
    assert found is not None, "a link inside the folder must be recorded as skipped"
    assert found.skipped == {"outbox": SKIP_REASON}
    assert (found.size, found.mtime_ns) == (photo.stat().st_size, photo.stat().st_mtime_ns)
    fifo = inbox / "pipe.jpg"
    os.mkfifo(fifo)
    assert _skipped_file(str(fifo), folder) is None, "a FIFO is intake's to reject, never opened blocking"


def test_a_first_creation_cut_short_by_a_kill_is_not_taken_for_another_journal(tmp_path: Path) -> None:
    """A SIGKILL while a new journal is being created leaves its first migrations done, no id and no
    photos; the next start copies it before migrating on (as for any journal with a schema). That
    copy is this same journal, unfinished: the start must not stop and ask as if one had been lost."""
    import sqlite3

    from crosswatch.journal import MIGRATIONS, Journal, list_backups, replaced_journal

    path = tmp_path / "state" / "journal.sqlite3"
    path.parent.mkdir()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for version in range(4):  # the journal_info id comes with migration 5
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
    with Journal(path) as journal:
        assert list_backups(path), "the unfinished journal was backed up before migrating on"
        assert replaced_journal(journal) is None
