"""compose: attribution, hashtags, links, alt text and fitting each platform's rules."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path, PurePath
from typing import Any

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crosswatch.compose
from crosswatch.compose import (
    ELLIPSIS,
    add_utm,
    caption_limit,
    compose,
    hashtag,
    normalise_copyright,
    placeholder_values,
    shorten_to_fit,
    weighted_length,
)
from crosswatch.config import Config, config_from_mapping
from crosswatch.metadata import read_metadata
from crosswatch.models import Metadata
from crosswatch.templates import render
from crosswatch.twitter_counting import twitter_text as load_twitter_text

twitter_text = load_twitter_text()  # without pkg_resources (setuptools 81+ has none)

PHOTOS = Path(__file__).resolve().parent / "data" / "photos"
PHOTO = PurePath("/photos/export-0042.jpg")


def make_config(tmp_path: Path, **sections: Any) -> Config:
    document: dict[str, Any] = {
        "watch": [{"path": str(tmp_path), "targets": ["x", "instagram"]}],
        "targets": {"x": {}, "instagram": {}, "outbox": {"path": str(tmp_path / "out")}},
    }
    document.update(sections)
    return config_from_mapping(document, tmp_path / "config.yaml")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


# ---------------------------------------------------------------------------------------------------
# Attribution


@pytest.mark.parametrize(("notice", "normalised"), [
    ("(c) 2020 Ana Lima", "© 2020 Ana Lima"),
    ("(C) Peter Bemmann", "© Peter Bemmann"),
    ("Copyright 2004 Phil Harvey", "© 2004 Phil Harvey"),
    ("Copyright © 2019 Ana", "© 2019 Ana"),
    ("©2021 Ana", "© 2021 Ana"),
    ("© © Ana", "© Ana"),
    ("ian Britton - FreeFoto.com", "© ian Britton - FreeFoto.com"),
    ("Copyright,", None),  # the D1X's notice: nothing but the word
    ("   ", None),
])
def test_copyright_notices_get_exactly_one_mark(notice: str, normalised: str | None) -> None:
    assert normalise_copyright(notice) == normalised


def test_the_notice_is_the_attribution_when_present(config: Config) -> None:
    metadata = Metadata(copyright="Copyright 2004 Phil Harvey", creator=("Phil Harvey",), date_taken="2001-05-19")
    assert placeholder_values(config, "x", metadata, PHOTO)["attribution"] == "© 2004 Phil Harvey"


def test_without_a_notice_the_attribution_is_creator_and_year(config: Config) -> None:
    metadata = Metadata(creator=("Ana Lima", "Rui Sousa"), date_taken="2021-06-01T10:00:00")
    assert placeholder_values(config, "x", metadata, PHOTO)["attribution"] == "© 2021 Ana Lima, Rui Sousa"


def test_the_configured_template_is_used_and_never_doubles_the_mark(tmp_path: Path) -> None:
    config = make_config(tmp_path, attribution="© {copyright} / {credit}")
    metadata = Metadata(copyright="(c) Ana Lima", credit="Agency")
    assert placeholder_values(config, "x", metadata, PHOTO)["attribution"] == "© Ana Lima / Agency"


def test_a_template_naming_an_absent_owner_falls_back_to_the_notice(tmp_path: Path) -> None:
    config = make_config(tmp_path, attribution="© {year} {creator}")
    with_creator = Metadata(creator=("Ana",), date_taken="2020-01-01")
    no_creator = Metadata(copyright="Copyright Big Agency", date_taken="2020-01-01")
    assert placeholder_values(config, "x", with_creator, PHOTO)["attribution"] == "© 2020 Ana"
    assert placeholder_values(config, "x", no_creator, PHOTO)["attribution"] == "© Big Agency"


@pytest.mark.parametrize(("terms", "statement", "licence"), [
    ("Creative Commons Attribution 4.0 International License", None,
     "CC BY 4.0 https://creativecommons.org/licenses/by/4.0/"),
    ("Creative Commons Attribution-NonCommercial-ShareAlike 4.0", None,
     "CC BY-NC-SA 4.0 https://creativecommons.org/licenses/by-nc-sa/4.0/"),
    (None, "https://creativecommons.org/licenses/by-sa/2.0/deed.en",
     "CC BY-SA 2.0 https://creativecommons.org/licenses/by-sa/2.0/"),
    ("Licensed CC BY-ND 3.0", None, "CC BY-ND 3.0 https://creativecommons.org/licenses/by-nd/3.0/"),
    ("CC0", None, "CC0 1.0 https://creativecommons.org/publicdomain/zero/1.0/"),
    ("Editorial use only", "https://example.com/rights", "Editorial use only https://example.com/rights"),
])
def test_the_licence_comes_from_usage_terms_and_web_statement(config: Config, terms: str | None,
                                                              statement: str | None, licence: str) -> None:
    metadata = Metadata(creator=("Ana",), usage_terms=terms, web_statement=statement)
    # Instagram links nothing and charges nothing: the licence keeps its URL there (X: see below).
    values = placeholder_values(config, "instagram", metadata, PHOTO)
    assert values["license"] == licence
    assert values["attribution"] == f"© Ana · {licence}"


@pytest.mark.parametrize(("terms", "statement", "licence"), [
    ("Creative Commons Attribution 4.0 International License", None, "CC BY 4.0"),
    ("Creative Commons Attribution-NonCommercial-ShareAlike 4.0", None, "CC BY-NC-SA 4.0"),
    (None, "https://creativecommons.org/licenses/by-sa/2.0/deed.en", "CC BY-SA 2.0"),
    ("CC0", None, "CC0 1.0"),
    ("Editorial use only", "https://example.com/rights", "Editorial use only"),
    (None, "www.meine-ansichten.de/copyright.html", ""),
])
def test_on_x_the_licence_goes_by_its_short_name_without_a_url(config: Config, terms: str | None,
                                                                 statement: str | None, licence: str) -> None:
    metadata = Metadata(creator=("Ana",), usage_terms=terms, web_statement=statement)
    values = placeholder_values(config, "x", metadata, PHOTO)
    assert values["license"] == licence
    caption = compose(config, "x", metadata, PHOTO)
    assert caption.text == " · ".join(part for part in ("© Ana", licence) if part)
    assert twitter_text.extract_urls(caption.text) == []


def test_on_x_text_nobody_asked_a_link_for_carries_no_url_but_the_link_does(tmp_path: Path) -> None:
    metadata = Metadata(title="Dawn at example.com (see https://ex.org/a)", description="Shot for Foto.de.",
                        copyright="ian Britton - FreeFoto.com", keywords=("web.site",))
    asked = make_config(tmp_path, captions={"x": "{title} {description} {attribution} {keywords} {link}"},
                        links={"url": "https://pics.example.com/dawn"})
    caption = compose(asked, "x", metadata, PHOTO)
    assert twitter_text.extract_urls(caption.text) == ["https://pics.example.com/dawn"]
    assert caption.text.startswith("Dawn at")
    assert "© ian Britton" in caption.text
    allowed = make_config(tmp_path, targets={"x": {"allow_urls": True}, "instagram": {},
                                             "outbox": {"path": str(tmp_path / "out")}})
    assert "FreeFoto.com" in compose(allowed, "x", metadata, PHOTO).text
    assert "FreeFoto.com" in compose(asked, "instagram", metadata, PHOTO).text


def test_a_cut_on_x_never_makes_a_url_of_a_word(tmp_path: Path) -> None:
    # "example.company" is no URL, but cut with an ellipsis to "example.co…" it would be one.
    config = make_config(tmp_path, captions={"x": "{description}"})
    for size in range(200, 280):
        metadata = Metadata(description="a" * size + " example.company and more words after it")
        caption = compose(config, "x", metadata, PHOTO)
        assert twitter_text.extract_urls(caption.text) == [], caption.text
        assert caption.length <= 280


def test_the_credit_travels_in_every_caption_of_the_hubble_photo(config: Config) -> None:
    metadata = read_metadata(PHOTOS / "dn-Issue 600 (1).jpg")
    for target in ("x", "instagram", "outbox"):
        caption = compose(config, target, metadata, PurePath("jupiter.jpg"))
        assert "Credit: NASA, ESA, Michael Wong" in caption.text
        assert "CC BY 4.0" in caption.text
        assert caption.length <= caption.limit


# ---------------------------------------------------------------------------------------------------
# Hashtags


@pytest.mark.parametrize(("keyword", "tag"), [
    ("New York", "#NewYork"), ("street photography", "#StreetPhotography"), ("summer", "#summer"),
    ("iPhone", "#iPhone"), ("São Paulo", "#SãoPaulo"), ("rock'n'roll", "#RockNRoll"), ("東京", "#東京"),
    ("2006", None), ("  ", None), ("#already", "#already"),
])
def test_keywords_become_hashtags(keyword: str, tag: str | None) -> None:
    assert hashtag(keyword) == tag


def test_hashtags_are_deduplicated_private_ones_dropped_extras_first_and_capped(tmp_path: Path) -> None:
    config = make_config(tmp_path, hashtags={"extra": ["#crosswatch"], "private": ["Family", "home"],
                                             "max": {"x": 2, "instagram": 4}})
    metadata = Metadata(title="A day", keywords=("New York", "new york", "NEW YORK", "family", "Home", "city",
                                                 "night", "2006"))
    x = compose(config, "x", metadata, PHOTO)
    instagram = compose(config, "instagram", metadata, PHOTO)
    assert x.hashtags == ("#crosswatch", "#NewYork")
    assert instagram.hashtags == ("#crosswatch", "#NewYork", "#city", "#night")
    assert "family" not in instagram.text.casefold()
    values = placeholder_values(config, "instagram", metadata, PHOTO)
    assert "family" not in values["keywords"].casefold() and "home" not in values["keywords"].casefold()


def test_hashtags_typed_in_the_description_count_towards_instagrams_cap(config: Config) -> None:
    metadata = Metadata(description="Sunset #sunset #sea #sky", keywords=("a", "b", "c", "d"))
    caption = compose(config, "instagram", metadata, PHOTO)
    assert len(re.findall(r"#\w+", caption.text)) <= 5
    assert caption.hashtags == ("#a", "#b")


# ---------------------------------------------------------------------------------------------------
# Links


@pytest.mark.parametrize(("url", "expected"), [
    ("https://ex.com/p", "https://ex.com/p?utm_source=x&utm_medium=social"),
    ("https://ex.com/p?a=1&b=two%20words", "https://ex.com/p?a=1&b=two%20words&utm_source=x&utm_medium=social"),
    ("https://ex.com/p#top", "https://ex.com/p?utm_source=x&utm_medium=social#top"),
    ("https://ex.com/p?utm_source=old&a=1#s", "https://ex.com/p?a=1&utm_source=x&utm_medium=social#s"),
])
def test_utm_parameters_merge_into_query_and_fragment(url: str, expected: str) -> None:
    assert add_utm(url, {"source": "x", "utm_medium": "social"}) == expected


def test_the_link_placeholder_carries_the_targets_utm(tmp_path: Path) -> None:
    config = make_config(tmp_path, captions={"x": "{title} {link}"},
                         links={"url": "https://pics.example.com/heron?ref=feed#photo",
                                "utm": {"x": {"utm_source": "x", "utm_campaign": "spring sale"}}})
    caption = compose(config, "x", Metadata(title="Heron"), PHOTO)
    assert caption.text == "Heron https://pics.example.com/heron?ref=feed&utm_source=x&utm_campaign=spring%20sale#photo"
    assert caption.length == len("Heron ") + 23  # every URL weighs 23 on X


# ---------------------------------------------------------------------------------------------------
# Alt text


def test_alt_text_prefers_iptc_alt_text_then_description_then_title(config: Config) -> None:
    assert compose(config, "x", Metadata(alt_text="A heron", description="D", title="T"), PHOTO).alt_text \
        == "A heron"
    assert compose(config, "x", Metadata(description="D", title="T"), PHOTO).alt_text == "D"
    assert compose(config, "x", Metadata(title="T"), PHOTO).alt_text == "T"


def test_alt_text_is_never_the_file_name_or_camera_boilerplate(tmp_path: Path) -> None:
    config = make_config(tmp_path, alt_text="{alt_text} {filename}")
    for junk in ("IMG_2927.HEIC", "export-0042", "DSC01234", "OLYMPUS DIGITAL CAMERA         "):
        caption = compose(config, "x", Metadata(description=junk, title=junk), PHOTO)
        assert caption.alt_text is None, junk


def test_alt_text_is_cut_to_1000_characters_at_a_word(config: Config) -> None:
    long_description = " ".join(["heron"] * 400)
    alt = compose(config, "x", Metadata(description=long_description), PHOTO).alt_text
    assert alt is not None and len(alt) <= 1000 and alt.endswith("heron" + ELLIPSIS)


# ---------------------------------------------------------------------------------------------------
# Templates and limits


def test_limits_per_target_kind() -> None:
    assert (caption_limit("x"), caption_limit("instagram"), caption_limit("outbox")) == (280, 2200, 2200)


def test_default_templates_per_kind(config: Config) -> None:
    metadata = Metadata(title="Heron", description="At dawn.", creator=("Ana",), keywords=("birds",))
    assert compose(config, "x", metadata, PHOTO).text == "Heron © Ana #birds"
    expected = "Heron\n\nAt dawn.\n\n© Ana\n\n#birds"
    assert compose(config, "instagram", metadata, PHOTO).text == expected
    assert compose(config, "outbox", metadata, PHOTO).text == expected


def test_a_named_target_uses_its_kind_and_its_own_template(tmp_path: Path) -> None:
    config = make_config(tmp_path, targets={"studio": {"type": "x"}, "outbox": {"path": str(tmp_path)}},
                         watch=[{"path": str(tmp_path), "targets": ["studio"]}],
                         captions={"studio": "{camera}: {title}"})
    caption = compose(config, "studio", Metadata(title="Heron", make="Canon", model="Canon EOS 7D"), PHOTO)
    assert (caption.text, caption.limit) == ("Canon EOS 7D: Heron", 280)
    with pytest.raises(ValueError, match="unknown target"):
        compose(config, "myspace", Metadata(), PHOTO)  # neither a target nor a platform


def test_a_long_x_caption_drops_hashtags_then_cuts_the_description(tmp_path: Path) -> None:
    config = make_config(tmp_path, captions={"x": "{title}\n{description}\n{attribution} {hashtags}"})
    description = "The heron waited. " + " ".join(["It stood still in the shallow water"] * 12)
    metadata = Metadata(title="Heron", description=description, creator=("Ana Lima",),
                        keywords=("birds", "heron", "water"))
    caption = compose(config, "x", metadata, PHOTO)
    assert caption.length <= 280 == caption.limit
    assert caption.shortened == ("hashtags", "description")
    assert caption.hashtags == ()
    assert caption.text.startswith("Heron\n") and caption.text.endswith("\n© Ana Lima")
    assert ELLIPSIS in caption.text  # cut inside the long second sentence, not back to the first


def test_a_whole_sentence_is_preferred_when_it_keeps_most_of_the_text() -> None:
    text = "First sentence is fairly long indeed. Second one never ends and goes on"
    assert shorten_to_fit(text, lambda t: len(t) <= 50) == "First sentence is fairly long indeed."


def test_a_single_overlong_word_is_cut_between_graphemes() -> None:
    word = "👍🏽" * 30
    cut = shorten_to_fit(word, lambda t: len(t) <= 21)
    assert cut == "👍🏽" * 10 + ELLIPSIS


def test_a_url_is_dropped_whole_rather_than_cut() -> None:
    assert shorten_to_fit("https://example.com/a/very/long/path", lambda t: len(t) <= 20) == ""


def test_instagram_allows_at_most_20_mentions(config: Config) -> None:
    description = " ".join(f"@friend{i}" for i in range(30))
    caption = compose(config, "instagram", Metadata(description=description, creator=("Ana",)), PHOTO)
    assert len(re.findall(r"@\w+", caption.text)) <= 20
    assert caption.shortened == ("description",)
    assert "© Ana" in caption.text


def test_the_attribution_is_kept_when_everything_else_must_go(tmp_path: Path) -> None:
    config = make_config(tmp_path, captions={"x": "{title} {description} {attribution}"})
    metadata = Metadata(title="T " * 100, description="D " * 100, copyright="(c) " + "Ana Lima " * 25)
    caption = compose(config, "x", metadata, PHOTO)
    attribution_text = "© " + ("Ana Lima " * 25).strip()
    assert caption.text.endswith(attribution_text) and caption.length <= 280
    assert caption.shortened == ("description", "title")
    assert "D" not in caption.text  # the description went first, the title was cut next


def test_compose_imports_no_io() -> None:
    tree = ast.parse(Path(crosswatch.compose.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    io_modules = {"os", "io", "sqlite3", "socket", "subprocess", "shutil", "keyring", "watchdog", "httpx",
                  "urllib.request", "requests"}
    assert not imported & io_modules


def test_every_real_photo_composes_within_limits(config: Config) -> None:
    for photo in sorted(PHOTOS.glob("*.*")):
        if photo.suffix.lower() not in (".jpg", ".png", ".heic"):
            continue
        metadata = read_metadata(photo)
        for target in ("x", "instagram"):
            caption = compose(config, target, metadata, PurePath(photo.name))
            assert caption.length <= caption.limit
            assert photo.stem not in (caption.alt_text or "")


# ---------------------------------------------------------------------------------------------------
# Properties: the limit holds, nothing is split, the attribution survives when it can

# Multi-code-point clusters whose pieces never appear on their own, so a split shows up as a new cluster.
CLUSTERS = ["👍🏽", "👨‍👩‍👧", "🇫🇷", "x\u0301", "ก\u0e33"]
WORD = st.text(alphabet="abcdefghij", min_size=1, max_size=9)
TOKEN = st.one_of(
    WORD, WORD, WORD,
    st.sampled_from(CLUSTERS),
    st.builds(lambda w: f"https://example.com/{w}?q={w}", WORD),
    st.builds(lambda w: f"{w}.org", WORD),
    st.builds(lambda w: f"#{w}", WORD),
    st.builds(lambda w: f"@{w}", WORD),
    st.builds(lambda w: f"{w}.", WORD),
    st.sampled_from(["東京", "ü", "—"]),
)
TEXT = st.lists(TOKEN, max_size=120).map(" ".join)
TEMPLATES = st.sampled_from([
    None,
    "{title} {description} {attribution} {hashtags}",
    "{description}\n{attribution}\n{title} {hashtags}",
    "{attribution}: {title} — {description} {hashtags}",
    "{title}\n\n{description}\n\n{keywords}\n\n{attribution}\n\n{hashtags}",
])


@st.composite
def photos(draw: st.DrawFn) -> Metadata:
    return Metadata(
        title=draw(st.one_of(st.none(), TEXT.map(lambda t: t[:200]))),
        description=draw(st.one_of(st.none(), TEXT, st.lists(TEXT, min_size=5, max_size=12).map(" ".join))),
        creator=tuple(draw(st.lists(WORD, max_size=3))),
        copyright=draw(st.one_of(st.none(), st.builds(lambda w: f"(c) {w}", TEXT))),
        keywords=tuple(draw(st.lists(st.one_of(WORD, st.sampled_from(CLUSTERS)), max_size=12))),
        date_taken=draw(st.sampled_from([None, "2024-05-06T07:08:09"])),
    )


def _clusters(text: str) -> set[str]:
    return set(regex.findall(r"\X", text))


def _urls(text: str) -> set[str]:
    return {u["url"] for u in twitter_text.extract_urls_with_indices(text)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(metadata=photos(), target=st.sampled_from(["x", "instagram"]), template=TEMPLATES)
def test_fitted_captions_keep_every_rule(tmp_path: Path, metadata: Metadata, target: str,
                                         template: str | None) -> None:
    config = make_config(tmp_path, captions={target: template} if template else {})
    caption = compose(config, target, metadata, PHOTO)
    values = placeholder_values(config, target, metadata, PHOTO)
    full_template = template or crosswatch.compose.DEFAULT_CAPTIONS[target]
    everything = render(full_template, {**values, "hashtags": " ".join(f"#{k}" for k in metadata.keywords)})
    source = " ".join([everything, *values.values(), full_template, ELLIPSIS, *(caption.hashtags)])

    # the limit
    measured = weighted_length(caption.text) if target == "x" else len(caption.text.encode("utf-16-le")) // 2
    assert caption.length == measured <= caption.limit
    # no grapheme cluster, URL, hashtag or mention is split: each one in the caption exists whole in the input
    assert _clusters(caption.text) <= _clusters(source) | _clusters(ELLIPSIS)
    assert _urls(caption.text) <= _urls(source)
    for pattern in (r"#\w+", r"@\w+"):
        assert set(re.findall(pattern, caption.text)) <= set(re.findall(pattern, source))
    # the attribution survives whenever the caption could hold it with nothing else
    attribution_only = render(full_template, {"attribution": values["attribution"]})
    fits_alone = (weighted_length(attribution_only) if target == "x" else len(attribution_only)) <= caption.limit
    if values["attribution"] and fits_alone and target == "x":
        assert values["attribution"] in caption.text
    # (on Instagram it must also keep to the hashtag cap: an attribution of six #tags cannot stay whole)
    within_cap = len(re.findall(r"#\w+", attribution_only)) <= crosswatch.compose.hashtag_cap(config, target, target)
    if (values["attribution"] and fits_alone and within_cap and target == "instagram"
            and "@" not in values["attribution"]):
        assert values["attribution"] in caption.text


@settings(max_examples=80, deadline=None)
@given(text=TEXT, limit=st.integers(min_value=1, max_value=200))
def test_shortening_gives_a_prefix_made_of_whole_tokens(text: str, limit: int) -> None:
    cut = shorten_to_fit(text, lambda t: len(t) <= limit)
    assert len(cut) <= limit
    body = cut.removesuffix(ELLIPSIS)
    assert text.startswith(body)
    text_clusters = regex.findall(r"\X", text)
    assert regex.findall(r"\X", body) == text_clusters[: len(regex.findall(r"\X", body))]
    assert _urls(body) <= _urls(text)


def test_metadata_dataclass_is_unchanged_by_compose(config: Config) -> None:
    metadata = Metadata(title="Heron", keywords=("birds",))
    before = dataclasses.asdict(metadata)
    compose(config, "x", metadata, PHOTO)
    assert dataclasses.asdict(metadata) == before
