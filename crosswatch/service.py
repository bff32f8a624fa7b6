"""``crosswatch service install | uninstall | status``: the daemon as a systemd user unit (Linux) or a
launchd agent (macOS), written from the config so that the folders it must write are writable.

The unit is hardened to an exposure of at most 3.0 in ``systemd-analyze security`` ("OK"): the whole
file system read-only (ProtectSystem=strict, ProtectHome=read-only) except the state dir, outboxes,
media-host folders and the file keyring's folder (ReadWritePaths), watched folders named read-only,
no capabilities, system calls limited to @system-service, only the address families it uses
(AF_UNIX for the keyring over D-Bus, AF_INET/AF_INET6 for the platforms). Commands are run through
``systemctl``/``launchctl`` found on PATH, so tests stand them in.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crosswatch.config import Config
from crosswatch.errors import CrosswatchError

UNIT_NAME = "crosswatch.service"
AGENT_LABEL = "com.crosswatch.daemon"


class ServiceError(CrosswatchError):
    """A service manager that is missing or refused; the message says what to do."""


Run = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


# -- what is run --------------------------------------------------------------------------------


def entry_point() -> list[str]:
    """The installed console script when it is this interpreter's; else ``python -m crosswatch``."""
    script = Path(sys.executable).parent / "crosswatch"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "crosswatch"]


def daemon_argv(config: Config) -> list[str]:
    return [*entry_point(), "--config", str(config.source.resolve()), "run", "--no-browser"]


# -- the folders the daemon writes and reads ----------------------------------------------------


def writable_paths(config: Config) -> list[Path]:
    """State dir, every outbox and media-host directory, the file keyring's folder: the daemon
    writes only there."""
    paths = [config.state_dir]
    for target in config.targets.values():
        if target.path is not None:
            paths.append(target.path)
        host = target.media_host
        if host is not None and host.type == "directory" and host.path is not None:
            paths.append(host.path)
    paths.append(_file_keyring_dir())
    return _unique(paths)


def _file_keyring_dir() -> Path:
    # keyrings.alt's file backends keep their file in the user's data dir (a headless machine's
    # keyring); the Secret Service is reached over D-Bus instead and needs no path.
    import platformdirs

    return Path(platformdirs.user_data_dir("python_keyring", appauthor=False))


def read_only_paths(config: Config) -> list[Path]:
    return _unique([folder.path for folder in config.watch])


def _unique(paths: Sequence[Path]) -> list[Path]:
    seen: list[Path] = []
    for path in paths:
        resolved = path.expanduser().resolve()
        if resolved not in seen:
            seen.append(resolved)
    return seen


def _unit_path_value(path: Path) -> str:
    # "-": a folder that does not exist yet does not stop the unit starting (the daemon makes the
    # state dir); systemd unit syntax takes C-style escapes for spaces.
    text = str(path).replace("\\", "\\\\").replace(" ", "\\x20").replace("%", "%%")
    return "-" + text


# -- systemd ------------------------------------------------------------------------------------


def systemd_unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


# Why each setting: "systemd-analyze security" weighs them; together they take the exposure to <= 3.0.
HARDENING = """\
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
RemoveIPC=yes
KeyringMode=private
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources @mount @debug @cpu-emulation @obsolete @raw-io @reboot @swap
SystemCallErrorNumber=EPERM
# AF_UNIX: the keyring over D-Bus and sd_notify; AF_INET/AF_INET6: the platforms.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
UMask=0077
"""


