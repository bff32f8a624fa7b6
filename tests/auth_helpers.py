"""Helpers for the sign-in tests: an isolated keyring, a browser stand-in, target configs for the emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import keyring
from keyrings.alt.file import PlaintextKeyring

from crosswatch.config import TargetConfig
from crosswatch.emulator import DEFAULT_IG_CLIENT_ID, DEFAULT_X_CLIENT_ID


@contextmanager
def isolated_keyring(directory: Path) -> Iterator[PlaintextKeyring]:
    """A plaintext keyring file in ``directory``, installed for the duration of the block."""
    previous = keyring.get_keyring()
    ring = PlaintextKeyring()
    ring.file_path = str(directory / "keyring_pass.cfg")
    keyring.set_keyring(ring)
    try:
        yield ring
    finally:
        keyring.set_keyring(previous)


def x_config(base: str, *, client_id: str = DEFAULT_X_CLIENT_ID, name: str = "x") -> TargetConfig:
    return TargetConfig(name=name, kind="x", client_id=client_id, api_base=base,
                        authorize_url=base + "/i/oauth2/authorize", redirect_port=0)


def instagram_config(base: str, *, client_id: str = DEFAULT_IG_CLIENT_ID, version: str = "/v25.0",
                     name: str = "instagram") -> TargetConfig:
    return TargetConfig(name=name, kind="instagram", client_id=client_id, api_base=base,
                        graph_base=base + version, authorize_url=base + "/oauth/authorize", redirect_port=0)


def browser(platform: httpx.Client, seen: list[str] | None = None) -> Callable[[str], None]:
    """Stands in for the user's browser: opens the authorize URL on the platform (which approves at
    once and redirects), then follows the redirect to crosswatch's loopback listener with a real HTTP
    client. ``platform`` may be a MockTransport client; the loopback leg always goes over a socket."""

    def open_browser(url: str) -> None:
        answer = platform.get(url)
        assert answer.status_code in (302, 303), answer.text
        location = answer.headers["location"]
        if seen is not None:
            seen.append(location)
        with httpx.Client() as loopback:
            loopback.get(location)

    return open_browser
