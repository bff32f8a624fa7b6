"""Caption templates: plain {placeholders}, empty lines and separators vanish, values kept as given."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosswatch.templates import BRIDGE_PLACEHOLDERS, KNOWN_PLACEHOLDERS, TemplateError, render, template_fields


def test_fields_are_listed_in_order() -> None:
    assert template_fields("{title} by {creator}\n{hashtags} {title}") == ["title", "creator", "hashtags", "title"]


@pytest.mark.parametrize(("template", "says"), [
    ("{title.upper}", "plain {placeholders} only"),
    ("{title[0]}", "plain {placeholders} only"),
    ("{title!r}", "plain {placeholders} only"),
    ("{title:>10}", "plain {placeholders} only"),
    ("{nope}", "unknown placeholder {nope}"),
    ("{title", "malformed template"),
])
def test_anything_but_plain_known_placeholders_is_refused(template: str, says: str) -> None:
    with pytest.raises(TemplateError, match=rf"{says.replace('{', '[{]').replace('}', '[}]')}"):
        template_fields(template)


def test_every_documented_placeholder_is_known() -> None:
    documented = {"title", "description", "creator", "copyright", "credit", "attribution", "hashtags",
                  "keywords", "year", "date", "camera", "lens", "link", "filename"}
    assert documented <= KNOWN_PLACEHOLDERS


def test_a_line_whose_placeholders_are_all_empty_disappears() -> None:
    template = "{title}\n\n{description}\n\n{attribution}\n\n{hashtags}"
    assert render(template, {"title": "Heron", "description": "", "attribution": "© Ana"}) == "Heron\n\n© Ana"


def test_literal_lines_and_escaped_braces_are_kept() -> None:
    assert render("{{fixed}}\n{title}", {"title": ""}) == "{fixed}"
    assert render("Posted by crosswatch\n{title}", {"title": "T"}) == "Posted by crosswatch\nT"


@pytest.mark.parametrize(("template", "values", "expected"), [
    ("{title} {attribution} {hashtags}", {"attribution": "© Ana", "hashtags": "#a"}, "© Ana #a"),
    ("{title}, {year} — {credit}", {"title": "Heron", "credit": "Agency"}, "Heron — Agency"),
    ("{attribution}: {title}", {"title": "Heron"}, "Heron"),
    ("© {year} {creator}", {"creator": "Ana"}, "© Ana"),
    ("Photo: {creator} ({credit})", {"creator": "Ana", "credit": "AP"}, "Photo: Ana (AP)"),
])
def test_separators_go_with_empty_placeholders(template: str, values: dict[str, str], expected: str) -> None:
    assert render(template, values) == expected


def test_values_are_inserted_exactly_as_given() -> None:
    notice = "Copyright (Notice) 2019.1 IPTC - www.iptc.org  (ref2019.1)"
    assert render("{copyright}", {"copyright": notice}) == notice
    assert render("{title}", {"title": "{description}"}) == "{description}"


@given(st.dictionaries(st.sampled_from(sorted(KNOWN_PLACEHOLDERS)), st.text(max_size=20)))
def test_rendering_never_fails_and_never_leaves_blank_ends(values: dict[str, str]) -> None:
    text = render("{title} — {description}\n\n{attribution}\n\n{hashtags}", values)
    assert text == text.strip("\n")
    assert "\n\n\n" not in text


@pytest.mark.parametrize("template", ["{title.__class__}", "{title[0]}", "{title.__class__.__mro__}",
                                      "{title!r}", "{title:{description}}"])
def test_render_never_looks_inside_a_value_even_for_a_template_nobody_checked(template: str) -> None:
    # config.py refuses these at start-up; render itself only ever looks a name up whole, and ignores
    # a conversion or format spec: nothing is evaluated, repr'd or formatted.
    with pytest.raises(TemplateError):
        template_fields(template)
    assert render(template, {"title": "Heron", "description": "x"}) in ("", "Heron")


def test_the_bridge_caption_takes_only_the_parts_of_an_instagram_caption() -> None:
    assert template_fields("{title} {attribution} {hashtags} {link}", BRIDGE_PLACEHOLDERS)
    with pytest.raises(TemplateError, match=re.escape("unknown placeholder {description}")):
        template_fields("{title} {description}", BRIDGE_PLACEHOLDERS)
