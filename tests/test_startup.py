"""Start-up: `status`, `queue` and `--help` import nothing they do not need (twitter-text builds a big
emoji pattern when imported; Pillow, httpx and structlog, which brings asyncio, cost more than these
commands take to run), and twitter-text works where pkg_resources is missing (a Python 3.12 venv,
setuptools 81 and later). Timings are in bench/bench_startup.py; these check the imports, which do not
depend on the machine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from crosswatch.config import load_config
from crosswatch.demo import sample_photos
from crosswatch.platforms import registry
from tests.conftest import REPO, cli_env, run_cli
from tests.console_helpers import console_config, drop_photos, take_in

# What none of the three imports, whatever the journal holds: images, HTTP, logging, the console's web
# stack, the keyring, notifications, the folder watcher, the sign-in library.
NEVER_AT_START = {"pkg_resources", "uvicorn", "starlette", "jinja2", "watchdog", "PIL", "httpx", "structlog",
                  "asyncio", "keyring", "apprise", "authlib", "socket", "crosswatch.console.server", "crosswatch.media"}
# With nothing to show, neither is needed either; `queue` with jobs composes their captions (regex) and
# counts them as they will be posted: where only twitter-text can (a URL may be in them), from its answers
# as the daemon's intake kept them (twitter_counting.remember_in), else with twitter_text itself.
NOTHING_TO_CAPTION = {"twitter_text", "regex"}
STARTUP_COMMANDS = (["--help"], ["status"], ["queue"])


def imported_by(args: list[str]) -> tuple[set[str], str]:
    """The modules loaded once the command has run, in a fresh interpreter (each top-level package by
    its own name too: "PIL" for "PIL.Image"), and its output."""
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print('\\nMODULES', ' '.join(sorted({*sys.modules, "
             "*(m.split('.')[0] for m in sys.modules)}))))\n"
             "from crosswatch.cli import main\n"
             f"main({args!r})\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=cli_env(),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    output, modules = done.stdout.rsplit("MODULES", 1)
    return set(modules.split()), output


def with_config(config: Path, command: list[str]) -> list[str]:
    return command if command == ["--help"] else ["--config", str(config), *command]


def test_status_queue_and_help_do_not_import_what_they_do_not_use(tmp_path: Path) -> None:
    (tmp_path / "export").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                      "watch": [{"path": str(tmp_path / "export"), "targets": ["outbox", "x"]}],
                                      "targets": {"outbox": {"path": str(tmp_path / "outbox")},
                                                  "x": {"client_id": "demo"}}}))
    for command in STARTUP_COMMANDS:
        modules, output = imported_by(with_config(config, command))
        unneeded = modules & (NEVER_AT_START | NOTHING_TO_CAPTION)
        assert not unneeded, (command, unneeded)
        assert output.strip(), command
    help_modules, _ = imported_by(["--help"])
    assert not help_modules & {"yaml", "sqlite3"}, "--help reads neither the config nor the journal"


def test_with_jobs_waiting_status_and_queue_still_import_no_image_http_or_logging_code(
        workspace: dict[str, Path]) -> None:
    config = load_config(console_config(workspace, approval=["x"]))  # x awaits approval, the outbox job is ready
    drop_photos(workspace, 2, real=False)
    take_in(config)
    for command in (["status", "--all"], ["queue"]):
        modules, output = imported_by(with_config(workspace["config"], command))
        assert not modules & NEVER_AT_START, (command, modules & NEVER_AT_START)
        assert "awaiting" in output, output
    queue_modules, queue = imported_by(with_config(workspace["config"], ["queue"]))
    assert "Test photo 1" in queue and "crosswatch approve" in queue, "the captions are composed as they will be posted"
    # ... and counted for X without twitter-text, as they hold no URL, emoji or wide character.
    assert "twitter_text" not in queue_modules


def demo_samples_waiting(root: Path) -> Path:
    """A config whose journal holds the demo's sample photos awaiting approval for the outbox, X and
    Mastodon, taken in by the daemon (`run --once`) as a user's would be."""
    export = root / "export"
    export.mkdir()
    for sample in sample_photos():
        (export / sample.name).write_bytes(sample.read_bytes())
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(root / "state"), "approval": True,
                                      "watch": [{"path": str(export), "targets": ["outbox", "x", "mastodon"],
                                                 "settle_seconds": 0}],
                                      "targets": {"outbox": {"path": str(root / "outbox")},
                                                  "x": {"client_id": "demo"},
                                                  "mastodon": {"instance": "https://mastodon.example"}}}))
    done = run_cli("run", "--once", "--existing", "post", "--no-browser", config=config)
    assert done.returncode == 0, done.stderr
    return config


def test_queue_of_the_demo_samples_counts_as_twitter_text_without_importing_it(tmp_path: Path) -> None:
    # Their captions hold a licence's URL and "6:40 a.m." (a dot before a letter): only twitter-text can
    # count them for X and Mastodon, or strip the URL from X's. The intake composed them and kept its
    # answers; `queue` reads them.
    config = demo_samples_waiting(tmp_path)
    answers = load_config(config).twitter_text_answers_path
    assert answers.is_file(), "the intake composed the waiting captions and kept twitter-text's answers"
    modules, fast = imported_by(with_config(config, ["queue"]))
    assert not modules & (NEVER_AT_START | {"twitter_text"}), modules & (NEVER_AT_START | {"twitter_text"})
    assert "Harbour, 6:40 a.m." in fast and fast.count("awaiting approval") == 12, fast
    x_captions = re.findall(r"^#\d+ x +awaiting approval: .*\n    (.*)$", fast, re.M)
    assert len(x_captions) == 4 and not any("creativecommons.org" in c for c in x_captions), x_captions
    # Without the kept answers, twitter-text itself counts: the same queue, to the character.
    answers.unlink()
    modules, counted = imported_by(with_config(config, ["queue"]))
    assert "twitter_text" in modules
    assert counted == fast
    # ... and keeps its answers again, which the next `queue` reads.
    modules, again = imported_by(with_config(config, ["queue"]))
    assert "twitter_text" not in modules and again == fast


def test_the_platforms_that_read_their_servers_limits_are_those_whose_limits_module_learns_them() -> None:
    # platform_info asks the limits module (light) before the steps module (httpx, every step): the two
    # must agree for every platform, or a server's limits would go unread.
    for name in registry.names():
        found = registry.platform(name)
        assert found is not None
        learns = callable(getattr(found.part("limits"), "learned", None))
        assert learns == (getattr(found.part("steps"), "INSTANCE_INFO", None) is not None), name


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
