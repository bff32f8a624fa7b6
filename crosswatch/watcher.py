"""Folder intake: watchdog events plus scans, settle detection, and recording photos in the journal.

Events only say where to look. A file is taken when it is complete: its size and mtime have not
changed for the folder's settle time and it decodes as an image. Scans at start-up and every
``intake.rescan_seconds`` find whatever events were missed (inotify drops events when its queue
overflows, and the daemon may have been stopped); files whose size and mtime match what the journal
already took are skipped without being read.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import functools
import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog
from PIL import Image, UnidentifiedImageError

from crosswatch import albums
from crosswatch.config import Config, MediaConfig, WatchFolder
from crosswatch.crashpoints import crashpoint
from crosswatch.errors import BadPhoto
from crosswatch.journal import IntakeResult, Journal, NewAlbum, NewFile, printable_path
from crosswatch.media_source import HEIC_HINT, bomb_reason, collected_warnings, readable_formats, too_many_pixels
from crosswatch.metadata import read_metadata
from crosswatch.models import Metadata
from crosswatch.photofile import NotRegularFile, open_photo
from crosswatch.rules import route

log = structlog.get_logger("crosswatch.intake")

# Names that editors, browsers, sync tools and Lightroom use while a file is still being written.
TEMPORARY_PATTERNS = (
    ".*", "*~", "~$*", "#*#", "*.tmp", "*.temp", "*.part", "*.partial", "*.crdownload", "*.download",
    "*.swp", "*.swx", "*.lrtmp", "*.!sync", "*.sb-*",
)

BATCH_SIZE = 200


@dataclass
class _Candidate:
    folder: WatchFolder
    size: int
    mtime_ns: int
    stable_since: float


# Globs are compiled once into one regex per list: a rescan asks is_wanted of every file in the tree.
@functools.lru_cache(maxsize=64)
def _glob_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for a list of globs, matched against lower-cased names; None for no globs."""
    if not patterns:
        return None
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns))


_TEMPORARY = _glob_regex(TEMPORARY_PATTERNS)


def is_wanted(name: str, folder: WatchFolder) -> bool:
    """Whether a file name is one intake should look at, by the folder's globs (case-insensitive)."""
    lowered = name.lower()
    if _TEMPORARY is not None and _TEMPORARY.match(lowered):
        return False
    include = _glob_regex(folder.include)
    if include is None or not include.match(lowered):
        return False
    exclude = _glob_regex(folder.exclude)
    return exclude is None or not exclude.match(lowered)


