"""Shared fixtures: an isolated keyring, config files, photo factories and a daemon subprocess."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from crosswatch import twitter_counting

pytest_plugins = ["tests.emulator_fixtures"]

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
PHOTOS = DATA / "photos"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's keyring, config or state: each gets its own XDG dirs."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):
        (home / sub).mkdir()
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("CROSSWATCH_CONFIG", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    # A command run in this process (CliRunner) keeps twitter-text's answers in its state dir: not the
    # next test's.
    monkeypatch.setattr(twitter_counting._ANSWERS, "path", None)


def xmp_packet(title: str, alt_text: str) -> bytes:
    """A minimal XMP packet with a title and IPTC alt text, as Lightroom would write them."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/">'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>'
        '<Iptc4xmpCore:AltTextAccessibility><rdf:Alt><rdf:li xml:lang="x-default">'
        f'{alt_text}</rdf:li></rdf:Alt></Iptc4xmpCore:AltTextAccessibility>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def jpeg_bytes(seed: int, size: tuple[int, int] = (64, 48), quality: int = 85, exif: bytes | None = None,
               xmp: bytes | None = None) -> bytes:
    """A small, valid JPEG whose content depends on ``seed`` (so every seed is a distinct photo)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    # A few random pixels make the bytes unique even where two colours collide.
    for _ in range(8):
        image.putpixel((rng.randrange(size[0]), rng.randrange(size[1])),
                       (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    kwargs: dict[str, Any] = {"quality": quality}
    if exif is not None:
        kwargs["exif"] = exif
    if xmp is not None:
        kwargs["xmp"] = xmp
    image.save(out, "JPEG", **kwargs)
    return out.getvalue()


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, Path]:
    paths = {"inbox": tmp_path / "inbox", "outbox": tmp_path / "outbox", "state": tmp_path / "state",
             "config": tmp_path / "config.yaml"}
    paths["inbox"].mkdir()
    return paths


def write_config(workspace: dict[str, Path], **overrides: Any) -> Path:
    """A config with one watched folder posting to the outbox; ``overrides`` replace top-level keys."""
    document: dict[str, Any] = {
        "state_dir": str(workspace["state"]),
        "watch": [{"path": str(workspace["inbox"]), "targets": ["outbox"], "settle_seconds": 0.5}],
        "targets": {"outbox": {"path": str(workspace["outbox"])}},
        "intake": {"rescan_seconds": 2},
        "logging": {"format": "json"},
    }
    document.update(overrides)
    workspace["config"].write_text(yaml.safe_dump(document, sort_keys=False))
    return workspace["config"]


@pytest.fixture
def config_file(workspace: dict[str, Path]) -> Path:
    return write_config(workspace)


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def run_cli(*args: str, config: Path | None = None, input: str | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "crosswatch.cli"]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run([*command, *args], capture_output=True, text=True, input=input, timeout=timeout,
                          env=cli_env(env), cwd=REPO)


class DaemonProcess:
    """``crosswatch run`` as a real subprocess, with its stderr (the log) kept in a file."""

    def __init__(self, config: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crosswatch.cli", "--config", str(config), "run"],
            stdout=self._log, stderr=self._log, env=cli_env(env), cwd=REPO,
        )

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                lines.append({"event": raw})
        return lines

    def wait_for_log(self, event: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.get("event") == event for line in self.log_lines()):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited {self.process.returncode}: {self.log_path.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"no '{event}' in the log within {timeout}s: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()

    def stop(self, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path, env: dict[str, str] | None = None) -> DaemonProcess:
        daemon = DaemonProcess(config, tmp_path / f"daemon-{len(started)}.log", env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.kill()
        elif not daemon._log.closed:
            daemon._log.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05,
               explain: Callable[[], str] | None = None) -> None:
    """Poll ``predicate``; on timeout fail with ``explain()`` (say, a daemon's log tail) so that a rare
    failure in CI says what the daemon was doing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    detail = f": {explain()}" if explain else ""
    raise AssertionError(f"condition not met within {timeout}s{detail}")
