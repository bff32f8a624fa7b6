"""A validator for the subset of atproto Lexicon that the emulated records and calls use.

The lexicons are the platform's own JSON files (``data/lexicons``, copied from bluesky-social/atproto
at d6296a1c; see the README there). What is checked, as in the Lexicon spec (atproto.com/specs/lexicon):
``required`` and unknown ``$type``s, ``string`` ``maxLength`` (UTF-8 bytes), ``maxGraphemes``,
``minLength``, ``enum`` and the formats ``datetime``, ``language``, ``did``, ``uri``, ``at-identifier``,
``handle``, ``nsid``; ``integer`` ``minimum``/``maximum``; ``array`` ``maxLength``/``minLength`` and
items; ``ref``s and ``union``s (an item's ``$type`` must name one of the refs; a closed union refuses
others); ``blob`` shape, ``accept`` and ``maxSize``. ``knownValues`` are advice, never a refusal, as
the spec says. Error messages follow the reference implementation's wording
(``Invalid app.bsky.feed.post record: ... must ...``, and ``blob too big (maximum N, got M)``).

A lexicon pure-Python alternative exists (the ``atproto`` package's generated models), but it brings
a whole SDK for what is a hundred lines of rules; these rules read the lexicon files themselves.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import regex

GRAPHEME = regex.compile(r"\X")
DATETIME = re.compile(r"^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,20})?"
                      r"(Z|[+-][0-2][0-9]:[0-5][0-9])$")
LANGUAGE = re.compile(r"^(i|[a-z]{2,3})(-[A-Za-z0-9]{1,8})*$")
DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
HANDLE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
NSID = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+$")
URI = re.compile(r"^[a-z][a-z.+-]*:\S+$")


class LexiconError(ValueError):
    """A value the lexicon refuses; the message is the reference PDS's kind of words."""


@cache
def lexicon(nsid: str) -> dict[str, Any]:
    path = resources.files("crosswatch.emulator").joinpath("data/lexicons", *nsid.split(".")[:-1],
                                                           nsid.split(".")[-1] + ".json")
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LexiconError(f"Lexicon not found: {nsid}") from None
    return document


def definition(ref: str, base_nsid: str) -> tuple[dict[str, Any], str]:
    """The definition ``ref`` names (``#local``, ``nsid`` or ``nsid#name``) and its lexicon's id."""
    nsid, _, name = ref.partition("#")
    nsid = nsid or base_nsid
    defs = lexicon(nsid)["defs"]
    found = defs.get(name or "main")
    if found is None:
        raise LexiconError(f"Lexicon definition not found: {nsid}#{name or 'main'}")
    return found, nsid


def validate_record(nsid: str, value: Any) -> None:
    main = lexicon(nsid)["defs"]["main"]
    if main.get("type") != "record":
        raise LexiconError(f"{nsid} is not a record type")
    if not isinstance(value, dict) or value.get("$type") != nsid:
        raise LexiconError(f"Invalid {nsid} record: Record/$type must be {nsid}")
    try:
        _object(main["record"], value, "Record", nsid)
    except LexiconError as exc:
        raise LexiconError(f"Invalid {nsid} record: {exc}") from None


def validate_input(nsid: str, value: Any) -> None:
    """A procedure's JSON input against its lexicon (``Input`` paths, as xrpc-server words them)."""
    schema = lexicon(nsid)["defs"]["main"].get("input", {}).get("schema")
    if schema is not None:
        _value(schema, value, "Input", nsid)


def _value(schema: dict[str, Any], value: Any, path: str, nsid: str) -> None:
    kind = schema.get("type")
    if kind == "ref":
        target, target_nsid = definition(schema["ref"], nsid)
        _value(target, value, path, target_nsid)
    elif kind == "union":
        _union(schema, value, path, nsid)
    elif kind == "object":
        _object(schema, value, path, nsid)
    elif kind == "string":
        _string(schema, value, path)
    elif kind == "integer":
        _integer(schema, value, path)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise LexiconError(f"{path} must be a boolean")
    elif kind == "array":
        _array(schema, value, path, nsid)
    elif kind == "blob":
        _blob(schema, value, path)
    elif kind == "unknown":
        if not isinstance(value, dict):
            raise LexiconError(f"{path} must be an object")
    else:
        raise LexiconError(f"{path}: the emulator does not validate lexicon type {kind!r}")


