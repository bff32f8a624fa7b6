"""The bundled emulator of X API v2 and the Instagram API with Instagram Login.

``Emulator`` is the whole fake behind one ``handle(httpx.Request) -> httpx.Response``;
``EmulatorServer`` serves it on loopback; ``run_emulator`` backs ``crosswatch emulator``.
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
from crosswatch.emulator.clock import ManualClock
from crosswatch.emulator.core import Emulator
from crosswatch.emulator.faults import ConnectionDropped, Fault, ResponseTimedOut
from crosswatch.emulator.server import EmulatorServer, run_emulator
from crosswatch.emulator.settings import EmulatorSettings, RateLimit
from crosswatch.emulator.x_oauth import generate_pkce_pair

__all__ = [
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
