"""How the Instagram side downloads ``image_url``, the way Meta's crawler does: a plain HTTP GET."""

from __future__ import annotations

from collections.abc import Callable

import httpx

Dispatch = Callable[[httpx.Request], httpx.Response]


class ImageFetcher:
    """Fetches image URLs with httpx; URLs on the emulator's own origin are served in-process.

    In-process serving matters under ``httpx.MockTransport``, where the emulator's origin is not a
    real socket, and it avoids a server thread waiting on itself.
    """

    def __init__(self, dispatch: Dispatch, *, timeout: float, client: httpx.Client | None = None) -> None:
        self._dispatch = dispatch
        self._timeout = timeout
        self._client = client  # owned by the caller when given

    def __call__(self, url: str, origin: str, limit: int) -> bytes | None:
        if url.startswith(origin + "/"):
            return self._fetch_own(url, limit)
        try:
            if self._client is not None:
                return self._stream(self._client, url, limit)
            with httpx.Client(timeout=self._timeout, follow_redirects=True) as client:
                return self._stream(client, url, limit)
        except (httpx.HTTPError, ValueError):
            return None

    def _fetch_own(self, url: str, limit: int) -> bytes | None:
        try:
            response = self._dispatch(httpx.Request("GET", url))
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return response.content[: limit + 1]

    @staticmethod
    def _stream(client: httpx.Client, url: str, limit: int) -> bytes | None:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                return None
            chunks: list[bytes] = []
            size = 0
            # Stop reading past the limit: an oversized image is refused, not downloaded whole.
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
            return b"".join(chunks)[: limit + 1]
