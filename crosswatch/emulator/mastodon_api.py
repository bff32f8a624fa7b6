"""The emulated Mastodon server, served under ``/mastodon`` (the instance URL is ``{base}/mastodon``:
Instagram already owns ``/oauth/authorize`` on the emulator's origin, and a real instance URL may
carry a path too).

Held to mastodon/documentation (methods/apps, oauth, media, statuses, instance, accounts;
api/rate-limits, api/oauth-scopes; entities) and Mastodon's source for what the documentation leaves
out: the Idempotency-Key kept for an hour (``PostStatusService``), attached media answering 404
(``Api::V1::MediaController#set_media_attachment``), attached media refused on a new status
(``validate_media!``, "not found or already attached to another post"), a status counted in
grapheme clusters with 23 characters per URL (``StatusLengthValidator``), errors as
``{"error": "..."}``, ``X-RateLimit-*`` headers with an ISO 8601 reset.
"""

from __future__ import annotations

import hmac
import html
import io
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import regex
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from PIL import Image, UnidentifiedImageError

from crosswatch.emulator import engagement
from crosswatch.emulator.httputil import (
    BadRequestBody,
    bearer_token,
    bytes_response,
    html_response,
    json_response,
    media_type,
    multipart_fields,
    query_params,
    redirect_response,
)
from crosswatch.emulator.mastodon_state import (
    MastodonAccount,
    MastodonApp,
    MastodonCode,
    MastodonMedia,
    MastodonState,
    MastodonStatus,
    MastodonToken,
    MastodonWindow,
)
from crosswatch.emulator.page import mastodon_card, single_page
from crosswatch.emulator.routing import Call, Route, route
from crosswatch.emulator.state import EmulatorState, new_secret
from crosswatch.twitter_counting import twitter_text

PREFIX = "/mastodon"
DEFAULT_ACCOUNT_ID = "109000000000000001"
DEFAULT_USERNAME = "crosswatch_demo"
DEFAULT_APP_ID = "emulator-mastodon-app"
# Every scope Mastodon knows (api/oauth-scopes.md), broad ones first.
KNOWN_SCOPES = frozenset({
    "read", "write", "push", "profile", "follow", "admin:read", "admin:write",
    "read:accounts", "read:blocks", "read:bookmarks", "read:favourites", "read:filters", "read:follows",
    "read:lists", "read:mutes", "read:notifications", "read:search", "read:statuses",
    "write:accounts", "write:blocks", "write:bookmarks", "write:conversations", "write:favourites",
    "write:filters", "write:follows", "write:lists", "write:media", "write:mutes",
    "write:notifications", "write:reports", "write:statuses",
})  # fmt: skip
DAEMON_SCOPES = ("write:media", "write:statuses", "read:accounts", "read:statuses")
OUT_OF_SCOPE = "This action is outside the authorized scopes"
INVALID_TOKEN = "The access token is invalid"
NOT_FOUND = "Record not found"
INVALID_GRANT = ("The provided authorization grant is invalid, expired, revoked, does not match the "
                 "redirection URI used in the authorization request, or was issued to another client.")
INVALID_CLIENT = ("Client authentication failed due to unknown client, no client authentication "
                  "included, or unsupported authentication method.")
VISIBILITIES = ("public", "unlisted", "private", "direct")
_GRAPHEME = regex.compile(r"\X")
_REMOTE_MENTION = regex.compile(r"(?<![\w@])@(\w+)@[\w.-]+\w")


def routes() -> list[Route]:
    table = [
        ("POST", "/api/v1/apps", "mastodon.apps", register_app),
        ("GET", "/oauth/authorize", "mastodon.authorize", authorize),
        ("POST", "/oauth/token", "mastodon.token", token),
        ("POST", "/oauth/revoke", "mastodon.revoke", revoke),
        ("GET", "/api/v2/instance", "mastodon.instance", instance),
        ("GET", "/api/v1/accounts/verify_credentials", "mastodon.verify_credentials", verify_credentials),
        ("GET", "/api/v1/accounts/{id}/statuses", "mastodon.accounts.statuses", account_statuses),
        ("POST", "/api/v2/media", "mastodon.media.upload", upload_media),
        ("GET", "/api/v1/media/{id}", "mastodon.media.show", show_media),
        ("POST", "/api/v1/statuses", "mastodon.statuses.create", create_status),
        ("GET", "/api/v1/statuses/{id}", "mastodon.statuses.show", show_status),
        ("GET", "/@{username}/{id}", "mastodon.web.status", web_status),
        ("GET", "/system/media/{id}", "mastodon.web.media", web_media),
    ]
    return [route(method, PREFIX + path, name, handler, "mastodon") for method, path, name, handler in table]


