"""Intake benchmark: 2,000 photos dropped at once, and idle cost over a 10,000-file tree.

Runs the real daemon (``crosswatch run``) as a subprocess on a temporary folder and prints:
- seconds from the last write until all 2,000 photos are journaled, against the time
  ``find | xargs sha256sum`` takes to read the same files in the same run (the floor for any tool
  that identifies photos by content), as a ratio;
- the daemon's peak RSS (VmHWM);
- the daemon's CPU seconds over an idle minute with 10,000 files in the watched tree, against one
  ``find`` walk of that tree.

Not a test: the figures depend on the machine. Usage: python bench/bench_intake.py [--photos N]
[--idle-files N] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from PIL import Image


def photo_bytes(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.effect_noise((480, 320), 40).convert("RGB")
    image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (0, 0, 32, 32))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def write_config(root: Path, inbox: Path, rescan_seconds: float = 300.0) -> Path:
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({
        "intake": {"rescan_seconds": rescan_seconds},
        "state_dir": str(root / "state"),
        # No targets: the benchmark measures intake alone, not posting.
        "watch": [{"path": str(inbox), "targets": [], "settle_seconds": 1.0}],
        "targets": {"outbox": {"path": str(root / "outbox")}},
        "logging": {"level": "warning", "format": "json"},
    }))
    return config


def start_daemon(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "crosswatch.cli", "--config", str(config), "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def journaled(state: Path) -> int:
    path = state / "journal.sqlite3"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM photos").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def wait_ready(state: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not (state / "journal.sqlite3").exists() and time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the daemon exited with {process.returncode}")
        time.sleep(0.05)
    time.sleep(0.5)  # watchers scheduled


def bench_drop(root: Path, count: int) -> None:
    source, inbox = root / "source", root / "inbox"
    source.mkdir()
    inbox.mkdir()
    samples = [photo_bytes(i) for i in range(50)]
    for index in range(count):
        # Distinct content per file: a sample with a unique tail after the JPEG's end marker.
        (source / f"IMG_{index:05d}.jpg").write_bytes(samples[index % 50] + index.to_bytes(4, "big"))
    config = write_config(root, inbox)
    daemon = start_daemon(config)
    try:
        wait_ready(root / "state", daemon)
        for path in sorted(source.iterdir()):
            shutil.copyfile(path, inbox / path.name)
        last_write = time.monotonic()
        while journaled(root / "state") < count:
            if time.monotonic() - last_write > 300:
                raise SystemExit("not all photos were journaled within 300 s")
            time.sleep(0.05)
        intake_seconds = time.monotonic() - last_write
        peak_rss_mb = proc_status(daemon.pid, "VmHWM") / 1024
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    reference = timed(f"find {inbox} -name '*.jpg' -print0 | xargs -0 sha256sum")
    settle = 1.0
    print(f"intake: {count} photos journaled {intake_seconds:.2f} s after the last write "
          f"(of which {settle:.1f} s is the settle time)")
    print(f"  reference find|sha256sum over the same files: {reference:.2f} s; "
          f"ratio (intake - settle) / reference = {(intake_seconds - settle) / reference:.1f}x")
    print(f"  peak RSS of the daemon: {peak_rss_mb:.0f} MB")


def bench_idle(root: Path, files: int, seconds: float, rescan_seconds: float) -> None:
    tree = root / "tree"
    payload = photo_bytes(0)
    for index in range(files):
        folder = tree / f"{index // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"p{index:05d}.jpg").write_bytes(payload + index.to_bytes(4, "big"))
    config = write_config(root / "idle", tree, rescan_seconds)
    daemon = start_daemon(config)
    try:
        while journaled(root / "idle" / "state") < files:
            time.sleep(0.2)
        time.sleep(2)
        before = cpu_seconds(daemon.pid)
        time.sleep(seconds)
        used = cpu_seconds(daemon.pid) - before
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    walk = timed(f"find {tree} -type f > /dev/null")
    print(f"idle: {used:.2f} CPU s over {seconds:.0f} s with {files} files watched, a rescan every "
          f"{rescan_seconds:.0f} s "
          f"= {100 * used / seconds:.2f}% of one core")
    print(f"  reference: one find walk of the tree takes {walk:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--idle-files", type=int, default=10000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--rescan-seconds", type=float, default=300.0,
                        help="intake.rescan_seconds for the idle run (300 is the default; 20 shows rescans' cost)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crosswatch-bench-") as scratch:
        root = Path(scratch)
        (root / "idle").mkdir()
        bench_drop(root, args.photos)
        bench_idle(root, args.idle_files, args.idle_seconds, args.rescan_seconds)


if __name__ == "__main__":
    main()
