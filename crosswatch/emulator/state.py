"""Everything the emulator remembers: apps, accounts, grants, tokens, media, posts, and the request log.

Plain dataclasses behind one re-entrant lock. Handlers run under the lock (see ``core``), so the data
here never needs finer locking; the only code that releases it mid-request is the Instagram image
fetch, which must not hold the lock while it waits on the network (it may even fetch from this very
emulator).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from crosswatch.emulator.bluesky_state import BlueskyState
from crosswatch.emulator.clock import Clock
from crosswatch.emulator.engagement import EngagementModel
from crosswatch.emulator.faults import FaultBook
from crosswatch.emulator.mastodon_state import MastodonState
from crosswatch.emulator.ratelimit import RateLimiter
from crosswatch.emulator.settings import EmulatorSettings
from crosswatch.emulator.threads_state import ThreadsState

# (url, origin of the current request, byte limit) -> the body, cut after limit + 1 bytes, or None when
# the URL cannot be fetched (connection error, non-200 status).
ImageFetch = Callable[[str, str, int], bytes | None]

ContainerStatus = Literal["IN_PROGRESS", "FINISHED", "ERROR", "EXPIRED", "PUBLISHED"]


# --- X --------------------------------------------------------------------------------------------


@dataclass
class XClient:
    client_id: str
    client_secret: str | None = None  # None: a public (PKCE-only) client
    redirect_uris: tuple[str, ...] = ()  # empty: any redirect URI is accepted


@dataclass
class XUser:
    id: str
    username: str
    name: str
    created_at: float


@dataclass
class XAuthCode:
    code: str
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str
    code_challenge_method: str
    issued_at: float
    used: bool = False


@dataclass
class XGrant:
    """One user's consent to one client: the family that rotated tokens belong to."""

    id: int
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass
class XAccessToken:
    token: str
    grant_id: int
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class XRefreshToken:
    token: str
    grant_id: int
    issued_at: float
    rotated_at: float | None = None  # set once it has been exchanged; it is single-use
    revoked: bool = False


@dataclass
class XMedia:
    id: str
    media_key: str
    user_id: str
    data: bytes
    mime: str
    width: int
    height: int
    category: str
    uploaded_at: float
    expires_at: float
    alt_text: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class XPost:
    id: str
    user_id: str
    client_id: str
    text: str
    media_ids: tuple[str, ...]
    created_at: float
    in_reply_to: str | None = None


# --- Instagram ------------------------------------------------------------------------------------


@dataclass
class IGApp:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()


@dataclass
class IGUser:
    user_id: str  # the Instagram professional account id, used as {ig-user-id}
    app_scoped_id: str  # `id` in /me: reported to differ from user_id; both are accepted in paths
    username: str
    name: str
    account_type: str = "BUSINESS"


@dataclass
class IGAuthCode:
    code: str
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    issued_at: float
    used: bool = False


@dataclass
class IGToken:
    token: str
    user_id: str
    client_id: str
    kind: Literal["short", "long"]
    scopes: tuple[str, ...]
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class IGContainer:
    id: str
    user_id: str
    image_url: str
    caption: str
    alt_text: str | None
    image: bytes
    width: int
    height: int
    created_at: float
    ready_at: float
    forced_outcome: Literal["ERROR", "EXPIRED"] | None = None
    status_override: ContainerStatus | None = None  # set through the admin API
    media_id: str | None = None  # once published
    # A carousel's child (is_carousel_item=true), or the carousel itself (media_type CAROUSEL, its
    # children's container ids; image and size are the first child's).
    is_carousel_item: bool = False
    children: tuple[str, ...] = ()


@dataclass
class IGMedia:
    id: str
    user_id: str
    caption: str
    alt_text: str | None
    image: bytes
    width: int
    height: int
    timestamp: float
    shortcode: str
    container_id: str | None  # None for posts made "from the phone"
    source: Literal["api", "phone"] = "api"
    # A carousel (CAROUSEL_ALBUM) made from the phone: its images, each a media object of its own.
    children: list[IGMedia] = field(default_factory=list)

    @property
    def media_type(self) -> str:
        return "CAROUSEL_ALBUM" if self.children else "IMAGE"


@dataclass
class RequestRecord:
    seq: int
    time: float
    method: str
    path: str  # query values of secrets are redacted
    endpoint: str
    status: int | None  # None when the connection was dropped or stalled
    outcome: str  # "ok" or the fault that fired


# --- the store ------------------------------------------------------------------------------------


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


