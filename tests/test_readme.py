"""The README's promises: its first commands, and the examples it shows, do what it says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.conftest import REPO, run_cli


def readme() -> str:
    return (REPO / "README.md").read_text()


def readme_first_commands() -> list[str]:
    first_block = re.search(r"```sh\n(.*?)```", readme(), re.S)
    assert first_block is not None
    return [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]


def ci_test_command() -> str:
    """The command .ci/run runs the tests with: the line after its "The README's test command" comment."""
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    marker = next(i for i, line in enumerate(lines) if line.startswith("# The README's test command"))
    return next(line for line in lines[marker + 1:] if not line.startswith("#")).strip()


def test_readme_starts_with_the_two_commands_in_a_virtual_environment() -> None:
    # A stock Debian or Ubuntu refuses `pip install` outside a venv (PEP 668): the first command makes one.
    install_and_demo, run_tests = readme_first_commands()
    assert install_and_demo == ("python3 -m venv .venv && .venv/bin/pip install -e '.[test]' "
                                "&& .venv/bin/crosswatch demo")
    assert run_tests.startswith(".venv/bin/")
    assert "python3-venv" in readme().split("## ")[0]


def test_ci_runs_the_readmes_test_command() -> None:
    _install, run_tests = readme_first_commands()
    assert ci_test_command() == run_tests.replace(".venv/bin/python", '"$venv/bin/python"')
    # ... in the venv it has just installed into, from the repository's root.
    ci = (REPO / ".ci" / "run").read_text()
    assert 'cd "$(dirname "$0")/.."' in ci and '"$venv/bin/python" -m pip install -q -e \'.[test]\'' in ci


def test_crosswatch_demo_posts_every_sample_to_every_platform_and_leaves_one_for_approval() -> None:
    result = run_cli("demo", "--exit", timeout=240)
    assert result.returncode == 0, result.stderr
    # 4 samples x (X, Instagram, Mastodon, Bluesky, outbox); Mastodon asks for approval, one is left waiting.
    assert "23 of 24 posts made, 1 waiting for your approval" in result.stdout
    assert "/_emulator/" in result.stdout
    assert re.search(r"^console: http://127\.0\.0\.1:\d+/signin\?token=\S+$", result.stdout, re.M)
    assert "Traceback" not in result.stderr


def test_the_smallest_config_in_the_readme_works(tmp_path: Path) -> None:
    block = re.search(r"```yaml\n(.*?)```", readme(), re.S)
    assert block is not None
    document = yaml.safe_load(block.group(1))
    document["state_dir"] = str(tmp_path / "state")
    document["watch"][0]["path"] = str(tmp_path / "export")
    document["targets"]["outbox"]["path"] = str(tmp_path / "outbox")
    (tmp_path / "export").mkdir()
    sample = REPO / "crosswatch" / "samples" / "autumn-canopy.jpg"
    (tmp_path / "export" / "photo.jpg").write_bytes(sample.read_bytes())
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    assert run_cli("run", "--once", config=config).returncode == 0
    status = json.loads(run_cli("status", "--json", config=config).stdout)
    assert [job["state"] for job in status["jobs"]] == ["done"]


def test_the_config_error_example_reads_as_shown(tmp_path: Path) -> None:
    shown = re.search(r"\$ crosswatch --config bad.yaml run\n(crosswatch: .*)\n", readme())
    assert shown is not None
    (tmp_path / "export").mkdir()
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"state_dir: {tmp_path}/state\nwatch:\n  - path: {tmp_path}/export\n    colour: red\n"
                   f"    targets: [outbox]\ntargets:\n  outbox: {{path: {tmp_path}/outbox}}\n")
    result = run_cli("run", config=bad)
    assert result.returncode == 2
    assert result.stderr.strip() == shown.group(1).replace("bad.yaml", str(bad))


def test_every_command_has_help() -> None:
    for command in (["run"], ["status"], ["preview"], ["metadata"], ["auth", "login"], ["auth", "import"],
                    ["auth", "status"], ["auth", "revoke"], ["queue"], ["retry"], ["doctor"], ["emulator"],
                    ["demo"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert len(result.stdout.splitlines()) > 3
