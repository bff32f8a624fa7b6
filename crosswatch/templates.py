"""Caption templates: ``{placeholder}`` substitution and nothing else.

No attribute access, no indexing, no format specs, no evaluation: a template is text with named holes.
``{{`` and ``}}`` stand for literal braces. Pure; config.py uses ``template_fields`` to refuse unknown
placeholders at start-up, compose.py uses ``render``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

# Every name a caption, alt-text or attribution template may use.
KNOWN_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "title",
        "description",
        "creator",
        "copyright",
        "credit",
        "attribution",
        "license",
        "hashtags",
        "keywords",
        "year",
        "date",
        "camera",
        "make",
        "model",
        "lens",
        "link",
        "filename",
        "rating",
        "alt_text",
    }
)

# What the bridge's captions are made of (compose.condense): the Instagram caption's parts.
BRIDGE_PLACEHOLDERS: frozenset[str] = frozenset({"title", "attribution", "hashtags", "link"})

_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")


class TemplateError(ValueError):
    """A template that is not plain ``{name}`` substitution, or names an unknown field."""


def template_fields(template: str, known: frozenset[str] = KNOWN_PLACEHOLDERS) -> list[str]:
    """The placeholder names in ``template``, in order; raises TemplateError on anything else."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"malformed template ({exc}); write literal braces as {{{{ and }}}}") from exc
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not _NAME.match(name):
            raise TemplateError(
                f"'{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}' "
                "is not allowed: templates take plain {placeholders} only"
            )
        if name not in known:
            raise TemplateError(
                f"unknown placeholder {{{name}}}; known: {', '.join(sorted(known))}"
            )
        names.append(name)
    return names


# Literal text made only of these is a separator between placeholders: it goes with an empty one.
_SEPARATOR = re.compile(r"[\s,;:/|·•–—-]*")


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``template``; a line whose placeholders are all empty disappears.

    Within a line, separator-only text next to an empty placeholder goes with it ("{a}, {b} — {c}"
    with an empty b gives "A — C"; a separator at the start or end of what is left is dropped), so no
    dangling commas or doubled spaces remain; the values themselves are inserted exactly as given.
    Lines without placeholders are kept as written (blank lines included), but runs of blank lines
    left behind by removed lines collapse into one, and blank lines at the ends are trimmed.
    """
    out_lines: list[str] = []
    for line in template.split("\n"):
        parsed = [(literal, name) for literal, name, _spec, _conv in string.Formatter().parse(line)]
        names = [name for _literal, name in parsed if name is not None]
        if not names:
            out_lines.append("".join(literal for literal, _name in parsed))
            continue
        if not any((values.get(n) or "").strip() for n in names):
            continue
        out_lines.append(_render_line(parsed, values))
    return _collapse_blank_lines(out_lines)


def _render_line(parsed: list[tuple[str, str | None]], values: Mapping[str, str]) -> str:
    out = ""
    gap = ""  # separator text waiting for the next non-empty piece; the last one wins
    for literal, name in parsed:
        if literal:
            if _SEPARATOR.fullmatch(literal):
                gap = literal if out else ""
            else:
                out, gap = _join(out, gap) + literal, ""
        value = (values.get(name) or "") if name is not None else ""
        if value.strip():
            out, gap = _join(out, gap) + value, ""
    return out.strip()


def _join(out: str, gap: str) -> str:
    # "© " then the gap " " left by an empty {year}: one space, not two
    return out + (gap.lstrip() if out[-1:].isspace() else gap)


def _collapse_blank_lines(lines: list[str]) -> str:
    result: list[str] = []
    for line in lines:
        if not line.strip() and result and not result[-1].strip():
            continue
        result.append(line)
    while result and not result[0].strip():
        result.pop(0)
    while result and not result[-1].strip():
        result.pop()
    return "\n".join(result)
