"""The journal: one job per (photo, target), a legal-moves-only state table, events, recovery, lock."""

from __future__ import annotations

import ast
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from crosswatch.errors import JournalError, JournalLocked
from crosswatch.journal import SCHEMA_VERSION, DaemonLock, Journal, NewFile, printable_path
from crosswatch.models import TRANSITIONS, IllegalTransition, JobState, check_transition
from tests.conftest import REPO, run_cli, write_config


def new_file(name: str, digest: str, targets: tuple[str, ...] = ("x", "instagram"),
             reason: str | None = None) -> NewFile:
    return NewFile(path=f"/photos/{name}", size=10, mtime_ns=1_000_000_000, content_hash=digest,
                   targets=targets, reason=reason)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite3") as opened:
        yield opened


def test_settings_are_durable(journal: Journal) -> None:
    db = sqlite3.connect(journal.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        db.close()


def test_a_photo_gets_one_ready_job_per_target_and_events(journal: Journal) -> None:
    [result] = journal.add_files([new_file("a.jpg", "h1")])
    assert result.outcome == "new"
    jobs = journal.jobs_for_photo(result.photo_id)
    assert [(j.target, j.state) for j in jobs] == [("x", JobState.READY), ("instagram", JobState.READY)]
    events = journal.events(jobs[0].id)
    assert [(e["from_state"], e["to_state"]) for e in events] == [(None, "pending"), ("pending", "ready")]


def test_the_same_bytes_under_another_name_are_one_photo(journal: Journal) -> None:
    first, second = journal.add_files([new_file("a.jpg", "same"), new_file("copy of a.jpg", "same")])
    assert (first.outcome, second.outcome) == ("new", "duplicate")
    assert first.photo_id == second.photo_id
    assert journal.count_photos() == 1
    assert len(journal.jobs()) == 2


def test_new_content_at_a_posted_path_follows_the_policy(journal: Journal) -> None:
    journal.add_files([new_file("a.jpg", "v1")])
    [skipped] = journal.add_files([new_file("a.jpg", "v2")], on_change="skip")
    assert skipped.outcome == "changed"
    assert journal.jobs_for_photo(skipped.photo_id) == []
    [reposted] = journal.add_files([new_file("a.jpg", "v3")], on_change="repost")
    assert reposted.outcome == "new"
    assert len(journal.jobs_for_photo(reposted.photo_id)) == 2


def test_a_rejected_file_has_rejected_jobs_with_the_reason(journal: Journal) -> None:
    [result] = journal.add_files([new_file("bad.jpg", "bad", reason="empty file (0 bytes)")])
    jobs = journal.jobs_for_photo(result.photo_id)
    assert {j.state for j in jobs} == {JobState.REJECTED}
    assert {j.reason for j in jobs} == {"empty file (0 bytes)"}
    # Fixing the file (new content, same path) is not blocked by the skip policy.
    [fixed] = journal.add_files([new_file("bad.jpg", "good")], on_change="skip")
    assert fixed.outcome == "new"


def test_the_state_table_refuses_illegal_moves(journal: Journal) -> None:
    [result] = journal.add_files([new_file("a.jpg", "h", targets=("x",))])
    [job] = journal.jobs_for_photo(result.photo_id)
    with pytest.raises(IllegalTransition):
        journal.transition(job.id, JobState.DONE)  # ready -> done skips in_flight
    journal.transition(job.id, JobState.IN_FLIGHT, step="upload")
    journal.transition(job.id, JobState.DONE, remote_id="42")
    with pytest.raises(IllegalTransition):
        journal.transition(job.id, JobState.READY)  # done is final
    assert journal.job(job.id).remote_id == "42"  # type: ignore[union-attr]


def test_every_state_has_an_entry_and_done_is_final() -> None:
    assert set(TRANSITIONS) == set(JobState)
    assert TRANSITIONS[JobState.DONE] == frozenset()
    for old in JobState:
        for new in JobState:
            if new in TRANSITIONS[old]:
                check_transition(old, new)
            else:
                with pytest.raises(IllegalTransition):
                    check_transition(old, new)


def test_recovery_sends_safe_steps_back_and_unsafe_intents_to_doubt(journal: Journal) -> None:
    [a, b] = journal.add_files([new_file("a.jpg", "a", ("x",)), new_file("b.jpg", "b", ("x",))])
    [job_a] = journal.jobs_for_photo(a.photo_id)
    [job_b] = journal.jobs_for_photo(b.photo_id)
    journal.transition(job_a.id, JobState.IN_FLIGHT, step="upload")
    journal.transition(job_b.id, JobState.IN_FLIGHT, step="post", intent=True)
    moved = {row.job.id: state for row, state in journal.recover_in_flight()}
    assert moved == {job_a.id: JobState.READY, job_b.id: JobState.IN_DOUBT}
    assert "post" in (journal.job(job_b.id).reason or "")  # type: ignore[union-attr]


def test_data_is_merged_and_attempts_counted(journal: Journal) -> None:
    [result] = journal.add_files([new_file("a.jpg", "h", ("x",))])
    [job] = journal.jobs_for_photo(result.photo_id)
    journal.transition(job.id, JobState.IN_FLIGHT, attempts_delta=1, data={"media_id": "1"})
    row = journal.transition(job.id, JobState.IN_FLIGHT, data={"media_key": "3_1"})
    assert row.job.data == {"media_id": "1", "media_key": "3_1"}
    assert row.job.attempts == 1


def test_file_names_that_are_not_utf8_round_trip(journal: Journal) -> None:
    odd = os.fsdecode(b"/photos/caf\xe9\nnew.jpg")
    journal.add_files([NewFile(path=odd, size=1, mtime_ns=1, content_hash="odd", targets=("x",))])
    assert journal.photos()[0][0].path == odd
    assert journal.files_seen() == {odd: (1, 1)}
    assert printable_path(odd) == "/photos/caf\\xe9\\nnew.jpg"


def test_a_journal_from_a_newer_crosswatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer crosswatch"):
        Journal(path)


def test_two_daemons_cannot_share_a_journal(tmp_path: Path, workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    with DaemonLock(workspace["state"] / "journal.sqlite3"):
        with pytest.raises(JournalLocked):
            DaemonLock(workspace["state"] / "journal.sqlite3").acquire()
        result = run_cli("run", "--once", config=config)
    assert result.returncode == 2
    assert "another crosswatch daemon" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


PURE_MODULES = ["config.py", "models.py", "templates.py", "errors.py", "platforms/base.py"]
IO_MODULES = {"sqlite3", "socket", "keyring", "watchdog", "subprocess", "urllib.request"}


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_no_io(module: str) -> None:
    tree = ast.parse((REPO / "crosswatch" / module).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {name for name in imported if name.split(".")[0] in IO_MODULES or name in IO_MODULES}


def test_only_the_journal_touches_sqlite() -> None:
    users = [p.relative_to(REPO).as_posix() for p in (REPO / "crosswatch").rglob("*.py")
             if "import sqlite3" in p.read_text()]
    assert users == ["crosswatch/journal.py"]


def test_journals_opened_at_once_migrate_once(tmp_path: Path) -> None:
    # The daemon's connections and a `crosswatch status` may all open a new journal at the same moment.
    path = tmp_path / "journal.sqlite3"
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def open_one() -> None:
        start.wait()
        try:
            Journal(path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Journal(path) as journal:
        assert journal._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
