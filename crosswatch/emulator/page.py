"""The human view: both timelines as HTML cards (image with its alt text, caption, time, link)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from importlib import resources
from string import Template

from crosswatch.emulator.mastodon_state import MastodonStatus
from crosswatch.emulator.state import EmulatorState, IGMedia, XPost
from crosswatch.emulator.threads_state import ThreadsPost


def _template() -> Template:
    text = resources.files("crosswatch.emulator").joinpath("static/page.html").read_text(encoding="utf-8")
    return Template(text)


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _images(items: list[tuple[str, str | None]]) -> str:
    """Each image (its address, its alt text) as an <img>, with its alt text shown under it."""
    parts = []
    for src, alt_text in items:
        parts.append(f'<img src="{src}" alt="{html.escape(alt_text or "", quote=True)}" loading="lazy">')
        if alt_text:
            parts.append(f'<div class="alt">ALT: {html.escape(alt_text)}</div>')
    return "".join(parts)


def x_card(state: EmulatorState, post: XPost) -> str:
    user = state.x_users.get(post.user_id)
    handle = user.username if user else post.user_id
    permalink = f"/_emulator/x/{html.escape(handle)}/status/{post.id}"
    images = _images([(f"/_emulator/media/x/{m.id}", m.alt_text) for i in post.media_ids
                      if (m := state.x_media.get(i)) is not None])
    return (
        f'<article id="x-{post.id}">'
        f'<div class="meta"><span>@{html.escape(handle)}</span>'
        f'<a href="{permalink}">{_when(post.created_at)}</a></div>'
        f'<p class="text">{html.escape(post.text)}</p>{images}</article>'
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


def mastodon_card(state: EmulatorState, status: MastodonStatus) -> str:
    masto = state.mastodon
    account = masto.accounts.get(status.account_id)
    handle = account.username if account else status.account_id
    images = _images([(f"/mastodon/system/media/{m.id}", m.description) for i in status.media_ids
                      if (m := masto.media.get(i)) is not None])
    return (
        f'<article id="mastodon-{status.id}">'
        f'<div class="meta"><span>@{html.escape(handle)} · {html.escape(status.visibility)}</span>'
        f'<a href="/mastodon/@{html.escape(handle)}/{status.id}">{_when(status.created_at)}</a></div>'
        f'<p class="text">{html.escape(status.text)}</p>{images}</article>'
    )


def threads_card(state: EmulatorState, post: ThreadsPost) -> str:
    user = state.threads.users.get(post.user_id)
    handle = user.username if user else post.user_id
    images = _images([(f"/threads/_media/{post.id}.jpg", post.alt_text)])
    return (
        f'<article id="threads-{post.id}">'
        f'<div class="meta"><span>@{html.escape(handle)} · Threads</span>'
        f'<a href="/threads/@{html.escape(handle)}/post/{post.shortcode}">{_when(post.timestamp)}</a></div>'
        f'<p class="text">{html.escape(post.text)}</p>{images}</article>'
    )


def _section(title: str, cards: list[str]) -> str:
    body = "".join(cards) if cards else '<p class="empty">Nothing posted yet.</p>'
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def timelines_page(state: EmulatorState) -> str:
    x_cards = [x_card(state, post) for post in sorted(state.x_posts, key=lambda p: int(p.id), reverse=True)]
    ig_cards = [ig_card(state, media) for media in reversed(state.ig_media)]
    masto_cards = [mastodon_card(state, status) for status in reversed(state.mastodon.statuses)]
    from crosswatch.emulator.bluesky_view import cards as bluesky_cards  # it imports this module

    bsky_cards = bluesky_cards(state.bluesky)
    threads_cards = [threads_card(state, post) for post in reversed(state.threads.posts)]
    sections = (_section(f"X ({len(x_cards)})", x_cards) + _section(f"Instagram ({len(ig_cards)})", ig_cards)
                + _section(f"Mastodon ({len(masto_cards)})", masto_cards)
                + _section(f"Bluesky ({len(bsky_cards)})", bsky_cards)
                + _section(f"Threads ({len(threads_cards)})", threads_cards))
    return _template().substitute(
        title="crosswatch emulator",
        subtitle=("What the fake X, Instagram, Mastodon, Bluesky and Threads accounts show. "
                  "State as JSON: /_emulator/state"),
        sections=sections,
    )


def single_page(title: str, card: str) -> str:
    return _template().substitute(
        title=html.escape(title),
        subtitle='<a href="/_emulator/">all posts</a>',
        sections=_section(title, [card]),
    )
