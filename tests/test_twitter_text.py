"""X's own conformance cases (twitter-text validate.yml) against the counting crosswatch uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from crosswatch import pricing, twitter_counting
from crosswatch.compose import X_LIMIT, caption_length, weighted_length
from crosswatch.twitter_counting import twitter_text as load_twitter_text

twitter_text = load_twitter_text()  # without pkg_resources (setuptools 81+ has none)

VALIDATE = Path(__file__).resolve().parent / "data" / "twitter-text" / "validate.yml"
CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load(VALIDATE.read_text(encoding="utf-8"))["tests"]

# The sections counted with the current (v3) rules: emoji sequences weigh 2, URLs 23.
V3_SECTIONS = ("WeightedTweetsWithDiscountedEmojiCounterTest", "UnicodeDirectionalMarkerCounterTest")
V3_CASES = [(section, case) for section in V3_SECTIONS for case in CASES[section]]


def test_the_conformance_file_has_the_cases_its_source_lists() -> None:
    # SOURCE.md: 22 discounted-emoji cases and 2 directional-marker cases
    assert [len(CASES[s]) for s in V3_SECTIONS] == [22, 2]


@pytest.mark.parametrize(("section", "case"), V3_CASES, ids=[f"{s}:{c['description']}" for s, c in V3_CASES])
def test_weighted_length_and_validity_match_x(section: str, case: dict[str, Any]) -> None:
    expected = case["expected"]
    assert weighted_length(case["text"]) == expected["weightedLength"]
    assert caption_length("x", case["text"]) == expected["weightedLength"]
    parsed = twitter_text.parse_tweet(case["text"])
    assert parsed.valid is expected["valid"]
    assert (parsed.validRangeStart, parsed.validRangeEnd) == (expected["validRangeStart"], expected["validRangeEnd"])


def test_the_default_counting_is_v3_with_a_280_limit() -> None:
    defaults = twitter_text.config.config["defaults"]
    assert defaults == twitter_text.config.config["version3"]
    assert defaults["max_weighted_tweet_length"] == X_LIMIT == 280


@pytest.mark.parametrize("case", CASES["WeightedTweetsCounterTest"], ids=lambda c: c["description"])
def test_v2_cases_count_the_same_under_the_v2_config(case: dict[str, Any]) -> None:
    # not used for posting, but shows the library follows the reference implementations' config choice
    # the library's v2 config omits the flag its parser reads; v2 had no emoji parsing
    v2 = {**twitter_text.config.config["version2"], "emoji_parsing_enabled": False}
    parsed = twitter_text.parse_tweet(case["text"], v2)
    assert parsed.weightedLength == case["expected"]["weightedLength"]
    assert parsed.valid is case["expected"]["valid"]


# Text built to meet every edge of crosswatch's own counting (twitter_counting._plain_length): dots
# before labels, TLDs, schemes, ©/®, combining marks (NFC), Latin-1 and the U+10FF edge, CJK, emoji.
TRICKY = st.lists(st.sampled_from([
    "a", "Z", "7", " ", "\n", ".", ". ", ",", ":", "/", "://", "#", "@", "-", "_", "com", "co", "uk", "io",
    "photo", "www", "http", "https", "xn--p1ai", "рф", "©", "®", "™", "é", "e\u0301", "ß", "\u10ff", "\u1100",
    "日本", "📷", "❤\ufe0f", "1\ufe0f\u20e3", "\u200d", "\u2018", "…", "（", "．",
]), max_size=40).map("".join)


@given(TRICKY)
@settings(max_examples=400, deadline=None)
def test_crosswatchs_own_count_and_url_check_agree_with_twitter_text(text: str) -> None:
    assert weighted_length(text) == twitter_text.parse_tweet(text).weightedLength
    assert twitter_counting.contains_url(text) is bool(twitter_text.extract_urls(text))
    assert pricing.url_spans(text) == [tuple(u["indices"]) for u in twitter_text.extract_urls_with_indices(text)]


@pytest.mark.parametrize("text", [case["text"] for cases in CASES.values() for case in cases])
def test_every_conformance_text_counts_the_same_either_way(text: str) -> None:
    assert weighted_length(text) == twitter_text.parse_tweet(text).weightedLength


def test_a_plain_caption_is_counted_without_twitter_text_and_one_with_a_link_by_it() -> None:
    plain = "Golden hour at the pier. Photo: Jane Doe #sunset #pier"
    assert twitter_counting._plain_length(plain) == len(plain)
    assert twitter_counting._plain_length("Golden hour © 2024 Jane Doe") == 28  # © is an emoji there: 2
    assert twitter_counting._plain_length("e\u0301") == 1  # NFC first, as twitter-text does
    for text in ("See example.com for prints", "東京の夕暮れ", "📷 pier", "https://x"):
        assert twitter_counting._plain_length(text) is None
