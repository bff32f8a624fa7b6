"""``crosswatch preview``: what would be posted for one photo, per target, without posting it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from crosswatch import compose, media
from crosswatch.config import Config
from crosswatch.metadata import read_metadata


def build_preview(config: Config, photo: Path, out_dir: Path | None = None) -> dict[str, Any]:
    """The preview document (design.md's ``preview --json`` shape); with ``out_dir``, also the
    prepared images (``<target>.jpg``) and ``preview.json`` written there."""
    metadata = read_metadata(photo)
    targets = [t for t in config.targets.values() if t.enabled]
    if out_dir is not None:
        images = media.preview_images(photo, targets, config, out_dir, metadata=metadata)
    else:
        with tempfile.TemporaryDirectory(prefix="crosswatch-preview-") as scratch:
            images = media.preview_images(photo, targets, config, Path(scratch), metadata=metadata)
            for facts in images.values():
                facts.pop("file", None)  # gone with the scratch folder
    document: dict[str, Any] = {"file": str(photo), "targets": {}}
    for target in targets:
        caption = compose.compose(config, target.name, metadata, photo)
        document["targets"][target.name] = {
            "text": caption.text,
            "length": caption.length,
            "limit": caption.limit,
            "alt_text": caption.alt_text,
            "hashtags": list(caption.hashtags),
            "shortened": list(caption.shortened),
            "image": images.get(target.name, {}),
        }
    if out_dir is not None:
        (out_dir / "preview.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return document
