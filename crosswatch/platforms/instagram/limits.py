"""Instagram's limits and counting rule (pure): 2,200 characters counted in UTF-16 code units (never
less than the characters a person sees, so a caption that fits here fits there), 20 mentions, the
hashtag cap; images up to 8 MB (decimal, the conservative reading of Instagram's "8 MiB"), 320 to 1440
px wide, aspect 4:5 to 1.91:1."""

from __future__ import annotations

from crosswatch.platforms.limits import PlatformLimits, TargetSpec


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


LIMITS = PlatformLimits(
    caption_limit=2200,
    caption_length=utf16_length,
    default_caption="{title}\n\n{description}\n\n{attribution}\n\n{hashtags}",
    image=TargetSpec("instagram", "Instagram", max_bytes=8_000_000, min_width=320, max_width=1440,
                     min_aspect=4 / 5, max_aspect=1.91),
    max_mentions=20,
    caps_hashtags=True,
    config_defaults={
        "graph_base": "https://graph.instagram.com",
        "api_base": "https://api.instagram.com",
        "authorize_url": "https://www.instagram.com/oauth/authorize",
    },
    needs_media_host=True,
    bridge_source=True,
    max_images=10,  # a carousel: 2 to 10 images
)
