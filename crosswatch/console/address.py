"""Where a serving console leaves its address (state_dir/console/address.json), and the fresh sign-in
address `crosswatch status` prints for it. Apart from server.py so that `status` imports neither the
server nor its sockets; the token module is imported only when a console is running."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crosswatch.config import Config


def address_file(config: Config) -> Path:
    return config.state_dir / "console" / "address.json"


def running_address(config: Config) -> str | None:
    """The sign-in address (with a new one-time token) of a console serving this state_dir, if one is."""
    try:
        found = json.loads(address_file(config).read_text())
        pid, url = int(found["pid"]), str(found["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's: its tokens folder is not ours to write either, but try
    from crosswatch.console.security import hand_out_token

    try:
        return f"{url}/signin?token={hand_out_token(config.state_dir)}"
    except OSError:
        return None
