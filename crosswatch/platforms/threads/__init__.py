"""Threads: the sans-I/O steps and reconciler (``steps``), the sign-in flow (``signin``); ``build`` makes
the target, with the media host Threads fetches the image from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crosswatch.errors import ConfigError

if TYPE_CHECKING:
    from crosswatch.config import TargetConfig
    from crosswatch.platforms.threads.steps import ThreadsTarget


def build(target: TargetConfig) -> ThreadsTarget:
    from crosswatch.hosting import build_host
    from crosswatch.platforms.threads.steps import ThreadsTarget

    if target.media_host is None:
        raise ConfigError("a threads target needs a media_host (Threads fetches images from a URL)",
                          key=f"targets.{target.name}.media_host")
    return ThreadsTarget(target, build_host(target.media_host))
