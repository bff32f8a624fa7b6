"""Bluesky's limits and counting rule (pure), from the app.bsky lexicons (bluesky-social/atproto at
d6296a1c, lexicons/app/bsky/feed/post.json and embed/images.json): post text at most 300 graphemes
and 3,000 UTF-8 bytes; at most 4 images, each blob at most 2,000,000 bytes (``image/*``)."""

from __future__ import annotations

import regex

from crosswatch.platforms.limits import PlatformLimits, TargetSpec

MAX_GRAPHEMES = 300
MAX_TEXT_BYTES = 3000
MAX_IMAGE_BYTES = 2_000_000
MAX_IMAGES = 4  # app.bsky.embed.images: images maxLength 4
# The grapheme limit and the byte limit in one number: 3,000 bytes is 10 per grapheme of the 300.
BYTES_PER_GRAPHEME = MAX_TEXT_BYTES // MAX_GRAPHEMES

_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> int:
    """Extended grapheme clusters in ``text`` (what ``maxGraphemes`` counts)."""
    return len(_GRAPHEME.findall(text))


def text_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def post_length(text: str) -> int:
    """The length compose fits against 300: the grapheme count, unless the text's UTF-8 bytes would
    pass 3,000 first (long emoji sequences take up to ~25 bytes each), then bytes / 10, rounded up.
    So a caption that fits is within both of the lexicon's limits."""
    return max(graphemes(text), -(-text_bytes(text) // BYTES_PER_GRAPHEME))


def fits(text: str) -> bool:
    return graphemes(text) <= MAX_GRAPHEMES and text_bytes(text) <= MAX_TEXT_BYTES


LIMITS = PlatformLimits(
    caption_limit=MAX_GRAPHEMES,
    caption_length=post_length,
    default_caption="{title} {attribution} {hashtags}",
    # The Bluesky app itself scales images to 2000 px on the long edge before uploading.
    image=TargetSpec("bluesky", "Bluesky", max_bytes=MAX_IMAGE_BYTES, max_long_edge=2000),
    config_defaults={"service": "https://bsky.social"},
    max_images=MAX_IMAGES,
    replies=True,  # the record's reply (root and parent strongRefs): an album past 4 images is a thread
)
