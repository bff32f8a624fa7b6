"""Routes: a method, a path pattern, an endpoint name (what faults and rate limits key on), a handler."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx

from crosswatch.emulator.state import EmulatorState

Platform = Literal["x", "instagram", "mastodon", "bluesky", "threads", "admin"]

# Instagram Graph paths may carry a version segment (/v21.0/me); X paths never do.
_GRAPH_VERSION = r"(?:/v[0-9]+(?:\.[0-9]+)?)?"


@dataclass
class Call:
    """One request on its way through a handler."""

    request: httpx.Request
    state: EmulatorState
    endpoint: str
    path_params: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """scheme://host[:port] of this request, so links the emulator hands out point back at it."""
        url = self.request.url
        port = f":{url.port}" if url.port is not None else ""
        return f"{url.scheme}://{url.host}{port}"


Handler = Callable[[Call], httpx.Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    endpoint: str
    handler: Handler
    platform: Platform


def route(
    method: str,
    template: str,
    endpoint: str,
    handler: Handler,
    platform: Platform,
    *,
    versioned: bool | None = None,
) -> Route:
    """Compile ``/2/users/{id}/tweets``-style templates; ``{id}`` matches one path segment.

    Instagram node ids are numeric (or ``me``), which keeps ``/{id}`` from swallowing other paths.
    """

    def segment(match: re.Match[str]) -> str:
        name = match.group(1)
        if platform == "instagram" and name in ("id", "ig_user_id"):
            return f"(?P<{name}>[0-9]+|me)"
        return f"(?P<{name}>[^/]+)"

    body = re.sub(r"\{([a-z_]+)\}", segment, template.rstrip("/") or "/")
    if versioned is None:
        versioned = platform == "instagram"
    prefix = _GRAPH_VERSION if versioned else ""
    trailing = "/?" if body != "/" else ""
    return Route(method, re.compile(f"^{prefix}{body}{trailing}$"), endpoint, handler, platform)
