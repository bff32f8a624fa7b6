"""Start-up benchmark: how long `crosswatch --help`, `status`, `queue` and `preview` take to start, as
real processes, against `python -c pass` (the interpreter's own start-up) in the same run.

Each command runs several times on a small config (an outbox target, an empty journal made by the
first `status`); the medians are printed in seconds and as a ratio to `python -c pass`. The goal is
under 0.25 s for --help, status and queue. `--importtime` also prints the ten slowest imports of each
command (``python -X importtime``), to find what to make lazy.

Not a test: the figures depend on the machine. Usage: python bench/bench_startup.py [--runs N] [--importtime]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "crosswatch" / "samples" / "autumn-canopy.jpg"
GOAL_SECONDS = 0.25


def write_config(root: Path) -> Path:
    (root / "export").mkdir()
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump({"state_dir": str(root / "state"),
                                    "watch": [{"path": str(root / "export"), "targets": ["outbox"]}],
                                    "targets": {"outbox": {"path": str(root / "outbox")}}}))
    return path


def commands(config: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "crosswatch.cli"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "crosswatch --help": [*cli, "--help"],
        "crosswatch status": [*cli, "--config", str(config), "status"],
        "crosswatch queue": [*cli, "--config", str(config), "queue"],
        "crosswatch preview": [*cli, "--config", str(config), "preview", str(SAMPLE)],
    }


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - started


def slowest_imports(argv: list[str], env: dict[str, str], count: int = 10) -> list[tuple[int, str]]:
    """The ``count`` imports with the largest cumulative time (microseconds), from -X importtime."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True, text=True,
                          cwd=REPO, check=True)
    rows = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if found and len(found.group(2)) <= 3:  # top-level imports only, not their children
            rows.append((int(found.group(1)), found.group(3)))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        env = {**os.environ, "CROSSWATCH_CONFIG": str(write_config(root)), "PYTHONPATH": str(REPO)}
        runs = commands(root / "config.yaml")
        timed(runs["crosswatch status"], env)  # makes the journal, warms the file cache
        medians = {name: statistics.median(timed(argv, env) for _ in range(args.runs)) for name, argv in runs.items()}
        baseline = medians["python -c pass"]
        print(f"{'command':<20} {'median s':>9} {'x python':>9}   ({args.runs} runs each, {sys.version.split()[0]})")
        for name, seconds in medians.items():
            goal = "" if name in ("python -c pass", "crosswatch preview") else (
                "  ok" if seconds < GOAL_SECONDS else f"  over {GOAL_SECONDS} s")
            print(f"{name:<20} {seconds:>9.3f} {seconds / baseline:>9.1f}{goal}")
        if args.importtime:
            for name, argv in runs.items():
                if name == "python -c pass":
                    continue
                print(f"\nslowest imports of {name} (cumulative ms):")
                for micros, module in slowest_imports(argv, env):
                    print(f"  {micros / 1000:8.1f}  {module}")


if __name__ == "__main__":
    main()
