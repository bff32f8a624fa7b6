"""The outbox's limits (pure): captions follow Instagram's rules, the longer ones, so what is written
there can be posted by hand anywhere; images keep their full size (correct pixels and privacy)."""

from __future__ import annotations

from dataclasses import replace

from crosswatch.platforms.instagram.limits import LIMITS as INSTAGRAM_LIMITS
from crosswatch.platforms.limits import PlatformLimits, TargetSpec

LIMITS: PlatformLimits = replace(INSTAGRAM_LIMITS, image=TargetSpec("outbox", "the outbox"), config_defaults={},
                                 needs_media_host=False, bridge_source=False, max_images=1,
                                 required_config={"path": "the folder it writes into"})
