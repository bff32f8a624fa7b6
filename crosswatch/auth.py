"""Sign-in and tokens for X and Instagram: OAuth 2.0 code flow, loopback redirect, refresh, keyring.

What the CLI and the runner call:

- ``login(target_cfg, store, client, open_browser, prompt_secret, paste_redirect=None)``: browser
  sign-in. A listener on ``127.0.0.1:<redirect_port>`` takes exactly one callback carrying the right
  ``state``; the code is exchanged at once (X's codes live 30 s). With an https ``redirect_uri`` in the
  config (Instagram accepts no other), ``paste_redirect`` asks for the address the browser ended on
  instead. X uses PKCE (S256); Instagram's short-lived token is swapped for a long-lived one (60 days).
- ``import_tokens``, ``status``, ``revoke``: the other ``crosswatch auth`` commands.
- ``token_provider(target_cfg, store, client, state_dir)``: what the runner asks for a valid access
  token (``access_token()``, refreshed when near expiry; ``force_refresh()`` after a 401;
  ``account_id()``, ``username()``, ``status()``). X refresh tokens are single-use, so token reads and
  refreshes run under a thread lock and a file lock in ``state_dir`` and the new pair is stored before
  it is used. ``AuthError`` means: park the target (the message says whether to sign in again).

Secrets live only in the keyring (``crosswatch.secrets``). No token, code or client secret is ever put
in an exception message, a log line or a repr; platform error text is scrubbed of them too. Tokens
travel in ``Authorization`` headers, except where a platform only takes them in the query (Instagram's
token exchange and refresh); for those, a logging filter redacts them from httpx's request log line.

All HTTP goes through the ``httpx.Client`` passed in, so tests mount an ``httpx.MockTransport`` or the
emulator. authlib supplies the PKCE challenge and the random state and verifier; the requests are
built here because X's single-use refresh tokens need a lock and persist-before-use around the call,
and Instagram's long-lived exchange and refresh are not standard OAuth grants.
"""

from __future__ import annotations

import abc
import base64
import hmac
import html
import http.server
import json
import logging
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import structlog
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError, ConfigError, PlatformError, TransientPlatformError, UsageError
from crosswatch.logs import redact_text, register_secret
from crosswatch.platforms.instagram.steps import DEFAULT_GRAPH_BASE, INSTAGRAM_SCOPES
from crosswatch.platforms.reading import id_string
from crosswatch.platforms.x.steps import DEFAULT_API_BASE, X_SCOPES
from crosswatch.secrets import SecretStore

log = structlog.get_logger("crosswatch.auth")

Clock = Callable[[], float]
CALLBACK_PATH = "/callback"
LOOPBACK_HOST = "127.0.0.1"
DEFAULT_LOGIN_TIMEOUT = 300.0
INSTAGRAM_API_BASE = "https://api.instagram.com"

# X access tokens last 2 h; refresh when less than this is left (scaled down for short lifetimes).
X_REFRESH_MARGIN = 300.0
# Instagram refuses to refresh a token younger than 24 h; a token not refreshed in 60 days is dead.
INSTAGRAM_MIN_REFRESH_AGE = 24 * 3600.0


