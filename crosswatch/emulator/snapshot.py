"""The inspection view: everything the emulator holds, as JSON-ready data."""

from __future__ import annotations

import base64
from typing import Any

from crosswatch.emulator import bluesky_view
from crosswatch.emulator.mastodon_state import MastodonMedia
from crosswatch.emulator.state import EmulatorState, IGContainer, IGMedia, XMedia, XPost


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def x_media_json(media: XMedia, include_bytes: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": media.id,
        "media_key": media.media_key,
        "user_id": media.user_id,
        "mime": media.mime,
        "width": media.width,
        "height": media.height,
        "size": len(media.data),
        "sha256": media.sha256,
        "category": media.category,
        "alt_text": media.alt_text,
        "uploaded_at": media.uploaded_at,
        "url": f"/_emulator/media/x/{media.id}",
    }
    if include_bytes:
        data["bytes_base64"] = _b64(media.data)
    return data


def x_post_json(state: EmulatorState, post: XPost, include_bytes: bool) -> dict[str, Any]:
    user = state.x_users.get(post.user_id)
    return {
        "id": post.id,
        "user_id": post.user_id,
        "username": user.username if user else None,
        "client_id": post.client_id,
        "text": post.text,
        "created_at": post.created_at,
        "media": [
            x_media_json(state.x_media[m], include_bytes) for m in post.media_ids if m in state.x_media
        ],
        "url": f"/_emulator/x/{user.username if user else post.user_id}/status/{post.id}",
    }


def ig_media_json(state: EmulatorState, media: IGMedia, include_bytes: bool) -> dict[str, Any]:
    user = state.ig_users.get(media.user_id)
    data: dict[str, Any] = {
        "id": media.id,
        "user_id": media.user_id,
        "username": user.username if user else None,
        "caption": media.caption,
        "alt_text": media.alt_text,
        "timestamp": media.timestamp,
        "shortcode": media.shortcode,
        "permalink": f"/_emulator/p/{media.shortcode}/",
        "image_url": f"/_emulator/media/ig/{media.id}.jpg",
        "width": media.width,
        "height": media.height,
        "size": len(media.image),
        "container_id": media.container_id,
        "source": media.source,
        "media_type": media.media_type,
    }
    if media.children:
        data["children"] = [{"id": c.id, "alt_text": c.alt_text, "image_url": f"/_emulator/media/ig/{c.id}.jpg"}
                            for c in media.children]
    if include_bytes:
        data["bytes_base64"] = _b64(media.image)
    return data


def ig_container_json(state: EmulatorState, container: IGContainer) -> dict[str, Any]:
    return {
        "id": container.id,
        "user_id": container.user_id,
        "image_url": container.image_url,
        "caption": container.caption,
        "alt_text": container.alt_text,
        "status_code": state.container_status(container),
        "created_at": container.created_at,
        "ready_at": container.ready_at,
        "media_id": container.media_id,
        "size": len(container.image),
    }


def mastodon_media_json(media: MastodonMedia, include_bytes: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": media.id, "account_id": media.account_id, "mime": media.mime, "width": media.width,
        "height": media.height, "size": len(media.data), "description": media.description,
        "uploaded_at": media.uploaded_at, "ready_at": media.ready_at, "status_id": media.status_id,
        "url": f"/mastodon/system/media/{media.id}",
    }
    if include_bytes:
        data["bytes_base64"] = _b64(media.data)
    return data


def threads_json(state: EmulatorState, include_bytes: bool) -> dict[str, Any]:
    threads = state.threads
    now = state.now()
    users = threads.users
    return {
        "users": [{"id": u.user_id, "username": u.username, "name": u.name} for u in users.values()],
        "tokens": [{"token": t.token, "user_id": t.user_id, "kind": t.kind, "scopes": list(t.scopes),
                    "issued_at": t.issued_at, "expires_at": t.expires_at, "expired": now >= t.expires_at}
                   for t in threads.tokens.values()],
        "containers": [{"id": c.id, "status": threads.container_status(c, now), "error_message": c.error_message,
                        "text": c.text, "alt_text": c.alt_text, "media_id": c.media_id, "created_at": c.created_at}
                       for c in threads.containers.values()],
        "posts": [{"id": p.id, "user_id": p.user_id, "text": p.text, "alt_text": p.alt_text,
                   "timestamp": p.timestamp, "container_id": p.container_id, "bytes": len(p.image),
                   "carousel": [{"alt_text": alt, "bytes": len(image)} for image, alt in p.carousel],
                   "reply_to": p.reply_to,
                   "url": f"/threads/@{users[p.user_id].username if p.user_id in users else p.user_id}"
                          f"/post/{p.shortcode}",
                   **({"image_b64": base64.b64encode(p.image).decode()} if include_bytes else {})}
                  for p in threads.posts],
    }


