"""The test platform's limits: 50 characters counted in code points, two images a post, bridgeable."""

from __future__ import annotations

from crosswatch.platforms.limits import PlatformLimits, TargetSpec

LIMITS = PlatformLimits(
    caption_limit=50,
    caption_length=len,
    default_caption="{title} {hashtags}",
    image=TargetSpec("fake", "Fakegram", max_long_edge=1024),
    config_defaults={"api_base": "https://fake.invalid"},
    needs_media_host=True,
    bridge_source=True,
    max_images=2,
)
