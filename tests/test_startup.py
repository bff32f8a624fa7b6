"""Start-up: `status`, `queue` and `--help` import nothing they do not need (twitter-text builds a big
emoji pattern when imported), and twitter-text works where pkg_resources is missing (a Python 3.12 venv,
setuptools 81 and later). Timings are in bench/bench_startup.py; these check the imports, which do not
depend on the machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO, cli_env

NOT_AT_START = {"twitter_text", "pkg_resources", "uvicorn", "starlette", "jinja2", "watchdog", "PIL", "httpx"}
# `queue` plans each job's time through crosswatch.jobs, which still brings the image code (PIL) and httpx.
QUEUE_NEEDS = {"PIL", "httpx"}


def imported_by(args: list[str]) -> set[str]:
    """The top-level modules loaded once the command has run, in a fresh interpreter."""
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print('\\nMODULES', ' '.join(sorted({m.split('.')[0] for m in sys.modules}))))\n"
             "from crosswatch.cli import main\n"
             f"main({args!r})\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=cli_env(),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.rsplit("MODULES", 1)[1].split())


def test_status_queue_and_help_do_not_import_what_they_do_not_use(tmp_path: Path) -> None:
    (tmp_path / "export").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                      "watch": [{"path": str(tmp_path / "export"), "targets": ["outbox", "x"]}],
                                      "targets": {"outbox": {"path": str(tmp_path / "outbox")},
                                                  "x": {"client_id": "demo"}}}))
    for command in (["--help"], ["--config", str(config), "status"], ["--config", str(config), "queue"]):
        heavy = imported_by(command) & (NOT_AT_START - QUEUE_NEEDS if "queue" in command else NOT_AT_START)
        assert not heavy, (command, heavy)


def test_x_counting_works_without_pkg_resources() -> None:
    probe = ("import sys\n"
             "sys.modules['pkg_resources'] = None  # as where setuptools is missing: `import pkg_resources` fails\n"
             "from crosswatch.platforms.x.limits import weighted_length\n"
             "from crosswatch.pricing import contains_url\n"
             "assert sys.modules['pkg_resources'] is None\n"
             "print(weighted_length('a photo \\U0001F44D\\U0001F3FD https://example.com/x'), "
             "contains_url('see example.com'))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=cli_env(),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    # "a photo " 8, the emoji with its skin tone 2 (one emoji), " " 1, the URL 23 (twitter-text v3)
    assert done.stdout.split() == ["34", "True"]
