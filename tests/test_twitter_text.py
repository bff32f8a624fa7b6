"""X's own conformance cases (twitter-text validate.yml) against the counting crosswatch uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    with_scheme = twitter_text.extract_urls_with_indices(text, extract_urls_without_protocol=False)
    assert twitter_counting.protocol_url_spans(text) == [tuple(u["indices"]) for u in with_scheme]  # Mastodon's


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


# -- twitter-text's answers kept between processes (twitter_counting.remember_in) ---------------------

# Texts only twitter-text can count: the demo's captions (a licence's URL, "6:40 a.m."), emoji, a bare domain.
NEEDS_TWITTER_TEXT = [
    "Harbour, 6:40 a.m. © 2026 Ada Lumen · CC BY 4.0 https://creativecommons.org/licenses/by/4.0/ #harbour",
    "Harbour, 6:40 a.m. © 2026 Ada Lumen · CC BY 4.0 #harbour #morning #fog",
    "Prints at example.com 📷 #pier", "東京の夕暮れ http://example.jp/a?b=c", "a photo \U0001F44D\U0001F3FD",
]


def twitter_texts_answers(text: str) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
    """What twitter-text itself says: X's weighted length, its URLs, and those with a scheme (Mastodon)."""
    def spans(found: list[dict[str, Any]]) -> list[tuple[int, int]]:
        return [(u["indices"][0], u["indices"][1]) for u in found]

    return (twitter_text.parse_tweet(text).weightedLength, spans(twitter_text.extract_urls_with_indices(text)),
            spans(twitter_text.extract_urls_with_indices(text, False)))


def assert_answers_are_twitter_texts() -> None:
    for text in NEEDS_TWITTER_TEXT:
        assert crosswatchs_answers(text) == twitter_texts_answers(text), text


def crosswatchs_answers(text: str) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
    return (twitter_counting.weighted_length(text), twitter_counting.url_spans(text),
            twitter_counting.protocol_url_spans(text))


@pytest.fixture
def answers_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "twitter-text-answers.json"
    twitter_counting.remember_in(path)
    yield path
    twitter_counting.remember_in(None)


def asked_twitter_text(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each text twitter-text is asked about (it still answers)."""
    asked: list[str] = []
    parse = twitter_text.parse_tweet

    def parse_tweet(text: str, *args: Any) -> Any:
        asked.append(text)
        return parse(text, *args)

    monkeypatch.setattr(twitter_text, "parse_tweet", parse_tweet)
    return asked


def test_kept_answers_are_twitter_texts_and_spare_asking_it_again(answers_file: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    asked = asked_twitter_text(monkeypatch)
    assert_answers_are_twitter_texts()
    assert len(asked) == 2 * len(NEEDS_TWITTER_TEXT)  # once by crosswatch, once by the comparison
    twitter_counting.remember_in(answers_file)  # as a new process: read from the file
    asked.clear()
    assert_answers_are_twitter_texts()
    assert len(asked) == len(NEEDS_TWITTER_TEXT), "only the comparison asked twitter-text"
    kept = answers_file.read_text()
    assert not any(word in kept for word in ("Harbour", "example", "creativecommons")), "hashes, not texts"
    assert answers_file.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe garbage", b"[1, 2, 3]", b'{"format": "other"}',
                                     b"{" + b" " * 1_100_000 + b"}"], ids=["empty", "broken", "binary", "a list",
                                                                         "foreign", "too big"])
def test_a_corrupt_or_foreign_answers_file_is_ignored_and_replaced(answers_file: Path, content: bytes) -> None:
    answers_file.write_bytes(content)
    assert_answers_are_twitter_texts()
    document = json.loads(answers_file.read_text())
    # every question twitter-text was asked: 5 lengths, 4 texts that may hold a URL, 3 with a ":"
    assert document["format"] == twitter_counting._FORMAT and len(document["answers"]) == 5 + 4 + 3


def test_answers_of_the_wrong_shape_or_from_another_twitter_text_are_asked_anew(answers_file: Path) -> None:
    text = NEEDS_TWITTER_TEXT[0]
    expected = twitter_texts_answers(text)
    assert crosswatchs_answers(text) == expected
    document = json.loads(answers_file.read_text())
    wrong_shapes = {key: ("12" if isinstance(v, int) else [[5, 10_000]]) for key, v in document["answers"].items()}
    document["answers"] = wrong_shapes
    answers_file.write_text(json.dumps(document))
    twitter_counting.remember_in(answers_file)
    assert crosswatchs_answers(text) == expected
    document["answers"] = {key: 1 if isinstance(v, int) else [] for key, v in document["answers"].items()}
    answers_file.write_text(json.dumps({**document, "library": "another twitter-text"}))
    twitter_counting.remember_in(answers_file)
    assert crosswatchs_answers(text) == expected


def test_the_answers_file_keeps_the_newest_answers_only(answers_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(twitter_counting, "_MAX_ANSWERS", 10)
    texts = [f"photo {n} at example{n}.com" for n in range(8)]
    for text in texts:
        twitter_counting.weighted_length(text)
        twitter_counting.url_spans(text)
    assert len(json.loads(answers_file.read_text())["answers"]) == 10
    twitter_counting.remember_in(answers_file)
    asked = asked_twitter_text(monkeypatch)
    assert [twitter_counting.weighted_length(t) for t in texts[-5:]] == [len(t) - len(t.split()[-1]) + 23
                                                                          for t in texts[-5:]]
    assert asked == [], "the newest were kept"
    twitter_counting.weighted_length(texts[0])
    assert asked == [texts[0]], "the oldest were dropped"


def test_no_state_dir_yet_means_no_answers_file_and_still_twitter_texts_answers(tmp_path: Path) -> None:
    twitter_counting.remember_in(tmp_path / "missing" / "twitter-text-answers.json")
    try:
        assert_answers_are_twitter_texts()
    finally:
        twitter_counting.remember_in(None)
    assert not (tmp_path / "missing").exists()


def test_answers_kept_from_several_threads_at_once_stay_whole(answers_file: Path) -> None:
    # The daemon counts from its intake, runner and console threads: none may see the answers change
    # under it, and the file stays one whole document.
    import threading

    texts = [f"Frame {n} at https://example.com/{n} with #tag{n}" for n in range(300)]
    failures: list[BaseException] = []

    def count(part: list[str]) -> None:
        try:
            for text in part:
                twitter_counting.weighted_length(text)
        except BaseException as exc:  # any failure in a thread is the test's failure
            failures.append(exc)

    threads = [threading.Thread(target=count, args=(texts[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    document = json.loads(answers_file.read_text())
    assert len(document["answers"]) == len(texts)
