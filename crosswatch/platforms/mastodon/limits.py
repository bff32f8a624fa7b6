"""Mastodon's limits and counting rule (pure). Every limit is the server's own, read from
``GET /api/v2/instance`` (``configuration``) and kept in the journal (``platform_info``); ``learned``
turns that reading into this target's ``PlatformLimits``.

Counting, as Mastodon's ``app/validators/status_length_validator.rb`` does it: the text is counted in
grapheme clusters (``each_grapheme_cluster.size``; older servers ``mb_chars.grapheme_length``, the
same), after every URL is replaced by ``characters_reserved_per_url`` characters
(``URL_PLACEHOLDER_CHARS``, 23) and every mention ``@user@domain`` by ``@user``; the content warning
(``spoiler_text``) counts too, and crosswatch sends none.

``FALLBACK`` is used only for a target whose server was never read (no sign-in yet, an imported
token without a lookup): Mastodon's stock values, or smaller — 500 characters, 23 per URL, 4
attachments, 8 MB images (stock servers take 16 MB), 16,777,216 pixels (stock is 33,177,600 since
4.3), 1,500 characters of alt text (since 4.0). A server that allows more is used fully once read.

The image limits are kept strictly below the server's: a file must be *less than*
``image_size_limit`` (``validates_attachment_size less_than``) and older servers refuse
``width x height >= image_matrix_limit``; media.py scales an image into ``max_pixels``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import regex

from crosswatch.platforms.limits import PlatformLimits, TargetSpec
from crosswatch.twitter_counting import protocol_url_spans

_REMOTE_MENTION = re.compile(r"(?<![\w@])@(\w+)@[\w.-]+\w", re.ASCII)
_GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True)
class InstanceLimits:
    """The limits one Mastodon server reports (``/api/v2/instance`` ``configuration``)."""

    max_characters: int = 500
    characters_reserved_per_url: int = 23
    max_media_attachments: int = 4
    image_size_limit: int = 8_000_000
    image_matrix_limit: int = 16_777_216
    description_limit: int = 1500

    def as_json(self) -> dict[str, int]:
        return asdict(self)


FALLBACK = InstanceLimits()

# Where each limit sits in the instance document's ``configuration``.
_PATHS: Mapping[str, tuple[str, str]] = {
    "max_characters": ("statuses", "max_characters"),
    "characters_reserved_per_url": ("statuses", "characters_reserved_per_url"),
    "max_media_attachments": ("statuses", "max_media_attachments"),
    "image_size_limit": ("media_attachments", "image_size_limit"),
    "image_matrix_limit": ("media_attachments", "image_matrix_limit"),
    "description_limit": ("media_attachments", "description_limit"),
}


def parse_instance(document: Any) -> InstanceLimits | None:
    """The limits in an ``/api/v2/instance`` answer; a value the server leaves out keeps the fallback.
    None when the document has no ``configuration`` at all (not an instance answer)."""
    configuration = document.get("configuration") if isinstance(document, Mapping) else None
    if not isinstance(configuration, Mapping):
        return None
    found: dict[str, int] = {}
    for name, (section, key) in _PATHS.items():
        group = configuration.get(section)
        value = group.get(key) if isinstance(group, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            found[name] = value
    return InstanceLimits(**{**FALLBACK.as_json(), **found})


def from_json(stored: Mapping[str, Any] | None) -> InstanceLimits:
    """The limits as kept in the journal (``as_json``); the fallback for what is missing."""
    if not stored:
        return FALLBACK
    known = {k: v for k, v in stored.items()
             if k in _PATHS and isinstance(v, int) and not isinstance(v, bool) and v > 0}
    return InstanceLimits(**{**FALLBACK.as_json(), **known})


def countable_text(text: str, reserved_per_url: int) -> str:
    """``text`` as Mastodon counts it: each URL (twitter-text's extractor, as Mastodon's
    ``Extractor.extract_urls_with_indices(str, extract_url_without_protocol: false)``) as
    ``reserved_per_url`` characters, remote mentions without their domain."""
    pieces: list[str] = []
    position = 0
    for start, end in protocol_url_spans(text):
        pieces += [text[position:start], "x" * reserved_per_url]
        position = end
    pieces.append(text[position:])
    return _REMOTE_MENTION.sub(r"@\1", "".join(pieces))


def status_length(text: str, reserved_per_url: int = FALLBACK.characters_reserved_per_url) -> int:
    """The length Mastodon's StatusLengthValidator sees: grapheme clusters of the countable text."""
    return len(_GRAPHEME.findall(countable_text(text, reserved_per_url)))


def image_spec(limits: InstanceLimits) -> TargetSpec:
    # Mastodon refuses a file unless it is *less than* the size limit (validates_attachment_size
    # less_than), and older servers refuse an image whose width x height is >= the matrix limit.
    return TargetSpec("mastodon", "Mastodon", max_bytes=limits.image_size_limit - 1,
                      max_pixels=limits.image_matrix_limit - 1)


def learned(stored: Mapping[str, Any] | None) -> PlatformLimits:
    """This target's limits from what its server said (``as_json`` as kept), else the fallback."""
    limits = from_json(stored)
    return dataclasses.replace(
        LIMITS,
        caption_limit=limits.max_characters,
        caption_length=partial(status_length, reserved_per_url=limits.characters_reserved_per_url),
        image=image_spec(limits),
        alt_text_limit=limits.description_limit,
        max_images=limits.max_media_attachments,
    )


def check_target_config(target: Any) -> tuple[str, str] | None:
    """``instance`` must be an http(s) address; ``language`` an ISO 639 code."""
    instance = target.instance or ""
    if not re.match(r"^https?://[^/\s]+", instance):
        return "instance", f"must be an http(s) address like https://mastodon.social, not {instance!r}"
    if target.language is not None and not re.fullmatch(r"[a-z]{2,3}", target.language):
        return "language", f"must be an ISO 639 code like 'en', not {target.language!r}"
    return None


LIMITS = PlatformLimits(
    caption_limit=FALLBACK.max_characters,
    caption_length=status_length,
    default_caption="{title}\n\n{description}\n\n{attribution} {hashtags}",
    image=image_spec(FALLBACK),
    alt_text_limit=FALLBACK.description_limit,
    max_images=FALLBACK.max_media_attachments,
    replies=True,  # in_reply_to_id: an album past the server's attachments goes on as a thread
    config_defaults={"visibility": "public"},
    required_config={"instance": "the server's address, e.g. https://mastodon.social"},
    check_config=check_target_config,
)
