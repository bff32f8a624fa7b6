"""What a platform allows in a post (pure): the shape of every platform's ``limits.LIMITS``.

compose fits captions by ``caption_limit`` and the platform's own ``caption_length``; media prepares
images within ``image``; config fills a target's unset keys from ``config_defaults``.
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
    # Config keys a target of this type gets unless it sets them (endpoints, sign-in addresses).
    config_defaults: Mapping[str, Any] = field(default_factory=dict)