def systemd_unit(config: Config) -> str:
    exec_start = " ".join(_systemd_quote(a) for a in daemon_argv(config))
    writable = " ".join(_unit_path_value(p) for p in writable_paths(config))
    readable = " ".join(_unit_path_value(p) for p in read_only_paths(config))
    lines = [
        "# Written by `crosswatch service install` from " + str(config.source.resolve()) + ";",
        "# `crosswatch service install` again after changing folders in the config.",
        "[Unit]",
        "Description=crosswatch: post photos from watched folders",
        "Documentation=https://github.com/crosswatch/crosswatch",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        "RestartSec=10",
        "# Exit 2 is a config error or a question for the user; restarting cannot answer it.",
        "RestartPreventExitStatus=2",
        "# Half of this is the ping interval; a hung daemon is restarted.",
        "WatchdogSec=120",
        "TimeoutStopSec=90",
        "KillSignal=SIGTERM",
        "Environment=PYTHONUNBUFFERED=1",
        *(f"Environment={_systemd_quote('PYTHON_KEYRING_BACKEND=' + backend)}"
          for backend in [os.environ.get("PYTHON_KEYRING_BACKEND", "")] if backend),
        "",
        "# Hardening: it reads the watched folders and writes only its state, outboxes and media host.",
        HARDENING.rstrip("\n"),
        f"ReadWritePaths={writable}",
        *([f"ReadOnlyPaths={readable}"] if readable else []),
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def _systemd_quote(arg: str) -> str:
    escaped = arg.replace("%", "%%")
    if not escaped or any(c in escaped for c in " \t\"'\\;$"):
        return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$") + '"'
    return escaped


# -- launchd ------------------------------------------------------------------------------------


def launch_agent_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist"


def launchd_log_path() -> Path:
    return Path.home() / "Library" / "Logs" / "crosswatch.log"


def launchd_plist(config: Config) -> str:
    env = {"PYTHONUNBUFFERED": "1"}
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        env["PYTHON_KEYRING_BACKEND"] = os.environ["PYTHON_KEYRING_BACKEND"]
    agent = {
        "Label": AGENT_LABEL,
        "ProgramArguments": daemon_argv(config),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "ExitTimeOut": 90,
        "ProcessType": "Background",
        "StandardOutPath": str(launchd_log_path()),
        "StandardErrorPath": str(launchd_log_path()),
        "EnvironmentVariables": env,
    }
    return plistlib.dumps(agent).decode()


# -- install, uninstall, status -----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What install or uninstall does: a file (None for uninstall) and the commands, in order."""

    path: Path
    content: str | None
    commands: list[list[str]]
    notes: list[str]

    def describe(self) -> str:
        parts = []
        if self.content is not None:
            parts += [f"# {self.path}", self.content.rstrip("\n"), ""]
        else:
            parts.append(f"rm {shlex.quote(str(self.path))}")
        parts += [shlex.join(c) for c in self.commands]
        parts += self.notes
        return "\n".join(parts)


def is_macos() -> bool:
    return sys.platform == "darwin"


def install_plan(config: Config) -> Plan:
    if is_macos():
        domain = f"gui/{os.getuid()}"
        path = launch_agent_path()
        return Plan(path, launchd_plist(config),
                    [["launchctl", "bootout", f"{domain}/{AGENT_LABEL}"],
                     ["launchctl", "bootstrap", domain, str(path)]],
                    [f"log: {launchd_log_path()}"])
    path = systemd_unit_dir() / UNIT_NAME
    return Plan(path, systemd_unit(config),
                [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", UNIT_NAME]],
                [*linger_notes(), f"log: journalctl --user -u {UNIT_NAME} -f"])


def uninstall_plan() -> Plan:
    if is_macos():
        return Plan(launch_agent_path(), None,
                    [["launchctl", "bootout", f"gui/{os.getuid()}/{AGENT_LABEL}"]], [])
    return Plan(systemd_unit_dir() / UNIT_NAME, None,
                [["systemctl", "--user", "disable", "--now", UNIT_NAME], ["systemctl", "--user", "daemon-reload"]],
                [])


def linger_notes() -> list[str]:
    """Without lingering, a user's services stop at logout and start only at login."""
    user = os.environ.get("USER") or str(os.getuid())
    linger_file = Path("/var/lib/systemd/linger") / user
    if linger_file.exists():
        return []
    return [f"note: it runs only while you are logged in; for it to run without a login: "
            f"loginctl enable-linger {user}"]


def install(config: Config, run: Run = run_command) -> Plan:
    plan = install_plan(config)
    assert plan.content is not None
    _need_tool(plan.commands[0][0])
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    plan.path.write_text(plan.content, encoding="utf-8")
    for index, command in enumerate(plan.commands):
        result = run(command)
        # launchctl bootout of an agent not yet loaded fails: that is the first install.
        if result.returncode != 0 and not (is_macos() and index == 0):
            raise ServiceError(f"`{shlex.join(command)}` failed ({_first_line(result)}); the unit is at "
                               f"{plan.path}: fix that and run `crosswatch service install` again")
    return plan


def uninstall(run: Run = run_command) -> Plan:
    plan = uninstall_plan()
    _need_tool(plan.commands[0][0])
    installed = plan.path.exists()
    if installed:
        for command in plan.commands[:1]:
            run(command)  # already stopped or never enabled: removing the file is what matters
        plan.path.unlink()
        for command in plan.commands[1:]:
            run(command)
    return plan if installed else Plan(plan.path, None, [], ["not installed: nothing to remove"])


def status(run: Run = run_command) -> dict[str, object]:
    if is_macos():
        path = launch_agent_path()
        result = run(["launchctl", "print", f"gui/{os.getuid()}/{AGENT_LABEL}"]) if shutil.which("launchctl") else None
        loaded = bool(result and result.returncode == 0)
        running = bool(result and "state = running" in result.stdout)
        return {"manager": "launchd", "file": str(path), "installed": path.exists(), "enabled": loaded,
                "running": running, "log": str(launchd_log_path())}
    path = systemd_unit_dir() / UNIT_NAME
    enabled = active = "unknown"
    if shutil.which("systemctl"):
        enabled = _stdout(run(["systemctl", "--user", "is-enabled", UNIT_NAME])) or "unknown"
        active = _stdout(run(["systemctl", "--user", "is-active", UNIT_NAME])) or "unknown"
    return {"manager": "systemd", "file": str(path), "installed": path.exists(),
            "enabled": enabled == "enabled", "running": active == "active", "active_state": active,
            "log": f"journalctl --user -u {UNIT_NAME}"}


def _need_tool(tool: str) -> None:
    if shutil.which(tool) is None:
        raise ServiceError(f"{tool} is not on PATH; `crosswatch service install --dry-run` prints the file "
                           "to install by hand")


def _stdout(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stdout or "").strip().splitlines()[0] if (result.stdout or "").strip() else ""


def _first_line(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip()
    return text.splitlines()[0][:200] if text else f"exit {result.returncode}"
