"""Bluesky's XRPC endpoints as the reference PDS (bluesky-social/atproto at d6296a1c) answers them.

Sessions: createSession (app password; 30 per 5 minutes and ``create_session_per_day`` a day per
account), refreshSession (the refresh JWT as bearer; a used one gives the same successor for a grace
period, access tokens are not revoked by it), getSession, deleteSession. Repo: uploadBlob (up to about
5 MiB, 413 ``PayloadTooLarge`` above; type and size are checked only when a record references the
blob), createRecord (validated against the shipped lexicons; a key that exists already is a **500
InternalServerError**, as the reference PDS's MST throws a plain Error), getRecord (missing: 400
``RecordNotFound``). identity.resolveHandle. Bad or expired access tokens are 400 ``InvalidToken`` /
``ExpiredToken``, no token is 401 ``AuthMissing`` (auth-verifier.ts). Every answer carries
``ratelimit-*`` headers; over the limit, 429 ``RateLimitExceeded``.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx

from crosswatch.emulator import engagement
from crosswatch.emulator.bluesky_lexicon import LexiconError, lexicon, validate_input, validate_record
from crosswatch.emulator.bluesky_state import (
    BlueskyState,
    BskyAccount,
    BskyBlob,
    BskyRecord,
    BskyRefresh,
    cid_for,
    make_jwt,
    record_cid,
)
from crosswatch.emulator.httputil import json_response, media_type, query_params
from crosswatch.emulator.routing import Call, Route, route
from crosswatch.emulator.settings import RateLimit

RECORD_KEY = re.compile(r"^[a-zA-Z0-9_~.:-]{1,512}$")
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
SUPPORTED_COLLECTIONS = ("app.bsky.feed.post",)


def xrpc_error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return json_response(status, {"error": error, "message": message}, headers)


def internal_error() -> httpx.Response:
    return xrpc_error(500, "InternalServerError", "Internal Server Error")


def routes() -> list[Route]:
    table = [
        ("POST", "com.atproto.server.createSession", "bsky.server.createSession", create_session),
        ("POST", "com.atproto.server.refreshSession", "bsky.server.refreshSession", refresh_session),
        ("GET", "com.atproto.server.getSession", "bsky.server.getSession", get_session),
        ("POST", "com.atproto.server.deleteSession", "bsky.server.deleteSession", delete_session),
        ("POST", "com.atproto.repo.uploadBlob", "bsky.repo.uploadBlob", upload_blob),
        ("POST", "com.atproto.repo.createRecord", "bsky.repo.createRecord", create_record),
        ("GET", "com.atproto.repo.getRecord", "bsky.repo.getRecord", get_record),
        ("GET", "com.atproto.identity.resolveHandle", "bsky.identity.resolveHandle", resolve_handle),
        ("GET", "app.bsky.feed.getPosts", "bsky.feed.getPosts", get_posts),
    ]
    return [route(method, f"/xrpc/{nsid}", endpoint, handler, "bluesky", versioned=False)
            for method, nsid, endpoint, handler in table]


def bsky(call: Call) -> BlueskyState:
    return call.state.bluesky


# --- rate limits --------------------------------------------------------------------------------


def _limit(call: Call, key: str) -> tuple[dict[str, str], httpx.Response | None]:
    """Spend one request of the endpoint's window for ``key`` (a DID or the client)."""
    rule = bsky(call).settings.rate_limits.get(call.endpoint, RateLimit(3000, 300))
    decision = call.state.rate_limiter.hit(call.endpoint, key, rule, call.state.now())
    headers = decision.headers("ratelimit") | {"ratelimit-policy": f"{rule.limit};w={int(rule.window)}"}
    if not decision.allowed:
        return headers, xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)
    return headers, None


def _with(response: httpx.Response, headers: dict[str, str]) -> httpx.Response:
    response.headers.update(headers)
    return response


# --- tokens -------------------------------------------------------------------------------------


def _bearer(call: Call) -> str | None:
    value = call.request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _presented(call: Call, *, refresh: bool) -> Any:
    """What the bearer token is (an access token's (did, exp), or a refresh token's record), or the
    reference PDS's refusal: no token 401 AuthMissing; the other kind of token, or an unknown one, 400
    InvalidToken."""
    token = _bearer(call)
    if token is None:
        return xrpc_error(401, "AuthMissing", "Authentication Required")
    state = bsky(call)
    wrong, right = ((state.access_tokens, state.refresh_tokens) if refresh
                    else (state.refresh_tokens, state.access_tokens))
    if token in wrong:
        return xrpc_error(400, "InvalidToken", "Bad token scope")
    found = right.get(token)
    if found is None:
        return xrpc_error(400, "InvalidToken", "Token could not be verified")
    return found


