"""Reading httpx requests and building the platforms' response shapes."""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl

import httpx


class BadRequestBody(ValueError):
    """The body could not be decoded as the content type it claims."""


# --- reading ----------------------------------------------------------------------------------------


def query_params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params.multi_items())


def media_type(request: httpx.Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def form_params(request: httpx.Request) -> dict[str, str]:
    if media_type(request) != "application/x-www-form-urlencoded":
        return {}
    try:
        text = request.content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestBody("form body is not UTF-8") from exc
    return dict(parse_qsl(text, keep_blank_values=True))


def json_body(request: httpx.Request) -> Any:
    if media_type(request) != "application/json":
        raise BadRequestBody("expected Content-Type: application/json")
    try:
        return json.loads(request.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestBody(f"body is not valid JSON: {exc}") from exc


def multipart_fields(request: httpx.Request) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by name, decoded (Content-Transfer-Encoding honoured)."""
    content_type = request.headers.get("content-type", "")
    if media_type(request) != "multipart/form-data" or "boundary=" not in content_type:
        raise BadRequestBody("expected multipart/form-data with a boundary")
    # The email package parses MIME multipart bodies; give it the header it needs to find the parts.
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    if not message.is_multipart():
        raise BadRequestBody("malformed multipart body")
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise BadRequestBody("multipart part without a name")
        payload = part.get_payload(decode=True)
        fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


def bearer_token(request: httpx.Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return None


def basic_credentials(request: httpx.Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def b64decode_strict(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise BadRequestBody("media is not valid base64") from exc


# --- writing ----------------------------------------------------------------------------------------


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    merged = {"content-type": "application/json; charset=utf-8", **(headers or {})}
    return httpx.Response(status, content=body, headers=merged)


def problem_response(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    merged = {"content-type": "application/problem+json", **(headers or {})}
    return httpx.Response(status, content=body, headers=merged)


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> httpx.Response:
    return httpx.Response(status, content=text.encode("utf-8"), headers={"content-type": content_type})


def html_response(status: int, html: str) -> httpx.Response:
    return text_response(status, html, "text/html; charset=utf-8")


def bytes_response(data: bytes, content_type: str) -> httpx.Response:
    return httpx.Response(200, content=data, headers={"content-type": content_type})


def redirect_response(location: str) -> httpx.Response:
    return httpx.Response(302, headers={"location": location}, content=b"")


# --- X error documents (RFC 7807 style) ---------------------------------------------------------------

STATUS_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def x_blank_problem(status: int, detail: str | None = None) -> dict[str, Any]:
    """The about:blank problem X sends for 401, 403, 429 and 5xx."""
    title = STATUS_TITLES.get(status, "Error")
    return {"title": title, "type": "about:blank", "status": status, "detail": detail or title}


def x_invalid_request(prefix: str, message: str, parameters: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "errors": [{"parameters": parameters, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": prefix + "invalid-request",
    }


# --- Graph error documents ----------------------------------------------------------------------------


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    status: int = 400,
    error_type: str = "OAuthException",
    user_title: str | None = None,
    user_msg: str | None = None,
    is_transient: bool = False,
) -> httpx.Response:
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = is_transient
    if user_title is not None:
        error["error_user_title"] = user_title
    if user_msg is not None:
        error["error_user_msg"] = user_msg
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    return json_response(status, {"error": error})


def instagram_oauth_error(message: str, code: int = 400) -> httpx.Response:
    """The api.instagram.com code-exchange host uses its own, flat error shape."""
    return json_response(code, {"error_type": "OAuthException", "code": code, "error_message": message})