def error(status: int, words: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return json_response(status, {"error": words}, headers)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _origin(call: Call) -> str:
    return call.origin + PREFIX


# --- seeding ---------------------------------------------------------------------------------------


def seed_defaults(state: EmulatorState) -> None:
    masto = state.mastodon
    masto.accounts[DEFAULT_ACCOUNT_ID] = MastodonAccount(DEFAULT_ACCOUNT_ID, DEFAULT_USERNAME,
                                                         "Crosswatch Demo", state.now())


def mint_token(state: EmulatorState, account_id: str | None = None,
               scopes: tuple[str, ...] = DAEMON_SCOPES) -> dict[str, Any]:
    """A token response as ``POST /oauth/token`` gives it, with the app's id and secret (``auth import``)."""
    masto = state.mastodon
    app = masto.apps.get(DEFAULT_APP_ID)
    if app is None:
        app = MastodonApp(DEFAULT_APP_ID, new_secret("mcs-"), "crosswatch", ("urn:ietf:wg:oauth:2.0:oob",),
                          tuple(scopes))
        masto.apps[app.client_id] = app
    account = account_id or next(iter(masto.accounts))
    issued = _issue(state, app.client_id, account, tuple(scopes))
    return {**issued, "client_id": app.client_id, "client_secret": app.client_secret}


def _issue(state: EmulatorState, client_id: str, account_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
    now = state.now()
    issued = MastodonToken(new_secret("mat-"), client_id, account_id, scopes, now)
    state.mastodon.tokens[issued.token] = issued
    return {"access_token": issued.token, "token_type": "Bearer", "scope": " ".join(scopes),
            "created_at": int(now)}


# --- apps and OAuth --------------------------------------------------------------------------------


def _form(call: Call) -> dict[str, str]:
    """Form or JSON parameters (Mastodon takes both)."""
    kind = media_type(call.request)
    if kind == "application/json":
        try:
            body = json.loads(call.request.content or b"{}")
        except ValueError:
            return {}
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()} \
            if isinstance(body, dict) else {}
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(call.request.content.decode("utf-8", "replace"), keep_blank_values=True))
    return {}


def register_app(call: Call) -> httpx.Response:
    form = _form(call)
    name, redirect = form.get("client_name", "").strip(), form.get("redirect_uris", "").strip()
    if not name:
        return error(422, "Validation failed: Application name can't be blank")
    if not redirect:
        return error(422, "Validation failed: Redirect URI can't be blank")
    scopes = tuple((form.get("scopes") or "read").split())
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        return error(422, "Validation failed: Scopes must only contain supported scopes")
    app = MastodonApp(new_secret("mci-"), new_secret("mcs-"), name, tuple(redirect.split()), scopes,
                      form.get("website") or None)
    call.state.mastodon.apps[app.client_id] = app
    return json_response(200, {
        "id": str(len(call.state.mastodon.apps)), "name": app.name, "website": app.website,
        "scopes": list(app.scopes), "redirect_uri": " ".join(app.redirect_uris),
        "redirect_uris": list(app.redirect_uris), "client_id": app.client_id,
        "client_secret": app.client_secret, "vapid_key": "emulator-vapid-key",
    })


def _within(requested: tuple[str, ...], allowed: tuple[str, ...]) -> bool:
    return all(_covers(allowed, scope) for scope in requested)


def _covers(granted: tuple[str, ...], needed: str) -> bool:
    """Scopes are hierarchical: ``write`` covers ``write:media``."""
    return needed in granted or needed.split(":")[0] in granted


