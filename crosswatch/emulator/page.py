"""The human view: both timelines as HTML cards (image with its alt text, caption, time, link)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from importlib import resources
from string import Template

from crosswatch.emulator.state import EmulatorState, IGMedia, XPost


def _template() -> Template:
    text = resources.files("crosswatch.emulator").joinpath("static/page.html").read_text(encoding="utf-8")
    return Template(text)


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def x_card(state: EmulatorState, post: XPost) -> str:
    user = state.x_users.get(post.user_id)
    handle = user.username if user else post.user_id
    permalink = f"/_emulator/x/{html.escape(handle)}/status/{post.id}"
    images = []
    for media_id in post.media_ids:
        media = state.x_media.get(media_id)
        if media is None:
            continue
        alt = html.escape(media.alt_text or "", quote=True)
        images.append(f'<img src="/_emulator/media/x/{media.id}" alt="{alt}" loading="lazy">')
        if media.alt_text:
            images.append(f'<div class="alt">ALT: {html.escape(media.alt_text)}</div>')
    return (
        f'<article id="x-{post.id}">'
        f'<div class="meta"><span>@{html.escape(handle)}</span>'
        f'<a href="{permalink}">{_when(post.created_at)}</a></div>'
        f'<p class="text">{html.escape(post.text)}</p>{"".join(images)}</article>'
    )


def ig_card(state: EmulatorState, media: IGMedia) -> str:
    user = state.ig_users.get(media.user_id)
    handle = user.username if user else media.user_id
    alt = html.escape(media.alt_text or "", quote=True)
    alt_note = f'<div class="alt">ALT: {html.escape(media.alt_text)}</div>' if media.alt_text else ""
    origin = "" if media.source == "api" else " · from the phone"
    return (
        f'<article id="ig-{media.id}">'
        f'<img src="/_emulator/media/ig/{media.id}.jpg" alt="{alt}" loading="lazy">'
        f'<div class="meta"><span>{html.escape(handle)}{origin}</span>'
        f'<a href="/_emulator/p/{media.shortcode}/">{_when(media.timestamp)}</a></div>'
        f'<p class="text">{html.escape(media.caption)}</p>{alt_note}</article>'
    )


def _section(title: str, cards: list[str]) -> str:
    body = "".join(cards) if cards else '<p class="empty">Nothing posted yet.</p>'
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def timelines_page(state: EmulatorState) -> str:
    x_cards = [x_card(state, post) for post in sorted(state.x_posts, key=lambda p: int(p.id), reverse=True)]
    ig_cards = [ig_card(state, media) for media in reversed(state.ig_media)]
    from crosswatch.emulator.bluesky_view import cards as bluesky_cards  # it imports this module

    bsky_cards = bluesky_cards(state.bluesky)
    sections = (_section(f"X ({len(x_cards)})", x_cards) + _section(f"Instagram ({len(ig_cards)})", ig_cards)
                + _section(f"Bluesky ({len(bsky_cards)})", bsky_cards))
    return _template().substitute(
        title="crosswatch emulator",
        subtitle="What the fake X, Instagram and Bluesky accounts show. State as JSON: /_emulator/state",
        sections=sections,
    )


def single_page(title: str, card: str) -> str:
    return _template().substitute(
        title=html.escape(title),
        subtitle='<a href="/_emulator/">all posts</a>',
        sections=_section(title, [card]),
    )
