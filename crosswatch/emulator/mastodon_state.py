"""What the emulated Mastodon server holds: ONE field on ``EmulatorState`` (``state.mastodon``).

Its limits and behaviour are set on ``MastodonSettings`` (``state.mastodon.settings``), which tests
change in place: processing time for uploads, the instance's limits, rate-limit windows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class MastodonSettings:
    # /api/v2/instance configuration (Mastodon 4.3's stock values)
    max_characters: int = 500
    characters_reserved_per_url: int = 23
    max_media_attachments: int = 4
    image_size_limit: int = 16 * 1024 * 1024
    image_matrix_limit: int = 33_177_600
    description_limit: int = 1500
    # Bodies above this are refused by the web server in front of Mastodon with a 413 (nginx's
    # client_max_body_size in Mastodon's dist/nginx.conf is 99m).
    proxy_body_limit: int = 99 * 1024 * 1024
    # Seconds an uploaded image takes to process: 0 answers 200 at once, more answers 202 and the
    # media answers 206 until then.
    processing_seconds: float = 0.0
    # PostStatusService keeps an Idempotency-Key for an hour.
    idempotency_seconds: float = 3600.0
    # Rate limits (api/rate-limits.md): per account, all of /api/*; uploads separately.
    api_limit: int = 300
    api_window: float = 300.0
    media_limit: int = 30
    media_window: float = 1800.0


@dataclass
class MastodonApp:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    website: str | None = None


@dataclass
class MastodonAccount:
    id: str
    username: str
    display_name: str
    created_at: float


@dataclass
class MastodonCode:
    code: str
    client_id: str
    account_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str
    code_challenge_method: str
    issued_at: float
    used: bool = False


@dataclass
class MastodonToken:
    token: str
    client_id: str
    account_id: str
    scopes: tuple[str, ...]
    created_at: float
    revoked: bool = False


@dataclass
class MastodonMedia:
    id: str
    account_id: str
    data: bytes
    mime: str
    width: int
    height: int
    description: str | None
    uploaded_at: float
    ready_at: float
    status_id: str | None = None


@dataclass
class MastodonStatus:
    id: str
    account_id: str
    text: str
    visibility: str
    language: str | None
    media_ids: tuple[str, ...]
    created_at: float
    application: str | None
    idempotency_key: str | None = None
    in_reply_to_id: str | None = None


@dataclass
class MastodonWindow:
    started: float
    used: int = 0


@dataclass
class MastodonState:
    settings: MastodonSettings = field(default_factory=MastodonSettings)
    apps: dict[str, MastodonApp] = field(default_factory=dict)
    accounts: dict[str, MastodonAccount] = field(default_factory=dict)
    codes: dict[str, MastodonCode] = field(default_factory=dict)
    tokens: dict[str, MastodonToken] = field(default_factory=dict)
    media: dict[str, MastodonMedia] = field(default_factory=dict)
    statuses: list[MastodonStatus] = field(default_factory=list)
    # (account id, Idempotency-Key) -> (status id, when it was stored)
    idempotency: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    windows: dict[tuple[str, str], MastodonWindow] = field(default_factory=dict)
    # Who the authorize page signs in as, and whether they approve.
    signed_in_account: str | None = None
    consent: bool = True
    # Snowflake-like ids, increasing with time as Mastodon's are.
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(113_000_000_000_000_001))

    def next_id(self) -> str:
        return str(next(self._ids))
