"""The README's promises: its first commands, and the examples it shows, do what it says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.conftest import REPO, run_cli


def readme() -> str:
    return (REPO / "README.md").read_text()


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    first_block = re.search(r"```sh\n(.*?)```", readme(), re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["pip install -e '.[test]' && crosswatch demo", "pytest"]
    assert re.search(r"^pytest -q$", (REPO / ".ci" / "run").read_text(), re.M)


def test_crosswatch_demo_posts_every_sample_to_both_platforms() -> None:
    result = run_cli("demo", "--exit", timeout=240)
    assert result.returncode == 0, result.stderr
    assert "20 of 20 posts made" in result.stdout  # 4 samples x (X, Instagram, Mastodon, Bluesky, outbox)
    assert "/_emulator/" in result.stdout
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