def _object(schema: dict[str, Any], value: Any, path: str, nsid: str) -> None:
    if not isinstance(value, dict):
        raise LexiconError(f"{path} must be an object")
    nullable = set(schema.get("nullable", ()))
    for name in schema.get("required", ()):
        if name not in value or (value[name] is None and name not in nullable):
            raise LexiconError(f'{path} must have the property "{name}"')
    for name, item in value.items():
        prop = schema.get("properties", {}).get(name)
        if prop is None or (item is None and name in nullable):
            continue  # unknown fields are allowed (forward compatibility), as in the spec
        _value(prop, item, f"{path}/{name}", nsid)


def _union(schema: dict[str, Any], value: Any, path: str, nsid: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("$type"), str):
        raise LexiconError(f"{path} must be an object which includes the \"$type\" property")
    wanted = value["$type"]
    refs = schema.get("refs", [])
    for ref in refs:
        ref_nsid, _, name = ref.partition("#")
        full = f"{ref_nsid or nsid}#{name}" if name else ref_nsid
        if wanted in (full, full.removesuffix("#main")) or (not name and wanted == f"{ref_nsid}#main"):
            target, target_nsid = definition(ref, nsid)
            _value(target, value, path, target_nsid)
            return
    if schema.get("closed"):
        raise LexiconError(f"{path} $type must be one of {', '.join(refs)}")


def _string(schema: dict[str, Any], value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise LexiconError(f"{path} must be a string")
    size = len(value.encode("utf-8"))
    if "maxLength" in schema and size > schema["maxLength"]:
        raise LexiconError(f"{path} must not be longer than {schema['maxLength']} characters")
    if "minLength" in schema and size < schema["minLength"]:
        raise LexiconError(f"{path} must not be shorter than {schema['minLength']} characters")
    if "maxGraphemes" in schema and len(GRAPHEME.findall(value)) > schema["maxGraphemes"]:
        raise LexiconError(f"{path} must not be longer than {schema['maxGraphemes']} graphemes")
    if "enum" in schema and value not in schema["enum"]:
        raise LexiconError(f"{path} must be one of ({'|'.join(schema['enum'])})")
    _format(schema.get("format"), value, path)


def _format(name: str | None, value: str, path: str) -> None:
    if name is None:
        return
    checks = {"language": LANGUAGE, "did": DID, "handle": HANDLE, "nsid": NSID, "uri": URI}
    if name == "datetime":
        ok = bool(DATETIME.match(value))
        if ok:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                ok = False
    elif name == "at-identifier":
        ok = bool(DID.match(value) or HANDLE.match(value))
    elif name in checks:
        ok = bool(checks[name].match(value))
    else:
        ok = True  # a format this subset does not use
    if not ok:
        article = "an" if name[0] in "aeiou" else "a"
        raise LexiconError(f"{path} must be {article} valid {name.replace('-', ' ')}")


def _integer(schema: dict[str, Any], value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LexiconError(f"{path} must be an integer")
    if "minimum" in schema and value < schema["minimum"]:
        raise LexiconError(f"{path} can not be less than {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise LexiconError(f"{path} can not be greater than {schema['maximum']}")


def _array(schema: dict[str, Any], value: Any, path: str, nsid: str) -> None:
    if not isinstance(value, list):
        raise LexiconError(f"{path} must be an array")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise LexiconError(f"{path} must not have more than {schema['maxLength']} elements")
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise LexiconError(f"{path} must not have fewer than {schema['minLength']} elements")
    for index, item in enumerate(value):
        _value(schema["items"], item, f"{path}/{index}", nsid)


def _blob(schema: dict[str, Any], value: Any, path: str) -> None:
    ref = value.get("ref") if isinstance(value, dict) else None
    if (not isinstance(value, dict) or value.get("$type") != "blob" or not isinstance(ref, dict)
            or not isinstance(ref.get("$link"), str) or not isinstance(value.get("mimeType"), str)
            or isinstance(value.get("size"), bool) or not isinstance(value.get("size"), int)):
        raise LexiconError(f"{path} should be a blob ref")
    mime, size = value["mimeType"], value["size"]
    accept = schema.get("accept")
    if accept and not any(a == "*/*" or a == mime or (a.endswith("/*") and mime.startswith(a[:-1]))
                          for a in accept):
        raise LexiconError(f"{path} mime type must be one of {', '.join(accept)} (got {mime})")
    if "maxSize" in schema and size > schema["maxSize"]:
        raise LexiconError(f"blob too big (maximum {schema['maxSize']}, got {size}) at {path}")


def blob_limits(record_nsid: str, embed_nsid: str) -> dict[str, Any]:
    """The image blob's schema in an embed lexicon (for tests and the page)."""
    found, _ = definition(f"{embed_nsid}#image", record_nsid)
    blob: dict[str, Any] = found["properties"]["image"]
    return blob
