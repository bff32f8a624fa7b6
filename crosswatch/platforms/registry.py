"""Platform name -> its parts: one line per platform (pure; the parts are imported when first asked for).

A target's ``type`` in the config is a platform name here. Each platform is a package under
``crosswatch/platforms/`` whose ``build(target_config)`` makes its target; ``limits`` holds its
``LIMITS`` (counting rule, caption and image limits, config defaults), ``steps`` the sans-I/O steps and
reconciler and, where the platform signs in, ``signin`` its ``SIGN_IN``. Optional hooks:
``steps.LINK_CHECK`` (reading a post back) and the package's ``doctor`` (checks of its own). The rest of
crosswatch asks this module instead of comparing a target's type with a platform's name.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, cast

from crosswatch.errors import ConfigError

if TYPE_CHECKING:
    from crosswatch.auth.flow import SignIn
    from crosswatch.config import Config, TargetConfig
    from crosswatch.platforms.base import LinkCheck, MetricsRead, Target
    from crosswatch.platforms.limits import PlatformLimits

# A platform's own doctor checks for one target: (ok, line) pairs, e.g. the outbox's folder.
Doctor = Callable[["TargetConfig"], list[tuple[bool, str]]]


@dataclass(frozen=True)
class Platform:
    name: str
    package: str
    signs_in: bool  # has a ``signin`` module: `crosswatch auth` and tokens apply

    def part(self, module: str = "") -> ModuleType:
        """The platform's package (``part()``) or one of its modules (``part("signin")``)."""
        return importlib.import_module(f"{self.package}.{module}" if module else self.package)


PLATFORMS: Mapping[str, Platform] = {
    "outbox": Platform("outbox", "crosswatch.platforms.outbox", signs_in=False),
    "x": Platform("x", "crosswatch.platforms.x", signs_in=True),
    "instagram": Platform("instagram", "crosswatch.platforms.instagram", signs_in=True),
    "mastodon": Platform("mastodon", "crosswatch.platforms.mastodon", signs_in=True),
    "bluesky": Platform("bluesky", "crosswatch.platforms.bluesky", signs_in=True),
    "threads": Platform("threads", "crosswatch.platforms.threads", signs_in=True),
}


def names() -> tuple[str, ...]:
    return tuple(PLATFORMS)


def platform(kind: str) -> Platform | None:
    return PLATFORMS.get(kind)


def signs_in(kind: str) -> bool:
    """Whether targets of this type sign in (and so have tokens, `auth` commands and a status)."""
    found = PLATFORMS.get(kind)
    return found is not None and found.signs_in


def sign_in(kind: str) -> SignIn | None:
    """The platform's sign-in flow, or None for a platform that has none (the outbox)."""
    found = PLATFORMS.get(kind)
    if found is None or not found.signs_in:
        return None
    return cast("SignIn", found.part("signin").SIGN_IN)


def limits(kind: str) -> PlatformLimits:
    """The platform's limits and counting rule (``platforms/<name>/limits.py``); KeyError if unknown."""
    return cast("PlatformLimits", PLATFORMS[kind].part("limits").LIMITS)


def link_check(kind: str) -> LinkCheck | None:
    """How `crosswatch links check` reads a post of this platform back (``steps.LINK_CHECK``), or
    None for a platform whose posts cannot be read back (the outbox)."""
    found = PLATFORMS.get(kind)
    if found is None:
        return None
    return cast("LinkCheck | None", getattr(found.part("steps"), "LINK_CHECK", None))


def metrics_read(kind: str) -> MetricsRead | None:
    """How the platform's post metrics are read (``platforms/<name>/metrics.py``: ``METRICS``), or None
    for a platform that has none (the outbox)."""
    found = PLATFORMS.get(kind)
    if found is None or importlib.util.find_spec(f"{found.package}.metrics") is None:
        return None
    return cast("MetricsRead", found.part("metrics").METRICS)


def insights_scope(kind: str) -> str | None:
    """The scope the platform's metrics read needs beyond posting (asked for only with analytics on)."""
    read = metrics_read(kind)
    return read.scope if read is not None else None


def kinds_where(flag: str) -> tuple[str, ...]:
    """The platforms whose limits set ``flag`` (``needs_media_host``, ``bridge_source``), for config
    messages that say which types may do something."""
    return tuple(name for name in PLATFORMS if getattr(limits(name), flag))


def doctor(kind: str) -> Doctor | None:
    """The platform's own ``doctor`` checks (its package's ``doctor`` function), beyond the ones every
    target gets (sign-in, quota, media host); None when it has none."""
    found = PLATFORMS.get(kind)
    return None if found is None else cast("Doctor | None", getattr(found.part(), "doctor", None))


def build_target(target: TargetConfig) -> Target:
    found = PLATFORMS.get(target.kind)
    if found is None:
        raise ConfigError(f"unknown target type {target.kind!r}", key=f"targets.{target.name}")
    return cast("Target", found.part().build(target))


def build_targets(config: Config) -> dict[str, Target]:
    return {name: build_target(t) for name, t in config.targets.items() if t.enabled}
