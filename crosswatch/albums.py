"""Albums (``watch[].albums: folder``): each sub-folder of a watched folder is one multi-image post.

What is decided here, for intake (watcher.py), jobs.py, preview and status:

- which album a path belongs to (the first-level sub-folder of the watched folder it lies in);
- the album's order (file name, or capture time with the name breaking ties);
- its caption's metadata: ``album.yaml`` beside the photos (title, description, keywords) over the
  first photo's; keywords merged from all; creators merged, so the credit names each of them once
  (one line when they all agree);
- how the images are split into posts for a platform that takes at most N per post: with replies
  (``overflow: thread``) every N become one post of a thread; otherwise (``overflow: first``, and
  always where the platform's steps make no replies: Instagram has none) only the first N go out and
  the rest are named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from crosswatch.config import WatchFolder
from crosswatch.errors import BadPhoto
from crosswatch.models import Caption, Metadata

ALBUM_FILE = "album.yaml"
ALBUM_KEYS = ("title", "description", "keywords")


@dataclass(frozen=True)
class AlbumText:
    """What ``album.yaml`` says (each field None or empty when it does not)."""

    title: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Split:
    """An album's images for one target: ``posts`` (each a list of member indexes, the first post
    first, the rest replies in order) and the members that do not go out, with why."""

    posts: tuple[tuple[int, ...], ...]
    not_posted: tuple[int, ...]
    why_not: str | None


def album_of(path: str, folder: WatchFolder) -> str | None:
    """The album folder ``path`` belongs to, or None when it is not in an album (albums off, or the
    file lies directly in the watched folder)."""
    if folder.albums != "folder":
        return None
    try:
        relative = Path(os.path.abspath(path)).relative_to(os.path.abspath(folder.path))
    except ValueError:
        return None
    if len(relative.parts) < 2:
        return None
    return os.path.join(os.path.abspath(folder.path), relative.parts[0])


def read_album_text(album: Path) -> AlbumText:
    """``album.yaml`` in the album folder, or an empty AlbumText. Raises BadPhoto (one line naming the
    file and what to do) when it is there but not usable."""
    path = album / ALBUM_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AlbumText()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadPhoto(f"{path} cannot be read ({exc}); fix or remove it") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise BadPhoto(f"{path}{line} is not valid YAML; fix it (keys: {', '.join(ALBUM_KEYS)})") from None
    if data is None:
        return AlbumText()
    if not isinstance(data, Mapping):
        raise BadPhoto(f"{path} must be a mapping with {', '.join(ALBUM_KEYS)}")
    unknown = sorted(str(k) for k in data if k not in ALBUM_KEYS)
    if unknown:
        raise BadPhoto(f"{path}: unknown key {unknown[0]!r}; use {', '.join(ALBUM_KEYS)}")
    return AlbumText(title=_text(data.get("title"), path, "title"),
                     description=_text(data.get("description"), path, "description"),
                     keywords=_keywords(data.get("keywords"), path))


def _text(value: Any, path: Path, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise BadPhoto(f"{path}: {key} must be text")
    return str(value).strip() or None


def _keywords(value: Any, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(k, str | int) and not isinstance(k, bool) for k in value):
        raise BadPhoto(f"{path}: keywords must be a list of words")
    return tuple(str(k).strip() for k in value if str(k).strip())


def ordered(paths: Sequence[str], metadata: Mapping[str, Metadata], order: str) -> list[str]:
    """The album's order: by file name, or by capture time (photos without one after those with,
    the file name breaking ties)."""
    def by_name(path: str) -> tuple[str, str]:
        return (os.path.basename(path).casefold(), path)
    if order != "capture_time":
        return sorted(paths, key=by_name)
    def by_time(path: str) -> tuple[int, str, tuple[str, str]]:
        taken = metadata.get(path, Metadata()).date_taken
        return (0 if taken else 1, taken or "", by_name(path))
    return sorted(paths, key=by_time)


def album_metadata(members: Sequence[Metadata], text: AlbumText) -> Metadata:
    """The metadata the album's caption is composed from: the first photo's, with album.yaml's title
    and description over it, every photo's keywords merged (album.yaml's first), and every creator
    named once; a copyright notice is kept only when all photos that have one agree."""
    if not members:
        return Metadata(title=text.title, description=text.description, keywords=text.keywords)
    first = members[0]
    keywords = _merged([text.keywords, *(m.keywords for m in members)])
    creators = _merged([m.creator for m in members])
    notices = {m.copyright.strip() for m in members if m.copyright and m.copyright.strip()}
    credits = {m.credit.strip() for m in members if m.credit and m.credit.strip()}
    return replace(first,
                   title=text.title or first.title,
                   description=text.description or (None if text.title else first.description),
                   keywords=keywords,
                   creator=creators,
                   copyright=first.copyright if len(notices) <= 1 else None,
                   credit=first.credit if len(credits) <= 1 else "; ".join(sorted(credits)))


def _merged(groups: Sequence[Sequence[str]]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item.casefold(), item)
    return tuple(seen.values())


def split(count: int, per_post: int, *, overflow: str, kind: str, replies: bool) -> Split:
    """How ``count`` images go out on a platform (``kind``) that takes ``per_post`` in one post and
    whose steps can (``replies``) or cannot post a reply."""
    per_post = max(1, per_post)
    indexes = tuple(range(count))
    if count <= per_post:
        return Split((indexes,), (), None)
    if overflow == "thread" and replies:
        posts = tuple(indexes[i:i + per_post] for i in range(0, count, per_post))
        return Split(posts, (), None)
    why = (f"no replies on {kind} to thread the rest onto: the first {per_post} of {count} went out"
           if not replies else f"overflow: first: only the first {per_post} of {count} went out")
    return Split((indexes[:per_post],), indexes[per_post:], why)


def reply_caption(caption: Caption, number: int, posts: int, alt_text: str | None) -> Caption:
    """The caption of an album's reply post ``number`` (from 0) of ``posts``: "n/N", the album's
    caption having gone with the first post."""
    words = f"{number + 1}/{posts}"
    return Caption(text=words, length=len(words), limit=caption.limit, alt_text=alt_text, hashtags=(), shortened=())
