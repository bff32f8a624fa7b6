"""X's own conformance cases (twitter-text validate.yml) against the counting crosswatch uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

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
