"""The Bluesky side of the emulator's views: posts in the snapshot, cards on the page (facets as
links, sliced from the text's UTF-8 bytes as an app would), and a post's own page."""

from __future__ import annotations

import base64
import html
from typing import Any

import httpx

from crosswatch.emulator.bluesky_api import created_at_text, permalink
from crosswatch.emulator.bluesky_state import BlueskyState, BskyRecord
from crosswatch.emulator.httputil import bytes_response, html_response
from crosswatch.emulator.routing import Call, Route, route


def _images(record: BskyRecord) -> list[dict[str, Any]]:
    embed = record.value.get("embed")
    images = embed.get("images") if isinstance(embed, dict) else None
    return [image for image in images if isinstance(image, dict)] if isinstance(images, list) else []


def _cid(image: dict[str, Any]) -> str:
    blob = image.get("image")
    ref = blob.get("ref") if isinstance(blob, dict) else None
    return str(ref.get("$link")) if isinstance(ref, dict) else ""


def post_json(state: BlueskyState, record: BskyRecord, include_bytes: bool) -> dict[str, Any]:
    account = state.accounts.get(record.did)
    images = []
    for image in _images(record):
        blob = state.blobs.get((record.did, _cid(image)))
        entry: dict[str, Any] = {"cid": _cid(image), "alt": image.get("alt"), "aspectRatio": image.get("aspectRatio"),
                                 "size": blob.size if blob else None, "mime": blob.mime if blob else None,
                                 "url": f"/_emulator/media/bsky/{record.did}/{_cid(image)}"}
        if include_bytes and blob is not None:
            entry["bytes_base64"] = base64.b64encode(blob.data).decode("ascii")
        images.append(entry)
    return {"uri": record.uri, "cid": record.cid, "did": record.did, "rkey": record.rkey,
            "handle": account.handle if account else None, "record": record.value, "images": images,
            "indexed_at": record.indexed_at, "url": permalink(record, account.handle if account else None)}


def snapshot_json(state: BlueskyState, include_bytes: bool) -> dict[str, Any]:
    return {
        "accounts": [{"did": a.did, "handle": a.handle} for a in state.accounts.values()],
        "sessions_created": len(state.session_creations),
        "blobs": [{"did": b.did, "cid": b.cid, "mime": b.mime, "size": b.size} for b in state.blobs.values()],
        "posts": [post_json(state, r, include_bytes) for r in state.posts()],
    }


def rich_text(record: BskyRecord) -> str:
    """The post's text as HTML, each link and tag facet an anchor over exactly its bytes."""
    text = str(record.value.get("text") or "")
    data = text.encode("utf-8")
    found = record.value.get("facets")
    facets: list[Any] = found if isinstance(found, list) else []
    spans = []
    for facet in facets:
        index = facet.get("index") if isinstance(facet, dict) else None
        features = facet.get("features") if isinstance(facet, dict) else None
        if not isinstance(index, dict) or not isinstance(features, list) or not features:
            continue
        spans.append((int(index.get("byteStart", 0)), int(index.get("byteEnd", 0)), features[0]))
    out, at = [], 0
    for start, end, feature in sorted(spans, key=lambda s: s[0]):
        if start < at or end > len(data) or start >= end:
            continue  # overlapping or out of range: shown as plain text, as the apps do
        out.append(html.escape(data[at:start].decode("utf-8", "replace")))
        label = html.escape(data[start:end].decode("utf-8", "replace"))
        kind = str(feature.get("$type", ""))
        if kind.endswith("#link"):
            out.append(f'<a class="facet-link" href="{html.escape(str(feature.get("uri")), quote=True)}">{label}</a>')
        elif kind.endswith("#tag"):
            out.append(f'<a class="facet-tag" href="/_emulator/bsky/hashtag/'
                       f'{html.escape(str(feature.get("tag")), quote=True)}">{label}</a>')
        else:
            out.append(label)
        at = end
    out.append(html.escape(data[at:].decode("utf-8", "replace")))
    return "".join(out)


def card(state: BlueskyState, record: BskyRecord) -> str:
    account = state.accounts.get(record.did)
    handle = account.handle if account else record.did
    images = []
    for image in _images(record):
        alt = str(image.get("alt") or "")
        images.append(f'<img src="/_emulator/media/bsky/{html.escape(record.did)}/{html.escape(_cid(image))}" '
                      f'alt="{html.escape(alt, quote=True)}" loading="lazy">')
        if alt:
            images.append(f'<div class="alt">ALT: {html.escape(alt)}</div>')
    return (f'<article id="bsky-{html.escape(record.rkey)}">'
            f'<div class="meta"><span>@{html.escape(handle)}</span>'
            f'<a href="{html.escape(permalink(record, handle), quote=True)}">{html.escape(created_at_text(record))}</a>'
            f'</div><p class="text">{rich_text(record)}</p>{"".join(images)}</article>')


def cards(state: BlueskyState) -> list[str]:
    return [card(state, record) for record in reversed(state.posts())]


def routes() -> list[Route]:
    return [
        route("GET", "/_emulator/bsky/profile/{handle}/post/{rkey}", "admin.bsky.permalink", post_page, "admin"),
        route("GET", "/_emulator/media/bsky/{did}/{cid}", "admin.bsky.media", blob_bytes, "admin"),
    ]


def post_page(call: Call) -> httpx.Response:
    from crosswatch.emulator.page import single_page

    state = call.state.bluesky
    account = state.account(call.path_params["handle"])
    record = None if account is None else state.records.get(
        (account.did, "app.bsky.feed.post", call.path_params["rkey"]))
    if record is None:
        return html_response(404, single_page("Post not found", "<p>This post does not exist.</p>"))
    return html_response(200, single_page("Bluesky post", card(state, record)))


def blob_bytes(call: Call) -> httpx.Response:
    blob = call.state.bluesky.blobs.get((call.path_params["did"], call.path_params["cid"]))
    if blob is None:
        return html_response(404, "<p>No such blob.</p>")
    return bytes_response(blob.data, blob.mime)
