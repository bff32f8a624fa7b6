"""Start-up benchmark: how long `crosswatch --help`, `status`, `queue` and `preview` take to start, as
real processes, against `python -c pass` (the interpreter's own start-up) in the same run.

Each command runs several times on a small config (an outbox target, an empty journal made by the
first `status`), and `queue` once more where jobs wait: the demo's four sample photos awaiting approval
for the outbox, X and Mastodon (taken in by `run --once`), whose captions it composes and counts as they
will be posted. Their captions may hold URLs (a licence's address, "6:40 a.m."), which only
twitter-text can count (its URL and emoji patterns take long to compile); the daemon's intake composed
them already and kept twitter-text's answers in the state dir (twitter_counting.remember_in), so
`queue` need not import it. The medians are printed
in seconds of wall time, above `python -c pass`, as a ratio to it, and in CPU seconds (user +
system: less disturbed than wall time when other work shares the machine). The goal is under 0.25 s
for --help, status and queue. `--importtime` also prints the ten slowest imports of each command
(``python -X importtime``), to find what to make lazy.

Compiled bytecode is cached (in the scratch folder) as an installed crosswatch has it: pip writes .pyc
files at install, an editable checkout writes __pycache__ on its first run. Where PYTHONDONTWRITEBYTECODE
is set, every run would otherwise compile crosswatch's sources again; `--no-bytecode-cache` measures that.
The console script (`crosswatch --help` as installed, beside this Python) is timed too when it exists.

Not a test: the figures depend on the machine.
Usage: python bench/bench_startup.py [--runs N] [--importtime] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
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
CONSOLE_SCRIPT = Path(sys.executable).parent / "crosswatch"  # what `pip install` put on PATH
NOT_GOALS = ("python -c pass", "crosswatch preview")
WAITING = "queue, jobs waiting"


def write_config(root: Path) -> Path:
    (root / "export").mkdir()
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump({"state_dir": str(root / "state"),
                                    "watch": [{"path": str(root / "export"), "targets": ["outbox"]}],
                                    "targets": {"outbox": {"path": str(root / "outbox")}}}))
    return path


def write_waiting_jobs(root: Path, env: dict[str, str]) -> Path:
    """A config whose journal has the demo's sample photos awaiting approval for the outbox, X and Mastodon."""
    export = root / "waiting" / "export"
    export.mkdir(parents=True)
    for sample in sorted(SAMPLE.parent.glob("*.jpg")):
        (export / sample.name).write_bytes(sample.read_bytes())
    path = root / "waiting" / "config.yaml"
    path.write_text(yaml.safe_dump({"state_dir": str(root / "waiting" / "state"), "approval": True,
                                    "watch": [{"path": str(export), "targets": ["outbox", "x", "mastodon"],
                                               "settle_seconds": 0}],
                                    "targets": {"outbox": {"path": str(root / "waiting" / "outbox")},
                                                "x": {"client_id": "bench"},
                                                "mastodon": {"instance": "https://mastodon.example"}}}))
    subprocess.run([sys.executable, "-m", "crosswatch.cli", "--config", str(path), "run", "--once", "--existing",
                    "post", "--no-browser"], env=env, check=True, capture_output=True, cwd=REPO)
    return path


def commands(config: Path, waiting: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "crosswatch.cli"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "crosswatch --help": [*cli, "--help"],
        "crosswatch status": [*cli, "--config", str(config), "status"],
        "crosswatch queue": [*cli, "--config", str(config), "queue"],
        "crosswatch preview": [*cli, "--config", str(config), "preview", str(SAMPLE)],
        WAITING: [*cli, "--config", str(waiting), "queue"],
        **({"script --help": [str(CONSOLE_SCRIPT), "--help"]} if CONSOLE_SCRIPT.exists() else {}),
    }


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_env(root: Path, config: Path, *, cache_bytecode: bool) -> dict[str, str]:
    env = {**os.environ, "CROSSWATCH_CONFIG": str(config), "PYTHONPATH": str(REPO)}
    if cache_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")  # not in the checkout
    return env


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
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="leave PYTHONDONTWRITEBYTECODE as it is (where set: compile the sources every run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        env = bench_env(root, write_config(root), cache_bytecode=not args.no_bytecode_cache)
        runs = commands(root / "config.yaml", write_waiting_jobs(root, env))
        for argv in runs.values():
            timed(argv, env)  # makes the journal, writes the bytecode cache, warms the file cache
        walls: dict[str, list[float]] = {name: [] for name in runs}
        cpus: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.runs):  # interleaved, so a burst of load elsewhere spreads over every command
            for name, argv in runs.items():
                wall, cpu = timed(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        baseline = statistics.median(walls["python -c pass"])
        print(f"{'command':<20} {'median s':>9} {'above py':>9} {'x python':>9} {'cpu s':>7}"
              f"   ({args.runs} runs each, {sys.version.split()[0]})")
        for name in runs:
            seconds = statistics.median(walls[name])
            goal = "" if name in NOT_GOALS else "  ok" if seconds < GOAL_SECONDS else f"  over {GOAL_SECONDS} s"
            print(f"{name:<20} {seconds:>9.3f} {seconds - baseline:>9.3f} {seconds / baseline:>9.1f} "
                  f"{statistics.median(cpus[name]):>7.3f}{goal}")
        if args.importtime:
            for name, argv in runs.items():
                if name == "python -c pass":
                    continue
                print(f"\nslowest imports of {name} (cumulative ms):")
                for micros, module in slowest_imports(argv, env):
                    print(f"  {micros / 1000:8.1f}  {module}")


if __name__ == "__main__":
    main()
