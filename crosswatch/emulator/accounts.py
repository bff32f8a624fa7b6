"""Seeding apps and accounts, minting tokens without a browser, and posting "from the phone".

Shared by the Python API (``Emulator``) and the admin HTTP API; callers hold the state lock.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw

from crosswatch.emulator import ig_oauth, x_oauth
from crosswatch.emulator.instagram_api import publish_media
from crosswatch.emulator.state import EmulatorState, IGApp, IGMedia, IGUser, XClient, XGrant, XUser

DEFAULT_X_CLIENT_ID = "crosswatch-emulator-x"
DEFAULT_X_USER_ID = "1490000000000000001"
DEFAULT_X_USERNAME = "crosswatch_demo"
DEFAULT_IG_CLIENT_ID = "990000000000001"
DEFAULT_IG_CLIENT_SECRET = "emulator-instagram-secret"
DEFAULT_IG_USER_ID = "17841400000000001"
DEFAULT_IG_APP_SCOPED_ID = "26000000000000001"
DEFAULT_IG_USERNAME = "crosswatch.demo"

X_DAEMON_SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
IG_DAEMON_SCOPES = ("instagram_business_basic", "instagram_business_content_publish")


def add_x_client(
    state: EmulatorState,
    client_id: str,
    client_secret: str | None = None,
    redirect_uris: tuple[str, ...] = (),
) -> XClient:
    client = XClient(client_id, client_secret, tuple(redirect_uris))
    state.x_clients[client_id] = client
    return client


def add_x_user(state: EmulatorState, user_id: str, username: str, name: str | None = None) -> XUser:
    if not user_id.isdigit() or len(user_id) > 19:
        raise ValueError("X user ids are 1 to 19 digits")
    user = XUser(user_id, username, name or username, state.now())
    state.x_users[user_id] = user
    return user


def add_ig_app(
    state: EmulatorState, client_id: str, client_secret: str, redirect_uris: tuple[str, ...] = ()
) -> IGApp:
    app = IGApp(client_id, client_secret, tuple(redirect_uris))
    state.ig_apps[client_id] = app
    return app


def add_ig_user(
    state: EmulatorState,
    user_id: str,
    username: str,
    app_scoped_id: str | None = None,
    name: str | None = None,
) -> IGUser:
    if not user_id.isdigit():
        raise ValueError("Instagram user ids are digits")
    scoped = app_scoped_id or str(int(user_id) + 8_000_000_000_000_000)
    user = IGUser(user_id, scoped, username, name or username)
    state.ig_users[user_id] = user
    return user


def seed_defaults(state: EmulatorState) -> None:
    add_x_client(state, DEFAULT_X_CLIENT_ID)
    add_x_user(state, DEFAULT_X_USER_ID, DEFAULT_X_USERNAME, "Crosswatch Demo")
    add_ig_app(state, DEFAULT_IG_CLIENT_ID, DEFAULT_IG_CLIENT_SECRET)
    add_ig_user(state, DEFAULT_IG_USER_ID, DEFAULT_IG_USERNAME, DEFAULT_IG_APP_SCOPED_ID, "Crosswatch Demo")
    from crosswatch.emulator.bluesky_api import add_account
    from crosswatch.emulator.bluesky_state import DEFAULT_BSKY_APP_PASSWORD, DEFAULT_BSKY_DID, DEFAULT_BSKY_HANDLE

    add_account(state.bluesky, DEFAULT_BSKY_DID, DEFAULT_BSKY_HANDLE, DEFAULT_BSKY_APP_PASSWORD, state.now())


def mint_x_token(
    state: EmulatorState,
    user_id: str | None = None,
    client_id: str | None = None,
    scopes: tuple[str, ...] = X_DAEMON_SCOPES,
) -> dict[str, Any]:
    """A token response as /2/oauth2/token gives it, without the browser round trip."""
    user_id = user_id or next(iter(state.x_users))
    client_id = client_id or next(iter(state.x_clients))
    if user_id not in state.x_users or client_id not in state.x_clients:
        raise KeyError("unknown X user or client")
    grant = XGrant(state.next_grant_id(), client_id, user_id, tuple(scopes))
    state.x_grants[grant.id] = grant
    return x_oauth.issue_tokens(state, grant)


def mint_ig_token(
    state: EmulatorState,
    user_id: str | None = None,
    client_id: str | None = None,
    scopes: tuple[str, ...] = IG_DAEMON_SCOPES,
    *,
    long_lived: bool = True,
) -> dict[str, Any]:
    """``{"access_token", "user_id", "expires_in", "token_type", "permissions"}`` for an account."""
    user_id = user_id or next(iter(state.ig_users))
    client_id = client_id or next(iter(state.ig_apps))
    if user_id not in state.ig_users or client_id not in state.ig_apps:
        raise KeyError("unknown Instagram user or app")
    token = ig_oauth.issue_token(state, user_id, client_id, tuple(scopes), "long" if long_lived else "short")
    payload = ig_oauth.long_lived_payload(state, token)
    payload["user_id"] = token.user_id
    payload["permissions"] = list(token.scopes)
    return payload


def post_from_phone(
    state: EmulatorState,
    user_id: str | None = None,
    *,
    caption: str = "",
    image: bytes | None = None,
    alt_text: str | None = None,
    timestamp: float | None = None,
    images: tuple[bytes, ...] = (),
    alt_texts: tuple[str | None, ...] = (),
) -> IGMedia:
    """A post made in the Instagram app: no container, does not count against the API quota.

    Two or more ``images`` make a carousel (CAROUSEL_ALBUM), ``alt_texts`` theirs in order."""
    user = state.ig_users[user_id or next(iter(state.ig_users))]
    if len(images) >= 2:
        if not 2 <= len(images) <= 10:
            raise ValueError("a carousel has 2 to 10 images")
        alts = (*alt_texts, *([None] * len(images)))[: len(images)]
        return publish_media(state, user, caption, alt_text, images[0], None, timestamp=timestamp,
                             carousel=tuple(zip(images, alts, strict=True)))
    return publish_media(state, user, caption, alt_text, (images[0] if images else image) or sample_jpeg(), None,
                         timestamp=timestamp)


def delete_x_post(state: EmulatorState, post_id: str) -> bool:
    """The post is deleted (as by the author): its permalink and GET /2/tweets/{id} no longer find it."""
    before = len(state.x_posts)
    state.x_posts[:] = [p for p in state.x_posts if p.id != post_id]
    return len(state.x_posts) < before


def delete_ig_media(state: EmulatorState, media_id: str) -> bool:
    """The post is deleted in the app: its node, permalink and place in /me/media are gone."""
    before = len(state.ig_media)
    state.ig_media[:] = [m for m in state.ig_media if m.id != media_id]
    return len(state.ig_media) < before


def sample_jpeg(width: int = 1080, height: int = 1080, seed: int = 0) -> bytes:
    """A small real JPEG (a colour gradient) for posts that do not bring their own image."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for row in range(0, height, 8):
        shade = (seed * 37 + row * 255 // max(1, height)) % 256
        draw.rectangle([0, row, width, row + 8], fill=(shade, 120, 255 - shade))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def delete_mastodon_status(state: EmulatorState, status_id: str) -> bool:
    """The status is deleted by its author: GET /api/v1/statuses/{id} answers 404."""
    statuses = state.mastodon.statuses
    before = len(statuses)
    statuses[:] = [s for s in statuses if s.id != status_id]
    return len(statuses) < before


def delete_bsky_post(state: EmulatorState, uri: str) -> bool:
    """The post record is deleted (as deleteRecord would): getRecord answers RecordNotFound."""
    found = [key for key, record in state.bluesky.records.items() if record.uri == uri]
    for key in found:
        del state.bluesky.records[key]
    return bool(found)


def delete_threads_post(state: EmulatorState, media_id: str) -> bool:
    """The thread is deleted in the app: its node no longer exists (code 100, subcode 33)."""
    posts = state.threads.posts
    before = len(posts)
    posts[:] = [p for p in posts if p.id != media_id]
    return len(posts) < before
