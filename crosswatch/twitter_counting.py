"""twitter-text (X's own counting and URL-finding rules), imported when first needed and without pkg_resources.

Importing twitter_text builds its emoji pattern from a 400 KB list, and its ``twitter_text.regexp.emoji``
reads that list with ``pkg_resources.resource_string``. pkg_resources comes with setuptools, which
twitter-text-parser does not require: it is missing from a venv of Python 3.12 and later, and setuptools 81 and
later no longer have it, so a plain ``import twitter_text`` fails there; where it is present, importing it
costs more than twitter-text's own work. So the commands that never count an X post (``status``, ``queue``, ``--help``)
never import it, and the ones that do import it with a stand-in ``pkg_resources`` that offers just that one
call (read a file beside the module), taken out of ``sys.modules`` again straight after. Measured by
bench/bench_startup.py (``--importtime``).

Captions that may hold a URL (a licence's address, "6:40 a.m.") need twitter-text's answer, and ``queue``
composes the captions of the jobs awaiting approval as they will be posted. So its answers are kept in a
small file in the state dir (``remember_in``, set by the command line once it has the config): keyed by a
hash of the question and the text (the text itself is not kept), at most ``_MAX_ANSWERS`` of them, written
atomically (another file renamed over it), read only when its format and twitter-text's installed files
are those that gave the answers; a corrupt, foreign or stale file, or an answer of the wrong shape, is
ignored and asked anew. The process that composed a caption first (the daemon's intake, or ``preview``)
has paid for twitter-text already; a later ``queue`` that composes the same captions reads them here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import threading
import types
import unicodedata
from pathlib import Path
from typing import Any

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
    else by twitter-text itself (or its answer as kept, ``remember_in``)."""
    plain = _plain_length(text)
    if plain is not None:
        return plain
    return _ANSWERS.length(text)


def contains_url(text: str) -> bool:
    """Whether X's autolinker finds a URL in ``text`` (twitter-text asked only where one could be)."""
    return bool(url_spans(text))


def url_spans(text: str) -> list[tuple[int, int]]:
    """Where X's autolinker finds a URL in ``text`` (bare domains too), as string indices."""
    return _ANSWERS.spans(text, "urls") if may_hold_url(text) else []


def protocol_url_spans(text: str) -> list[tuple[int, int]]:
    """Where twitter-text finds a URL with its scheme (``extract_urls_without_protocol=False``, as
    Mastodon counts), as string indices; none without a ":" (twitter-text's own shortcut)."""
    return _ANSWERS.spans(text, "protocol_urls") if ":" in text else []


def may_hold_url(text: str) -> bool:
    """False where X's autolinker cannot find a URL: no dot before a label and no "://"."""
    return _URL_POSSIBLE.search(text) is not None


def remember_in(path: Path | None) -> None:
    """Keep twitter-text's answers in ``path`` (in the state dir), or, with None, nowhere."""
    _ANSWERS.use(path)


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


# ---------------------------------------------------------------------------------------------------
# twitter-text's answers, kept between processes (see the module's docstring)

_FORMAT = "crosswatch twitter-text answers 1"
_MAX_ANSWERS = 2000  # a few hundred bytes of file per composed caption: some 100 KB at most
_MAX_FILE_BYTES = 1_000_000  # a bigger file is not one of ours


class _Answers:
    """twitter-text's answers for this process, and the file that keeps them between processes."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.kept: dict[str, Any] | None = None  # read from the file on the first question
        self.library = ""
        # The daemon counts from several threads (intake, runner, console): one at a time reads,
        # changes and writes the answers, so none sees the dict change under it.
        self.lock = threading.Lock()

    def use(self, path: Path | None) -> None:
        with self.lock:
            self.path, self.kept = path, None

    def length(self, text: str) -> int:
        kept = self._kept("length", text)
        if isinstance(kept, int) and not isinstance(kept, bool) and kept >= 0:
            return kept
        counted = int(twitter_text().parse_tweet(text).weightedLength)
        self._keep("length", text, counted)
        return counted

    def spans(self, text: str, question: str) -> list[tuple[int, int]]:
        kept = self._kept(question, text)
        if isinstance(kept, list) and all(_is_span(span, len(text)) for span in kept):
            return [(start, end) for start, end in kept]
        found = twitter_text().extract_urls_with_indices(text, extract_urls_without_protocol=question == "urls")
        spans = [(int(u["indices"][0]), int(u["indices"][1])) for u in found]
        self._keep(question, text, [list(span) for span in spans])
        return spans

    def _kept(self, question: str, text: str) -> Any:
        with self.lock:
            if self.path is None:
                return None
            if self.kept is None:
                self.library = _library_stamp()
                self.kept = _read_answers(self.path, self.library)
            return self.kept.get(_key(question, text))

    def _keep(self, question: str, text: str, answer: Any) -> None:
        with self.lock:
            if self.path is None or self.kept is None:
                return
            self.kept.pop(_key(question, text), None)
            self.kept[_key(question, text)] = answer  # the newest last: the oldest go first
            while len(self.kept) > _MAX_ANSWERS:
                del self.kept[next(iter(self.kept))]
            _write_answers(self.path, {"format": _FORMAT, "library": self.library, "answers": self.kept})


def _key(question: str, text: str) -> str:
    import hashlib  # only where a caption may hold a URL

    return hashlib.sha256(f"{question}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _is_span(span: Any, length: int) -> bool:
    return (isinstance(span, list) and len(span) == 2 and all(type(i) is int for i in span)
            and 0 <= span[0] <= span[1] <= length)


def _library_stamp() -> str:
    """Which twitter-text gave the answers: its installed files' place and time (an upgrade changes it),
    found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("twitter_text")
    if spec is None or spec.origin is None:
        return ""
    stat = os.stat(spec.origin)
    return f"{Path(spec.origin).parent} {stat.st_mtime_ns} {stat.st_size}"


def _read_answers(path: Path, library: str) -> dict[str, Any]:
    """The answers in ``path``; none where it is missing, unreadable, too big, not ours, or from
    another twitter-text."""
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_FILE_BYTES + 1)
        document = json.loads(raw) if len(raw) <= _MAX_FILE_BYTES else None
    except (OSError, ValueError):
        return {}
    if (not isinstance(document, dict) or document.get("format") != _FORMAT or not library
            or document.get("library") != library or not isinstance(document.get("answers"), dict)):
        return {}
    return dict(document["answers"])


def _write_answers(path: Path, document: dict[str, Any]) -> None:
    """Write the file whole or not at all (a reader sees the old one or the new one); a cache, so a
    failure (no state dir yet, a full disk) only means asking twitter-text again next time."""
    if not path.parent.is_dir():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(document, file, separators=(",", ":"))
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


_ANSWERS = _Answers()
