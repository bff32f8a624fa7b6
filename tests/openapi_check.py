"""Checks X API requests (and the emulator's answers) against X's published OpenAPI document.

``XOpenAPI(path).check_request(request)`` returns a list of violations (empty when the request
conforms): the path and method must be an operation of the document, path and query parameters must
match their schemas (unknown query parameters are reported, as X rejects them), and a JSON,
multipart or form body must validate against the operation's request body schema, ``$ref``s resolved.
``check_response`` validates a 2xx JSON body against the documented response schema and checks that
error bodies are problem documents.

The OAuth endpoints (``/2/oauth2/token``, ``/2/oauth2/revoke``, ``/i/oauth2/authorize``) are specified
by X's OAuth pages, not by this document, and are skipped.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).resolve().parent / "data" / "x-openapi.json"
SPEC_URI = "urn:x-openapi"
OAUTH_OPERATIONS = frozenset(
    {("GET", "/i/oauth2/authorize"), ("POST", "/2/oauth2/token"), ("POST", "/2/oauth2/revoke")}
)


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    pattern: re.Pattern[str]
    literal_segments: int
    pointer: str  # JSON pointer of the operation object in the document

    def path_params(self, path: str) -> dict[str, str]:
        match = self.pattern.match(path)
        return match.groupdict() if match else {}


def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _nullable_to_null_type(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` becomes a JSON Schema ``null`` alternative."""
    if isinstance(node, dict):
        converted = {key: _nullable_to_null_type(value) for key, value in node.items()}
        if converted.get("nullable") is True and isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
        return converted
    if isinstance(node, list):
        return [_nullable_to_null_type(item) for item in node]
    return node