def _access(call: Call) -> BskyAccount | httpx.Response:
    found = _presented(call, refresh=False)
    if isinstance(found, httpx.Response):
        return found
    did, expires_at = found
    if call.state.now() >= expires_at:
        return xrpc_error(400, "ExpiredToken", "Token has expired")
    account = bsky(call).accounts.get(did)
    return account if account is not None else xrpc_error(400, "InvalidToken", "Token could not be verified")


def did_doc(call: Call, account: BskyAccount) -> dict[str, Any]:
    return did_document(bsky(call), call.origin, account)


def did_document(state: BlueskyState, origin: str, account: BskyAccount) -> dict[str, Any]:
    """A did:plc document whose ``#atproto_pds`` service points back at this emulator."""
    endpoint = state.settings.pds_endpoint or origin
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": account.did,
        "alsoKnownAs": [f"at://{account.handle}"],
        "verificationMethod": [{"id": f"{account.did}#atproto", "type": "Multikey",
                                "controller": account.did,
                                "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"}],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": endpoint}],
    }


def _issue(call: Call, account: BskyAccount) -> dict[str, Any]:
    return issue_session(bsky(call), call.origin, account, call.state.now())


def issue_session(state: BlueskyState, origin: str, account: BskyAccount, now: float) -> dict[str, Any]:
    """A new session, as createSession answers it (tests seed sessions with it, as `auth import`)."""
    access_exp = now + state.settings.access_lifetime
    refresh_exp = now + state.settings.refresh_lifetime
    jti = secrets.token_urlsafe(24)
    access = make_jwt({"scope": "com.atproto.appPass", "sub": account.did, "aud": "did:web:emulator",
                       "iat": int(now), "exp": int(access_exp)})
    refresh = make_jwt({"scope": "com.atproto.refresh", "sub": account.did, "aud": "did:web:emulator",
                        "jti": jti, "iat": int(now), "exp": int(refresh_exp)})
    state.access_tokens[access] = (account.did, float(int(access_exp)))
    state.refresh_tokens[refresh] = BskyRefresh(jti, account.did, refresh_exp)
    return {"accessJwt": access, "refreshJwt": refresh, "handle": account.handle, "did": account.did,
            "didDoc": did_document(state, origin, account), "active": True}


def _json_input(call: Call, nsid: str) -> dict[str, Any] | httpx.Response:
    if media_type(call.request) != "application/json":
        return xrpc_error(400, "InvalidRequest", "Wrong request encoding (Content-Type): "
                                                 f"{media_type(call.request) or 'none'}")
    try:
        body = json.loads(call.request.content)
    except (ValueError, UnicodeDecodeError):
        return xrpc_error(400, "InvalidRequest", "Request body is not valid JSON")
    try:
        validate_input(nsid, body)
    except LexiconError as exc:
        return xrpc_error(400, "InvalidRequest", str(exc))
    return dict(body)


# --- sessions -----------------------------------------------------------------------------------


def create_session(call: Call) -> httpx.Response:
    body = _json_input(call, "com.atproto.server.createSession")
    if isinstance(body, httpx.Response):
        return body
    state = bsky(call)
    account = state.account(str(body["identifier"]))
    key = account.did if account else str(body["identifier"]).lower()
    headers, refused = _limit(call, key)
    if refused:
        return refused
    now = call.state.now()
    today = [when for did, when in state.session_creations if did == key and when > now - 86400.0]
    if len(today) >= state.settings.create_session_per_day:
        day_headers = {"ratelimit-limit": str(state.settings.create_session_per_day), "ratelimit-remaining": "0",
                       "ratelimit-reset": str(int(min(today) + 86400.0)),
                       "ratelimit-policy": f"{state.settings.create_session_per_day};w=86400"}
        return xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", day_headers)
    state.session_creations.append((key, now))
    if account is None or not secrets.compare_digest(account.app_password, str(body["password"])):
        return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password", headers)
    return json_response(200, _issue(call, account), headers)


def refresh_session(call: Call) -> httpx.Response:
    found = _presented(call, refresh=True)
    if isinstance(found, httpx.Response):
        return found
    state = bsky(call)
    headers, refused = _limit(call, found.did)
    if refused:
        return refused
    now = call.state.now()
    if found.revoked or now >= found.expires_at:
        return xrpc_error(400, "ExpiredToken", "Token has been revoked" if found.revoked else "Token has expired",
                          headers)
    account = state.accounts[found.did]
    if found.used_at is not None:
        if now - found.used_at > state.settings.refresh_grace or found.successor is None:
            return xrpc_error(400, "ExpiredToken", "Token has been revoked", headers)
        access, refresh = found.successor
        return json_response(200, {"accessJwt": access, "refreshJwt": refresh, "handle": account.handle,
                                   "did": account.did, "didDoc": did_doc(call, account), "active": True}, headers)
    session = _issue(call, account)
    found.used_at, found.successor = now, (session["accessJwt"], session["refreshJwt"])
    return json_response(200, session, headers)