@dataclass
class EmulatorState:
    settings: EmulatorSettings
    clock: Clock
    faults: FaultBook = field(default_factory=FaultBook)
    lock: threading.RLock = field(default_factory=threading.RLock)
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    fetch_image: ImageFetch | None = None
    hosted_dir: Path | None = None  # served read-only under /_emulator/hosted/ (a media host for demos)

    x_clients: dict[str, XClient] = field(default_factory=dict)
    x_users: dict[str, XUser] = field(default_factory=dict)
    x_codes: dict[str, XAuthCode] = field(default_factory=dict)
    x_grants: dict[int, XGrant] = field(default_factory=dict)
    x_access_tokens: dict[str, XAccessToken] = field(default_factory=dict)
    x_refresh_tokens: dict[str, XRefreshToken] = field(default_factory=dict)
    x_media: dict[str, XMedia] = field(default_factory=dict)
    x_posts: list[XPost] = field(default_factory=list)
    # which X user the authorize page "signs in" as, and whether consent is given
    x_signed_in_user: str | None = None
    x_consent: bool = True

    ig_apps: dict[str, IGApp] = field(default_factory=dict)
    ig_users: dict[str, IGUser] = field(default_factory=dict)
    ig_codes: dict[str, IGAuthCode] = field(default_factory=dict)
    ig_tokens: dict[str, IGToken] = field(default_factory=dict)
    ig_containers: dict[str, IGContainer] = field(default_factory=dict)
    ig_media: list[IGMedia] = field(default_factory=list)
    ig_signed_in_user: str | None = None
    ig_consent: bool = True

    mastodon: MastodonState = field(default_factory=MastodonState)
    bluesky: BlueskyState = field(default_factory=BlueskyState)
    threads: ThreadsState = field(default_factory=ThreadsState)
    # How much engagement posts get (metrics and insights endpoints); engagement.py.
    engagement: EngagementModel = field(default_factory=EngagementModel)

    requests: list[RequestRecord] = field(default_factory=list)

    _x_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1_860_000_000_000_000_001))
    _x_media_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1_870_000_000_000_000_001))
    _grant_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _ig_container_ids: Iterator[int] = field(default_factory=lambda: itertools.count(17_900_000_000_000_001))
    _ig_media_ids: Iterator[int] = field(default_factory=lambda: itertools.count(18_000_000_000_000_001))
    _request_seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def now(self) -> float:
        return self.clock()

    def next_x_post_id(self) -> str:
        return str(next(self._x_ids))

    def next_x_media_id(self) -> str:
        return str(next(self._x_media_ids))

    def next_grant_id(self) -> int:
        return next(self._grant_ids)

    def next_ig_container_id(self) -> str:
        return str(next(self._ig_container_ids))

    def next_ig_media_id(self) -> str:
        return str(next(self._ig_media_ids))

    def next_request_seq(self) -> int:
        return next(self._request_seq)

    @contextlib.contextmanager
    def unlocked(self) -> Iterator[None]:
        """Release the lock around slow I/O done by a handler that holds it once."""
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()

    # --- lookups shared by several modules --------------------------------------------------------

    def ig_user_by_any_id(self, some_id: str) -> IGUser | None:
        user = self.ig_users.get(some_id)
        if user is not None:
            return user
        return next((u for u in self.ig_users.values() if u.app_scoped_id == some_id), None)

    def ig_media_by_id(self, media_id: str) -> IGMedia | None:
        """A post, or one image of a carousel."""
        return next((m for top in self.ig_media for m in (top, *top.children) if m.id == media_id), None)

    def ig_media_by_shortcode(self, shortcode: str) -> IGMedia | None:
        return next((m for m in self.ig_media if m.shortcode == shortcode), None)

    def x_post_by_id(self, post_id: str) -> XPost | None:
        return next((p for p in self.x_posts if p.id == post_id), None)

    def container_status(self, container: IGContainer) -> ContainerStatus:
        if container.media_id is not None:
            return "PUBLISHED"
        if container.status_override is not None:
            return container.status_override
        now = self.now()
        if now < container.ready_at:
            return "IN_PROGRESS"
        if container.forced_outcome is not None:
            return container.forced_outcome
        if now >= container.created_at + self.settings.ig_container_expiry:
            return "EXPIRED"
        return "FINISHED"


def shortcode_for(media_id: str) -> str:
    """A stable, Instagram-looking shortcode (11 URL-safe characters) for a media id."""
    digest = hashlib.sha256(media_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11].replace("-", "A").replace("_", "B")