def authorize(call: Call) -> httpx.Response:
    """The consent page, approved at once as the signed-in account (as the X emulator does)."""
    masto = call.state.mastodon
    params = query_params(call.request)
    app = masto.apps.get(params.get("client_id", ""))
    redirect_uri = params.get("redirect_uri", "")
    if app is None:
        return html_response(401, "<p>Client authentication failed due to unknown client.</p>")
    if redirect_uri not in app.redirect_uris:
        return html_response(400, "<p>The redirect uri included is not valid.</p>")
    scopes = tuple((params.get("scope") or "read").split())
    problem = None
    if params.get("response_type") != "code":
        problem = ("unsupported_response_type", "The authorization server does not support this response type.")
    elif not _within(scopes, app.scopes):
        problem = ("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
    elif params.get("code_challenge") and params.get("code_challenge_method") not in ("S256", "plain"):
        problem = ("invalid_request", "The code challenge method must be plain or S256.")
    state_param = {"state": params["state"]} if "state" in params else {}
    if problem is not None:
        return redirect_response(_with_query(redirect_uri, {"error": problem[0], "error_description": problem[1],
                                                            **state_param}))
    if not masto.consent:
        return redirect_response(_with_query(redirect_uri, {
            "error": "access_denied",
            "error_description": "The resource owner or authorization server denied the request.", **state_param}))
    account = masto.signed_in_account or next(iter(masto.accounts))
    code = MastodonCode(new_secret("mcode-"), app.client_id, account, redirect_uri, scopes,
                        params.get("code_challenge", ""), params.get("code_challenge_method", "plain"),
                        call.state.now())
    masto.codes[code.code] = code
    return redirect_response(_with_query(redirect_uri, {"code": code.code, **state_param}))


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _client(masto: MastodonState, form: dict[str, str]) -> MastodonApp | None:
    app = masto.apps.get(form.get("client_id", ""))
    if app is None or not hmac.compare_digest(app.client_secret, form.get("client_secret", "")):
        return None
    return app


def _pkce_ok(code: MastodonCode, verifier: str) -> bool:
    if not code.code_challenge:
        return True
    expected = create_s256_code_challenge(verifier) if code.code_challenge_method == "S256" else verifier
    return hmac.compare_digest(expected, code.code_challenge)


def token(call: Call) -> httpx.Response:
    masto, form = call.state.mastodon, _form(call)
    app = _client(masto, form)
    if app is None:
        return json_response(401, {"error": "invalid_client", "error_description": INVALID_CLIENT})
    grant = form.get("grant_type")
    if grant == "client_credentials":
        return json_response(200, _issue(call.state, app.client_id, "", tuple((form.get("scope") or "read").split())))
    if grant != "authorization_code":
        return json_response(400, {"error": "unsupported_grant_type",
                                   "error_description": "The authorization grant type is not supported."})
    code = masto.codes.get(form.get("code", ""))
    if (code is None or code.used or code.client_id != app.client_id or code.redirect_uri != form.get("redirect_uri")
            or call.state.now() > code.issued_at + 600 or not _pkce_ok(code, form.get("code_verifier", ""))):
        return json_response(400, {"error": "invalid_grant", "error_description": INVALID_GRANT})
    code.used = True
    return json_response(200, _issue(call.state, app.client_id, code.account_id, code.scopes))


def revoke(call: Call) -> httpx.Response:
    masto, form = call.state.mastodon, _form(call)
    app = _client(masto, form)
    if app is None:
        return json_response(403, {"error": "unauthorized_client",
                                   "error_description": "You are not authorized to revoke this token"})
    found = masto.tokens.get(form.get("token", ""))
    if found is not None and found.client_id == app.client_id:
        found.revoked = True
    return json_response(200, {})  # RFC 7009: the same answer for an unknown token


# --- the API: authentication, scopes, rate limits -------------------------------------------------


def _authenticated(call: Call, needed: str | None) -> MastodonToken | httpx.Response:
    masto = call.state.mastodon
    value = bearer_token(call.request)
    found = masto.tokens.get(value) if value else None
    if found is None or found.revoked or found.account_id not in masto.accounts:
        return error(401, INVALID_TOKEN)
    if needed is not None and not _covers(found.scopes, needed):
        return error(403, OUT_OF_SCOPE)
    return found


def _rate(call: Call, account_id: str, bucket: str = "api") -> tuple[bool, dict[str, str]]:
    """One request against the account's window; (allowed, the X-RateLimit-* headers)."""
    masto, now = call.state.mastodon, call.state.now()
    limit, period = ((masto.settings.media_limit, masto.settings.media_window) if bucket == "media"
                     else (masto.settings.api_limit, masto.settings.api_window))
    # rack-attack's windows are fixed slices of the clock (period-aligned), as Mastodon's are.
    start = now - (now % period)
    window = masto.windows.get((bucket, account_id))
    if window is None or window.started != start:
        window = masto.windows[(bucket, account_id)] = MastodonWindow(start)
    allowed = window.used < limit
    if allowed:
        window.used += 1
    headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - window.used)),
               "X-RateLimit-Reset": datetime.fromtimestamp(start + period, UTC).isoformat(timespec="microseconds")
               .replace("+00:00", "Z")}
    return allowed, headers


