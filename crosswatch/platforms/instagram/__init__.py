"""Instagram: the sans-I/O steps and reconciler (``steps``), the sign-in flow (``signin``); ``build`` makes
the target, with the media host Instagram fetches the image from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crosswatch.errors import ConfigError

if TYPE_CHECKING:
    from crosswatch.config import TargetConfig
    from crosswatch.platforms.instagram.steps import InstagramTarget


def build(target: TargetConfig) -> InstagramTarget:
    from crosswatch.hosting import build_host
    from crosswatch.platforms.instagram.steps import InstagramTarget

    if target.media_host is None:
        raise ConfigError("an instagram target needs a media_host (Instagram fetches images from a URL)",
                          key=f"targets.{target.name}.media_host")
    return InstagramTarget(target, build_host(target.media_host))
