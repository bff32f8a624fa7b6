"""`crosswatch service`: the unit written from the config, checked by systemd's own tools
(systemd-analyze verify and security), installed and removed through a stand-in systemctl."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from crosswatch import service
from crosswatch.cli import cli
from crosswatch.config import load_config
from tests.conftest import run_cli, write_config

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def custom_config(workspace: dict[str, Path], tmp_path: Path) -> Path:
    """A state dir, an outbox and a media-host folder all away from the defaults."""
    return write_config(
        workspace,
        state_dir=str(tmp_path / "custom state"),
        watch=[{"path": str(workspace["inbox"]), "targets": ["outbox", "instagram"]}],
        targets={"outbox": {"path": str(tmp_path / "my-outbox")},
                 "instagram": {"client_id": "abc",
                               "media_host": {"type": "directory", "path": str(tmp_path / "www" / "photos"),
                                              "public_url": "https://photos.example.org/"}}},
    )


def unit_sections(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def unescape(value: str) -> str:
    return value.lstrip("-").replace("\\x20", " ")


def test_the_unit_makes_the_configs_folders_writable_and_the_watched_ones_read_only(
        workspace: dict[str, Path], tmp_path: Path) -> None:
    config = load_config(custom_config(workspace, tmp_path))
    unit = unit_sections(service.systemd_unit(config))["Service"]
    writable = {unescape(p) for p in unit["ReadWritePaths"].split()}
    assert {str(tmp_path / "custom state"), str(tmp_path / "my-outbox"), str(tmp_path / "www" / "photos")} <= writable
    assert [unescape(p) for p in unit["ReadOnlyPaths"].split()] == [str(workspace["inbox"].resolve())]
    assert unit["Type"] == "notify" and unit["WatchdogSec"] == "120" and unit["ProtectSystem"] == "strict"
    exec_start = unit["ExecStart"]
    assert f"--config {config.source.resolve()} run --no-browser" in exec_start
    assert exec_start.startswith(sys.executable.rsplit("/", 1)[0]) or exec_start.startswith(sys.executable)


@needs_systemd
def test_dry_run_prints_a_unit_systemd_accepts_with_an_exposure_of_at_most_3(
        workspace: dict[str, Path], tmp_path: Path) -> None:
    config_path = custom_config(workspace, tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config_path), "service", "install", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    header = f"# {service.systemd_unit_dir() / service.UNIT_NAME}\n"
    assert out.startswith(header)
    unit_text = out[len(header):out.index("\nsystemctl --user daemon-reload")]
    assert "systemctl --user enable --now crosswatch.service" in out
    assert "journalctl --user -u crosswatch.service" in out
    assert not (service.systemd_unit_dir() / service.UNIT_NAME).exists(), "a dry run wrote the unit"
    folder = tmp_path / "unit"
    folder.mkdir()
    (folder / "crosswatch.service").write_text(unit_text)
    # A short runtime dir: systemd derives socket paths from it (gpg-agent's), and a socket path may
    # hold at most 107 bytes, which pytest's nested temporary folders (more so under xdist) exceed.
    runtime = Path(tempfile.mkdtemp(prefix="xdg-", dir="/tmp"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_LEVEL": "warning"}
    verify = subprocess.run(["systemd-analyze", "verify", "--user", "crosswatch.service"], cwd=folder,
                            capture_output=True, text=True, env=env, timeout=60)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", "--user", "crosswatch.service"],
                              cwd=folder, capture_output=True, text=True, env=env, timeout=60)
    found = re.search(r"Overall exposure level for crosswatch\.service: (\d+\.\d+) (\w+)", security.stdout)
    assert found, security.stdout[-2000:] + security.stderr
    assert float(found.group(1)) <= 3.0 and found.group(2) == "OK", found.group(0)
    shutil.rmtree(runtime, ignore_errors=True)


def stand_in(bin_dir: Path, log: Path) -> None:
    """A systemctl on PATH that records its arguments, one call per line, and answers is-enabled and
    is-active as systemd does for an enabled, running unit."""
    script = bin_dir / "systemctl"
    script.write_text(f"#!/bin/sh\necho \"systemctl $*\" >> '{log}'\n"
                      'case "$2" in is-enabled) echo enabled;; is-active) echo active;; esac\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_install_and_uninstall_through_systemctl(workspace: dict[str, Path], tmp_path: Path) -> None:
    config_path = custom_config(workspace, tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    stand_in(bin_dir, calls)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    unit_file = service.systemd_unit_dir() / service.UNIT_NAME

    installed = run_cli("service", "install", config=config_path, env=env)
    assert installed.returncode == 0, installed.stderr
    assert f"installed {unit_file} and started it" in installed.stdout
    assert "loginctl enable-linger" in installed.stdout  # no linger file on this machine for this user
    text = unit_file.read_text()
    assert str(tmp_path / "my-outbox") in text and "custom\\x20state" in text
    assert calls.read_text().splitlines() == ["systemctl --user daemon-reload",
                                              "systemctl --user enable --now crosswatch.service"]

    calls.unlink()
    state = CliRunner(env=env).invoke(cli, ["service", "status", "--json"])
    status = json.loads(state.output)
    assert status["installed"] is True and status["enabled"] is True and status["running"] is True
    assert status["file"] == str(unit_file)
    assert calls.read_text().splitlines() == ["systemctl --user is-enabled crosswatch.service",
                                              "systemctl --user is-active crosswatch.service"]
    assert status["log"] == "journalctl --user -u crosswatch.service"

    calls.unlink()
    removed = run_cli("service", "uninstall", config=config_path, env=env)
    assert removed.returncode == 0, removed.stderr
    assert not unit_file.exists()
    assert calls.read_text().splitlines() == ["systemctl --user disable --now crosswatch.service",
                                              "systemctl --user daemon-reload"]
    again = run_cli("service", "uninstall", config=config_path, env=env)
    assert again.returncode == 0 and "not installed" in again.stdout


def test_a_failing_systemctl_is_one_line_naming_the_command(workspace: dict[str, Path], tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text("#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n")
    script.chmod(0o755)
    result = run_cli("service", "install", config=custom_config(workspace, tmp_path),
                     env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "systemctl --user daemon-reload` failed (Failed to connect" in result.stderr


def test_the_launchd_agent_runs_the_daemon_with_the_config(workspace: dict[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import plistlib

    monkeypatch.setattr(service, "is_macos", lambda: True)
    config = load_config(custom_config(workspace, tmp_path))
    plan = service.install_plan(config)
    assert plan.path == Path.home() / "Library" / "LaunchAgents" / "com.crosswatch.daemon.plist"
    agent = plistlib.loads((plan.content or "").encode())
    assert agent["ProgramArguments"][-4:] == ["--config", str(config.source.resolve()), "run", "--no-browser"]
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert plan.commands[-1] == ["launchctl", "bootstrap", f"gui/{os.getuid()}", str(plan.path)]
