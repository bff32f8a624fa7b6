"""HTTP helpers every sign-in shares: sending, reading OAuth answers, keeping secrets out of words.

Tokens travel in ``Authorization`` headers, except where a platform only takes them in the query
(Instagram's token exchange and refresh); for those, a logging filter redacts them from httpx's
request log line. Platform error text is scrubbed of tokens, codes and secrets before it is shown.
"""

from __future__ import annotations

import base64
import logging
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx

from crosswatch.config import TargetConfig
from crosswatch.errors import ConfigError, TransientPlatformError
from crosswatch.logs import redact_text


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


def send(client: httpx.Client, request: httpx.Request, what: str) -> httpx.Response:
    install_log_redaction()
    try:
        return client.send(request)
    except httpx.HTTPError as exc:
        # httpx's message can carry the URL (and with it a query token): name only the host.
        raise TransientPlatformError(f"{what}: cannot reach {request.url.host} "
                                     f"({type(exc).__name__}); try again") from None


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def oauth_error_text(response: httpx.Response) -> str:
    """The platform's own error words from any of the shapes X and Meta use: OAuth's ``error`` and
    ``error_description``, an RFC 7807 problem's ``title``/``detail``, and the messages of an
    ``errors[]`` list (X's invalid-request problems and its v1.1-style ``{"errors":[{"code","message"}]}``)."""
    body = json_object(response)
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
    """``oauth_error_text`` made safe to show: the given secrets (tokens, code, verifier, client
    secret) replaced, then everything the log redaction masks (registered secrets, token-shaped
    strings), and cut to one readable line."""
    words = redact_text(scrub(oauth_error_text(response), *secrets))
    words = " ".join(words.split())
    return words if len(words) <= 300 else words[:297] + "..."


def basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 2.3.1: form-encode both parts before joining them.
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def with_query(url: str, params: Mapping[str, str]) -> str:
    # quote, not quote_plus: X's docs ask for %20 between scopes.
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return url + ("&" if "?" in url else "?") + query


def need_client_id(cfg: TargetConfig) -> str:
    if not cfg.client_id:
        raise ConfigError("is required to sign in: the app's client id from the developer console",
                          key=f"targets.{cfg.name}.client_id")
    return cfg.client_id

