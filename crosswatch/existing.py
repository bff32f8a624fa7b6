"""Photos already in the folders when the journal is not the one that saw them.

A journal started afresh where another was before (it was deleted, or lost with its disk) has
forgotten what was posted: posting every photo in the folders would post most of them twice. So is a
journal restored from a backup older than some photos. At the daemon's start, ``settle_existing_photos``
counts the files in the folders the journal has not taken (a dry run: nothing is offered or recorded)
and, in those two cases, does what the user chose (``run --existing``, else ``intake.existing``):

    ask   stop (exit 2) with how many there are and the choices
    skip  record them as handled: their jobs are rejected with SKIP_REASON (status lists them,
          `crosswatch retry ID` posts one after all), so they are never posted unasked
    post  post them, as if they were new

The very first start (no earlier journal: no state_dir/journal.id, no backup of another journal) posts
what is there, as always, and says how many it found. A daemon whose state folder was removed while
it ran writes journal.id back when it stops (daemon.py), so its next start is not taken for a first.
"""

from __future__ import annotations

import hashlib
import os
import time

import structlog

from crosswatch.config import Config, WatchFolder
from crosswatch.errors import UsageError
from crosswatch.journal import Journal, NewFile, read_marker, remember_journal, replaced_journal
from crosswatch.photofile import open_photo
from crosswatch.watcher import BATCH_SIZE, Intake

log = structlog.get_logger("crosswatch.intake")

SKIP_REASON = "present before the journal was restarted"
CHOICES = ("post", "skip")


def settle_existing_photos(config: Config, journal: Journal, choice: str) -> None:
    """Apply the rule above; raises UsageError (exit 2) when it must ask. Call it holding the daemon lock."""
    if not _needs_a_look(journal):
        if read_marker(journal.path) is None:
            if journal.count_photos() == 0:
                log.info("first start: posting the photos already in the folders",
                         count=len(Intake(config, journal).untaken()))
            remember_journal(journal.path, journal.journal_id)
        return
    found = Intake(config, journal).untaken()
    question = _question(journal, len(found))
    if found and choice not in CHOICES:
        raise UsageError(
            f"{question}. Choose: `crosswatch run --existing skip` records them as handled and posts only new "
            "photos, `--existing post` posts them (again); intake.existing in the config chooses for every such "
            "start")
    if found and choice == "skip":
        skipped = _record_skipped(journal, found)
        log.warning("photos already in the folders recorded as handled, not posted", count=skipped,
                    reason=SKIP_REASON)
    elif found:
        log.warning("posting the photos already in the folders, as chosen (existing: post)", count=len(found))
    journal.set_info("restored_from", None)
    remember_journal(journal.path, journal.journal_id)


def _needs_a_look(journal: Journal) -> bool:
    """Whether the journal is new where another was, or restored (else the folders are not walked here)."""
    return replaced_journal(journal) is not None or journal.info("restored_from") is not None


def _question(journal: Journal, found: int) -> str:
    """Why the photos found need the user's choice."""
    replaced = replaced_journal(journal)
    if replaced is not None:
        return (f"the journal {journal.path} is new, but this state folder had another before it ({replaced}): "
                f"{found} photos already in the watched folders may have been posted by it; "
                "`crosswatch journal restore` puts back its newest backup, if it has one")
    return (f"the journal {journal.path} was restored from the backup {journal.info('restored_from')}: {found} "
            "photos in the watched folders are not in it and may have been posted after it was taken")


def _record_skipped(journal: Journal, found: list[tuple[str, WatchFolder]]) -> int:
    files = [f for f in (_skipped_file(path, folder) for path, folder in found) if f is not None]
    for start in range(0, len(files), BATCH_SIZE):
        journal.add_files(files[start:start + BATCH_SIZE])
    return len(files)


def _skipped_file(path: str, folder: WatchFolder) -> NewFile | None:
    """A regular, settled file as a photo whose jobs are all rejected with SKIP_REASON. None for a file
    still being written (a new photo: intake takes it) or one that cannot be read (intake says why)."""
    try:
        with open_photo(path) as handle:  # a regular file only, never blocking (a FIFO is intake's to reject)
            st = os.fstat(handle.fileno())
            if time.time() - st.st_mtime < folder.settle_seconds:
                return None
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None
    return NewFile(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=digest, targets=folder.targets,
                   skipped={target: SKIP_REASON for target in folder.targets})
