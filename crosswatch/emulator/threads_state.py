"""What the emulated Threads holds: ONE field on ``EmulatorState`` (``state.threads``).

Its behaviour is set on ``ThreadsSettings`` (``state.threads.settings``), which tests change in place:
container processing time, the publishing quota, token lifetimes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

DAY = 86400.0
DEFAULT_THREADS_CLIENT_ID = "880000000000001"
DEFAULT_THREADS_CLIENT_SECRET = "emulator-threads-secret"
DEFAULT_THREADS_USER_ID = "25000000000000001"
DEFAULT_THREADS_USERNAME = "crosswatch.demo"
THREADS_DAEMON_SCOPES = ("threads_basic", "threads_content_publish")

ThreadsContainerStatus = Literal["IN_PROGRESS", "FINISHED", "ERROR", "EXPIRED", "PUBLISHED"]


@dataclass
class ThreadsSettings:
    # Meta: text up to 500 characters, emoji counted as their UTF-8 bytes; alt text up to 1,000.
    text_max: int = 500
    alt_text_max: int = 1000
    image_max_bytes: int = 8 * 1024 * 1024
    max_aspect: float = 10.0  # Media Specifications: aspect ratio limit 10:1
    # 0: FINISHED at the first check, so a daemon against `crosswatch emulator` does not sit out Meta's
    # advised 30 s per photo; tests set more to see IN_PROGRESS.
    processing_seconds: float = 0.0
    container_expiry: float = DAY  # "not published within 24 hours and has expired"
    publish_quota: int = 250  # API-published posts per 24-hour moving period
    publish_window: float = DAY
    code_lifetime: float = 3600.0
    short_token_lifetime: float = 3600.0
    long_token_lifetime: float = 5183944.0
    refresh_min_age: float = DAY
    consent: bool = True


@dataclass
class ThreadsApp:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()


@dataclass
class ThreadsUser:
    user_id: str
    username: str
    name: str


@dataclass
class ThreadsToken:
    token: str
    user_id: str
    client_id: str
    kind: Literal["short", "long"]
    scopes: tuple[str, ...]
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class ThreadsCode:
    code: str
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    issued_at: float
    used: bool = False


@dataclass
class ThreadsContainer:
    id: str
    user_id: str
    image_url: str
    text: str
    alt_text: str | None
    image: bytes
    created_at: float
    ready_at: float
    forced: ThreadsContainerStatus | None = None  # a fault: ERROR or EXPIRED once processing ends
    error_message: str | None = None
    media_id: str | None = None
    is_carousel_item: bool = False
    children: tuple[str, ...] = ()  # a CAROUSEL container: its items' container ids, in order
    reply_to: str | None = None


@dataclass
class ThreadsPost:
    id: str
    user_id: str
    text: str
    alt_text: str | None
    image: bytes
    timestamp: float
    shortcode: str
    container_id: str
    # A carousel's items: (image, alt text) each, in order; a reply's parent post.
    carousel: tuple[tuple[bytes, str | None], ...] = ()
    reply_to: str | None = None


@dataclass
class ThreadsState:
    settings: ThreadsSettings = field(default_factory=ThreadsSettings)
    apps: dict[str, ThreadsApp] = field(default_factory=dict)
    users: dict[str, ThreadsUser] = field(default_factory=dict)
    tokens: dict[str, ThreadsToken] = field(default_factory=dict)
    codes: dict[str, ThreadsCode] = field(default_factory=dict)
    containers: dict[str, ThreadsContainer] = field(default_factory=dict)
    posts: list[ThreadsPost] = field(default_factory=list)
    signed_in_user: str | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self, base: int) -> str:
        return str(base + next(self._ids))

    def post_by_id(self, media_id: str) -> ThreadsPost | None:
        return next((p for p in self.posts if p.id == media_id), None)

    def container_status(self, container: ThreadsContainer, now: float) -> ThreadsContainerStatus:
        if container.media_id is not None:
            return "PUBLISHED"
        if now < container.ready_at:
            return "IN_PROGRESS"
        if container.forced is not None:
            return container.forced
        if now >= container.created_at + self.settings.container_expiry:
            return "EXPIRED"
        return "FINISHED"


def seed_defaults(threads: ThreadsState) -> None:
    threads.apps[DEFAULT_THREADS_CLIENT_ID] = ThreadsApp(DEFAULT_THREADS_CLIENT_ID, DEFAULT_THREADS_CLIENT_SECRET)
    threads.users[DEFAULT_THREADS_USER_ID] = ThreadsUser(DEFAULT_THREADS_USER_ID, DEFAULT_THREADS_USERNAME,
                                                         "Crosswatch Demo")
