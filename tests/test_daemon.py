"""The daemon as a real subprocess over a real folder, journal and outbox."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from crosswatch.journal import Journal
from crosswatch.models import JobState
from tests.conftest import PHOTOS, DaemonProcess, jpeg_bytes, run_cli, wait_until, write_config

StartDaemon = Callable[..., DaemonProcess]


def journal_counts(state_dir: Path) -> tuple[int, dict[str, int]]:
    path = state_dir / "journal.sqlite3"
    if not path.exists():
        return 0, {}
    with Journal(path) as journal:
        counts: dict[str, int] = {}
        for per_state in journal.state_counts().values():
            for state, n in per_state.items():
                counts[state] = counts.get(state, 0) + n
        return journal.count_photos(), counts


def outbox_images(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.glob("*") if p.suffix in (".jpg", ".png")) if outbox.exists() else []


def done_exactly_once(state_dir: Path) -> None:
    """Every job is done, and its event log shows it became done once."""
    with Journal(state_dir / "journal.sqlite3") as journal:
        for job in journal.jobs():
            assert job.state is JobState.DONE, (job, journal.events(job.id))
            assert [e["to_state"] for e in journal.events(job.id)].count("done") == 1


def test_500_photos_copied_in_while_running_are_all_taken_once(workspace: dict[str, Path],
                                                               start_daemon: StartDaemon,
                                                               tmp_path: Path) -> None:
    config = write_config(workspace)
    source = tmp_path / "export"
    source.mkdir()
    for index in range(500):
        (source / f"IMG_{index:04d}.jpg").write_bytes(jpeg_bytes(index))
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    for path in sorted(source.iterdir()):
        shutil.copy(path, workspace["inbox"] / path.name)
    wait_until(lambda: journal_counts(workspace["state"])[1].get("done", 0) == 500, timeout=240)
    photos, counts = journal_counts(workspace["state"])
    assert photos == 500
    assert counts == {"done": 500}
    assert len(outbox_images(workspace["outbox"])) == 500
    assert daemon.stop() == 0


def test_a_slowly_written_photo_is_taken_once_when_complete(workspace: dict[str, Path],
                                                            start_daemon: StartDaemon) -> None:
    config = write_config(workspace)
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    data = jpeg_bytes(1, size=(400, 300))
    chunk = len(data) // 20 + 1
    with open(workspace["inbox"] / "slow.jpg", "wb") as handle:
        for start in range(0, len(data), chunk):
            handle.write(data[start:start + chunk])
            handle.flush()
            time.sleep(3 / 20)
    wait_until(lambda: journal_counts(workspace["state"])[1].get("done", 0) == 1, timeout=30)
    time.sleep(1.5)  # settle period and a tick more: nothing else may turn up
    with Journal(workspace["state"] / "journal.sqlite3") as journal:
        [(photo, status, _reason)] = journal.photos()
    assert status == "ok"
    assert photo.hash == hashlib.sha256(data).hexdigest()
    assert daemon.stop() == 0


def test_photos_present_before_the_start_are_caught_up(workspace: dict[str, Path],
                                                       start_daemon: StartDaemon) -> None:
    for index in range(5):
        (workspace["inbox"] / f"old-{index}.jpg").write_bytes(jpeg_bytes(100 + index))
    config = write_config(workspace)
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    wait_until(lambda: journal_counts(workspace["state"])[1].get("done", 0) == 5, timeout=30)
    assert daemon.stop() == 0


def test_the_rescan_finds_what_no_event_reported(workspace: dict[str, Path], start_daemon: StartDaemon) -> None:
    # With file events off (as on a network share) only the periodic rescan can find the photo.
    config = write_config(workspace, intake={"rescan_seconds": 1, "use_events": False})
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    (workspace["inbox"] / "quiet.jpg").write_bytes(jpeg_bytes(7))
    wait_until(lambda: journal_counts(workspace["state"])[1].get("done", 0) == 1, timeout=30)
    assert any(line.get("event") == "rescan found files" for line in daemon.log_lines())
    assert daemon.stop() == 0


def test_run_once_posts_everything_due_and_exits(workspace: dict[str, Path]) -> None:
    for index in range(3):
        (workspace["inbox"] / f"p{index}.jpg").write_bytes(jpeg_bytes(200 + index))
    config = write_config(workspace)
    result = run_cli("run", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert len(outbox_images(workspace["outbox"])) == 3
    status = json.loads(run_cli("status", "--json", config=config).stdout)
    assert [job["state"] for job in status["jobs"]] == ["done"] * 3
    assert all(job["permalink"].startswith("file://") for job in status["jobs"])


CRASH_POINTS = ["intake:before-commit", "intake:after-commit", "before:write", "outbox:between-files",
                "after:write", "recorded:write"]


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
def test_sigkill_at_each_point_of_intake_and_the_outbox_step_loses_nothing(
        crash_point: str, workspace: dict[str, Path], start_daemon: StartDaemon) -> None:
    total = 12
    for index in range(total):
        (workspace["inbox"] / f"k{index:03d}.jpg").write_bytes(jpeg_bytes(300 + index))
    config = write_config(workspace)
    # Steps die at their third pass, so some work is already journaled when it happens; intake
    # commits all twelve files in one batch, so it dies at its first.
    nth = 1 if crash_point.startswith("intake") else 3
    crashed = start_daemon(config, env={"CROSSWATCH_CRASHPOINT": f"{crash_point}:{nth}"})
    assert crashed.process.wait(timeout=60) == -9, crashed.log_path.read_text()
    assert journal_counts(workspace["state"])[1].get("done", 0) < total
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    wait_until(lambda: journal_counts(workspace["state"])[1].get("done", 0) == total, timeout=60)
    assert daemon.stop() == 0
    assert journal_counts(workspace["state"]) == (total, {"done": total})
    done_exactly_once(workspace["state"])
    assert len(outbox_images(workspace["outbox"])) == total
    assert len(list(workspace["outbox"].glob("*.txt"))) == total
    assert not list(workspace["outbox"].glob(".crosswatch-*")), "a half-written temporary file was left"


def test_sigkill_at_random_instants_loses_nothing(workspace: dict[str, Path], start_daemon: StartDaemon) -> None:
    total = 60
    for index in range(total):
        (workspace["inbox"] / f"r{index:03d}.jpg").write_bytes(jpeg_bytes(500 + index, size=(800, 600)))
    config = write_config(workspace)
    kills = 0
    for round_ in range(8):
        daemon = start_daemon(config)
        time.sleep(0.5 + 0.2 * round_)
        daemon.kill()
        if journal_counts(workspace["state"])[1].get("done", 0) == total:
            break
        kills += 1
    assert kills > 0
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    wait_until(lambda: journal_counts(workspace["state"])[1].get("done", 0) == total, timeout=120)
    assert daemon.stop() == 0
    assert journal_counts(workspace["state"]) == (total, {"done": total})
    done_exactly_once(workspace["state"])
    assert len(outbox_images(workspace["outbox"])) == total


def test_bad_input_is_rejected_and_the_daemon_keeps_running(workspace: dict[str, Path],
                                                             start_daemon: StartDaemon, tmp_path: Path) -> None:
    config = write_config(workspace)
    daemon = start_daemon(config)
    daemon.wait_for_log("watching")
    inbox = workspace["inbox"]
    (inbox / "zero.jpg").write_bytes(b"")
    (inbox / "text.jpg").write_text("not a photo at all\n")
    shutil.copy(PHOTOS / "pil-truncated_jpeg.jpg", inbox / "truncated.jpg")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(jpeg_bytes(1))
    (inbox / "link.jpg").symlink_to(outside)
    (inbox / "dir.jpg").mkdir()
    with open(os.path.join(os.fsencode(inbox), b"new\nline-\xff.jpg"), "wb") as handle:
        handle.write(jpeg_bytes(2))
    (inbox / "notes.txt").write_text("ignored: does not match the globs")
    wait_until(lambda: journal_counts(workspace["state"])[0] == 5, timeout=30)
    (inbox / "good.jpg").write_bytes(jpeg_bytes(3))
    wait_until(lambda: journal_counts(workspace["state"])[1].get("done", 0) == 2, timeout=30)
    assert daemon.process.poll() is None
    status = json.loads(run_cli("status", "--json", config=config).stdout)
    reasons = {Path(p["path"]).name: p["reason"] for p in status["photos"] if p["status"] == "rejected"}
    assert set(reasons) == {"zero.jpg", "text.jpg", "truncated.jpg", "link.jpg"}
    assert all(reasons.values())
    rejected_jobs = [j for j in status["jobs"] if j["state"] == "rejected"]
    assert len(rejected_jobs) == 4 and all(j["reason"] for j in rejected_jobs)
    text = run_cli("status", config=config).stdout
    assert "empty file (0 bytes)" in text and "outside the watched folder" in text
    assert daemon.stop() == 0


def test_sigterm_stops_cleanly_and_systemd_hears_about_it(workspace: dict[str, Path],
                                                          start_daemon: StartDaemon, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    messages: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(0.2)
        stop = threading.Event()

        def receive() -> None:
            while not stop.is_set():
                try:
                    messages.append(server.recv(4096).decode())
                except TimeoutError:
                    continue

        thread = threading.Thread(target=receive)
        thread.start()
        try:
            daemon = start_daemon(write_config(workspace),
                                  env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"})
            wait_until(lambda: any(m.startswith("READY=1") for m in messages), timeout=30)
            wait_until(lambda: "WATCHDOG=1" in messages, timeout=10)
            assert daemon.stop() == 0
            wait_until(lambda: "STOPPING=1" in messages, timeout=10)
        finally:
            stop.set()
            thread.join()
    assert any(line.get("event") == "stopped" for line in daemon.log_lines())