class SignInRefused(AuthError):
    """The platform refused a sign-in step; ``what`` is that, in the platform's words (secrets masked)."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(f"{what}; {hint}")
        self.what = what


def login_hint(target_name: str) -> str:
    return f"run `crosswatch auth login {target_name}`"


# ---------------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True, repr=False)
class TokenSet:
    """One account's tokens as stored in the keyring. ``dead`` says why it can no longer be used."""

    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    obtained_at: float = 0.0
    scopes: tuple[str, ...] = ()
    account_id: str | None = None
    username: str | None = None
    dead: str | None = None

    def __repr__(self) -> str:
        # Never the tokens themselves: reprs end up in logs and tracebacks.
        return (f"TokenSet(access_token='***', refresh_token={'***' if self.refresh_token else None}, "
                f"expires_at={self.expires_at}, scopes={self.scopes}, account_id={self.account_id!r}, "
                f"username={self.username!r}, dead={self.dead!r})")

    __str__ = __repr__

    @property
    def lifetime(self) -> float | None:
        return None if self.expires_at is None else self.expires_at - self.obtained_at

    def remaining(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token, "refresh_token": self.refresh_token,
            "expires_at": self.expires_at, "obtained_at": self.obtained_at, "scopes": list(self.scopes),
            "account_id": self.account_id, "username": self.username, "dead": self.dead,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenSet | None:
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            return None
        return cls(
            access_token=token,
            refresh_token=id_string(data.get("refresh_token")),
            expires_at=_float_or_none(data.get("expires_at")),
            obtained_at=_float_or_none(data.get("obtained_at")) or 0.0,
            scopes=tuple(s for s in data.get("scopes") or () if isinstance(s, str)),
            account_id=id_string(data.get("account_id")),
            username=id_string(data.get("username")),
            dead=id_string(data.get("dead")),
        )




def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def token_key(target_name: str) -> str:
    return f"{target_name}:token"


def client_secret_key(target_name: str) -> str:
    return f"{target_name}:client_secret"


def load_tokens(store: SecretStore, target_name: str) -> TokenSet | None:
    data = store.get_json(token_key(target_name))
    tokens = TokenSet.from_json(data) if data else None
    if tokens is not None:
        _register(tokens)
    return tokens


def save_tokens(store: SecretStore, target_name: str, tokens: TokenSet) -> None:
    _register(tokens)
    store.set_json(token_key(target_name), tokens.to_json())


def _register(tokens: TokenSet) -> None:
    # The log redaction processor masks these exact strings wherever they might turn up.
    register_secret(tokens.access_token)
    register_secret(tokens.refresh_token)


def expiry_from(expires_in: Any, now: float) -> float | None:
    seconds = _float_or_none(expires_in)
    if seconds is None and isinstance(expires_in, str):
        try:
            seconds = float(expires_in)
        except ValueError:
            seconds = None
    return None if seconds is None or seconds <= 0 else now + seconds


def split_scopes(value: Any, separator: str) -> tuple[str, ...]:
    """Scopes from a space- or comma-separated string or a JSON list."""
    if isinstance(value, list):
        return tuple(s.strip() for s in value if isinstance(s, str) and s.strip())
    if isinstance(value, str):
        return tuple(s.strip() for s in re.split(f"[{re.escape(separator)}\\s,]+", value) if s.strip())
    return ()


# ---------------------------------------------------------------------------------------------------
# Keeping secrets out of text


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret replaced; for platform messages that may echo a value."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


SECRET_QUERY = re.compile(
    r"((?:access_token|refresh_token|client_secret|code|code_verifier|token)=)[^&\s\"']+")


class RedactQueryFilter(logging.Filter):
    """Redacts token-bearing query parameters from log records (httpx logs every request's URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logger's problem, not ours
            return True
        redacted = SECRET_QUERY.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install_log_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactQueryFilter) for f in logger.filters):
        logger.addFilter(RedactQueryFilter())


# ---------------------------------------------------------------------------------------------------
# HTTP helpers


def _send(client: httpx.Client, request: httpx.Request, what: str) -> httpx.Response:
    install_log_redaction()
    try:
        return client.send(request)
    except httpx.HTTPError as exc:
        # httpx's message can carry the URL (and with it a query token): name only the host.
        raise TransientPlatformError(f"{what}: cannot reach {request.url.host} "
                                     f"({type(exc).__name__}); try again") from None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _oauth_error_text(response: httpx.Response) -> str:
    """The platform's own error words from any of the shapes X and Meta use: OAuth's ``error`` and
    ``error_description``, an RFC 7807 problem's ``title``/``detail``, and the messages of an
    ``errors[]`` list (X's invalid-request problems and its v1.1-style ``{"errors":[{"code","message"}]}``)."""
    body = _json_object(response)
    error = body.get("error")
    if isinstance(error, dict):  # Graph: {"error": {"message", "code", ...}}
        text = error.get("error_user_msg") or error.get("message") or ""
        code = error.get("code")
        return f"{text} (code {code})" if code is not None else str(text)
    parts = [body.get(k) for k in ("error", "error_description", "error_message", "title", "detail")]
    words = [p for p in parts if isinstance(p, str) and p]
    errors = body.get("errors")
    for item in errors if isinstance(errors, list) else ():
        message = (item.get("message") or item.get("detail")) if isinstance(item, dict) else None
        if isinstance(message, str) and message:
            words.append(message)
    return ": ".join(dict.fromkeys(words)) or f"HTTP {response.status_code}"


def platform_words(response: httpx.Response, *secrets: str | None) -> str:
    """``_oauth_error_text`` made safe to show: the given secrets (tokens, code, verifier, client
    secret) replaced, then everything the log redaction masks (registered secrets, token-shaped
    strings), and cut to one readable line."""
    words = redact_text(scrub(_oauth_error_text(response), *secrets))
    words = " ".join(words.split())
    return words if len(words) <= 300 else words[:297] + "..."


def _basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 2.3.1: form-encode both parts before joining them.
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _with_query(url: str, params: Mapping[str, str]) -> str:
    # quote, not quote_plus: X's docs ask for %20 between scopes.
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return url + ("&" if "?" in url else "?") + query


def _need_client_id(cfg: TargetConfig) -> str:
    if not cfg.client_id:
        raise ConfigError("is required to sign in: the app's client id from the developer console",
                          key=f"targets.{cfg.name}.client_id")
    return cfg.client_id


def _x_base(cfg: TargetConfig) -> str:
    return (cfg.api_base or DEFAULT_API_BASE).rstrip("/")


def _graph_base(cfg: TargetConfig) -> str:
    return (cfg.graph_base or DEFAULT_GRAPH_BASE).rstrip("/")


def _graph_root(cfg: TargetConfig) -> str:
    """graph_base without a version segment: Meta documents the token endpoints unversioned."""
    return re.sub(r"/v[0-9]+(?:\.[0-9]+)?$", "", _graph_base(cfg))


def _ig_api_base(cfg: TargetConfig) -> str:
    return (cfg.api_base or INSTAGRAM_API_BASE).rstrip("/")


# ---------------------------------------------------------------------------------------------------
# X: OAuth 2.0 with PKCE


def x_authorize_url(cfg: TargetConfig, redirect_uri: str, state: str, code_verifier: str) -> str:
    return _with_query(cfg.authorize_url or "https://x.com/i/oauth2/authorize", {
        "response_type": "code",
        "client_id": _need_client_id(cfg),
        "redirect_uri": redirect_uri,
        "scope": " ".join(X_SCOPES),
        "state": state,
        "code_challenge": create_s256_code_challenge(code_verifier),
        "code_challenge_method": "S256",
    })


def _x_token_request(cfg: TargetConfig, secret: str | None, form: dict[str, str]) -> httpx.Request:
    headers = {}
    if secret:
        headers["Authorization"] = _basic_auth(_need_client_id(cfg), secret)  # confidential client
    else:
        form = {**form, "client_id": _need_client_id(cfg)}  # public client
    return httpx.Request("POST", _x_base(cfg) + "/2/oauth2/token", headers=headers, data=form)


def _x_tokens_from(response: httpx.Response, now: float, previous: TokenSet | None = None) -> TokenSet | None:
    body = _json_object(response)
    access = body.get("access_token")
    if not response.is_success or not isinstance(access, str) or not access:
        return None
    return TokenSet(
        access_token=access,
        refresh_token=id_string(body.get("refresh_token")),
        expires_at=expiry_from(body.get("expires_in"), now),
        obtained_at=now,
        scopes=split_scopes(body.get("scope"), " ") or (previous.scopes if previous else ()),
        account_id=previous.account_id if previous else None,
        username=previous.username if previous else None,
    )


def x_exchange_code(cfg: TargetConfig, client: httpx.Client, secret: str | None, code: str,
                    redirect_uri: str, code_verifier: str, now: float) -> TokenSet:
    request = _x_token_request(cfg, secret, {
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": redirect_uri, "code_verifier": code_verifier,
    })
    response = _send(client, request, "X sign-in")
    tokens = _x_tokens_from(response, now)
    if tokens is None:
        reason = platform_words(response, code, code_verifier, secret)
        raise AuthError(f"X refused the sign-in code ({reason}); {login_hint(cfg.name)} again")
    return tokens


def x_refresh(cfg: TargetConfig, client: httpx.Client, secret: str | None, tokens: TokenSet,
              now: float) -> TokenSet:
    """One refresh. Raises AuthError when X refuses the refresh token (it is then dead)."""
    if not tokens.refresh_token:
        raise AuthError(f"the X token has expired and there is no refresh token; {login_hint(cfg.name)}")
    request = _x_token_request(cfg, secret, {"grant_type": "refresh_token",
                                             "refresh_token": tokens.refresh_token})
    response = _send(client, request, "X token refresh")
    fresh = _x_tokens_from(response, now, previous=tokens)
    if fresh is not None:
        return fresh
    reason = platform_words(response, tokens.refresh_token, tokens.access_token, secret)
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientPlatformError(f"X token refresh failed ({reason}); try again")
    raise SignInRefused(f"X refused the refresh token ({reason})", login_hint(cfg.name))


def x_lookup_account(cfg: TargetConfig, client: httpx.Client, access_token: str) -> tuple[str, str | None]:
    request = httpx.Request("GET", _x_base(cfg) + "/2/users/me",
                            headers={"Authorization": f"Bearer {access_token}"})
    response = _send(client, request, "X account lookup")
    data = _json_object(response).get("data")
    account_id = id_string(data.get("id")) if isinstance(data, dict) else None
    if not response.is_success or account_id is None or not isinstance(data, dict):
        reason = platform_words(response, access_token)
        if response.status_code == 401:
            raise AuthError(f"X refused the access token ({reason}); {login_hint(cfg.name)}")
        raise PlatformError(f"X could not say which account this is ({reason})")
    return account_id, id_string(data.get("username"))


def x_revoke(cfg: TargetConfig, client: httpx.Client, secret: str | None, token: str,
             hint: str) -> str | None:
    """Revoke one token at X: None when X confirmed it, else X's words (secrets masked)."""
    form = {"token": token, "token_type_hint": hint}
    headers = {}
    if secret:
        headers["Authorization"] = _basic_auth(_need_client_id(cfg), secret)
    else:
        form["client_id"] = _need_client_id(cfg)
    request = httpx.Request("POST", _x_base(cfg) + "/2/oauth2/revoke", headers=headers, data=form)
    response = _send(client, request, "X revoke")
    return None if response.is_success else platform_words(response, token, secret)


# ---------------------------------------------------------------------------------------------------
# Instagram: Instagram Login, short-lived then long-lived tokens


def instagram_authorize_url(cfg: TargetConfig, redirect_uri: str, state: str) -> str:
    return _with_query(cfg.authorize_url or "https://www.instagram.com/oauth/authorize", {
        "client_id": _need_client_id(cfg),
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": ",".join(INSTAGRAM_SCOPES),
        "state": state,
    })


def strip_instagram_code(code: str) -> str:
    """Instagram appends ``#_`` to the redirect; a pasted or relayed code may still carry it."""
    return code[:-2] if code.endswith("#_") else code


def parse_instagram_short_token(body: Mapping[str, Any]) -> tuple[str, str | None, tuple[str, ...]] | None:
    """Both documented (``{"data":[{...}]}``) and observed (flat) shapes of the code exchange."""
    item: Any = body
    if isinstance(body.get("data"), list) and body["data"]:
        item = body["data"][0]
    if not isinstance(item, dict):
        return None
    token = item.get("access_token")
    if not isinstance(token, str) or not token:
        return None
    return token, id_string(item.get("user_id")), split_scopes(item.get("permissions"), ",")


def instagram_exchange_code(cfg: TargetConfig, client: httpx.Client, secret: str, code: str,
                            redirect_uri: str, now: float) -> TokenSet:
    """The code -> short-lived token (1 h) -> long-lived token (60 days)."""
    code = strip_instagram_code(code)
    request = httpx.Request("POST", _ig_api_base(cfg) + "/oauth/access_token", data={
        "client_id": _need_client_id(cfg), "client_secret": secret, "grant_type": "authorization_code",
        "redirect_uri": redirect_uri, "code": code,
    })
    response = _send(client, request, "Instagram sign-in")
    short = parse_instagram_short_token(_json_object(response)) if response.is_success else None
    if short is None:
        reason = platform_words(response, code, secret)
        raise AuthError(f"Instagram refused the sign-in code ({reason}); {login_hint(cfg.name)} again")
    short_token, user_id, scopes = short
    long_lived = instagram_long_lived(cfg, client, secret, short_token, now)
    return replace(long_lived, scopes=scopes, account_id=user_id)


def _instagram_token_from(response: httpx.Response, now: float) -> TokenSet | None:
    body = _json_object(response)
    token = body.get("access_token")
    if not response.is_success or not isinstance(token, str) or not token:
        return None
    return TokenSet(access_token=token, expires_at=expiry_from(body.get("expires_in"), now), obtained_at=now)


def instagram_long_lived(cfg: TargetConfig, client: httpx.Client, secret: str, short_token: str,
                         now: float) -> TokenSet:
    request = httpx.Request("GET", _graph_root(cfg) + "/access_token", params={
        "grant_type": "ig_exchange_token", "client_secret": secret, "access_token": short_token,
    })
    response = _send(client, request, "Instagram long-lived token")
    tokens = _instagram_token_from(response, now)
    if tokens is None:
        reason = platform_words(response, short_token, secret)
        raise AuthError(f"Instagram would not issue a long-lived token ({reason}); {login_hint(cfg.name)}")
    return tokens


def instagram_refresh(cfg: TargetConfig, client: httpx.Client, tokens: TokenSet, now: float) -> TokenSet:
    request = httpx.Request("GET", _graph_root(cfg) + "/refresh_access_token", params={
        "grant_type": "ig_refresh_token", "access_token": tokens.access_token,
    })
    response = _send(client, request, "Instagram token refresh")
    fresh = _instagram_token_from(response, now)
    if fresh is not None:
        return replace(fresh, scopes=tokens.scopes, account_id=tokens.account_id, username=tokens.username)
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientPlatformError(f"Instagram token refresh failed with HTTP {response.status_code}")
    reason = platform_words(response, tokens.access_token)
    raise AuthError(f"Instagram refused to refresh the token ({reason}); {login_hint(cfg.name)}")


def instagram_lookup_account(cfg: TargetConfig, client: httpx.Client,
                             access_token: str) -> tuple[str, str | None]:
    request = httpx.Request("GET", _graph_base(cfg) + "/me", params={"fields": "user_id,username"},
                            headers={"Authorization": f"Bearer {access_token}"})
    response = _send(client, request, "Instagram account lookup")
    body = _json_object(response)
    # user_id is the professional account id used for publishing; id is app-scoped (api-notes B1).
    account_id = id_string(body.get("user_id")) or id_string(body.get("id"))
    if not response.is_success or account_id is None:
        reason = platform_words(response, access_token)
        if response.status_code in (400, 401, 403):
            raise AuthError(f"Instagram refused the access token ({reason}); {login_hint(cfg.name)}")
        raise PlatformError(f"Instagram could not say which account this is ({reason})")
    return account_id, id_string(body.get("username"))


# ---------------------------------------------------------------------------------------------------
# The loopback redirect listener


@dataclass(repr=False)
class _CallbackState:
    expected_state: str
    code: str | None = None
    error: str | None = None
    rejected: int = 0

    def __repr__(self) -> str:
        # The code is as good as a token for the next 30 seconds.
        return f"_CallbackState(code={'***' if self.code else None}, rejected={self.rejected})"


class LoopbackListener:
    """Receives the OAuth redirect on 127.0.0.1: exactly one callback with the right state.

    A callback with a wrong or missing state gets a 400 page and the listener keeps waiting; once a
    code (or a refusal) with the right state has arrived, any further callback gets 409 until the
    listener closes. It binds only to the loopback address, never to all interfaces.
    """

    def __init__(self, expected_state: str, port: int = 0) -> None:
        self._state = _CallbackState(expected_state)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._server = http.server.HTTPServer((LOOPBACK_HOST, port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="crosswatch-oauth-callback", daemon=True)

    def __repr__(self) -> str:
        return f"LoopbackListener(address={self.address!r})"

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def redirect_uri(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}{CALLBACK_PATH}"

    @property
    def rejected(self) -> int:
        return self._state.rejected

    def __enter__(self) -> LoopbackListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def wait(self, timeout: float) -> str:
        """The authorization code; AuthError on refusal or when none arrives in time."""
        if not self._done.wait(timeout):
            raise AuthError(f"no sign-in arrived within {timeout:.0f} s; run the sign-in again")
        if self._state.error:
            raise AuthError(f"the sign-in was refused ({self._state.error}); run the sign-in again "
                            "and approve access")
        assert self._state.code is not None
        return self._state.code

    def handle_callback(self, path: str) -> tuple[int, str]:
        """Decide on one request; returns the HTTP status and a short message for the page."""
        parts = urllib.parse.urlsplit(path)
        if parts.path != CALLBACK_PATH:
            return 404, "Not a crosswatch sign-in address."
        query = urllib.parse.parse_qs(parts.query)
        state = query.get("state", [""])[0]
        with self._lock:
            if self._done.is_set():
                return 409, "This sign-in is already complete; this link cannot be used again."
            if not hmac.compare_digest(state.encode(), self._state.expected_state.encode()):
                self._state.rejected += 1
                return 400, "This sign-in link does not belong to the sign-in crosswatch started."
            if "error" in query:
                words = [query.get(k, [""])[0] for k in ("error", "error_description")]
                self._state.error = ": ".join(w for w in words if w)[:300] or "access denied"
                self._done.set()
                return 400, "Sign-in was refused. You can close this tab."
            code = strip_instagram_code(query.get("code", [""])[0])
            if not code:
                self._state.rejected += 1
                return 400, "The sign-in answer carried no code."
            self._state.code = code
            self._done.set()
            return 200, "Signed in to crosswatch. You can close this tab."

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "crosswatch"
            sys_version = ""

            def do_GET(self) -> None:
                status, message = listener.handle_callback(self.path)
                page = (f"<!doctype html><meta charset=utf-8><title>crosswatch</title>"
                        f"<p>{html.escape(message)}</p>").encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                # The default writes the request line, code and state included, to stderr.
                return

        return Handler


# ---------------------------------------------------------------------------------------------------
# The client secret


def get_client_secret(cfg: TargetConfig, store: SecretStore,
                      prompt_secret: Callable[[str], str] | None, *, required: bool) -> str | None:
    """The app's client secret from the keyring, asking once (without echo) if it is not there."""
    key = client_secret_key(cfg.name)
    secret = store.get(key)
    if secret:
        register_secret(secret)
        return secret
    if prompt_secret is not None:
        question = (f"{cfg.kind} app secret for {cfg.name}" if required else
                    f"{cfg.kind} client secret for {cfg.name} (empty for a public client)")
        secret = prompt_secret(question).strip()
        if secret:
            register_secret(secret)
            store.set(key, secret)
            return secret
    if required:
        raise AuthError(f"the {cfg.name} app secret is needed to sign in; {login_hint(cfg.name)} "
                        "and enter it when asked")
    return None


# ---------------------------------------------------------------------------------------------------
# Commands: login, import, status, revoke


def login(target_cfg: TargetConfig, store: SecretStore, client: httpx.Client,
          open_browser: Callable[[str], None], prompt_secret: Callable[[str], str] | None = None, *,
          paste_redirect: Callable[[str], str] | None = None, timeout: float = DEFAULT_LOGIN_TIMEOUT,
          clock: Clock = time.time) -> dict[str, Any]:
    """Browser sign-in; stores the tokens and returns ``status`` (never a secret).

    With ``redirect_uri`` unset, a loopback listener receives the browser; with an https
    ``redirect_uri`` (Instagram accepts only those) ``paste_redirect`` asks the user for the address
    the browser ended on.
    """
    if target_cfg.kind not in ("x", "instagram"):
        raise UsageError(f"target {target_cfg.name} ({target_cfg.kind}) has no sign-in")
    _need_client_id(target_cfg)
    is_x = target_cfg.kind == "x"
    secret = get_client_secret(target_cfg, store, prompt_secret, required=not is_x)
    state = generate_token(32)
    verifier = generate_token(64)  # RFC 7636: 43 to 128 characters

    def authorize_url(redirect_uri: str) -> str:
        if is_x:
            return x_authorize_url(target_cfg, redirect_uri, state, verifier)
        return instagram_authorize_url(target_cfg, redirect_uri, state)

    if target_cfg.redirect_uri:
        redirect_uri = target_cfg.redirect_uri
        code = _pasted_code(target_cfg, authorize_url(redirect_uri), state, open_browser, paste_redirect)
    else:
        with _listen(target_cfg, state) as listener:
            redirect_uri = listener.redirect_uri
            open_browser(authorize_url(redirect_uri))
            code = listener.wait(timeout)
    # Exchange at once: X's authorization codes are valid for 30 seconds.
    if is_x:
        tokens = x_exchange_code(target_cfg, client, secret, code, redirect_uri, verifier, clock())
    else:
        assert secret is not None
        tokens = instagram_exchange_code(target_cfg, client, secret, code, redirect_uri, clock())
    _store_and_identify(target_cfg, store, client, tokens)
    return status(target_cfg, store, clock=clock)


def _listen(cfg: TargetConfig, state: str) -> LoopbackListener:
    try:
        return LoopbackListener(state, port=cfg.redirect_port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {LOOPBACK_HOST}:{cfg.redirect_port} for the sign-in "
                          f"({exc.strerror or exc}); choose a free port (and register "
                          f"http://{LOOPBACK_HOST}:<port>{CALLBACK_PATH} with the app)",
                          key=f"targets.{cfg.name}.redirect_port") from None


def _pasted_code(cfg: TargetConfig, url: str, state: str, open_browser: Callable[[str], None],
                 paste_redirect: Callable[[str], str] | None) -> str:
    if paste_redirect is None:
        raise UsageError(f"targets.{cfg.name}.redirect_uri is set, so sign-in needs the address your browser "
                         "is sent to; run `crosswatch auth login` in a terminal")
    open_browser(url)
    pasted = paste_redirect("After approving, paste the whole address your browser was sent to")
    return code_from_redirect(pasted, state)


def code_from_redirect(address: str, expected_state: str) -> str:
    """The code in a pasted redirect address, after checking its state; never echoes the address."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(address.strip()).query)
    state = query.get("state", [""])[0]
    if not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise AuthError("the pasted address does not belong to this sign-in (its state differs); "
                        "paste the address from this attempt")
    if "error" in query:
        words = [query.get(k, [""])[0] for k in ("error", "error_description")]
        raise AuthError(f"the sign-in was refused ({': '.join(w for w in words if w)[:300]}); "
                        "run the sign-in again and approve access")
    code = strip_instagram_code(query.get("code", [""])[0])
    if not code:
        raise AuthError("the pasted address carries no code; paste the whole address from the address bar")
    return code


def _store_and_identify(cfg: TargetConfig, store: SecretStore, client: httpx.Client,
                        tokens: TokenSet) -> TokenSet:
    """After a sign-in: store first (an X refresh token must never be lost), then look the account up."""
    save_tokens(store, cfg.name, tokens)
    identified = _identify(cfg, client, tokens)
    save_tokens(store, cfg.name, identified)
    return identified


def _identify(cfg: TargetConfig, client: httpx.Client, tokens: TokenSet) -> TokenSet:
    lookup = x_lookup_account if cfg.kind == "x" else instagram_lookup_account
    account_id, username = lookup(cfg, client, tokens.access_token)
    return replace(tokens, account_id=account_id, username=username)


def import_tokens(target_cfg: TargetConfig, store: SecretStore, json_text: str,
                  client: httpx.Client | None = None, *, clock: Clock = time.time) -> dict[str, Any]:
    """Store a platform token response read from stdin; with a client, look up the account."""
    try:
        body = json.loads(json_text)
    except ValueError:
        # No chaining and no excerpt: the text holds the token.
        raise UsageError(f"the token for {target_cfg.name} on stdin is not valid JSON") from None
    if not isinstance(body, dict):
        raise UsageError(f"the token for {target_cfg.name} on stdin must be a JSON object")
    now = clock()
    if target_cfg.kind == "x":
        tokens = _x_tokens_from(httpx.Response(200, json=body), now)
        if tokens is not None and not tokens.refresh_token:
            log.warning("imported X token has no refresh token; it stops working when it expires",
                        target=target_cfg.name)
    elif target_cfg.kind == "instagram":
        tokens = _instagram_token_from(httpx.Response(200, json=body), now)
        if tokens is not None:
            tokens = replace(tokens, account_id=id_string(body.get("user_id")),
                             scopes=split_scopes(body.get("permissions"), ","))
    else:
        raise UsageError(f"target {target_cfg.name} ({target_cfg.kind}) takes no tokens")
    if tokens is None:
        raise UsageError(f"the JSON on stdin has no access_token for {target_cfg.name}")
    # Checked before it is stored: a token the platform refuses must not look like a sign-in.
    if client is not None:
        tokens = _identify(target_cfg, client, tokens)
    save_tokens(store, target_cfg.name, tokens)
    return status(target_cfg, store, clock=clock)


def status(target_cfg: TargetConfig, store: SecretStore, *, clock: Clock = time.time) -> dict[str, Any]:
    """Account, scopes and expiry for ``auth status`` and ``doctor``; never a secret."""
    tokens = load_tokens(store, target_cfg.name)
    result: dict[str, Any] = {
        "target": target_cfg.name, "kind": target_cfg.kind, "signed_in": tokens is not None,
        "account_id": None, "username": None, "scopes": [], "expires_at": None,
        "expires_in_seconds": None, "has_refresh_token": False, "needs_login": tokens is None,
        "problem": f"not signed in; {login_hint(target_cfg.name)}" if tokens is None else None,
        # Whether one is stored, never the secret itself.
        "client_secret_stored": store.get(client_secret_key(target_cfg.name)) is not None,
    }
    if tokens is None:
        return result
    now = clock()
    remaining = tokens.remaining(now)
    result.update({
        "account_id": tokens.account_id, "username": tokens.username, "scopes": list(tokens.scopes),
        "expires_at": _iso(tokens.expires_at), "has_refresh_token": tokens.refresh_token is not None,
        "expires_in_seconds": None if remaining is None else max(0, int(remaining)),
    })
    problem = _token_problem(target_cfg, tokens, now)
    result["problem"] = problem
    result["needs_login"] = problem is not None
    return result


def _token_problem(cfg: TargetConfig, tokens: TokenSet, now: float) -> str | None:
    if tokens.dead:
        return f"{tokens.dead}; {login_hint(cfg.name)}"
    if tokens.expired(now) and (cfg.kind == "instagram" or not tokens.refresh_token):
        return f"the token has expired; {login_hint(cfg.name)}"
    wanted = X_SCOPES if cfg.kind == "x" else INSTAGRAM_SCOPES
    missing = [s for s in wanted if tokens.scopes and s not in tokens.scopes]
    if missing:
        return f"the token lacks the scopes {', '.join(missing)}; {login_hint(cfg.name)}"
    return None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def revoke(target_cfg: TargetConfig, store: SecretStore,
           client: httpx.Client | None = None) -> dict[str, Any]:
    """Revoke at the platform where it has an endpoint (X), then delete tokens and secret locally."""
    tokens = load_tokens(store, target_cfg.name)
    result: dict[str, Any] = {"target": target_cfg.name, "revoked_at_platform": False, "deleted": False,
                              "note": None}
    if tokens is not None and target_cfg.kind == "x" and client is not None:
        secret = store.get(client_secret_key(target_cfg.name))
        try:
            # The refresh token first: revoking it ends the chain even if the next call fails.
            refusals = [x_revoke(target_cfg, client, secret, tokens.refresh_token, "refresh_token")
                        if tokens.refresh_token else None,
                        x_revoke(target_cfg, client, secret, tokens.access_token, "access_token")]
            said = [scrub(words, tokens.refresh_token, tokens.access_token) for words in refusals if words]
            result["revoked_at_platform"] = not said
            if said:
                result["note"] = (f"X did not confirm the revocation ({'; '.join(dict.fromkeys(said))}); "
                                  "check https://x.com/settings/connected_apps")
        except TransientPlatformError as exc:
            result["note"] = f"{exc}; the local copy is deleted anyway"
    elif target_cfg.kind == "instagram":
        result["note"] = ("Instagram has no revoke endpoint: remove crosswatch under Settings > "
                          "Apps and websites in Instagram")
    deleted_token = store.delete(token_key(target_cfg.name))
    deleted_secret = store.delete(client_secret_key(target_cfg.name))
    result["deleted"] = deleted_token or deleted_secret
    return result


# ---------------------------------------------------------------------------------------------------
# Locks: one refresh at a time, across threads and processes


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(key, threading.Lock())


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` held for the block (blocks until it is free)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def refresh_lock(state_dir: Path, target_name: str) -> Iterator[None]:
    path = state_dir / "locks" / f"auth-{target_name}.lock"
    with _thread_lock(str(path.resolve())), file_lock(path):
        yield


# ---------------------------------------------------------------------------------------------------
# Token providers (what the runner uses)


class TokenProvider(Protocol):
    def access_token(self) -> str: ...

    def force_refresh(self) -> str: ...

    def account_id(self) -> str | None: ...

    def username(self) -> str | None: ...

    def status(self) -> dict[str, Any]: ...


class _BaseProvider(abc.ABC):
    def __init__(self, cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                 clock: Clock = time.time) -> None:
        self.cfg = cfg
        self.store = store
        self.client = client
        self.state_dir = state_dir
        self.clock = clock
        self._handed_out: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.cfg.name!r})"

    @abc.abstractmethod
    def access_token(self) -> str:
        """A valid access token, refreshed first when it is near expiry."""

    @abc.abstractmethod
    def force_refresh(self) -> str:
        """A new access token after the platform refused the one handed out."""

    def status(self) -> dict[str, Any]:
        return status(self.cfg, self.store, clock=self.clock)

    def username(self) -> str | None:
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = load_tokens(self.store, self.cfg.name)
        return tokens.username if tokens else None

    def account_id(self) -> str | None:
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
        if tokens.account_id:
            return tokens.account_id
        # Imported without a lookup, or the lookup failed at sign-in: find out now and keep it.
        lookup = x_lookup_account if self.cfg.kind == "x" else instagram_lookup_account
        account_id, username = lookup(self.cfg, self.client, self.access_token())
        with refresh_lock(self.state_dir, self.cfg.name):
            current = self._load()
            save_tokens(self.store, self.cfg.name, replace(current, account_id=account_id, username=username))
        return account_id

    def _load(self) -> TokenSet:
        tokens = load_tokens(self.store, self.cfg.name)
        if tokens is None:
            raise AuthError(f"not signed in to {self.cfg.name}; {login_hint(self.cfg.name)}")
        if tokens.dead:
            raise AuthError(f"the {self.cfg.name} sign-in no longer works ({tokens.dead}); "
                            f"{login_hint(self.cfg.name)}")
        return tokens

    def _mark_dead(self, tokens: TokenSet, reason: str) -> None:
        current = load_tokens(self.store, self.cfg.name)
        # Only if nobody replaced the tokens meanwhile (a new sign-in must not be marked dead).
        if current is not None and current.access_token == tokens.access_token:
            save_tokens(self.store, self.cfg.name, replace(current, dead=reason))

    def _hand_out(self, tokens: TokenSet) -> str:
        self._handed_out = tokens.access_token
        return tokens.access_token


class XTokenProvider(_BaseProvider):
    """X tokens: 2-hour access tokens, single-use refresh tokens."""

    def _secret(self) -> str | None:
        return self.store.get(client_secret_key(self.cfg.name))

    def _needs_refresh(self, tokens: TokenSet, now: float) -> bool:
        remaining, lifetime = tokens.remaining(now), tokens.lifetime
        if remaining is None:
            return False
        margin = min(X_REFRESH_MARGIN, max(0.0, (lifetime or 0.0) * 0.2))
        return remaining <= margin

    def access_token(self) -> str:
        # Everything under the lock, reads included: a reader must never see a half-written
        # keyring entry, nor hand out a token whose refresh another thread is doing right now.
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
            if self._needs_refresh(tokens, self.clock()):
                tokens = self._refresh_or_keep(tokens)
            return self._hand_out(tokens)

    def _refresh_or_keep(self, tokens: TokenSet) -> TokenSet:
        """Refresh; when X cannot be reached, keep a token that has not expired yet."""
        try:
            return self._refresh_locked(tokens)
        except TransientPlatformError as exc:
            if not tokens.expired(self.clock()):
                log.warning("token refresh failed; the current token is still valid",
                            target=self.cfg.name, reason=str(exc))
                return tokens
            # Not a sign-in problem: the runner parks the target and asks again shortly.
            raise AuthError(f"the {self.cfg.name} token expired and could not be refreshed just now "
                            f"({exc}); crosswatch will try again") from None

    def force_refresh(self) -> str:
        """After a 401: a new token, unless another thread or process already replaced the one used."""
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
            if self._handed_out and tokens.access_token != self._handed_out:
                return self._hand_out(tokens)
            try:
                return self._hand_out(self._refresh_locked(tokens))
            except TransientPlatformError as exc:
                raise AuthError(f"the {self.cfg.name} token was refused and could not be refreshed just "
                                f"now ({exc}); crosswatch will try again") from None

    def _refresh_locked(self, tokens: TokenSet) -> TokenSet:
        """One refresh; the caller holds the lock and has just read ``tokens`` under it."""
        try:
            fresh = x_refresh(self.cfg, self.client, self._secret(), tokens, self.clock())
        except AuthError as exc:
            # The platform's words are kept with the dead sign-in, for `status` and `doctor` to show.
            self._mark_dead(tokens, exc.what if isinstance(exc, SignInRefused) else "X refused the refresh token")
            raise
        # Persist before use: the old refresh token is spent from this moment on.
        save_tokens(self.store, self.cfg.name, fresh)
        log.info("refreshed access token", target=self.cfg.name)
        return fresh


class InstagramTokenProvider(_BaseProvider):
    """Instagram long-lived tokens: 60 days, refreshable once at least 24 h old."""

    def _wants_refresh(self, tokens: TokenSet, now: float) -> bool:
        lifetime = tokens.lifetime
        if lifetime is None or lifetime <= 0:
            return False
        # Daily for real 60-day tokens; at half-life for the short ones an emulator hands out.
        return now - tokens.obtained_at >= min(INSTAGRAM_MIN_REFRESH_AGE, lifetime / 2)

    def access_token(self) -> str:
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
            now = self.clock()
            if tokens.expired(now):
                self._mark_dead(tokens, "the token expired")
                raise AuthError(f"the {self.cfg.name} token has expired; {login_hint(self.cfg.name)}")
            if self._wants_refresh(tokens, now):
                try:
                    tokens = self._refresh_locked(tokens)
                except (AuthError, TransientPlatformError) as exc:
                    # The current token is still valid: keep using it and try again another time.
                    log.warning("token refresh failed; the current token is still valid",
                                target=self.cfg.name, reason=str(exc))
            return self._hand_out(tokens)

    def force_refresh(self) -> str:
        """After the token was refused: a refresh is the only hope; if it fails, sign in again."""
        with refresh_lock(self.state_dir, self.cfg.name):
            tokens = self._load()
            if self._handed_out and tokens.access_token != self._handed_out:
                return self._hand_out(tokens)
            try:
                return self._hand_out(self._refresh_locked(tokens))
            except AuthError:
                self._mark_dead(tokens, "Instagram refused the token")
                raise
            except TransientPlatformError as exc:
                raise AuthError(f"the {self.cfg.name} token was refused and could not be refreshed just "
                                f"now ({exc}); crosswatch will try again") from None

    def _refresh_locked(self, tokens: TokenSet) -> TokenSet:
        fresh = instagram_refresh(self.cfg, self.client, tokens, self.clock())
        save_tokens(self.store, self.cfg.name, fresh)
        log.info("refreshed access token", target=self.cfg.name)
        return fresh


def token_provider(target_cfg: TargetConfig, store: SecretStore, client: httpx.Client, state_dir: Path,
                   *, clock: Clock = time.time) -> TokenProvider:
    if target_cfg.kind == "x":
        return XTokenProvider(target_cfg, store, client, state_dir, clock)
    if target_cfg.kind == "instagram":
        return InstagramTokenProvider(target_cfg, store, client, state_dir, clock)
    raise UsageError(f"target {target_cfg.name} ({target_cfg.kind}) has no tokens")
