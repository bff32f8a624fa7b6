"""Record keys (pure): a TID, as the atproto spec defines it (atproto.com/specs/tid; the syntax check
in bluesky-social/atproto packages/syntax/src/tid.ts): 64 bits, the top one 0, then 53 bits of
microseconds since the Unix epoch and 10 bits of a "clock id", written as 13 characters of
base32-sortable (``234567abcdefghijklmnopqrstuvwxyz``), the first of ``234567abcdefghij``.

crosswatch derives a post's key from the job: the time its blob upload was recorded (committed in the
journal before the create is sent) and the job id as the clock id, so a create sent again after a
crash or a lost answer uses the same key, and the PDS cannot make a second post.
"""

from __future__ import annotations

import re

ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_PATTERN = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def make_tid(microseconds: int, clock_id: int) -> str:
    value = ((microseconds & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def tid_for_job(job_id: int, at_seconds: float) -> str:
    return make_tid(int(at_seconds * 1_000_000), job_id)


def is_tid(value: str) -> bool:
    return bool(TID_PATTERN.match(value))


def tid_microseconds(value: str) -> int:
    number = 0
    for char in value:
        number = number * 32 + ALPHABET.index(char)
    return number >> 10
