"""``crosswatch preview``: what would be posted for one photo (or one album folder), per target,
without posting it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crosswatch import compose, platform_info, pricing
from crosswatch.config import Config, TargetConfig, WatchFolder
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


# ---------------------------------------------------------------------------------------------------
# An album (`preview DIR`): the album as each target will get it


def build_album_preview(config: Config, folder: Path) -> dict[str, Any]:
    """What the album in ``folder`` would post, per target: the album's caption, each image with its
    alt text split into posts by the target's limit and ``overflow``, the photos that do not go out
    and why, the photos the rules leave out, and the cost where the platform charges."""
    from crosswatch import albums, rules
    from crosswatch.errors import BadPhoto
    from crosswatch.models import Metadata
    from crosswatch.watcher import is_wanted

    watched = _watch_entry(config, folder)
    paths = [str(p) for p in sorted(folder.rglob("*")) if p.is_file() and is_wanted(p.name, watched)]
    if not paths:
        raise BadPhoto(f"{folder} holds no photo that {watched.path} would take ({', '.join(watched.include)})")
    metadata: dict[str, Metadata] = {path: read_metadata(Path(path)) for path in paths}
    order = albums.ordered(paths, metadata, watched.album_order)
    text = albums.read_album_text(folder)
    targets = [t for t in config.targets.values() if t.enabled and (not watched.targets or t.name in watched.targets)]
    learned = _learned(config, targets)
    document: dict[str, Any] = {"album": str(folder), "photos": len(order), "targets": {}}
    for target in targets:
        kept_back = {p: why for p in order
                     if (why := rules.route(config, [target.name], metadata[p]).get(target.name))}
        members = [p for p in order if p not in kept_back]
        limits = learned.get(target.name) or registry_limits(target)
        plan = albums.split(len(members), max(1, limits.max_images), overflow=watched.overflow, kind=target.kind,
                            replies=limits.replies)
        merged = albums.album_metadata([metadata[p] for p in members], text)
        caption = compose.compose(config, target.name, merged, folder, limits=learned.get(target.name))
        images = [{"file": p, "alt_text": compose.compose(config, target.name, metadata[p], Path(p),
                                                          limits=learned.get(target.name)).alt_text}
                  for p in members]
        entry: dict[str, Any] = {
            "text": caption.text, "length": caption.length, "limit": caption.limit,
            "hashtags": list(caption.hashtags), "shortened": list(caption.shortened),
            "posts": [[images[i] for i in post] for post in plan.posts],
            "not_posted": [members[i] for i in plan.not_posted], "why_not_posted": plan.why_not,
            "left_out": [{"file": p, "reason": why} for p, why in kept_back.items()],
            "cost_usd": None,
        }
        costs = [caption_cost(target, caption if n == 0 else albums.reply_caption(caption, n, len(plan.posts), None),
                              alt_texts=[bool(images[i]["alt_text"]) for i in post])
                 for n, post in enumerate(plan.posts)]
        if costs and all(c is not None for c in costs):
            entry["cost_usd"] = round(sum(c.usd for c in costs if c is not None), 6)
        document["targets"][target.name] = entry
    return document


def registry_limits(target: TargetConfig) -> PlatformLimits:
    from crosswatch.platforms import registry

    return registry.limits(target.kind)


def _watch_entry(config: Config, folder: Path) -> WatchFolder:
    """The watch entry whose album this folder is, else the defaults (albums by folder)."""
    for watched in config.watch:
        if folder.resolve().parent == watched.path.resolve():
            return watched
    return WatchFolder(path=folder.parent, targets=(), albums="folder")
