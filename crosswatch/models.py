"""Plain data shared across crosswatch: photos, metadata, jobs and their states.

Pure: no I/O here. The job state machine is a table in this file (after h11): every legal move is
listed in ``TRANSITIONS`` and ``check_transition`` refuses everything else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class JobState(enum.StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    READY = "ready"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"
    IN_DOUBT = "in_doubt"


S = JobState

# from-state -> the states it may move to. A move to the same state is only legal where listed
# (in_flight -> in_flight is how a job advances from one step to the next).
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.PENDING: frozenset({S.READY, S.AWAITING_APPROVAL, S.REJECTED}),
    S.AWAITING_APPROVAL: frozenset({S.READY, S.REJECTED}),
    # ready -> ready: rescheduled (rate limit, parked for sign-in) without being attempted.
    # ready -> awaiting_approval: an approved job's caption was edited; it needs approval again.
    S.READY: frozenset({S.IN_FLIGHT, S.READY, S.REJECTED, S.FAILED, S.AWAITING_APPROVAL}),
    S.IN_FLIGHT: frozenset({S.IN_FLIGHT, S.READY, S.DONE, S.FAILED, S.REJECTED, S.IN_DOUBT}),
    S.FAILED: frozenset({S.READY}),
    S.REJECTED: frozenset({S.READY}),
    # in_doubt -> in_doubt: the platform could not tell yet; the next check is rescheduled.
    S.IN_DOUBT: frozenset({S.DONE, S.READY, S.IN_DOUBT}),
    S.DONE: frozenset(),
}

TERMINAL_STATES = frozenset({S.DONE, S.FAILED, S.REJECTED})


class IllegalTransition(ValueError):
    """A job was asked to move along an edge the state table does not have."""


def check_transition(old: JobState, new: JobState) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"a job cannot go from {old.value} to {new.value}")


@dataclass(frozen=True)
class Metadata:
    """What crosswatch reads from a photo, normalised (MWG precedence already applied)."""

    title: str | None = None
    description: str | None = None
    creator: tuple[str, ...] = ()
    copyright: str | None = None
    credit: str | None = None
    usage_terms: str | None = None
    web_statement: str | None = None
    keywords: tuple[str, ...] = ()
    rating: int | None = None
    alt_text: str | None = None
    date_taken: str | None = None
    orientation: int | None = None
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    width: int | None = None
    height: int | None = None
    has_gps: bool = False
    label: str | None = None
    hierarchical_subject: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "creator": list(self.creator),
            "copyright": self.copyright,
            "credit": self.credit,
            "usage_terms": self.usage_terms,
            "web_statement": self.web_statement,
            "keywords": list(self.keywords),
            "rating": self.rating,
            "alt_text": self.alt_text,
            "date_taken": self.date_taken,
            "orientation": self.orientation,
            "make": self.make,
            "model": self.model,
            "lens": self.lens,
            "width": self.width,
            "height": self.height,
            "has_gps": self.has_gps,
            "label": self.label,
            "hierarchical_subject": list(self.hierarchical_subject),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Photo:
    id: int
    hash: str
    path: str
    size: int
    mtime: float
    first_seen: float


@dataclass(frozen=True)
class Job:
    id: int
    photo_id: int
    target: str
    state: JobState
    step: str | None
    attempts: int
    next_attempt_at: float
    remote_id: str | None
    permalink: str | None
    reason: str | None
    created_at: float
    updated_at: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Caption:
    """A caption fitted to one target."""

    text: str
    length: int
    limit: int
    alt_text: str | None
    hashtags: tuple[str, ...]
    shortened: tuple[str, ...]  # which parts were shortened or dropped, in the order it happened


@dataclass(frozen=True)
class PreparedImage:
    """An image prepared for one target, on disk in state_dir's media cache."""

    path: str
    width: int
    height: int
    bytes: int
    format: str
    quality: int | None
    fit: str | None  # "pad" or "crop" when the aspect ratio had to be brought into range, else None
    # Notes on the source that did not stop preparation (unreadable EXIF, unusable ICC profile, ...).
    warnings: tuple[str, ...] = ()
