"""The outbox's limits (pure): captions follow Instagram's rules, the longer ones, so what is written
there can be posted by hand anywhere; images keep their full size (correct pixels and privacy). An
album is written whole, every image of it, up to ``ALBUM_IMAGES`` (a bound on one job's work, not a
platform's rule)."""

from __future__ import annotations

from dataclasses import replace

from crosswatch.platforms.instagram.limits import LIMITS as INSTAGRAM_LIMITS
from crosswatch.platforms.limits import PlatformLimits, TargetSpec

ALBUM_IMAGES = 100

LIMITS: PlatformLimits = replace(INSTAGRAM_LIMITS, image=TargetSpec("outbox", "the outbox"), config_defaults={},
                                 needs_media_host=False, bridge_source=False, max_images=ALBUM_IMAGES,
                                 required_config={"path": "the folder it writes into"})
