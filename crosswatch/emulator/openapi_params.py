"""The parameters X's OpenAPI document lists for each endpoint the emulator serves.

X answers 400 to a query parameter an endpoint does not list (api-notes.md item 16), so the emulator
takes each endpoint's list from the document itself rather than from a hand-written copy. The full
document (tests/data/x-openapi.json, about 860 KB) is not shipped in the package; ``data/x-openapi-params.json``
is an extract of it holding only the parameters of the operations the emulator serves, written by
``tools/make_x_openapi_extract.py`` from the full document, and a test checks that the two agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

EXTRACT_NAME = "x-openapi-params.json"
OPERATION_METHODS = ("get", "post", "put", "delete", "patch")


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str  # "query", "path" or "header", as the document's "in"
    required: bool


def _resolve(document: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/components/parameters/...``) to the object it names."""
    while "$ref" in node:
        target: Any = document
        for token in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[token.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def extract(document: Mapping[str, Any], operations: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The extract for ``operations`` ((METHOD, path template) pairs): each one's parameters in the
    document's order, with ``$ref``s resolved. An operation the document lacks is an error: the
    emulator must not serve an endpoint X does not define."""
    extracted: dict[str, Any] = {}
    paths = document["paths"]
    for method, template in sorted(set(operations)):
        operation = paths.get(template, {}).get(method.lower())
        if operation is None:
            raise KeyError(f"{method} {template} is not an operation of X's OpenAPI document")
        parameters = [_resolve(document, item) for item in operation.get("parameters", [])]
        extracted[f"{method} {template}"] = [
            {"name": p["name"], "in": p["in"], "required": bool(p.get("required", False))} for p in parameters
        ]
    return {"openapi_version": document.get("info", {}).get("version"), "operations": extracted}


def render(document: Mapping[str, Any], operations: Iterable[tuple[str, str]]) -> str:
    """The extract file's text, exactly as shipped (a test compares the two)."""
    return json.dumps(extract(document, operations), indent=1, sort_keys=True) + "\n"


def shipped_text() -> str:
    return resources.files("crosswatch.emulator").joinpath("data", EXTRACT_NAME).read_text(encoding="utf-8")


@cache
def _loaded() -> Mapping[str, tuple[Parameter, ...]]:
    operations = json.loads(shipped_text())["operations"]
    return {key: tuple(Parameter(p["name"], p["in"], p["required"]) for p in items)
            for key, items in operations.items()}


def parameters(method: str, template: str) -> tuple[Parameter, ...]:
    """The parameters the document lists for ``METHOD template``; KeyError when it lists none (the
    extract is out of date: run tools/make_x_openapi_extract.py)."""
    return _loaded()[f"{method} {template}"]


def query_names(method: str, template: str) -> frozenset[str]:
    return frozenset(p.name for p in parameters(method, template) if p.where == "query")


def listed_names(method: str, template: str) -> tuple[str, ...]:
    """Every parameter name (path and query) in the document's order, as X lists them in its 400."""
    return tuple(p.name for p in parameters(method, template) if p.where in ("path", "query"))
