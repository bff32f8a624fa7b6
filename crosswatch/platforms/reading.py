"""Lenient readers for platform answers (pure): a strange body or value becomes None, never an error.

Parsing must never raise on what a platform sends (design.md: a step returns an outcome), so every
target and the bridge read JSON through these.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body, or None when there is none or it is not JSON."""
    try:
        return json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return None


def text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def integer(value: Any) -> int | None:
    """An int, or a string holding one (Graph sends both); booleans are not numbers here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def id_string(value: Any) -> str | None:
    """A platform id as a string: ids are strings of digits, but a number is taken rather than refused."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def graph_time(value: Any) -> float | None:
    """Graph's ``2026-11-29T08:51:47+0000`` as epoch seconds; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def iso_time(value: Any) -> float | None:
    """An ISO 8601 time (``2026-11-29T08:51:47.000Z``, Graph's ``+0000``) as epoch seconds; None when it
    is not one or names no time zone."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return graph_time(value)
    return moment.timestamp() if moment.tzinfo is not None else None