def _file_stat(path: str) -> os.stat_result:
    """A file's size and mtime as intake compares them: a symbolic link's are its target's (what
    is read and hashed; the link's own never change), a dangling link's its own."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            return os.stat(path)
    return st


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def check_image(handle: BinaryIO, media: MediaConfig) -> str | None:
    """None when the opened file decodes as an image, else the reason it does not.

    JPEGs are decoded at 1/8 scale in the DCT domain: every byte is still read (a truncated file
    still fails), at a fraction of the cost of a full decode. The formats and the HEIF plugin are
    media_source's, so intake takes exactly what preparation can read.
    """
    handle.seek(0)
    formats = readable_formats(handle.read(16))
    if formats is None:
        return HEIC_HINT
    handle.seek(0)
    try:
        # Pillow's warnings (its decompression-bomb one among them: the pixel count is checked
        # against media.max_pixels below, before anything is decoded) are not intake's reasons.
        with collected_warnings([]):
            image = Image.open(handle, formats=formats)
        with image:
            too_big = too_many_pixels(image.width, image.height, media)
            if too_big:
                return too_big
            if image.format == "JPEG":
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except UnidentifiedImageError:
        return "not an image this version can read (is it really a photo?)"
    except Image.DecompressionBombError as exc:
        return bomb_reason(exc, media)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return f"the image is damaged or incomplete ({exc})"
    return None


class Intake:
    """Turns paths (from events or scans) into journaled photos once they have settled."""

    def __init__(self, config: Config, journal: Journal, *, clock: Callable[[], float] = time.time,
                 on_new_jobs: Callable[[], None] | None = None) -> None:
        self.config = config
        self.journal = journal
        self._clock = clock
        self._on_new_jobs = on_new_jobs
        self._lock = threading.Lock()
        self._candidates: dict[str, _Candidate] = {}
        self._taken = journal.files_seen()
        self._roots = [(folder, folder.path.resolve()) for folder in config.watch]

    # -- where paths come from ---------------------------------------------------------------------

    def offer(self, path: str) -> None:
        """A path may have new content (a file event); it is looked at on the next ``process``."""
        folder = self._folder_for(path)
        if folder is None or not is_wanted(os.path.basename(path), folder):
            return
        self._observe(path, folder)

    def scan(self) -> int:
        """Walk every folder and offer files the journal has not taken as they are; returns how many."""
        offered = 0
        for folder, _root in self._roots:
            for path in self._walk(folder):
                try:
                    st = _file_stat(path)
                except OSError:
                    continue
                if self._taken.get(path) == (st.st_size, st.st_mtime_ns):
                    continue
                self._observe(path, folder, st)
                offered += 1
        return offered

    def untaken(self) -> list[tuple[str, WatchFolder]]:
        """The regular files in the folders that the journal has not taken as they are now: a dry run
        of ``scan`` that offers and records nothing (to count what a new journal would post)."""
        found = []
        for folder, _root in self._roots:
            for path in self._walk(folder):
                with contextlib.suppress(OSError):
                    st = os.lstat(path)
                    if stat.S_ISREG(st.st_mode) and self._taken.get(path) != (st.st_size, st.st_mtime_ns):
                        found.append((path, folder))
        return found

    def _walk(self, folder: WatchFolder) -> Iterable[str]:
        root = str(folder.path)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            # Hidden folders (.git, .thumbnails, Lightroom's previews) hold nothing to post.
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            if not folder.recursive:
                dirnames.clear()
            for name in filenames:
                if is_wanted(name, folder):
                    yield os.path.join(dirpath, name)

    def _folder_for(self, path: str) -> WatchFolder | None:
        absolute = Path(os.path.abspath(path))
        for folder, root in self._roots:
            if _inside(absolute, root) or _inside(absolute, folder.path):
                if not folder.recursive and absolute.parent not in (root, folder.path):
                    continue
                return folder
        return None

    def _observe(self, path: str, folder: WatchFolder, st: os.stat_result | None = None) -> None:
        if st is None:
            try:
                st = _file_stat(path)
            except OSError:
                return
        if stat.S_ISDIR(st.st_mode):
            return
        now = self._clock()
        with self._lock:
            known = self._candidates.get(path)
            if known and (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns):
                return
            self._candidates[path] = _Candidate(folder, st.st_size, st.st_mtime_ns,
                                                self._stable_since(st, now))

    def _stable_since(self, st: os.stat_result, now: float) -> float:
        # A file whose mtime is already older than now has not been written since then; trust it, so
        # files found at start-up are taken without waiting another settle period.
        return min(now, st.st_mtime_ns / 1e9)

    # -- taking settled files ----------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return len(self._candidates)

    def process(self) -> list[IntakeResult]:
        """Take every candidate that has settled, and every album that has gone quiet; returns what
        was recorded."""
        results: list[IntakeResult] = self._take_albums()
        settled = self._settled()
        for start in range(0, len(settled), BATCH_SIZE):
            batch = [f for f in (self._read(p, c) for p, c in settled[start:start + BATCH_SIZE]) if f]
            if not batch:
                continue
            crashpoint("intake:before-commit")
            results.extend(self._add_files(batch))
            crashpoint("intake:after-commit")
            for new_file, result in zip(batch, results[-len(batch):], strict=True):
                self._taken[new_file.path] = (new_file.size, new_file.mtime_ns)
                self._log_taken(new_file, result)
            with self._lock:
                for new_file in batch:
                    candidate = self._candidates.get(new_file.path)
                    if candidate and (candidate.size, candidate.mtime_ns) == (new_file.size, new_file.mtime_ns):
                        del self._candidates[new_file.path]
        if any(r.outcome == "new" for r in results) and self._on_new_jobs:
            self._on_new_jobs()
        return results

    def _settled(self) -> list[tuple[str, _Candidate]]:
        now = self._clock()
        ready: list[tuple[str, _Candidate]] = []
        with self._lock:
            items = list(self._candidates.items())
        for path, candidate in items:
            try:
                st = _file_stat(path)
            except OSError:
                with self._lock:
                    self._candidates.pop(path, None)  # gone (moved away or deleted before settling)
                continue
            if (st.st_size, st.st_mtime_ns) != (candidate.size, candidate.mtime_ns):
                with self._lock:
                    candidate.size, candidate.mtime_ns = st.st_size, st.st_mtime_ns
                    candidate.stable_since = now
                continue
            album = albums.album_of(path, candidate.folder)
            if album is not None and not self.journal.album_taken(album):
                continue  # taken with its album, once the whole folder is quiet (_take_albums)
            if now - candidate.stable_since >= candidate.folder.settle_seconds:
                ready.append((path, candidate))
        return ready

    def _add_files(self, batch: list[NewFile]) -> list[IntakeResult]:
        """Record settled single files; one that arrived in an album already taken is late and
        follows its folder's ``late`` policy."""
        on_change = self.config.intake.on_change
        results: list[IntakeResult] = []
        singles: list[NewFile] = []
        for new_file in batch:
            folder = self._folder_for(new_file.path)
            album = albums.album_of(new_file.path, folder) if folder is not None else None
            if album is None or folder is None:
                singles.append(new_file)
                continue
            if singles:
                results.extend(self.journal.add_files(singles, on_change=on_change))
                singles = []
            results.append(self.journal.add_late_file(album, new_file, post=folder.late == "new_post",
                                                      on_change=on_change))
            log.info("late photo in an album already taken", path=printable_path(new_file.path),
                     album=printable_path(album), late=folder.late)
        if singles:
            results.extend(self.journal.add_files(singles, on_change=on_change))
        return results

    # -- albums ------------------------------------------------------------------------------------

    def _take_albums(self) -> list[IntakeResult]:
        """Record every album whose folder has been quiet for its settle time."""
        waiting: dict[str, list[tuple[str, _Candidate]]] = {}
        with self._lock:
            items = list(self._candidates.items())
        for path, candidate in items:
            album = albums.album_of(path, candidate.folder)
            if album is not None:
                waiting.setdefault(album, []).append((path, candidate))
        results = []
        for album, members in waiting.items():
            if self.journal.album_taken(album):
                continue  # its files are late: _settled takes them one by one
            folder = members[0][1].folder
            if not self._album_quiet(album, folder, members):
                continue
            result = self._take_album(album, folder, members)
            if result is not None:
                results.append(result)
        return results

    def _album_quiet(self, album: str, folder: WatchFolder, members: list[tuple[str, _Candidate]]) -> bool:
        """Whether no file of the album has changed for ``album_settle_seconds``; a file of the folder
        not yet a candidate (its event is still to come) is made one, and the album waits."""
        now = self._clock()
        known = {path for path, _ in members}
        newest = max(candidate.stable_since for _, candidate in members)
        for path in self._walk_album(album, folder):
            if path not in known:
                self._observe(path, folder)
                return False
        for path, candidate in members:
            try:
                st = _file_stat(path)
            except OSError:
                with self._lock:
                    self._candidates.pop(path, None)
                return False
            if (st.st_size, st.st_mtime_ns) != (candidate.size, candidate.mtime_ns):
                with self._lock:
                    candidate.size, candidate.mtime_ns, candidate.stable_since = st.st_size, st.st_mtime_ns, now
                return False
        return now - newest >= folder.album_settle_seconds

    def _walk_album(self, album: str, folder: WatchFolder) -> Iterable[str]:
        for dirpath, dirnames, filenames in os.walk(album, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if is_wanted(name, folder):
                    yield os.path.join(dirpath, name)

    def _take_album(self, album: str, folder: WatchFolder,
                    members: list[tuple[str, _Candidate]]) -> IntakeResult | None:
        read = [self._read(path, candidate) for path, candidate in members]
        files = [f for f in read if f is not None]
        if len(files) != len(read):
            return None  # a file changed while it was read: the album is looked at again
        new_album = self._album(album, folder, files)
        crashpoint("intake:before-commit")
        result = self.journal.add_album(new_album)
        crashpoint("intake:after-commit")
        with self._lock:
            for new_file in files:
                self._taken[new_file.path] = (new_file.size, new_file.mtime_ns)
                self._candidates.pop(new_file.path, None)
        log.info("album taken", album=printable_path(album), photos=len(new_album.members),
                 left_out=len(new_album.left_out), outcome=result.outcome)
        if result.outcome == "new" and self._on_new_jobs:
            self._on_new_jobs()
        return result

    def _album(self, album: str, folder: WatchFolder, files: list[NewFile]) -> NewAlbum:
        """The album's members in order, per target the photos the rules keep back, and its jobs' data."""
        readable = [f for f in files if f.reason is None]
        metadata: dict[str, Metadata] = {}
        for new_file in readable:
            with contextlib.suppress(BadPhoto):
                metadata[new_file.path] = read_metadata(Path(new_file.path))
        by_path = {f.path: f for f in readable}
        order = [by_path[p] for p in albums.ordered(list(by_path), metadata, folder.album_order)]
        targets = folder.targets
        # Left out of the whole album: unreadable, or kept back by the rules for every target.
        left_out = [(f, f.reason or "") for f in files if f.reason is not None]
        left_out += [(f, "; ".join(sorted(set(f.skipped.values())))) for f in order
                     if targets and all(t in f.skipped for t in targets)]
        members = [f for f in order if not (targets and all(t in f.skipped for t in targets))]
        data: dict[str, dict[str, object]] = {}
        rejected: dict[str, str] = {}
        try:
            albums.read_album_text(Path(album))
        except BadPhoto as exc:
            rejected = dict.fromkeys(targets, str(exc))
        for target in targets:
            posted = [f for f in order if target not in f.skipped]
            kept_back = [{"path": f.path, "reason": f.skipped[target]} for f in order if target in f.skipped]
            kept_back += [{"path": f.path, "reason": f.reason} for f in files if f.reason is not None]
            data[target] = {"album": {"folder": album, "members": [{"path": f.path, "hash": f.content_hash}
                                                                     for f in posted],
                                      "left_out": kept_back}}
            if not posted and target not in rejected:
                rejected[target] = (f"no photo of the album {printable_path(album)} may go to {target}: "
                                    + "; ".join(sorted({str(k["reason"]) for k in kept_back})))
        digest = hashlib.sha256(b"album\0" + "\0".join(f.content_hash for f in order).encode()).hexdigest()
        approval = frozenset(t for t in targets if self.config.needs_approval(t))
        return NewAlbum(folder=album, content_hash="album-" + digest, size=sum(f.size for f in files),
                        mtime_ns=max((f.mtime_ns for f in files), default=0), members=members,
                        left_out=left_out, targets=targets, data=data, rejected=rejected, approval=approval)

    def _read(self, path: str, candidate: _Candidate) -> NewFile | None:
        """Hash and check one settled file; None when it changed under us (it is looked at again)."""
        targets = candidate.folder.targets
        outside = self._leads_outside(path, candidate.folder)
        if outside:
            return self._rejected(path, candidate, targets, outside)
        # A link leading inside is followed; anything else must not turn into one before the open.
        follow = os.path.islink(path)
        try:
            with open_photo(path, follow_symlinks=follow) as handle:
                st = os.fstat(handle.fileno())
                if (st.st_size, st.st_mtime_ns) != (candidate.size, candidate.mtime_ns):
                    return None
                if st.st_size > self.config.media.max_input_bytes:
                    return self._rejected(path, candidate, targets,
                                          f"file is larger than media.max_input_bytes ({st.st_size} bytes)")
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
                # Checked on the descriptor just hashed: what is decoded is what was hashed.
                reason = "empty file (0 bytes)" if st.st_size == 0 else check_image(handle, self.config.media)
        except NotRegularFile as exc:
            if stat.S_ISLNK(exc.mode):
                return None  # replaced by a link since it was looked at: looked at again as one
            return self._rejected(path, candidate, targets, exc.reason)
        except PermissionError:
            return self._rejected(path, candidate, targets, "cannot be read: permission denied")
        except OSError as exc:
            if exc.errno == errno.ELOOP and not follow:
                return None  # as above, caught by O_NOFOLLOW
            return self._rejected(path, candidate, targets, f"cannot be read: {exc.strerror or exc}")
        skipped: dict[str, str] = {}
        if reason is None:
            skipped = self._ruled_out(path, targets)
        approval = frozenset(t for t in targets if self.config.needs_approval(t))
        return NewFile(path=path, size=candidate.size, mtime_ns=candidate.mtime_ns, content_hash=digest,
                       targets=targets, reason=reason, skipped=skipped, approval=approval)

    def _ruled_out(self, path: str, targets: tuple[str, ...]) -> dict[str, str]:
        """Per target the rules keep this photo back from, why."""
        try:
            metadata = read_metadata(Path(path))
        except BadPhoto:
            return {}  # it decoded as an image; preparation will say what is wrong with it
        return {target: why for target, why in route(self.config, targets, metadata).items() if why}

    @staticmethod
    def _rejected(path: str, candidate: _Candidate, targets: tuple[str, ...], reason: str) -> NewFile:
        # Content that cannot be read is identified by where it was and when, not by its bytes.
        identity = hashlib.sha256(
            os.fsencode(path) + f"|{candidate.size}|{candidate.mtime_ns}".encode()
        ).hexdigest()
        return NewFile(path=path, size=candidate.size, mtime_ns=candidate.mtime_ns,
                       content_hash="unread:" + identity, targets=targets, reason=reason)

    def _leads_outside(self, path: str, folder: WatchFolder) -> str | None:
        if not os.path.islink(path):
            return None
        real = Path(os.path.realpath(path))
        if _inside(real, folder.path.resolve()):
            return None
        return "a symbolic link that leads outside the watched folder (not followed)"

    def _log_taken(self, new_file: NewFile, result: IntakeResult) -> None:
        shown = printable_path(new_file.path)
        if new_file.reason:
            log.warning("photo rejected", path=shown, reason=new_file.reason)
        elif result.outcome == "duplicate":
            log.info("same content already known", path=shown, photo=result.photo_id)
        elif result.outcome == "changed":
            log.info("new content at a path already posted; skipped (intake.on_change: skip)", path=shown)
        else:
            log.info("photo taken", path=shown, photo=result.photo_id)


class Watcher:
    """watchdog observers over every folder, feeding ``Intake.offer``."""

    def __init__(self, config: Config, intake: Intake) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        self._intake = intake

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
                    return
                target = getattr(event, "dest_path", "") or event.src_path
                intake.offer(os.fsdecode(target))

        self._observer = Observer()
        handler = _Handler()
        for folder in config.watch:
            self._observer.schedule(handler, str(folder.path), recursive=folder.recursive)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
