"""``crosswatch preview``: what would be posted for one photo, per target, without posting it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crosswatch import compose, platform_info, pricing
from crosswatch.config import Config, TargetConfig
from crosswatch.journal import Journal
from crosswatch.metadata import read_metadata
from crosswatch.models import Caption
from crosswatch.platforms.limits import PlatformLimits


def build_preview(config: Config, photo: Path, out_dir: Path | None = None) -> dict[str, Any]:
    """The preview document (design.md's ``preview --json`` shape); with ``out_dir``, also the
    prepared images (``<target>.jpg``) and ``preview.json`` written there."""
    from crosswatch import media  # Pillow: not for `queue`, which asks caption_cost only

    metadata = read_metadata(photo)
    targets = [t for t in config.targets.values() if t.enabled]
    learned = _learned(config, targets)  # limits the targets' servers told (Mastodon)
    specs = {name: limits.image for name, limits in learned.items()}
    if out_dir is not None:
        images = media.preview_images(photo, targets, config, out_dir, metadata=metadata, specs=specs)
    else:
        with tempfile.TemporaryDirectory(prefix="crosswatch-preview-") as scratch:
            images = media.preview_images(photo, targets, config, Path(scratch), metadata=metadata, specs=specs)
            for facts in images.values():
                facts.pop("file", None)  # gone with the scratch folder
    document: dict[str, Any] = {"file": str(photo), "targets": {}}
    for target in targets:
        caption = compose.compose(config, target.name, metadata, photo, limits=learned.get(target.name))
        document["targets"][target.name] = {
            "text": caption.text,
            "length": caption.length,
            "limit": caption.limit,
            "alt_text": caption.alt_text,
            "hashtags": list(caption.hashtags),
            "shortened": list(caption.shortened),
            "cost_usd": None,
            "image": images.get(target.name, {}),
        }
        cost = caption_cost(target, caption)
        if cost is not None:
            document["targets"][target.name].update(cost_usd=cost.usd, cost=cost.describe())
    if out_dir is not None:
        (out_dir / "preview.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return document


def _learned(config: Config, targets: Sequence[TargetConfig]) -> dict[str, PlatformLimits]:
    """The limits of targets that learn theirs from the server, as last read (the journal is only read,
    and only when there is one: a preview never creates it)."""
    learning = [t for t in targets if platform_info.reader(t) is not None]
    if not learning:
        return {}
    if not config.journal_path.exists():
        return {t.name: platform_info.learned_limits(None, t) for t in learning}
    with Journal(config.journal_path) as journal:
        return {t.name: platform_info.learned_limits(journal, t) for t in learning}


def caption_cost(target: TargetConfig, caption: Caption, *, will_link: bool | None = None,
                 alt_texts: Sequence[bool] | None = None) -> pricing.Cost | None:
    """What posting this caption costs on ``target`` (None where the platform charges nothing). A
    cross-promoting X post (``link_to`` with ``link: permalink``) is priced with the link it will carry
    unless ``will_link`` says otherwise."""
    prices = pricing.prices_for(target.kind, target.prices)
    if prices is None:
        return None
    if will_link is None:
        will_link = target.link_to is not None and target.link == "permalink"
    flags = list(alt_texts) if alt_texts is not None else [bool(caption.alt_text)]
    return pricing.job_cost(prices, caption.text, flags, will_link=will_link)