def _guarded(call: Call, needed: str | None,
             bucket: str = "api") -> tuple[MastodonToken, dict[str, str]] | httpx.Response:
    found = _authenticated(call, needed)
    if isinstance(found, httpx.Response):
        return found
    allowed, headers = _rate(call, found.account_id)
    if allowed and bucket != "api":
        allowed, headers = _rate(call, found.account_id, bucket)
    if not allowed:
        return error(429, "Too many requests", headers)
    return found, headers


# --- entities --------------------------------------------------------------------------------------


def account_json(call: Call, account: MastodonAccount) -> dict[str, Any]:
    return {"id": account.id, "username": account.username, "acct": account.username,
            "display_name": account.display_name, "locked": False, "bot": False,
            "created_at": _iso(account.created_at), "url": f"{_origin(call)}/@{account.username}",
            "statuses_count": sum(1 for s in call.state.mastodon.statuses if s.account_id == account.id)}


def media_json(call: Call, media: MastodonMedia) -> dict[str, Any]:
    ready = call.state.now() >= media.ready_at
    url = f"{_origin(call)}/system/media/{media.id}"
    return {"id": media.id, "type": "image", "url": url if ready else None, "preview_url": url,
            "remote_url": None, "text_url": None, "description": media.description, "blurhash": None,
            "meta": {"original": {"width": media.width, "height": media.height,
                                  "size": f"{media.width}x{media.height}",
                                  "aspect": round(media.width / max(1, media.height), 4)}}}


def status_json(call: Call, status: MastodonStatus) -> dict[str, Any]:
    masto = call.state.mastodon
    account = masto.accounts[status.account_id]
    url = f"{_origin(call)}/@{account.username}/{status.id}"
    seen = engagement.counts(call.state.engagement, status.id, status.text, status.created_at, call.state.now())
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in status.text.split("\n\n") if p)
    return {"id": status.id, "created_at": _iso(status.created_at), "visibility": status.visibility,
            "language": status.language, "uri": f"{_origin(call)}/users/{account.username}/statuses/{status.id}",
            "url": url, "content": paragraphs.replace("\n", "<br>"), "sensitive": False, "spoiler_text": "",
            "account": account_json(call, account),
            "media_attachments": [media_json(call, masto.media[m]) for m in status.media_ids if m in masto.media],
            "application": {"name": status.application} if status.application else None,
            "in_reply_to_id": status.in_reply_to_id,
            "in_reply_to_account_id": status.account_id if status.in_reply_to_id else None,
            "mentions": [], "tags": [], "emojis": [], "reblogs_count": seen.shares, "favourites_count": seen.likes,
            "replies_count": seen.comments, "reblog": None, "poll": None, "card": None}


# --- endpoints -------------------------------------------------------------------------------------


def instance(call: Call) -> httpx.Response:
    settings = call.state.mastodon.settings
    return json_response(200, {
        "domain": call.request.url.host, "title": "crosswatch emulator", "version": "4.3.0",
        "source_url": "https://github.com/mastodon/mastodon",
        "configuration": {
            "urls": {"streaming": None},
            "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
            "statuses": {"max_characters": settings.max_characters,
                         "max_media_attachments": settings.max_media_attachments,
                         "characters_reserved_per_url": settings.characters_reserved_per_url},
            "media_attachments": {"supported_mime_types": ["image/jpeg", "image/png", "image/gif", "image/webp"],
                                  "description_limit": settings.description_limit,
                                  "image_size_limit": settings.image_size_limit,
                                  "image_matrix_limit": settings.image_matrix_limit,
                                  "video_size_limit": 103_809_024, "video_frame_rate_limit": 120,
                                  "video_matrix_limit": 8_294_400},
            "polls": {"max_options": 4, "max_characters_per_option": 50},
        },
        "registrations": {"enabled": False, "approval_required": False},
    })


