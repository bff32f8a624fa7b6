"""Mastodon: the sans-I/O steps, reconciler, instance read and link check (``steps``), the limits
learned from the server (``limits``), the sign-in with app registration (``signin``); ``build`` makes
the target."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crosswatch.config import TargetConfig
    from crosswatch.platforms.mastodon.steps import MastodonTarget


def build(target: TargetConfig) -> MastodonTarget:
    from crosswatch.platforms.mastodon.steps import MastodonTarget

    return MastodonTarget(target)
