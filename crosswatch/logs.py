"""Logging with structlog: key=value on a terminal, JSON under systemd, and secrets redacted.

The redaction processor runs last before rendering, on every event: values under secret-sounding
keys are replaced, any string known to be a secret (``register_secret``, called by the token store
for every token it loads or receives) is masked wherever it appears, and so is anything shaped like a
bearer token (a long run of base64url characters mixing upper case, lower case and digits).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

REDACTED = "[redacted]"

_SECRET_KEYS = re.compile(r"token|secret|password|passwd|authorization|cookie|code_verifier|api_key",
                          re.IGNORECASE)
# Hex digests (lower case only) and ordinary words do not match: a token-like run mixes cases and digits.
_TOKEN_SHAPE = re.compile(r"(?<![A-Za-z0-9\-_~+=])(?=[A-Za-z0-9\-_~+=]*[a-z])(?=[A-Za-z0-9\-_~+=]*[A-Z])"
                          r"(?=[A-Za-z0-9\-_~+=]*[0-9])[A-Za-z0-9\-_~+=]{32,}")

_known_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask this exact string in every later log line (tokens, client secrets)."""
    if value and len(value) >= 8:
        with _secrets_lock:
            _known_secrets.add(value)


def redact_text(text: str) -> str:
    with _secrets_lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _TOKEN_SHAPE.sub(REDACTED, text)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEYS.search(key) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


class LazyLogger:
    """``structlog.get_logger(name)``, with structlog imported at the first log call rather than with the
    module: structlog brings asyncio, which costs more than `status` or `queue` take to run
    (bench/bench_startup.py)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):  # not a log method (copy, pickle probing): never recurse on _logger
            raise AttributeError(method)
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)  # a proxy: it follows later configure() calls
        return getattr(self._logger, method)


def under_systemd() -> bool:
    return bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog for this process; safe to call more than once."""
    import structlog

    use_json = fmt == "json" or (fmt == "auto" and under_systemd())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"], drop_missing=True)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=False),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
