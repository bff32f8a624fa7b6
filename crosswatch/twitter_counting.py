"""twitter-text (X's own counting and URL-finding rules), imported when first needed and without pkg_resources.

Importing twitter_text builds its emoji pattern from a 400 KB list, and its ``twitter_text.regexp.emoji``
reads that list with ``pkg_resources.resource_string``. pkg_resources comes with setuptools, which
twitter-text-parser does not require: it is missing from a venv of Python 3.12 and later, and setuptools 81 and
later no longer have it, so a plain ``import twitter_text`` fails there; where it is present, importing it
costs more than twitter-text's own work. So the commands that never count an X post (``status``, ``queue``, ``--help``)
never import it, and the ones that do import it with a stand-in ``pkg_resources`` that offers just that one
call (read a file beside the module), taken out of ``sys.modules`` again straight after. Measured by
bench/bench_startup.py (``--importtime``).
"""

from __future__ import annotations

import functools
import re
import sys
import types
import unicodedata
from pathlib import Path

# Characters that weigh 1 in twitter-text v3 (its ranges start at U+0000-U+10FF), but for © and ®,
# which its emoji pattern takes as emoji (2 each); every other emoji, variation selector, joiner or
# keycap mark lies above U+10FF.
_LAST_LIGHT = 0x10FF
_EMOJI_AMONG_LIGHT = frozenset("\u00a9\u00ae")
# Where a URL could start for X's autolinker: a domain needs a dot followed by its next label (a
# letter, digit or non-ASCII character), and a scheme needs "://". Text with neither holds no URL.
_URL_POSSIBLE = re.compile(r"\.[^\s!-/:-@\[-`{-~]|://")


def weighted_length(text: str) -> int:
    """X's weighted length of ``text`` (twitter-text v3): counted here when every character weighs 1
    and no URL can be in it (most captions; importing twitter-text costs 0.2 s of a command's start),
    else by twitter-text itself."""
    plain = _plain_length(text)
    if plain is not None:
        return plain
    return int(twitter_text().parse_tweet(text).weightedLength)


def contains_url(text: str) -> bool:
    """Whether X's autolinker finds a URL in ``text`` (twitter-text asked only where one could be)."""
    return may_hold_url(text) and bool(twitter_text().extract_urls(text))


def may_hold_url(text: str) -> bool:
    """False where X's autolinker cannot find a URL: no dot before a label and no "://"."""
    return _URL_POSSIBLE.search(text) is not None


def _plain_length(text: str) -> int | None:
    """The weighted length where every character weighs 1 or is © or ® (2), after NFC as twitter-text
    counts, and no URL can be in it; else None."""
    normal = unicodedata.normalize("NFC", text)
    if _URL_POSSIBLE.search(normal) or any(ord(ch) > _LAST_LIGHT for ch in normal):
        return None
    return len(normal) + sum(normal.count(mark) for mark in _EMOJI_AMONG_LIGHT)


def _resource_string(module: str, name: str) -> bytes:
    """``pkg_resources.resource_string`` for a file beside a module (as twitter_text uses it)."""
    return Path(str(sys.modules[module].__file__)).with_name(name).read_bytes()


@functools.cache
def twitter_text() -> types.ModuleType:
    if sys.modules.get("pkg_resources") is not None:  # imported already by something else: use it
        import twitter_text as loaded

        return loaded
    stand_in = types.ModuleType("pkg_resources", "crosswatch's stand-in while twitter_text is imported")
    stand_in.resource_string = _resource_string  # type: ignore[attr-defined]
    absent = object()
    before = sys.modules.get("pkg_resources", absent)
    sys.modules["pkg_resources"] = stand_in
    try:
        import twitter_text as loaded
    finally:
        if sys.modules.get("pkg_resources") is stand_in:
            if before is absent:
                del sys.modules["pkg_resources"]
            else:
                sys.modules["pkg_resources"] = before  # type: ignore[assignment]
    return loaded
