"""Facets for a post's text (pure): links and hashtags, indexed in UTF-8 bytes.

Bluesky does not find links or tags in the text itself: a post shows them as links only when the
record carries ``app.bsky.richtext.facet`` annotations, whose ``byteStart`` (inclusive) and
``byteEnd`` (exclusive) count bytes of the UTF-8 text (lexicons/app/bsky/richtext/facet.json). The
rules follow the official client's ``detectFacets`` (bluesky-social/atproto at d6296a1c,
packages/api/src/rich-text/detection.ts and util.ts): a URL or tag starts the text or follows
white space (a URL may also follow "("); a trailing ``.,;:!?`` (and an unbalanced ``)``) is not part of
a URL; trailing punctuation is not part of a tag; a tag has at least one character that is neither
a digit nor punctuation, and at most 64 graphemes.

Only ``http(s)://`` URLs are linked (crosswatch's own links always carry the scheme; the official
client's bare-domain form needs a list of TLDs). @mentions stay plain text: a mention facet needs
the account's DID, which would cost a ``resolveHandle`` request per handle before each post and,
for a handle that no longer resolves, a post that fails for a caption the user did not think of as
a link. Photo captions built from metadata carry hashtags and a link, rarely a handle.
"""

from __future__ import annotations

from typing import Any

import regex

from crosswatch.platforms.bluesky.limits import graphemes

LINK_FEATURE = "app.bsky.richtext.facet#link"
TAG_FEATURE = "app.bsky.richtext.facet#tag"
MAX_TAG_GRAPHEMES = 64

_URL = regex.compile(r"(?:^|(?<=[\s(]))(https?://\S+)", regex.IGNORECASE)
# Zero-width characters the official client does not count as part of a tag.
_ZW = "\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"
_TAG = regex.compile(
    rf"(?:^|(?<=\s))[#＃]((?!\ufe0f)[^\s{_ZW}]*[^\d\s\p{{P}}{_ZW}]+[^\s{_ZW}]*)?", regex.VERSION1)
_TRAILING_PUNCTUATION = regex.compile(r"\p{P}+$")


def _byte_index(text: str, char_index: int) -> int:
    return len(text[:char_index].encode("utf-8"))


def _facet(text: str, start: int, end: int, feature: dict[str, str]) -> dict[str, Any]:
    return {"index": {"byteStart": _byte_index(text, start), "byteEnd": _byte_index(text, end)},
            "features": [feature]}


def link_facets(text: str) -> list[dict[str, Any]]:
    facets = []
    for match in _URL.finditer(text):
        uri, start = match.group(1), match.start(1)
        if uri[-1] in ".,;:!?":
            uri = uri[:-1]
        if uri.endswith(")") and "(" not in uri:
            uri = uri[:-1]
        if regex.fullmatch(r"https?://", uri, regex.IGNORECASE):
            continue  # nothing after the scheme
        facets.append(_facet(text, start, start + len(uri), {"$type": LINK_FEATURE, "uri": uri}))
    return facets


def tag_facets(text: str) -> list[dict[str, Any]]:
    facets = []
    for match in _TAG.finditer(text):
        tag = match.group(1)
        if not tag:
            continue
        tag = _TRAILING_PUNCTUATION.sub("", tag.strip())
        if not tag or graphemes(tag) > MAX_TAG_GRAPHEMES:
            continue
        start = match.start()
        facets.append(_facet(text, start, start + 1 + len(tag), {"$type": TAG_FEATURE, "tag": tag}))
    return facets


def detect_facets(text: str) -> list[dict[str, Any]]:
    """Link and tag facets of ``text``, in the order they appear."""
    found = link_facets(text) + tag_facets(text)
    return sorted(found, key=lambda facet: facet["index"]["byteStart"])
