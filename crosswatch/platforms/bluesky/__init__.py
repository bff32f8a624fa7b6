"""Bluesky (AT Protocol): the sans-I/O steps and reconciler (``steps``), the app-password sign-in
(``signin``), facets (``richtext``), record keys (``tid``); ``build`` makes the target."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crosswatch.config import TargetConfig
    from crosswatch.platforms.bluesky.steps import BlueskyTarget


def build(target: TargetConfig) -> BlueskyTarget:
    from crosswatch.platforms.bluesky.steps import BlueskyTarget

    return BlueskyTarget(target)
