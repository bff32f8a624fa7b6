"""Log redaction, log formats, and the service files' promises."""

from __future__ import annotations

import configparser
import io
import json
import plistlib
from collections.abc import Iterator

import pytest
import structlog

from crosswatch import logs
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


TOKEN = "dGhpcyBpcyBub3QgYSByZWFsIHRva2VuIGJ1dCBpdCBsb29rcyBsaWtlIG9uZQ1234XyZ"


def log_line(fmt: str, **fields: object) -> str:
    stream = io.StringIO()
    logs.configure("info", fmt, stream=stream)
    structlog.get_logger("test").info("event happened", **fields)
    return stream.getvalue()


def test_secret_keys_known_secrets_and_token_shapes_are_redacted() -> None:
    logs.register_secret("short-but-registered-secret")
    line = log_line("json", access_token="abc", note=f"Bearer {TOKEN} was sent",
                    detail="leaked short-but-registered-secret here", photo_hash="a" * 64,
                    path="/home/ann/Pictures/IMG_2041.jpg", nested={"refresh_token": "xyz"})
    document = json.loads(line)
    assert document["access_token"] == logs.REDACTED
    assert TOKEN not in line and "short-but-registered-secret" not in line and "xyz" not in line
    assert document["photo_hash"] == "a" * 64  # a hex digest is not a token
    assert document["path"] == "/home/ann/Pictures/IMG_2041.jpg"


def test_key_value_on_a_terminal_and_json_under_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    assert "event='event happened'" in log_line("auto", photo=3)
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    assert json.loads(log_line("auto", photo=3))["photo"] == 3


def test_the_systemd_unit_is_a_hardened_notify_service() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "systemd" / "crosswatch.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a question for the user is not a crash
    assert int(service["WatchdogSec"]) > 0
    for key in ("NoNewPrivileges", "PrivateTmp"):
        assert service[key] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ExecStart"].endswith("crosswatch run")
    assert unit["Install"]["WantedBy"] == "default.target"


def test_the_launchd_plist_runs_the_daemon_and_restarts_it_on_failure() -> None:
    plist = plistlib.loads((REPO / "launchd" / "com.crosswatch.daemon.plist").read_bytes())
    assert plist["ProgramArguments"][-1] == "run"
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["RunAtLoad"] is True


def test_a_lazy_logger_logs_through_the_configuration_made_before_or_after_it() -> None:
    # jobs.py and platform_info.py log through LazyLogger (structlog imported at the first line, for start-up).
    early = logs.LazyLogger("crosswatch.lazy")
    stream = io.StringIO()
    logs.configure("info", "json", stream=stream)
    early.warning("posting without the link", job=7, access_token="abc", note=f"Bearer {TOKEN}")
    logs.configure("warning", "json", stream=stream)  # later configuration applies too: the level now filters
    early.info("not shown")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(d["event"], d["level"], d["job"]) for d in lines] == [("posting without the link", "warning", 7)]
    assert lines[0]["access_token"] == logs.REDACTED and TOKEN not in lines[0]["note"]