class XOpenAPI:
    def __init__(self, spec_path: Path = SPEC_PATH) -> None:
        raw = json.loads(spec_path.read_text(encoding="utf-8"))
        self.spec: dict[str, Any] = _nullable_to_null_type(copy.deepcopy(raw))
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT4.create_resource(self.spec))
        self._validators: dict[str, Draft4Validator] = {}
        self.operations = self._operations()

    # --- lookup -----------------------------------------------------------------------------------

    def _operations(self) -> list[Operation]:
        found: list[Operation] = []
        for template, item in self.spec["paths"].items():
            segments = template.strip("/").split("/")
            regex = "/".join(
                f"(?P<{s[1:-1].replace('.', '_')}>[^/]+)" if s.startswith("{") else re.escape(s)
                for s in segments
            )
            literal = sum(1 for s in segments if not s.startswith("{"))
            for method in item:
                if method in ("get", "post", "put", "delete", "patch"):
                    pointer = f"/paths/{_escape_pointer(template)}/{method}"
                    found.append(
                        Operation(template, method.upper(), re.compile(f"^/{regex}$"), literal, pointer)
                    )
        # Prefer /2/users/me over /2/users/{id}: the most literal segments win.
        return sorted(found, key=lambda op: -op.literal_segments)

    def find(self, method: str, path: str) -> Operation | None:
        return next((op for op in self.operations if op.method == method and op.pattern.match(path)), None)

    def _resolve(self, pointer: str) -> Any:
        node: Any = self.spec
        for token in pointer.strip("/").split("/"):
            key = token.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            node = self._resolve(node["$ref"].removeprefix("#"))
        return node

    def _validator(self, pointer: str) -> Draft4Validator:
        if pointer not in self._validators:
            schema = {"$ref": f"{SPEC_URI}#{pointer}"}
            self._validators[pointer] = Draft4Validator(schema, registry=self._registry)
        return self._validators[pointer]

    def _errors(self, pointer: str, instance: Any, where: str) -> list[str]:
        errors = sorted(self._validator(pointer).iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [
            f"{where}: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}" for e in errors
        ]

    # --- requests -----------------------------------------------------------------------------------

    @staticmethod
    def is_x_request(request: httpx.Request) -> bool:
        path = request.url.path
        return path.startswith("/2/") or path.startswith("/i/oauth2/")

    def check_request(self, request: httpx.Request) -> list[str]:
        method, path = request.method, request.url.path
        if (method, path) in OAUTH_OPERATIONS:
            return []
        request.read()  # a streamed body (multipart) is read into memory; a no-op once read
        operation = self.find(method, path)
        if operation is None:
            return [f"{method} {path}: not an operation of X's OpenAPI document"]
        label = f"{method} {operation.template}"
        problems = self._check_parameters(operation, request, label)
        problems += self._check_body(operation, request, label)
        return problems

    def _parameters(self, operation: Operation) -> list[tuple[str, dict[str, Any]]]:
        """(JSON pointer, resolved parameter) pairs for the operation."""
        op = self._resolve(operation.pointer)
        out = []
        for index, param in enumerate(op.get("parameters", [])):
            pointer = (
                param["$ref"].removeprefix("#")
                if "$ref" in param
                else f"{operation.pointer}/parameters/{index}"
            )
            out.append((pointer, self._resolve(pointer)))
        return out

    def _check_parameters(self, operation: Operation, request: httpx.Request, label: str) -> list[str]:
        problems: list[str] = []
        query = dict(parse_qsl(request.url.query.decode("ascii", "replace"), keep_blank_values=True))
        path_values = operation.path_params(request.url.path)
        known_query: set[str] = set()
        for pointer, param in self._parameters(operation):
            name, where = param["name"], param["in"]
            if where == "query":
                known_query.add(name)
                value: str | None = query.get(name)
            elif where == "path":
                value = path_values.get(name.replace(".", "_"))
            else:
                continue
            if value is None:
                if param.get("required"):
                    problems.append(f"{label}: missing required {where} parameter {name}")
                continue
            schema = self._resolve(pointer + "/schema")
            problems += self._errors(pointer + "/schema", _coerce(value, schema), f"{label} {where} {name}")
        unknown = sorted(set(query) - known_query)
        problems += [f"{label}: query parameter {name} is not defined" for name in unknown]
        return problems

    def _check_body(self, operation: Operation, request: httpx.Request, label: str) -> list[str]:
        op = self._resolve(operation.pointer)
        body_spec = op.get("requestBody")
        if body_spec is None:
            return [f"{label}: the operation takes no body"] if request.content else []
        if "$ref" in body_spec:
            body_spec = self._resolve(body_spec["$ref"].removeprefix("#"))
        if not request.content:
            return [f"{label}: a request body is required"] if body_spec.get("required") else []
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        content = body_spec.get("content", {})
        if media_type not in content:
            return [f"{label}: body media type {media_type!r} not among {sorted(content)}"]
        pointer = f"{operation.pointer}/requestBody/content/{_escape_pointer(media_type)}/schema"
        if "$ref" in op["requestBody"]:
            ref = op["requestBody"]["$ref"].removeprefix("#")
            pointer = f"{ref}/content/{_escape_pointer(media_type)}/schema"
        try:
            instance = _decode_body(request, media_type)
        except ValueError as exc:
            return [f"{label}: {exc}"]
        return self._errors(pointer, instance, f"{label} body")

    # --- responses ----------------------------------------------------------------------------------

    def check_response(self, request: httpx.Request, response: httpx.Response) -> list[str]:
        method, path = request.method, request.url.path
        operation = self.find(method, path)
        if (method, path) in OAUTH_OPERATIONS or operation is None:
            return []
        label = f"{method} {operation.template} -> {response.status_code}"
        try:
            body = response.json()
        except ValueError:
            return [f"{label}: the response body is not JSON"]
        if response.status_code >= 400:
            return _problem_shape(body, label)
        responses = self._resolve(operation.pointer)["responses"]
        status_key = str(response.status_code)
        if status_key not in responses:
            return [f"{label}: status not documented (documented: {sorted(responses)})"]
        pointer = f"{operation.pointer}/responses/{status_key}/content/application~1json/schema"
        return self._errors(pointer, body, label)


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A query string value as the typed value its schema describes (style=form, explode=false)."""
    kind = schema.get("type")
    if kind == "array":
        return [_coerce(item, schema.get("items", {})) for item in value.split(",")]
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


def _decode_body(request: httpx.Request, media_type: str) -> Any:
    if media_type == "application/json":
        try:
            return json.loads(request.content)
        except ValueError as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc
    if media_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(request.content.decode("utf-8"), keep_blank_values=True))
    if media_type == "multipart/form-data":
        raw = (
            b"Content-Type: "
            + request.headers["content-type"].encode("latin-1")
            + b"\r\n\r\n"
            + request.content
        )
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            # File parts are binary strings to the schema; text parts are their decoded text.
            is_file = part.get_param("filename", header="content-disposition") is not None
            fields[str(name)] = "<binary>" if is_file else data.decode("utf-8", "replace")
        return fields
    raise ValueError(f"cannot decode a {media_type} body")


def _problem_shape(body: Any, label: str) -> list[str]:
    """Errors are RFC 7807 problems (title, type; X's 400s add an errors[] list)."""
    if not isinstance(body, dict):
        return [f"{label}: error body is not an object"]
    missing = [key for key in ("title", "type") if not isinstance(body.get(key), str)]
    return [f"{label}: problem document lacks {', '.join(missing)}"] if missing else []
