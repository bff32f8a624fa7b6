"""Targets: where photos go. ``build_targets`` makes one adapter per enabled target in the config."""

from __future__ import annotations

import os

from crosswatch.config import Config, TargetConfig
from crosswatch.errors import ConfigError
from crosswatch.platforms.base import Target


def build_target(target: TargetConfig) -> Target:
    if target.kind == "outbox":
        from crosswatch.platforms.outbox.steps import OutboxTarget

        return OutboxTarget(target)
    if target.kind == "x":
        from crosswatch.platforms.x.steps import TIMELINE_SETTLE_ENV, TIMELINE_SETTLE_SECONDS, XTarget

        return XTarget(target, timeline_settle_seconds=_seconds_from_env(TIMELINE_SETTLE_ENV,
                                                                         TIMELINE_SETTLE_SECONDS))
    if target.kind == "instagram":
        from crosswatch.hosting import build_host
        from crosswatch.platforms.instagram.steps import InstagramTarget

        if target.media_host is None:
            raise ConfigError("an instagram target needs a media_host (Instagram fetches images from a URL)",
                              key=f"targets.{target.name}.media_host")
        return InstagramTarget(target, build_host(target.media_host))
    raise ConfigError(f"unknown target type {target.kind!r}", key=f"targets.{target.name}")


def _seconds_from_env(name: str, default: float) -> float:
    """A duration override from the environment (tests); anything unusable keeps the default."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default


def build_targets(config: Config) -> dict[str, Target]:
    return {name: build_target(t) for name, t in config.targets.items() if t.enabled}