def verify_credentials(call: Call) -> httpx.Response:
    guarded = _authenticated(call, None)
    if isinstance(guarded, httpx.Response):
        return guarded
    if not (_covers(guarded.scopes, "read:accounts") or "profile" in guarded.scopes):
        return error(403, OUT_OF_SCOPE)
    return json_response(200, account_json(call, call.state.mastodon.accounts[guarded.account_id]))


def upload_media(call: Call) -> httpx.Response:
    masto = call.state.mastodon
    if len(call.request.content) > masto.settings.proxy_body_limit:
        return html_response(413, "<html><head><title>413 Request Entity Too Large</title></head></html>")
    guarded = _guarded(call, "write:media", "media")
    if isinstance(guarded, httpx.Response):
        return guarded
    found, headers = guarded
    try:
        fields = multipart_fields(call.request)
    except BadRequestBody:
        return error(422, "Validation failed: File can't be blank", headers)
    data = fields.get("file", b"")
    if not data:
        return error(422, "Validation failed: File can't be blank", headers)
    description = fields.get("description", b"").decode("utf-8", "replace") or None
    if description is not None and len(description) > masto.settings.description_limit:
        return error(422, f"Validation failed: Description is too long (maximum is "
                          f"{masto.settings.description_limit} characters)", headers)
    if len(data) > masto.settings.image_size_limit:
        return error(422, f"Validation failed: File file size must be less than "
                          f"{masto.settings.image_size_limit} Bytes", headers)
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height, kind = image.width, image.height, (image.format or "").upper()
    except (UnidentifiedImageError, OSError):
        return error(422, "Validation failed: File content type is invalid, File is invalid", headers)
    if kind not in ("JPEG", "PNG", "GIF", "WEBP"):
        return error(422, "Validation failed: File content type is invalid", headers)
    now = call.state.now()
    media = MastodonMedia(masto.next_id(), found.account_id, data, f"image/{kind.lower()}", width, height,
                          description, now, now + masto.settings.processing_seconds)
    masto.media[media.id] = media
    status = 200 if masto.settings.processing_seconds <= 0 else 202
    return json_response(status, media_json(call, media), headers)


def show_media(call: Call) -> httpx.Response:
    guarded = _guarded(call, "write:media")
    if isinstance(guarded, httpx.Response):
        return guarded
    found, headers = guarded
    media = call.state.mastodon.media.get(call.path_params["id"])
    # As MediaController#set_media_attachment: only the account's own media not yet on a status.
    if media is None or media.account_id != found.account_id or media.status_id is not None:
        return error(404, NOT_FOUND, headers)
    ready = call.state.now() >= media.ready_at
    return json_response(200 if ready else 206, media_json(call, media), headers)


def _status_params(call: Call) -> tuple[dict[str, Any], list[str]]:
    """(parameters, media ids) from a JSON or form body (``media_ids[]`` repeated in a form)."""
    if media_type(call.request) == "application/json":
        try:
            body = json.loads(call.request.content or b"{}")
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        ids = body.get("media_ids")
        return body, [str(i) for i in ids] if isinstance(ids, list) else []
    pairs = parse_qsl(call.request.content.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs), [v for k, v in pairs if k in ("media_ids[]", "media_ids")]


def countable_length(text: str, reserved: int) -> int:
    """StatusLengthValidator: grapheme clusters, each URL as ``reserved``, remote mentions local."""
    out, position = [], 0
    for url in twitter_text().extract_urls_with_indices(text, extract_urls_without_protocol=False):
        start, end = url["indices"]
        out += [text[position:start], "x" * reserved]
        position = end
    out.append(text[position:])
    return len(_GRAPHEME.findall(_REMOTE_MENTION.sub(r"@\1", "".join(out))))


