"""What a platform learns from uploaded bytes: format, size in pixels. Pillow does the decoding."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # multi-picture JPEG: X takes it, Instagram refuses it
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}


@dataclass(frozen=True)
class ImageFacts:
    format: str  # Pillow's format name, e.g. "JPEG", "MPO", "PNG"
    width: int
    height: int

    @property
    def mime(self) -> str:
        return MIME_BY_FORMAT.get(self.format, "application/octet-stream")

    @property
    def aspect(self) -> float:
        return self.width / self.height


def inspect_image(data: bytes) -> ImageFacts | None:
    """The image's facts, or None when the bytes do not fully decode as an image."""
    try:
        with warnings.catch_warnings():
            # A decompression-bomb warning means we should refuse the image, not warn about it.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format = image.format or ""
                width, height = image.size
                image.load()  # a truncated file fails here rather than being accepted
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None
    if width <= 0 or height <= 0:
        return None
    return ImageFacts(image_format, width, height)
