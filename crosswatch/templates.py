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


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``template``; a line whose placeholders are all empty disappears.

    Lines without placeholders are kept as written (blank lines included), but runs of blank lines
    left behind by removed lines collapse into one, and blank lines at the ends are trimmed.
    """
    out_lines: list[str] = []
    for line in template.split("\n"):
        parsed = list(string.Formatter().parse(line))
        names = [name for _lit, name, _spec, _conv in parsed if name is not None]
        pieces: list[str] = []
        for literal, name, _spec, _conv in parsed:
            pieces.append(literal)
            if name is not None:
                pieces.append(values.get(name, "") or "")
        if names and not any((values.get(n) or "").strip() for n in names):
            continue
        out_lines.append(_squeeze_spaces("".join(pieces)) if names else "".join(pieces))
    return _collapse_blank_lines(out_lines)


def _squeeze_spaces(line: str) -> str:
    # An empty placeholder between two words leaves a double space; fold it.
    return re.sub(r"[ \t]{2,}", " ", line).strip()


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
