"""X's limits and counting rule (pure): 280 by twitter-text v3 weighted length (URLs 23, CJK and
emoji 2, NFC first); images up to 5 MB (read as decimal megabytes, the conservative reading) and
4096 px on the long edge."""

from __future__ import annotations

from crosswatch.platforms.limits import PlatformLimits, TargetSpec
from crosswatch.pricing import X_PRICES
from crosswatch.twitter_counting import weighted_length

LIMITS = PlatformLimits(
    caption_limit=280,
    caption_length=weighted_length,
    default_caption="{title} {attribution} {hashtags}",
    image=TargetSpec("x", "X", max_bytes=5_000_000, max_long_edge=4096),
    max_images=4,
    replies=True,  # reply.in_reply_to_tweet_id, in our own thread (api-notes item 14)
    prices=X_PRICES,
    config_defaults={"api_base": "https://api.x.com", "authorize_url": "https://x.com/i/oauth2/authorize"},
)
