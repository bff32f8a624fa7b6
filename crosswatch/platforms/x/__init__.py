"""X: the sans-I/O steps and reconciler (``steps``), the sign-in flow (``signin``); ``build`` makes the target."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crosswatch.config import TargetConfig
    from crosswatch.platforms.x.steps import XTarget


def build(target: TargetConfig) -> XTarget:
    from crosswatch.platforms.x.steps import TIMELINE_SETTLE_ENV, TIMELINE_SETTLE_SECONDS, XTarget

    return XTarget(target, timeline_settle_seconds=_seconds_from_env(TIMELINE_SETTLE_ENV,
                                                                     TIMELINE_SETTLE_SECONDS))


def _seconds_from_env(name: str, default: float) -> float:
    """A duration override from the environment (tests); anything unusable keeps the default."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default
