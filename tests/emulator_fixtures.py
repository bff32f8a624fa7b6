"""Pytest fixtures for the bundled emulator, with every X request checked against X's OpenAPI document.

Register in tests/conftest.py with ``pytest_plugins = ["tests.emulator_fixtures"]``. Fixtures:

- ``x_openapi``: the parsed document (session scope).
- ``emulator_settings``: ``EmulatorSettings`` for the ``emulator`` fixture; override it in a module
  for short token lifetimes, small quotas, etc.
- ``emulator``: a fresh ``Emulator`` (default accounts seeded) whose X traffic is validated; any
  violation fails the test at teardown.
- ``emulator_transport``: ``httpx.MockTransport(emulator.handle)``.
- ``emulator_server``: the same emulator served on 127.0.0.1 (``emulator_server.url``).
- ``hosted``, ``hosted_settings``, ``live_emulator``, ``served``: for the daemon end to end: an
  OpenAPI-checked emulator that also serves ``hosted`` (a directory media host for Instagram) at
  ``/_emulator/hosted/``; ``served`` is that emulator with its real server. Override
  ``hosted_settings`` in a module for other token lifetimes or container times.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crosswatch.emulator import Emulator, EmulatorServer, EmulatorSettings
from tests.openapi_check import XOpenAPI


class OpenAPIRecorder:
    """An emulator observer collecting OpenAPI violations of X requests and the emulator's answers."""

    def __init__(self, spec: XOpenAPI) -> None:
        self.spec = spec
        self.violations: list[str] = []
        self.checked = 0
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request, response: httpx.Response | None, endpoint: str) -> None:
        if not self.spec.is_x_request(request):
            return
        found = self.spec.check_request(request)
        if response is not None:
            found += self.spec.check_response(request, response)
        with self._lock:
            self.checked += 1
            self.violations.extend(found)

    def take(self) -> list[str]:
        """The violations so far, forgotten: for tests that send a bad request on purpose."""
        with self._lock:
            taken, self.violations = self.violations, []
        return taken

    def assert_clean(self) -> None:
        with self._lock:
            violations = list(self.violations)
        assert not violations, "X requests or responses that break the OpenAPI document:\n" + "\n".join(
            violations
        )


def watch_openapi(emulator: Emulator, spec: XOpenAPI) -> OpenAPIRecorder:
    recorder = OpenAPIRecorder(spec)
    emulator.add_observer(recorder)
    return recorder


@pytest.fixture(scope="session")
def x_openapi() -> XOpenAPI:
    return XOpenAPI()


@pytest.fixture
def emulator_settings() -> EmulatorSettings:
    # Containers finish quickly so flows through the real server stay fast.
    return EmulatorSettings(ig_container_processing_seconds=0.2)


@pytest.fixture
def emulator(emulator_settings: EmulatorSettings, x_openapi: XOpenAPI) -> Iterator[Emulator]:
    emu = Emulator(emulator_settings)
    recorder = watch_openapi(emu, x_openapi)
    yield emu
    recorder.assert_clean()


@pytest.fixture
def emulator_transport(emulator: Emulator) -> httpx.MockTransport:
    return httpx.MockTransport(emulator.handle)


@pytest.fixture
def emulator_server(emulator: Emulator) -> Iterator[EmulatorServer]:
    with EmulatorServer(emulator) as server:
        yield server


@pytest.fixture
def hosted(tmp_path: Path) -> Path:
    folder = tmp_path / "hosted"
    folder.mkdir()
    return folder


@pytest.fixture
def hosted_settings() -> EmulatorSettings:
    return EmulatorSettings(ig_container_processing_seconds=0.2)


@pytest.fixture
def live_emulator(hosted: Path, hosted_settings: EmulatorSettings, x_openapi: XOpenAPI) -> Iterator[Emulator]:
    emu = Emulator(hosted_settings, hosted_dir=hosted)
    recorder = watch_openapi(emu, x_openapi)
    yield emu
    recorder.assert_clean()


@pytest.fixture
def served(live_emulator: Emulator) -> Iterator[tuple[Emulator, EmulatorServer]]:
    with EmulatorServer(live_emulator) as server:
        yield live_emulator, server
