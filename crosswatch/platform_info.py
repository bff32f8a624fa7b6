"""What a target's server says about itself (Mastodon's ``/api/v2/instance`` limits), kept in the
journal (``platform_info``) and turned into that target's limits for compose and media.

A platform offers this with ``info_read`` on its target (``build(cfg) -> Request``,
``parse(response) -> dict | None``, ``max_age`` seconds) and ``learned(info) -> PlatformLimits`` in its
limits module. The read happens at ``auth login`` and, at most every ``max_age``, from the daemon
(``refresh_due``); nothing else sends it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crosswatch.config import Config, TargetConfig
from crosswatch.journal import Journal
from crosswatch.logs import LazyLogger
from crosswatch.platforms import registry
from crosswatch.platforms.limits import PlatformLimits, TargetSpec

if TYPE_CHECKING:  # httpx is imported by the one read that sends: `queue` only reads learned limits
    import httpx

log = LazyLogger("crosswatch.platform_info")


def _learns(target_cfg: TargetConfig) -> bool:
    """Whether the target's platform learns its limits from its server (``learned`` in its limits module).
    Only such a platform has an ``info_read`` (tests/test_startup.py checks): asking the light limits
    module first keeps the steps module (httpx and every step) out of `queue` and the caption code."""
    found = registry.platform(target_cfg.kind)
    return found is not None and callable(getattr(found.part("limits"), "learned", None))


def reader(target_cfg: TargetConfig) -> Any | None:
    """The platform's ``info_read`` (None for platforms whose limits are fixed)."""
    found = registry.platform(target_cfg.kind)
    if found is None or not _learns(target_cfg):
        return None
    return getattr(found.part("steps"), "INSTANCE_INFO", None)


def read(target_cfg: TargetConfig, client: httpx.Client, journal: Journal) -> dict[str, Any] | None:
    """Ask the server now and keep its answer; None (and the last reading kept) when it cannot say."""
    import httpx

    info_read = reader(target_cfg)
    if info_read is None:
        return None
    request = info_read.build(target_cfg)
    try:
        response = client.send(request)
        response.read()
    except httpx.HTTPError as exc:
        log.warning("cannot read the server's limits", target=target_cfg.name, host=request.url.host,
                    error=type(exc).__name__)
        return None
    info = info_read.parse(response)
    if info is None:
        log.warning("the server did not say its limits", target=target_cfg.name, status=response.status_code)
        return None
    journal.set_platform_info(target_cfg.name, info)
    log.info("read the server's limits", target=target_cfg.name, **{k: v for k, v in info.items()})
    return dict(info)


def refresh_due(config: Config, journal: Journal, client: httpx.Client, now: float | None = None) -> int:
    """Read again every enabled target's server whose reading is missing or older than its max age;
    returns how many were read."""
    now = time.time() if now is None else now
    count = 0
    for target_cfg in config.targets.values():
        info_read = reader(target_cfg) if target_cfg.enabled else None
        if info_read is None:
            continue
        known = journal.platform_info(target_cfg.name)
        if known is not None and now - known[1] < float(getattr(info_read, "max_age", 86400.0)):
            continue
        if read(target_cfg, client, journal) is not None:
            count += 1
    return count


def limits_for(target_cfg: TargetConfig, info: Mapping[str, Any] | None) -> PlatformLimits:
    """The target's limits: learned from its server where the platform learns them, else fixed."""
    found = registry.platform(target_cfg.kind)
    learned = getattr(found.part("limits"), "learned", None) if found is not None else None
    return learned(info) if callable(learned) else registry.limits(target_cfg.kind)


def learned_limits(journal: Journal | None, target_cfg: TargetConfig) -> PlatformLimits:
    if not _learns(target_cfg):
        return registry.limits(target_cfg.kind)  # fixed limits: nothing to read (no query per job)
    known = journal.platform_info(target_cfg.name) if journal is not None else None
    return limits_for(target_cfg, known[0] if known else None)


def learned_specs(journal: Journal | None, targets: list[TargetConfig]) -> dict[str, TargetSpec]:
    """Image specs of the targets whose server told their limits (for ``media.prepare_all(specs=)``)."""
    return {t.name: learned_limits(journal, t).image for t in targets if _learns(t)}


def describe(journal: Journal | None, target_cfg: TargetConfig) -> str | None:
    """One line for ``doctor``: which limits the target uses and when its server told them; None for
    a platform whose limits are fixed."""
    if reader(target_cfg) is None:
        return None
    known = journal.platform_info(target_cfg.name) if journal is not None else None
    limits = limits_for(target_cfg, known[0] if known else None)
    image = limits.image
    what = (f"{limits.caption_limit:,} characters, images up to {image.max_bytes or 0:,} bytes and "
            f"{image.max_long_edge or 0:,} px on the long edge, alt text up to {limits.alt_text_limit or 0:,}")
    if known is None:
        return (f"server limits not read yet, so the conservative fallback is used ({what}); "
                "`crosswatch auth login` or the daemon reads them")
    read_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(known[1]))
    return f"server limits read {read_at}: {what}"
