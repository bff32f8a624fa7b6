"""The bundled emulator of X API v2 and the Instagram API with Instagram Login.

``Emulator`` is the whole fake behind one ``handle(httpx.Request) -> httpx.Response``, so tests mount it
with ``httpx.MockTransport(emulator.handle)``; ``EmulatorServer`` serves it on loopback;
``run_emulator`` backs ``crosswatch emulator`` (and ``python -m crosswatch.emulator``).

One origin serves both platforms, so crosswatch's config points at it like this::

    targets.x.api_base               = <url>
    targets.x.authorize_url          = <url>/i/oauth2/authorize
    targets.instagram.graph_base     = <url>            (a version segment such as /v21.0 may follow)
    targets.instagram.api_base       = <url>
    targets.instagram.authorize_url  = <url>/oauth/authorize

Seeded by default: the public X client ``DEFAULT_X_CLIENT_ID`` and user ``DEFAULT_X_USER_ID``; the
Instagram app ``DEFAULT_IG_CLIENT_ID``/``DEFAULT_IG_CLIENT_SECRET`` and account ``DEFAULT_IG_USER_ID``; the
Bluesky account ``DEFAULT_BSKY_HANDLE`` (``DEFAULT_BSKY_DID``) with app password ``DEFAULT_BSKY_APP_PASSWORD``,
its XRPC under ``/xrpc/`` (``targets.bluesky.service = <url>``; its DID document names <url> as its PDS).
Everything under ``/_emulator/`` is the admin API (state, faults, seeding, tokens, clock, HTML pages).
Metrics (X ``GET /2/tweets?ids=``, Instagram and Threads insights, Mastodon's counts, Bluesky's
``app.bsky.feed.getPosts``) follow ``engagement.py``'s model, set with ``POST /_emulator/engagement``
(``{"hour_factors": {"18": 3}}`` plants a best hour); ``POST /_emulator/age`` makes posts older.
"""

from crosswatch.emulator.accounts import (
    DEFAULT_IG_APP_SCOPED_ID,
    DEFAULT_IG_CLIENT_ID,
    DEFAULT_IG_CLIENT_SECRET,
    DEFAULT_IG_USER_ID,
    DEFAULT_IG_USERNAME,
    DEFAULT_X_CLIENT_ID,
    DEFAULT_X_USER_ID,
    DEFAULT_X_USERNAME,
    sample_jpeg,
)
from crosswatch.emulator.bluesky_state import DEFAULT_BSKY_APP_PASSWORD, DEFAULT_BSKY_DID, DEFAULT_BSKY_HANDLE
from crosswatch.emulator.clock import ManualClock
from crosswatch.emulator.core import Emulator
from crosswatch.emulator.faults import ConnectionDropped, Fault, ResponseTimedOut
from crosswatch.emulator.server import EmulatorServer, run_emulator
from crosswatch.emulator.settings import EmulatorSettings, RateLimit
from crosswatch.emulator.x_oauth import generate_pkce_pair

__all__ = [
    "DEFAULT_BSKY_APP_PASSWORD",
    "DEFAULT_BSKY_DID",
    "DEFAULT_BSKY_HANDLE",
    "DEFAULT_IG_APP_SCOPED_ID",
    "DEFAULT_IG_CLIENT_ID",
    "DEFAULT_IG_CLIENT_SECRET",
    "DEFAULT_IG_USERNAME",
    "DEFAULT_IG_USER_ID",
    "DEFAULT_X_CLIENT_ID",
    "DEFAULT_X_USERNAME",
    "DEFAULT_X_USER_ID",
    "ConnectionDropped",
    "Emulator",
    "EmulatorServer",
    "EmulatorSettings",
    "Fault",
    "ManualClock",
    "RateLimit",
    "ResponseTimedOut",
    "generate_pkce_pair",
    "run_emulator",
    "sample_jpeg",
]