def get_session(call: Call) -> httpx.Response:
    account = _access(call)
    if isinstance(account, httpx.Response):
        return account
    return json_response(200, {"handle": account.handle, "did": account.did, "didDoc": did_doc(call, account),
                               "active": True})


def delete_session(call: Call) -> httpx.Response:
    found = _presented(call, refresh=True)
    if isinstance(found, httpx.Response):
        return found
    found.revoked = True
    return httpx.Response(200)


# --- repo -----------------------------------------------------------------------------------------


def _write_access(call: Call) -> tuple[BskyAccount, dict[str, str]] | httpx.Response:
    """The signed-in account and its rate-limit headers, or the refusal (a token problem, a 429)."""
    account = _access(call)
    if isinstance(account, httpx.Response):
        return account
    headers, refused = _limit(call, account.did)
    return refused if refused is not None else (account, headers)


def upload_blob(call: Call) -> httpx.Response:
    allowed = _write_access(call)
    if isinstance(allowed, httpx.Response):
        return allowed
    account, headers = allowed
    data = call.request.content
    if len(data) > bsky(call).settings.upload_max_bytes:
        return xrpc_error(413, "PayloadTooLarge", "request entity too large", headers)
    mime = media_type(call.request) or "application/octet-stream"
    blob = BskyBlob(cid_for(data, 0x55), account.did, mime, data, call.state.now())
    bsky(call).blobs[(account.did, blob.cid)] = blob
    return json_response(200, {"blob": blob.ref()}, headers)


def create_record(call: Call) -> httpx.Response:
    allowed = _write_access(call)
    if isinstance(allowed, httpx.Response):
        return allowed
    account, headers = allowed
    body = _json_input(call, "com.atproto.repo.createRecord")
    if isinstance(body, httpx.Response):
        return _with(body, headers)
    if bsky(call).account(str(body["repo"])) is not account:
        return xrpc_error(401, "AuthRequired", "Authentication Required", headers)
    problem = _record_problem(call, account, body)
    if problem is not None:
        # The reference PDS names a missing blob (actor-store/blob/transactor.ts), nothing else.
        name = "BlobNotFound" if problem.startswith("Could not find blob") else "InvalidRequest"
        return xrpc_error(400, name, problem, headers)
    collection, record = str(body["collection"]), dict(body["record"])
    rkey = str(body.get("rkey") or _tid_now(call))
    key = (account.did, collection, rkey)
    if key in bsky(call).records:
        # The reference PDS: MST.add throws Error("There is already a value at key: ...") -> 500.
        return _with(internal_error(), headers)
    stored = BskyRecord(account.did, collection, rkey, record, record_cid(record), call.state.now())
    bsky(call).records[key] = stored
    return json_response(200, {"uri": stored.uri, "cid": stored.cid,
                               "commit": {"cid": record_cid({"commit": stored.cid}), "rev": _tid_now(call)},
                               "validationStatus": "valid"}, headers)


def _record_problem(call: Call, account: BskyAccount, body: dict[str, Any]) -> str | None:
    """Why the PDS would refuse this create (InvalidRequest), or None."""
    collection = str(body["collection"])
    rkey = body.get("rkey")
    if rkey is not None and (not isinstance(rkey, str) or not RECORD_KEY.match(rkey) or rkey in (".", "..")):
        return f"Invalid record key: {rkey}"
    if collection not in SUPPORTED_COLLECTIONS:
        return f"Lexicon not found: {collection}"
    if rkey is not None and lexicon(collection)["defs"]["main"].get("key") == "tid" and not TID.match(rkey):
        return f"Invalid {collection} record: Record key must be a TID (got {rkey})"
    record = body["record"]
    if isinstance(record, dict) and "$type" not in record:
        record = {**record, "$type": collection}
        body["record"] = record
    if body.get("validate") is not False:
        try:
            validate_record(collection, record)
        except LexiconError as exc:
            return str(exc)
    for blob in _blob_refs(record):
        cid = blob.get("ref", {}).get("$link") if isinstance(blob.get("ref"), dict) else None
        uploaded = bsky(call).blobs.get((account.did, str(cid)))
        if uploaded is None:
            return f"Could not find blob: {cid}"
        if uploaded.size != blob.get("size") or uploaded.mime != blob.get("mimeType"):
            return f"Referenced blob does not match: {cid} (size or mimeType differs from the upload)"
    return None


