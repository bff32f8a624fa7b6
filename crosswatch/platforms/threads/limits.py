"""Threads' limits and counting rule (pure).

Meta's Posts page: "Text posts are limited to 500 characters. Emojis are counted as the number of UTF-8
bytes" (developers.facebook.com/docs/threads/posts, Limitations). So a grapheme that is an emoji counts
its UTF-8 length (a thumbs-up 4, a family of four 25) and every other grapheme counts one. Alt text: up
to 1,000 characters (same page, ``alt_text``). Images: JPEG or PNG, at most 8 MB, 320 to 1440 px wide,
aspect at most 10:1 (Posts, Media Specifications); crosswatch sends JPEG.
"""

from __future__ import annotations

import regex

from crosswatch.platforms.limits import PlatformLimits, TargetSpec

GRAPHEME = regex.compile(r"\X")
PICTOGRAPHIC = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}]")


def threads_length(text: str) -> int:
    """Graphemes, with every emoji grapheme counted as its UTF-8 bytes (Meta's rule)."""
    total = 0
    for grapheme in GRAPHEME.findall(text):
        total += len(grapheme.encode("utf-8")) if PICTOGRAPHIC.search(grapheme) else 1
    return total


LIMITS = PlatformLimits(
    caption_limit=500,
    caption_length=threads_length,
    default_caption="{title}\n\n{description}\n\n{attribution}\n\n{hashtags}",
    image=TargetSpec("threads", "Threads", max_bytes=8_000_000, min_width=320, max_width=1440,
                     min_aspect=1 / 10, max_aspect=10.0),
    alt_text_limit=1000,
    config_defaults={
        "graph_base": "https://graph.threads.net",
        "authorize_url": "https://threads.net/oauth/authorize",
    },
    needs_media_host=True,
    max_images=20,  # a carousel: 2 to 20 images
    replies=True,  # reply_to_id
)
