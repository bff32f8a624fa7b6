"""Named points where a test can make the process die as if the power went out.

Crash tests need to kill the daemon at exact instants (after an intent is committed and before the
request goes out, after the answer arrives and before it is recorded, half-way through writing a
file). ``CROSSWATCH_CRASHPOINT=name`` or ``name:N`` makes the Nth pass through ``crashpoint(name)``
send SIGKILL to this process: no cleanup, no finally blocks, exactly like a crash. Unset, each call
costs one dictionary lookup.

A point may answer to several names: the runner's step points are ``phase:step`` and also
``phase:target:step`` (``before:mastodon:upload_media``), because several platforms share step names
(X and Mastodon ``upload_media``, X and Bluesky ``create_post``) and a test must be able to crash one
network's step without another's. The count is kept per armed name.
"""

from __future__ import annotations

import os
import signal
import threading

_ENV = "CROSSWATCH_CRASHPOINT"
_counts: dict[str, int] = {}
_lock = threading.Lock()


def _armed() -> tuple[str, int] | None:
    spec = os.environ.get(_ENV)
    if not spec:
        return None
    # Point names contain colons themselves ("before:write"); a count, if any, is the last part.
    name, _, nth = spec.rpartition(":")
    if nth.isdigit() and name:
        return name, int(nth)
    return spec, 1


def crashpoint(*names: str) -> None:
    """Die here when the armed point is one of ``names`` and this is its Nth pass."""
    armed = _armed()
    if armed is None or armed[0] not in names:
        return
    name = armed[0]
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        if _counts[name] == armed[1]:
            os.kill(os.getpid(), signal.SIGKILL)


def step_points(phase: str, target: str, step: str) -> tuple[str, str]:
    """The names of a runner step's point: by step alone, and by target and step."""
    return f"{phase}:{step}", f"{phase}:{target}:{step}"
