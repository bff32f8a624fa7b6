"""What the emulated Bluesky PDS remembers: accounts, sessions, blobs, records (one field on EmulatorState)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from crosswatch.emulator.settings import RateLimit

DEFAULT_BSKY_DID = "did:plc:w4xbfzo7kqfes5zb7r6qv3rw"
DEFAULT_BSKY_HANDLE = "crosswatch-test.bsky.social"
# Bluesky app passwords look like this: four groups of four lower-case letters and digits.
DEFAULT_BSKY_APP_PASSWORD = "emu1-test-app2-pass"


def default_bsky_rate_limits() -> dict[str, RateLimit]:
    # docs.bsky.app/docs/advanced-guides/rate-limits: 3,000 requests per 5 minutes in general;
    # createSession 30 per 5 minutes; writes 5,000 points per hour at 3 points a create.
    return {
        "bsky.server.createSession": RateLimit(30, 300),
        "bsky.repo.createRecord": RateLimit(1666, 3600),
        "bsky.repo.uploadBlob": RateLimit(3000, 300),
        "bsky.repo.getRecord": RateLimit(3000, 300),
        "bsky.server.refreshSession": RateLimit(3000, 300),
    }


@dataclass
class BlueskySettings:
    access_lifetime: float = 7200.0          # the reference PDS: 2 hours (api-notes C)
    refresh_lifetime: float = 90 * 86400.0   # 90 days
    # A used refresh JWT still gives the same successor for this long (the reference PDS: ~2 hours).
    refresh_grace: float = 7200.0
    upload_max_bytes: int = 5 * 1024 * 1024  # uploadBlob's body limit (413 PayloadTooLarge above)
    create_session_per_day: int = 100        # what the entryway really allows (bsky-docs#183)
    rate_limits: dict[str, RateLimit] = field(default_factory=default_bsky_rate_limits)
    # The PDS endpoint in the DID document; None: this emulator's own origin.
    pds_endpoint: str | None = None


@dataclass
class BskyAccount:
    did: str
    handle: str
    app_password: str
    created_at: float


@dataclass
class BskyRefresh:
    jti: str
    did: str
    expires_at: float
    used_at: float | None = None
    successor: tuple[str, str] | None = None  # (access, refresh) it was exchanged for
    revoked: bool = False


@dataclass
class BskyBlob:
    cid: str
    did: str
    mime: str
    data: bytes
    uploaded_at: float

    @property
    def size(self) -> int:
        return len(self.data)

    def ref(self) -> dict[str, Any]:
        return {"$type": "blob", "ref": {"$link": self.cid}, "mimeType": self.mime, "size": self.size}


@dataclass
class BskyRecord:
    did: str
    collection: str
    rkey: str
    value: dict[str, Any]
    cid: str
    indexed_at: float

    @property
    def uri(self) -> str:
        return f"at://{self.did}/{self.collection}/{self.rkey}"


@dataclass
class BlueskyState:
    settings: BlueskySettings = field(default_factory=BlueskySettings)
    accounts: dict[str, BskyAccount] = field(default_factory=dict)
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # jwt -> (did, exp)
    refresh_tokens: dict[str, BskyRefresh] = field(default_factory=dict)       # jwt -> its record
    blobs: dict[tuple[str, str], BskyBlob] = field(default_factory=dict)       # (did, cid)
    records: dict[tuple[str, str, str], BskyRecord] = field(default_factory=dict)
    session_creations: list[tuple[str, float]] = field(default_factory=list)   # (did, when)

    def account(self, identifier: str) -> BskyAccount | None:
        wanted = identifier.lstrip("@").lower()
        return next((a for a in self.accounts.values() if wanted in (a.did, a.handle.lower())), None)

    def posts(self) -> list[BskyRecord]:
        return sorted((r for r in self.records.values() if r.collection == "app.bsky.feed.post"),
                      key=lambda r: r.indexed_at)


def cid_for(data: bytes, codec: int) -> str:
    """A CIDv1 (sha2-256) in base32, as atproto writes them: codec 0x55 raw (blobs), 0x71 dag-cbor."""
    digest = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(digest).decode("ascii").lower().rstrip("=")


def record_cid(value: dict[str, Any]) -> str:
    # The real CID is of the record's DAG-CBOR; canonical JSON stands in for it here.
    return cid_for(json.dumps(value, sort_keys=True, separators=(",", ":")).encode(), 0x71)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def make_jwt(payload: dict[str, Any]) -> str:
    """A JWT-shaped token (the emulator checks it by lookup, so the signature is random bytes)."""
    header = {"typ": "at+jwt" if payload.get("scope") != "com.atproto.refresh" else "refresh+jwt",
              "alg": "HS256"}
    return ".".join([_b64url(json.dumps(header).encode()), _b64url(json.dumps(payload).encode()),
                     _b64url(secrets.token_bytes(32))])
