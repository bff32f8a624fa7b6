"""The outbox: a local folder target (``steps``), with no sign-in; ``build`` makes the target."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crosswatch.config import TargetConfig
    from crosswatch.platforms.outbox.steps import OutboxTarget


def build(target: TargetConfig) -> OutboxTarget:
    from crosswatch.platforms.outbox.steps import OutboxTarget

    return OutboxTarget(target)
