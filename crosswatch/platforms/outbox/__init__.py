"""The outbox: a local folder target (``steps``), with no sign-in; ``build`` makes the target, ``doctor``
says whether its folder can be written."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crosswatch.config import TargetConfig
    from crosswatch.platforms.outbox.steps import OutboxTarget


def build(target: TargetConfig) -> OutboxTarget:
    from crosswatch.platforms.outbox.steps import OutboxTarget

    return OutboxTarget(target)


def doctor(target: TargetConfig) -> list[tuple[bool, str]]:
    assert target.path is not None  # config validation requires it
    parent = target.path if target.path.exists() else target.path.parent
    writable = os.access(parent, os.W_OK)
    return [(writable, f"target {target.name}: outbox {target.path}" + ("" if writable else ": not writable"))]