def _blob_refs(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("$type") == "blob":
            return [value]
        return [ref for item in value.values() for ref in _blob_refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _blob_refs(item)]
    return []


def _tid_now(call: Call) -> str:
    from crosswatch.platforms.bluesky.tid import make_tid

    return make_tid(int(call.state.now() * 1_000_000), secrets.randbelow(1024))


def get_record(call: Call) -> httpx.Response:
    params = query_params(call.request)
    missing = [name for name in ("repo", "collection", "rkey") if not params.get(name)]
    if missing:
        return xrpc_error(400, "InvalidRequest", f'Params must have the property "{missing[0]}"')
    state = bsky(call)
    account = state.account(params["repo"])
    if account is None:
        return xrpc_error(400, "InvalidRequest", f"Could not find repo: {params['repo']}")
    record = state.records.get((account.did, params["collection"], params["rkey"]))
    if record is None:
        uri = f"at://{account.did}/{params['collection']}/{params['rkey']}"
        return xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri}")
    return json_response(200, {"uri": record.uri, "cid": record.cid, "value": record.value})


GET_POSTS_MAX = 25  # app.bsky.feed.getPosts: ``uris`` is an array of at-uri with maxLength 25
AT_URI = re.compile(r"^at://[^/]+/[a-z0-9.-]+/[A-Za-z0-9._~:-]+$")


def get_posts(call: Call) -> httpx.Response:
    """``app.bsky.feed.getPosts?uris=...&uris=...`` (the PDS proxies it to the AppView): a postView per
    post that exists, with its like, repost, reply and quote counts; a missing post is left out."""
    account = _access(call)
    if isinstance(account, httpx.Response):
        return account
    headers, refused = _limit(call, account.did)
    if refused is not None:
        return refused
    uris = call.request.url.params.get_list("uris")
    if not uris:
        return _with(xrpc_error(400, "InvalidRequest", 'Params must have the property "uris"'), headers)
    if len(uris) > GET_POSTS_MAX:
        return _with(xrpc_error(400, "InvalidRequest", f"uris must not have more than {GET_POSTS_MAX} elements"),
                     headers)
    bad = next((uri for uri in uris if not AT_URI.match(uri)), None)
    if bad is not None:
        return _with(xrpc_error(400, "InvalidRequest", "uris/0 must be a valid at-uri"), headers)
    state = bsky(call)
    by_uri = {record.uri: record for record in state.posts()}
    views = [_post_view(call, by_uri[uri]) for uri in dict.fromkeys(uris) if uri in by_uri]
    return _with(json_response(200, {"posts": views}), headers)


def _post_view(call: Call, record: BskyRecord) -> dict[str, Any]:
    account = bsky(call).accounts.get(record.did)
    seen = engagement.counts(call.state.engagement, record.uri, str(record.value.get("text") or ""),
                             record.indexed_at, call.state.now())
    return {"uri": record.uri, "cid": record.cid,
            "author": {"did": record.did, "handle": account.handle if account else "handle.invalid"},
            "record": record.value, "indexedAt": _iso_z(record.indexed_at),
            "likeCount": seen.likes, "repostCount": seen.shares, "replyCount": seen.comments,
            "quoteCount": seen.quotes, "bookmarkCount": seen.saves}


def _iso_z(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def resolve_handle(call: Call) -> httpx.Response:
    handle = query_params(call.request).get("handle", "")
    account = bsky(call).account(handle)
    if not handle or account is None or account.did == handle:
        return xrpc_error(400, "InvalidRequest", "Unable to resolve handle")
    return json_response(200, {"did": account.did})


# --- seeding and views ----------------------------------------------------------------------------


def add_account(state: BlueskyState, did: str, handle: str, app_password: str, now: float) -> BskyAccount:
    account = BskyAccount(did, handle, app_password, now)
    state.accounts[did] = account
    return account


def permalink(record: BskyRecord, handle: str | None) -> str:
    return f"/_emulator/bsky/profile/{handle or record.did}/post/{record.rkey}"


def created_at_text(record: BskyRecord) -> str:
    value = record.value.get("createdAt")
    if isinstance(value, str):
        return value
    return datetime.fromtimestamp(record.indexed_at, UTC).isoformat()


def fault_response(status: int) -> httpx.Response:
    """An injected fault in XRPC's shape, with the reference PDS's names for the status."""
    names = {400: "InvalidRequest", 401: "AuthMissing", 413: "PayloadTooLarge", 429: "RateLimitExceeded",
             500: "InternalServerError", 501: "MethodNotImplemented", 502: "UpstreamFailure",
             503: "NotEnoughResources", 504: "UpstreamTimeout"}
    error = names.get(status, "InternalServerError" if status >= 500 else "InvalidRequest")
    words = {"RateLimitExceeded": "Rate Limit Exceeded", "InternalServerError": "Internal Server Error"}
    return xrpc_error(status, error, words.get(error, error))
