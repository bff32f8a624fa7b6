"""What a platform allows in a post (pure): the shape of every platform's ``limits.LIMITS``.

compose fits captions by ``caption_limit`` and the platform's own ``caption_length``; media prepares
images within ``image``; config fills a target's unset keys from ``config_defaults`` and checks
``media_host``, ``link_to`` and ``bridge.source`` by ``needs_media_host`` and ``bridge_source``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TargetSpec:
    """What one platform accepts. ``None`` means no limit. Aspect is width / height."""

    kind: str
    label: str
    max_bytes: int | None = None
    max_long_edge: int | None = None
    min_width: int | None = None
    max_width: int | None = None
    min_aspect: float | None = None
    max_aspect: float | None = None
    # Width x height at most this many pixels (Mastodon's ``image_matrix_limit``).
    max_pixels: int | None = None


@dataclass(frozen=True)
class PlatformLimits:
    caption_limit: int
    # The platform's own counting rule (X: twitter-text weighted length; Instagram: UTF-16 units).
    caption_length: Callable[[str], int]
    default_caption: str
    image: TargetSpec
    # Mentions allowed in one caption; None: no rule.
    max_mentions: int | None = None
    # Whether the platform refuses a caption with more hashtags than the target's cap (Instagram's 5).
    caps_hashtags: bool = False
    # The longest alt text the platform takes, in characters; None: compose's own cap alone.
    alt_text_limit: int | None = None
    # Config keys a target of this type gets unless it sets them (endpoints, sign-in addresses).
    config_defaults: Mapping[str, Any] = field(default_factory=dict)
    # What the platform charges per call, by price name (pricing.py: X's table and its source);
    # None: it charges nothing, so no price, budget or cost applies.
    prices: Mapping[str, float] | None = None
    # Target keys this platform cannot do without, each with what it is for (the outbox's path).
    required_config: Mapping[str, str] = field(default_factory=dict)
    # The platform's own check of a target's settings (a TargetConfig): (key, what is wrong and what to
    # write instead), or None when they are fine. Called at load, after the required keys.
    check_config: Callable[[Any], tuple[str, str] | None] | None = None
    # Images one post may carry (a bridged carousel keeps its first ones); steps read the second
    # and later from ``ctx.data["images"]``.
    max_images: int = 1
    # The platform's steps can post an album's next post as a reply to its previous one (they read
    # ``ctx.data["reply_to"]``), so an album longer than ``max_images`` can be a thread there.
    replies: bool = False
    # The platform fetches images from a public URL, so a target needs ``media_host`` (Instagram).
    needs_media_host: bool = False
    # The bridge can read the account's own posts and re-share them elsewhere (``bridge.source``,
    # ``link_to``: the platform gives each post a permalink to link back to).
    bridge_source: bool = False
