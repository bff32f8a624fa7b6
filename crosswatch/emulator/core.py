"""The emulator itself: ``Emulator.handle(request) -> response`` does everything.

Mount it in tests with ``httpx.MockTransport(emulator.handle)``, or serve it with ``EmulatorServer``.
One origin serves both platforms: X under ``/2/`` and ``/i/oauth2/authorize``; Instagram Graph
(optionally versioned, ``/v21.0/...``), the Instagram Login ``/oauth/...`` paths; admin under
``/_emulator/``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from crosswatch.emulator import (
    accounts,
    admin,
    bluesky_api,
    bluesky_view,
    ig_oauth,
    instagram_api,
    mastodon_api,
    threads_api,
    threads_oauth,
    threads_state,
    x_api,
    x_oauth,
)
from crosswatch.emulator.clock import Clock, OffsetClock
from crosswatch.emulator.faults import (
    TRANSPORT_ACTIONS,
    ConnectionDropped,
    Fault,
    FaultAction,
    FaultBook,
    ResponseTimedOut,
)
from crosswatch.emulator.fetch import ImageFetcher
from crosswatch.emulator.httputil import (
    graph_error,
    json_response,
    problem_response,
    text_response,
    x_blank_problem,
)
from crosswatch.emulator.routing import Call, Route
from crosswatch.emulator.settings import EmulatorSettings
from crosswatch.emulator.snapshot import snapshot
from crosswatch.emulator.state import (
    ContainerStatus,
    EmulatorState,
    IGApp,
    IGMedia,
    IGUser,
    RequestRecord,
    XClient,
    XPost,
    XUser,
)

# (request, response or None when the connection was dropped or stalled, endpoint name)
Observer = Callable[[httpx.Request, httpx.Response | None, str], None]

SECRET_PARAMS = ("access_token", "client_secret", "code", "refresh_token", "code_verifier", "token")


class Emulator:
    """A stateful fake of the X API v2 and the Instagram API with Instagram Login."""

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        *,
        clock: Clock | None = None,
        seed_defaults: bool = True,
        http_client: httpx.Client | None = None,
        hosted_dir: Path | None = None,
    ) -> None:
        """``clock`` defaults to wall time; ``http_client`` (owned by the caller) fetches Instagram
        ``image_url``s, a fresh client per fetch otherwise; ``hosted_dir`` is served read-only under
        ``/_emulator/hosted/`` so it can stand in for a media host."""
        self.settings = settings or EmulatorSettings()
        self._clock = OffsetClock(clock or time.time)
        self.state = EmulatorState(self.settings, self._clock)
        self.state.hosted_dir = hosted_dir
        self.state.fetch_image = ImageFetcher(
            self.handle, timeout=self.settings.ig_image_fetch_timeout, client=http_client
        )
        self._observers: list[Observer] = []
        self._wake = threading.Event()  # set to cut injected delays short when a server stops
        self._routes: list[Route] = [
            *x_oauth.routes(),
            *x_api.routes(),
            *admin.routes(self.endpoint_names, self.advance_clock),
            *ig_oauth.routes(),
            *instagram_api.routes(),
            *mastodon_api.routes(),
            *bluesky_api.routes(),
            *bluesky_view.routes(),
            *threads_oauth.routes(),
            *threads_api.routes(),
        ]
        if seed_defaults:
            with self.state.lock:
                accounts.seed_defaults(self.state)
                mastodon_api.seed_defaults(self.state)
                threads_state.seed_defaults(self.state.threads)

    # --- the request path -------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        found = self._match(request)
        if found is None:
            response = _not_found(request)
            self._finish(request, "unmatched", response, "ok")
            return response
        matched, params = found
        # Admin requests are never faulted: tests must be able to inspect and disarm at any time.
        fault = None if matched.platform == "admin" else self.faults.take(matched.endpoint, TRANSPORT_ACTIONS)
        if fault is None:
            response = self._apply(request, matched, params)
            self._finish(request, matched.endpoint, response, "ok")
            return response
        outcome = f"fault:{fault.action}"
        if fault.action == "respond":
            response = _fault_response(matched, fault)
            self._finish(request, matched.endpoint, response, outcome)
            return response
        if fault.action in ("drop_before", "timeout_before"):
            self._finish(request, matched.endpoint, None, outcome)
            raise self._connection_error(request, fault)
        if fault.action == "delay":
            self._wake.wait(fault.seconds)
        response = self._apply(request, matched, params)
        if fault.action in ("drop_after", "timeout_after"):
            self._finish(request, matched.endpoint, None, outcome)
            raise self._connection_error(request, fault)
        self._finish(request, matched.endpoint, response, outcome)
        return response

    def _apply(self, request: httpx.Request, matched: Route, params: dict[str, str]) -> httpx.Response:
        with self.state.lock:
            return matched.handler(Call(request, self.state, matched.endpoint, params))

    def _match(self, request: httpx.Request) -> tuple[Route, dict[str, str]] | None:
        path = request.url.path
        for candidate in self._routes:
            if candidate.method != request.method:
                continue
            match = candidate.pattern.match(path)
            if match:
                return candidate, match.groupdict()
        return None

    def _finish(
        self, request: httpx.Request, endpoint: str, response: httpx.Response | None, outcome: str
    ) -> None:
        """Log the request and tell the observers; ``response`` is None when no answer was sent."""
        self._record(request, endpoint, None if response is None else response.status_code, outcome)
        for observer in list(self._observers):
            observer(request, response, endpoint)

    @staticmethod
    def _connection_error(request: httpx.Request, fault: Fault) -> httpx.TransportError:
        if fault.action.startswith("timeout"):
            return ResponseTimedOut(
                "The read operation timed out", request=request, hold_seconds=fault.seconds
            )
        return ConnectionDropped("Server disconnected without sending a response.", request=request)

    def _record(self, request: httpx.Request, endpoint: str, status: int | None, outcome: str) -> None:
        with self.state.lock:
            self.state.requests.append(
                RequestRecord(
                    seq=self.state.next_request_seq(),
                    time=self.state.now(),
                    method=request.method,
                    path=_redacted_path(request.url),
                    endpoint=endpoint,
                    status=status,
                    outcome=outcome,
                )
            )
            excess = len(self.state.requests) - self.settings.request_log_limit
            if excess > 0:
                del self.state.requests[:excess]

    # --- observers and delays -------------------------------------------------------------------------

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer(request, response_or_None, endpoint)`` after every request (any thread)."""
        self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        self._observers.remove(observer)

    def interrupt_delays(self) -> None:
        """End every injected delay now and skip future ones (used when a server shuts down)."""
        self._wake.set()

    def resume_delays(self) -> None:
        self._wake.clear()

    # --- time -----------------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's time forward on top of the injected clock."""
        self._clock.advance(seconds)

    # --- faults ---------------------------------------------------------------------------------------

    @property
    def faults(self) -> FaultBook:
        return self.state.faults

    def inject(
        self,
        endpoint: str,
        action: FaultAction,
        *,
        status: int = 500,
        body: Any = None,
        headers: dict[str, str] | None = None,
        seconds: float = 0.0,
        times: int | None = 1,
    ) -> Fault:
        """Arm a fault; see ``faults.FaultAction`` for the actions and ``endpoint_names()`` for names."""
        if endpoint != "*" and endpoint not in self.endpoint_names():
            raise ValueError(f"unknown endpoint {endpoint!r}; see Emulator.endpoint_names()")
        fault = Fault(endpoint, action, status, body, dict(headers or {}), seconds, times)
        return self.state.faults.add(fault)

    def respond_with(self, endpoint: str, status: int, body: Any = None, *, times: int | None = 1) -> Fault:
        return self.inject(endpoint, "respond", status=status, body=body, times=times)

    def drop_connection(self, endpoint: str, *, after_applying: bool = False, times: int | None = 1) -> Fault:
        return self.inject(endpoint, "drop_after" if after_applying else "drop_before", times=times)

    def delay(self, endpoint: str, seconds: float, *, times: int | None = 1) -> Fault:
        return self.inject(endpoint, "delay", seconds=seconds, times=times)

    def stall(
        self, endpoint: str, seconds: float, *, after_applying: bool = False, times: int | None = 1
    ) -> Fault:
        return self.inject(
            endpoint, "timeout_after" if after_applying else "timeout_before", seconds=seconds, times=times
        )

    def fail_next_containers(self, status: ContainerStatus = "ERROR", *, times: int | None = 1) -> Fault:
        """The next created containers end in ERROR or EXPIRED once processing is over."""
        if status not in ("ERROR", "EXPIRED"):
            raise ValueError("status must be ERROR or EXPIRED")
        action: FaultAction = "container_error" if status == "ERROR" else "container_expired"
        return self.inject("ig.media.create", action, times=times)

    def set_container_status(self, container_id: str, status: ContainerStatus) -> None:
        with self.state.lock:
            container = self.state.ig_containers[container_id]
            if container.media_id is not None:
                raise ValueError("the container is published already")
            container.status_override = status

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def endpoint_names(self) -> list[str]:
        return sorted({r.endpoint for r in self._routes if r.platform != "admin"})

    # --- seeding and tokens -----------------------------------------------------------------------------

    def add_x_client(
        self, client_id: str, client_secret: str | None = None, redirect_uris: tuple[str, ...] = ()
    ) -> XClient:
        with self.state.lock:
            return accounts.add_x_client(self.state, client_id, client_secret, redirect_uris)

    def add_x_user(self, user_id: str, username: str, name: str | None = None) -> XUser:
        with self.state.lock:
            return accounts.add_x_user(self.state, user_id, username, name)

    def add_ig_app(self, client_id: str, client_secret: str, redirect_uris: tuple[str, ...] = ()) -> IGApp:
        with self.state.lock:
            return accounts.add_ig_app(self.state, client_id, client_secret, redirect_uris)

    def add_ig_user(
        self, user_id: str, username: str, app_scoped_id: str | None = None, name: str | None = None
    ) -> IGUser:
        with self.state.lock:
            return accounts.add_ig_user(self.state, user_id, username, app_scoped_id, name)

    def set_consent(self, platform: str, *, approve: bool = True, user_id: str | None = None) -> None:
        """Who the authorize page signs in as, and whether they approve (False: access_denied)."""
        with self.state.lock:
            admin.set_consent(self.state, platform, approve, user_id)

    def mint_x_token(
        self,
        user_id: str | None = None,
        client_id: str | None = None,
        scopes: tuple[str, ...] = accounts.X_DAEMON_SCOPES,
    ) -> dict[str, Any]:
        with self.state.lock:
            return accounts.mint_x_token(self.state, user_id, client_id, scopes)

    def mint_ig_token(
        self,
        user_id: str | None = None,
        client_id: str | None = None,
        scopes: tuple[str, ...] = accounts.IG_DAEMON_SCOPES,
        *,
        long_lived: bool = True,
    ) -> dict[str, Any]:
        with self.state.lock:
            return accounts.mint_ig_token(self.state, user_id, client_id, scopes, long_lived=long_lived)

    def mint_bsky_session(self, did: str | None = None, origin: str = "http://emulator.test") -> dict[str, Any]:
        """A Bluesky session as createSession answers it, without spending a createSession."""
        from crosswatch.emulator.bluesky_api import issue_session
        from crosswatch.emulator.bluesky_state import DEFAULT_BSKY_DID

        with self.state.lock:
            account = self.state.bluesky.accounts[did or DEFAULT_BSKY_DID]
            return issue_session(self.state.bluesky, origin, account, self.state.now())

    def post_from_phone(
        self,
        user_id: str | None = None,
        *,
        caption: str = "",
        image: bytes | None = None,
        alt_text: str | None = None,
        images: tuple[bytes, ...] = (),
        alt_texts: tuple[str | None, ...] = (),
    ) -> IGMedia:
        """A post made in the Instagram app; two or more ``images`` make a carousel."""
        with self.state.lock:
            return accounts.post_from_phone(
                self.state, user_id, caption=caption, image=image, alt_text=alt_text, images=images,
                alt_texts=alt_texts,
            )

    def mint_mastodon_token(self, account_id: str | None = None,
                            scopes: tuple[str, ...] = mastodon_api.DAEMON_SCOPES) -> dict[str, Any]:
        """A Mastodon token response with its app's ``client_id``/``client_secret`` (for ``auth import``)."""
        with self.state.lock:
            return mastodon_api.mint_token(self.state, account_id, scopes)

    def mastodon_statuses(self) -> list[dict[str, Any]]:
        """Every status on the emulated Mastodon server, oldest first, as the snapshot shows them."""
        with self.state.lock:
            return list(snapshot(self.state)["mastodon"]["statuses"])

    def mint_threads_token(self, user_id: str | None = None,
                           scopes: tuple[str, ...] = threads_state.THREADS_DAEMON_SCOPES) -> dict[str, Any]:
        """A long-lived Threads token as ``auth import`` takes it."""
        with self.state.lock:
            return threads_oauth.mint_token(self.state.threads, self.state.now(), user_id, scopes)

    def threads_posts(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(snapshot(self.state)["threads"]["posts"])

    def fail_next_threads_containers(self, status: ContainerStatus = "ERROR", *, times: int | None = 1) -> Fault:
        """The next Threads containers end in ERROR or EXPIRED once processing is over."""
        if status not in ("ERROR", "EXPIRED"):
            raise ValueError("status must be ERROR or EXPIRED")
        action: FaultAction = "container_error" if status == "ERROR" else "container_expired"
        return self.inject("threads.create", action, times=times)

    def delete_x_post(self, post_id: str) -> bool:
        """Delete a post as its author would; False when there is no such post."""
        with self.state.lock:
            return accounts.delete_x_post(self.state, post_id)

    def delete_ig_post(self, media_id: str) -> bool:
        """Delete an Instagram post as in the app; False when there is no such post."""
        with self.state.lock:
            return accounts.delete_ig_media(self.state, media_id)

    def delete_post(self, network: str, remote_id: str) -> bool:
        """Delete a Mastodon status (its id), a Bluesky post (its at:// URI) or a thread (its id) as
        its author would; False when there is no such post."""
        delete = {"mastodon": accounts.delete_mastodon_status, "bluesky": accounts.delete_bsky_post,
                  "threads": accounts.delete_threads_post}[network]
        with self.state.lock:
            return delete(self.state, remote_id)

    # --- inspection -------------------------------------------------------------------------------------

    def snapshot(self, *, include_bytes: bool = False) -> dict[str, Any]:
        """The same document as ``GET /_emulator/state`` (links are relative to the emulator)."""
        with self.state.lock:
            return snapshot(self.state, include_bytes=include_bytes)

    def x_posts(self, user_id: str | None = None) -> list[XPost]:
        with self.state.lock:
            return [p for p in self.state.x_posts if user_id is None or p.user_id == user_id]

    def x_media_bytes(self, media_id: str) -> bytes:
        with self.state.lock:
            return self.state.x_media[media_id].data

    def x_alt_text(self, media_id: str) -> str | None:
        with self.state.lock:
            return self.state.x_media[media_id].alt_text

    def ig_posts(self, user_id: str | None = None) -> list[IGMedia]:
        with self.state.lock:
            return [m for m in self.state.ig_media if user_id is None or m.user_id == user_id]

    def requests_log(self, endpoint: str | None = None) -> list[RequestRecord]:
        with self.state.lock:
            return [r for r in self.state.requests if endpoint is None or r.endpoint == endpoint]


# --- helpers ------------------------------------------------------------------------------------------


def _fault_response(matched: Route, fault: Fault) -> httpx.Response:
    headers = dict(fault.headers)
    if isinstance(fault.body, str):
        response = text_response(fault.status, fault.body)
    elif fault.body is not None:
        response = json_response(fault.status, fault.body)
    elif matched.platform == "x":
        response = problem_response(fault.status, x_blank_problem(fault.status))
    elif matched.platform == "mastodon":
        response = mastodon_api.error(fault.status, _MASTODON_FAULT_WORDS.get(fault.status, "Internal Server Error"))
    elif matched.platform == "bluesky":
        response = bluesky_api.fault_response(fault.status)
    else:
        response = graph_error(
            2, "An unexpected error has occurred. Please retry your request later.",
            status=fault.status, is_transient=True,
        )  # fmt: skip
    response.headers.update(headers)
    return response


# What Mastodon answers with these statuses (Api::BaseController's rescue_from handlers).
_MASTODON_FAULT_WORDS = {401: mastodon_api.INVALID_TOKEN, 403: mastodon_api.OUT_OF_SCOPE, 404: mastodon_api.NOT_FOUND,
                         422: "Validation failed", 429: "Too many requests", 503: "Remote data could not be fetched"}


def _not_found(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.startswith(mastodon_api.PREFIX + "/"):
        return mastodon_api.error(404, mastodon_api.NOT_FOUND)
    if path.startswith("/2/") or path.startswith("/i/"):
        return problem_response(404, x_blank_problem(404, f"No route for {request.method} {path}"))
    if path.startswith("/_emulator"):
        return text_response(404, f"No admin route for {request.method} {path}")
    if path.startswith("/xrpc/"):
        return bluesky_api.xrpc_error(501, "MethodNotImplemented", "Method Not Implemented")
    method = request.method.lower()
    return graph_error(
        100,
        f"Unsupported {method} request. Object does not exist or does not support this operation.",
        subcode=33,
        error_type="GraphMethodException",
    )


def _redacted_path(url: httpx.URL) -> str:
    """The path and query with secret values hidden, so the request log can be shown to anyone."""
    pairs = parse_qsl(url.query.decode("ascii", "replace"), keep_blank_values=True)
    if not pairs:
        return url.path
    cleaned = [(k, "<redacted>" if k in SECRET_PARAMS else v) for k, v in pairs]
    return url.path + "?" + urlencode(cleaned)