def create_status(call: Call) -> httpx.Response:
    guarded = _guarded(call, "write:statuses")
    if isinstance(guarded, httpx.Response):
        return guarded
    found, headers = guarded
    masto, now = call.state.mastodon, call.state.now()
    key = call.request.headers.get("idempotency-key")
    if key:
        stored = masto.idempotency.get((found.account_id, key))
        if stored is not None and now - stored[1] < masto.settings.idempotency_seconds:
            existing = next((s for s in masto.statuses if s.id == stored[0]), None)
            if existing is not None:
                return json_response(200, status_json(call, existing), headers)
    params, media_ids = _status_params(call)
    reply_to = str(params.get("in_reply_to_id") or "") or None
    if reply_to is not None and not any(s.id == reply_to for s in masto.statuses):
        # PostStatusService: Status.find(in_reply_to_id), ActiveRecord::RecordNotFound -> 404
        return error(404, NOT_FOUND, headers)
    refusal = _status_refusal(masto, found.account_id, params, media_ids, now)
    if refusal is not None:
        return error(422, refusal, headers)
    app = masto.apps.get(found.client_id)
    status = MastodonStatus(masto.next_id(), found.account_id, str(params.get("status") or ""),
                            str(params.get("visibility") or "public"), params.get("language") or None,
                            tuple(media_ids), now, app.name if app else None, key, reply_to)
    for media_id in media_ids:
        masto.media[media_id].status_id = status.id
    masto.statuses.append(status)
    if key:
        masto.idempotency[(found.account_id, key)] = (status.id, now)
    return json_response(200, status_json(call, status), headers)


def _status_refusal(masto: MastodonState, account_id: str, params: dict[str, Any],
                    media_ids: list[str], now: float) -> str | None:
    """Mastodon's words for a status it refuses (ValidationError, or ActiveRecord's "Validation failed")."""
    settings = masto.settings
    text = params.get("status")
    text = text if isinstance(text, str) else ""
    if len(media_ids) > settings.max_media_attachments:
        return f"Cannot attach more than {settings.max_media_attachments} files"
    usable = [m for m in media_ids if m in masto.media and masto.media[m].account_id == account_id
              and masto.media[m].status_id is None]
    missing = [m for m in media_ids if m not in usable]
    if missing:
        return f"Media {', '.join(missing)} not found or already attached to another post"
    if any(masto.media[m].ready_at > now for m in usable):
        return "Cannot attach files that have not finished processing. Try again in a moment!"
    if not text.strip() and not media_ids:
        return "Validation failed: Text can't be blank"
    if countable_length(text, settings.characters_reserved_per_url) > settings.max_characters:
        return f"Validation failed: Text character limit of {settings.max_characters} exceeded"
    visibility = params.get("visibility")
    if visibility not in (None, "", *VISIBILITIES):
        return "Validation failed: Visibility is not included in the list"
    return None


def show_status(call: Call) -> httpx.Response:
    masto = call.state.mastodon
    status = next((s for s in masto.statuses if s.id == call.path_params["id"]), None)
    if status is None or (status.visibility in ("private", "direct") and not _may_see(call, status)):
        return error(404, NOT_FOUND)
    return json_response(200, status_json(call, status))


def _may_see(call: Call, status: MastodonStatus) -> bool:
    found = _authenticated(call, "read:statuses")
    return not isinstance(found, httpx.Response) and found.account_id == status.account_id


def account_statuses(call: Call) -> httpx.Response:
    masto = call.state.mastodon
    account_id = call.path_params["id"]
    if account_id not in masto.accounts:
        return error(404, NOT_FOUND)
    params = query_params(call.request)
    try:
        limit = max(1, min(40, int(params.get("limit", "20"))))
    except ValueError:
        limit = 20
    own = [s for s in masto.statuses if s.account_id == account_id]
    visible = [s for s in own if s.visibility in ("public", "unlisted") or _may_see(call, s)]
    newest_first = sorted(visible, key=lambda s: int(s.id), reverse=True)
    if params.get("max_id", "").isdigit():
        newest_first = [s for s in newest_first if int(s.id) < int(params["max_id"])]
    if params.get("since_id", "").isdigit():
        newest_first = [s for s in newest_first if int(s.id) > int(params["since_id"])]
    return json_response(200, [status_json(call, s) for s in newest_first[:limit]])


def web_status(call: Call) -> httpx.Response:
    masto = call.state.mastodon
    status = next((s for s in masto.statuses if s.id == call.path_params["id"]), None)
    if status is None:
        return html_response(404, "<p>The page you are looking for isn't here.</p>")
    return html_response(200, single_page("Mastodon status", mastodon_card(call.state, status)))


def web_media(call: Call) -> httpx.Response:
    media = call.state.mastodon.media.get(call.path_params["id"])
    if media is None:
        return html_response(404, "<p>The page you are looking for isn't here.</p>")
    return bytes_response(media.data, media.mime)