def mastodon_json(state: EmulatorState, include_bytes: bool) -> dict[str, Any]:
    masto = state.mastodon
    statuses = []
    for status in masto.statuses:
        account = masto.accounts.get(status.account_id)
        username = account.username if account else status.account_id
        statuses.append({
            "id": status.id, "account_id": status.account_id, "username": username, "text": status.text,
            "visibility": status.visibility, "language": status.language, "created_at": status.created_at,
            "application": status.application, "idempotency_key": status.idempotency_key,
            "in_reply_to_id": status.in_reply_to_id,
            "media": [mastodon_media_json(masto.media[m], include_bytes) for m in status.media_ids
                      if m in masto.media],
            "url": f"/mastodon/@{username}/{status.id}",
        })
    return {
        "apps": [{"client_id": a.client_id, "name": a.name, "redirect_uris": list(a.redirect_uris),
                  "scopes": list(a.scopes)} for a in masto.apps.values()],
        "accounts": [{"id": a.id, "username": a.username} for a in masto.accounts.values()],
        "tokens": [{"client_id": t.client_id, "account_id": t.account_id, "scopes": list(t.scopes),
                    "revoked": t.revoked} for t in masto.tokens.values()],
        "media": [mastodon_media_json(m, include_bytes) for m in masto.media.values()],
        "statuses": statuses,
    }


def snapshot(state: EmulatorState, *, include_bytes: bool = False) -> dict[str, Any]:
    now = state.now()
    return {
        "now": now,
        "x": {
            "clients": [
                {"client_id": c.client_id, "confidential": c.client_secret is not None,
                 "redirect_uris": list(c.redirect_uris)}
                for c in state.x_clients.values()
            ],
            "users": [{"id": u.id, "username": u.username, "name": u.name} for u in state.x_users.values()],
            "grants": [
                {"id": g.id, "client_id": g.client_id, "user_id": g.user_id, "scopes": list(g.scopes),
                 "revoked": g.revoked}
                for g in state.x_grants.values()
            ],
            "access_tokens": [
                {"token": t.token, "grant_id": t.grant_id, "issued_at": t.issued_at,
                 "expires_at": t.expires_at, "revoked": t.revoked, "expired": now >= t.expires_at}
                for t in state.x_access_tokens.values()
            ],
            "refresh_tokens": [
                {"token": t.token, "grant_id": t.grant_id, "issued_at": t.issued_at,
                 "rotated_at": t.rotated_at, "revoked": t.revoked}
                for t in state.x_refresh_tokens.values()
            ],
            "media": [x_media_json(m, include_bytes) for m in state.x_media.values()],
            "posts": [x_post_json(state, p, include_bytes) for p in state.x_posts],
        },
        "bluesky": bluesky_view.snapshot_json(state.bluesky, include_bytes),
        "instagram": {
            "apps": [
                {"client_id": a.client_id, "redirect_uris": list(a.redirect_uris)}
                for a in state.ig_apps.values()
            ],
            "users": [
                {"user_id": u.user_id, "id": u.app_scoped_id, "username": u.username, "name": u.name}
                for u in state.ig_users.values()
            ],
            "tokens": [
                {"token": t.token, "user_id": t.user_id, "client_id": t.client_id, "kind": t.kind,
                 "scopes": list(t.scopes), "issued_at": t.issued_at, "expires_at": t.expires_at,
                 "revoked": t.revoked, "expired": now >= t.expires_at}
                for t in state.ig_tokens.values()
            ],
            "containers": [ig_container_json(state, c) for c in state.ig_containers.values()],
            "media": [ig_media_json(state, m, include_bytes) for m in state.ig_media],
        },
        "mastodon": mastodon_json(state, include_bytes),
        "threads": threads_json(state, include_bytes),
        "faults": [f.to_json() for f in state.faults.armed()],
        "requests": [
            {"seq": r.seq, "time": r.time, "method": r.method, "path": r.path, "endpoint": r.endpoint,
             "status": r.status, "outcome": r.outcome}
            for r in state.requests
        ],
    }  # fmt: skip
