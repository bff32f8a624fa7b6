"""Metadata -> the caption, alt text and hashtags posted to one target, fitted to its rules.

Pure: no I/O. ``compose`` fills the target's caption template, then, while the caption breaks the
platform's rules (length, mentions, hashtags), shortens the least important part first, in the order
``config.fit.order`` names (default: hashtags, then the description, then the title), then any other
part, and the attribution last of all: the credit always travels in the caption when it fits at all.

Shortening never splits a grapheme cluster, a URL, a @mention or a #hashtag: text is cut only at
sentence or word boundaries (with "…"), or, for a single overlong word, between grapheme clusters
outside those tokens.

No URL unless asked, on X: X charges a post with a URL about 13 times a plain one (pricing.py), so
there a URL appears only where the user asked for a link: ``{link}`` (and ``links.url``), a
cross-promotion's permalink, the bridge's link back, or the user's own words in a template. The
credit line names its licence ("CC BY 4.0") instead of linking it, and any other text that X would
autolink (a URL in a description, a bare domain such as example.com) is left out. "Would autolink" is
twitter-text's URL extraction, the rule pricing.py prices by. ``targets.NAME.allow_urls`` lifts this.

``condense`` turns someone's Instagram caption into a bridged caption for one target (X, Mastodon,
...): its first line or sentence, its credit line, its hashtags (capped), and the link back, fitted
by that target's own counting rule and limit, with the same URL rule where its platform charges.

Lengths: X counts twitter-text v3 weighted length (URLs 23, CJK and emoji 2, NFC first); Instagram's
2,200-character limit is counted in UTF-16 code units, which is never less than the characters a
person sees, so a caption that fits here fits there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import regex

from crosswatch import pricing
from crosswatch.config import Config
from crosswatch.models import Caption, Metadata
from crosswatch.platforms import registry
from crosswatch.platforms.limits import PlatformLimits
from crosswatch.platforms.x.limits import weighted_length as weighted_length  # X's counting, for callers
from crosswatch.templates import render, template_fields

X_LIMIT = registry.limits("x").caption_limit  # X's limit, beside its counting, for callers
ALT_TEXT_LIMIT = 1000

DEFAULT_CAPTIONS = {name: registry.limits(name).default_caption for name in registry.names()}

ELLIPSIS = "…"

# Parts whose text is never cut: a link is whole or absent; hashtags are dropped one tag at a time.
_WHOLE_PARTS = frozenset({"link", "filename", "year", "date", "rating"})

# Descriptions cameras write by themselves: not a caption and never an alt text.
_CAMERA_BOILERPLATE = frozenset({
    "olympus digital camera", "digital camera", "sony dsc", "samsung", "dcim", "default",
    "<untitled>", "untitled", "image", "picture", "photo", "konica minolta digital camera",
    "minolta digital camera", "exif_jpeg_picture", "lg digital camera", "sharp digital camera",
})  # fmt: skip
# what cameras and phones name files: IMG_1234, DSC01234.JPG, PXL_20240101_123456789
_FILE_NAME_LIKE = re.compile(r"(?i)(img|dsc[nf]?|_mg|pict?|p|dji|pxl)[_-]?\d{3,}[\w-]*(\.\w{2,5})?")

_MENTION = re.compile(r"(?<![\w@])@\w{1,30}")
_HASHTAG = re.compile(r"(?<![\w&#])[#＃](?!\d+\b)\w+")
_SENTENCE_END = re.compile(r"[.!?。！？](?=\s)")


# ---------------------------------------------------------------------------------------------------
# Counting


def caption_limit(target_kind: str) -> int:
    """The caption length limit of a target kind (the outbox follows Instagram, the longer one)."""
    return registry.limits(target_kind).caption_limit


def caption_length(target_kind: str, text: str) -> int:
    """The caption's length by the platform's own counting rule."""
    return registry.limits(target_kind).caption_length(text)


@dataclass(frozen=True)
class _Rules:
    """What a caption must satisfy on one target."""

    kind: str
    limit: int
    max_hashtags: int | None  # in the whole text (Instagram's own cap); None: no rule
    max_mentions: int | None
    counter: Callable[[str], int]

    def length(self, text: str) -> int:
        return self.counter(text)

    def fits(self, text: str) -> bool:
        if self.max_mentions is not None and len(_MENTION.findall(text)) > self.max_mentions:
            return False
        if self.max_hashtags is not None and len(_HASHTAG.findall(text)) > self.max_hashtags:
            return False
        return self.length(text) <= self.limit


def _alt_limit(kind: str, limits: PlatformLimits | None) -> int:
    """The longest alt text for the target: compose's own cap, or the platform's (server's) if lower."""
    return min(ALT_TEXT_LIMIT, (limits or registry.limits(kind)).alt_text_limit or ALT_TEXT_LIMIT)


def _rules_for(kind: str, hashtag_cap: int, limits: PlatformLimits | None = None) -> _Rules:
    limits = limits or registry.limits(kind)
    return _Rules(kind, limits.caption_limit, hashtag_cap if limits.caps_hashtags else None, limits.max_mentions,
                  limits.caption_length)


# ---------------------------------------------------------------------------------------------------
# The entry point


def compose(config: Config, target: str, metadata: Metadata, photo_path: PurePath,
            link: str | None = None, *, limits: PlatformLimits | None = None) -> Caption:
    """The caption, alt text and hashtags for ``target`` (a name under ``config.targets``, or a kind).

    ``limits``: the target's own, where its server tells them (Mastodon, ``platform_info``); else the
    platform's."""
    kind = _target_kind(config, target)
    cap = hashtag_cap(config, target, kind)
    rules = _rules_for(kind, cap, limits)
    template = config.captions.get(target) or registry.limits(kind).default_caption
    if link and "link" not in template_fields(template):
        # A link asked for by the job (cross-promotion) travels even when the template has no {link}.
        template += "\n\n{link}" if "\n" in template else " {link}"
    needed = {*template_fields(template), *_attribution_fields(config), *_ALT_TEXT_FIELDS}
    values = placeholder_values(config, target, metadata, photo_path, link, needed=needed)
    tags = _capped_tags(build_hashtags(config, metadata), cap, values, kind)
    fitted = _Fitter(template, values, tags, rules, config.fit.order).fit()
    if not urls_allowed(config, target, kind):
        fitted.text = _only_asked_urls(fitted.text, values["link"], template, config.attribution)
    return Caption(
        text=fitted.text,
        length=rules.length(fitted.text),
        limit=rules.limit,
        alt_text=alt_text(config, metadata, values, (limits or registry.limits(kind)).alt_text_limit),
        hashtags=tuple(fitted.tags) if "hashtags" in template_fields(template) else (),
        shortened=tuple(fitted.shortened),
    )


class CaptionRefused(ValueError):
    """A caption or alt text written by hand breaks the target's rules; the message says which and by how much."""


def edited_caption(config: Config, target: str, composed: Caption, edit: Mapping[str, object], *,
                   limits: PlatformLimits | None = None) -> Caption:
    """``composed`` with the hand-written caption and alt text of ``edit`` (``crosswatch edit``, the
    console) in place of the composed ones, checked by the rules ``compose`` fits by: the platform's
    own length count and limit, its mention and hashtag caps, the alt text's limit. Nothing is
    shortened: a text that does not fit raises ``CaptionRefused``."""
    kind = _target_kind(config, target)
    rules = _rules_for(kind, hashtag_cap(config, target, kind), limits)
    alt_limit = _alt_limit(kind, limits)
    text = edit.get("caption")
    text = composed.text if not isinstance(text, str) else text.replace("\r\n", "\n").strip()
    if not text:
        raise CaptionRefused(f"the caption for {target} is empty; write one, or reject the job")
    length = rules.length(text)
    if length > rules.limit:
        raise CaptionRefused(f"the caption for {target} is {length} long by {kind}'s count; the limit is "
                             f"{rules.limit} ({length - rules.limit} over)")
    if rules.max_mentions is not None and len(_MENTION.findall(text)) > rules.max_mentions:
        raise CaptionRefused(f"the caption for {target} mentions more than {rules.max_mentions} accounts")
    if rules.max_hashtags is not None and len(_HASHTAG.findall(text)) > rules.max_hashtags:
        raise CaptionRefused(f"the caption for {target} has more than {rules.max_hashtags} hashtags "
                             f"(hashtags.max for {target})")
    alt = edit.get("alt_text", composed.alt_text) if "alt_text" in edit else composed.alt_text
    alt = alt.strip() if isinstance(alt, str) else None
    if alt is not None and len(alt) > alt_limit:
        raise CaptionRefused(f"the alt text for {target} is {len(alt)} characters; the limit is {alt_limit}")
    return Caption(text=text, length=length, limit=rules.limit, alt_text=alt or None,
                   hashtags=tuple(_HASHTAG.findall(text)), shortened=())


def _target_kind(config: Config, target: str) -> str:
    if target in config.targets:
        return config.targets[target].kind
    if registry.platform(target) is not None:
        return target
    raise ValueError(f"unknown target {target!r}; targets: {', '.join(sorted(config.targets))}")


def hashtag_cap(config: Config, target: str, kind: str) -> int:
    caps = config.hashtags.max
    return caps.get(target, caps.get(kind, config.hashtags.default_max))


# ---------------------------------------------------------------------------------------------------
# The bridge: an Instagram caption condensed for another target

# A line that credits someone: a copyright mark, "credit", "photo by", "shot by", a camera emoji.
_CREDIT_LINE = re.compile(r"(?i)©|\(c\)|\bcredits?\b|\b(?:photo|photograph|picture|image|shot)s?\s+by\b|📷|📸")
_TRAILING_TAGS = re.compile(r"(?:\s*[#＃]\w+)+\s*$")


def condense(config: Config, target: str, caption: str, *, link: str | None = None,
             alt_text: str | None = None, template: str | None = None,
             limits: PlatformLimits | None = None) -> Caption:
    """An Instagram caption made into ``target``'s caption (``bridge.caption``): {title} is its first
    line or sentence, {attribution} its first credit line (kept whenever anything fits), {hashtags}
    its hashtags capped as for ``target``, {link} the given link, whole or not at all; fitted by the
    target's platform's own counting rule and caption limit.

    ``limits``: the target's own, where its server tells them (Mastodon's characters and characters
    per URL, from ``platform_info``); else the platform's (Bluesky's 300 graphemes, links counted whole).

    Instagram @handles are not handles anywhere else: written as "name (Instagram)" so that nobody
    there is mentioned by mistake.
    """
    kind = _target_kind(config, target)
    with_urls = urls_allowed(config, target, kind)
    text = _instagram_handles_unlinked(_clean(caption))
    if not with_urls:
        text = without_urls(text)
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    credit = next((line for line in lines if _CREDIT_LINE.search(line)), "")
    credit = _TRAILING_TAGS.sub("", credit).strip()
    body = [_TRAILING_TAGS.sub("", line).strip() for line in lines if not _is_credit(line)]
    # The first line that says something in words (not a lone emoji or a row of dots).
    lead = next((line for line in body if regex.search(r"[\p{L}\p{N}]", line)), next((b for b in body if b), ""))
    first_sentence = _SENTENCE_END.search(lead + " ")
    title = lead[:first_sentence.end()] if first_sentence else lead
    typed = {t.casefold() for t in _HASHTAG.findall(f"{title} {credit}")}
    cap = hashtag_cap(config, target, kind)
    tags: list[str] = []
    for tag in _HASHTAG.findall(text):
        normalised = "#" + tag[1:]
        if normalised.casefold() not in typed and normalised.casefold() not in {t.casefold() for t in tags}:
            tags.append(normalised)
    tags = tags[: max(cap - len(typed), 0)]
    rules = _rules_for(kind, cap, limits)
    values = {name: "" for name in ("description", "creator", "copyright", "credit", "license", "keywords",
                                     "year", "date", "camera", "make", "model", "lens", "filename",
                                     "rating", "alt_text")}
    values.update({"title": title, "attribution": credit, "link": link or "", "hashtags": ""})
    chosen = template or config.bridge.caption
    fitted = _Fitter(chosen, values, tags, rules, ("hashtags", "title")).fit()
    if not with_urls:
        fitted.text = _only_asked_urls(fitted.text, values["link"], chosen)
    alt = fit_alt_text(config, target, alt_text, limits)
    return Caption(
        text=fitted.text,
        length=rules.length(fitted.text),
        limit=rules.limit,
        alt_text=alt,
        hashtags=tuple(fitted.tags) if "hashtags" in template_fields(chosen) else (),
        shortened=tuple(fitted.shortened),
    )


def fit_alt_text(config: Config, target: str, alt_text: str | None, limits: PlatformLimits | None = None) -> str | None:
    """A bridged image's alt text within the target's alt-text limit (its server's, where it tells);
    None when there is none."""
    if not alt_text:
        return None
    alt_limit = _alt_limit(_target_kind(config, target), limits)
    return shorten_to_fit(_clean(alt_text), lambda c: len(c) <= alt_limit) or None


def _is_credit(line: str) -> bool:
    return bool(_CREDIT_LINE.search(line))


# Instagram usernames: letters, digits, "_" and "." (never at the end), at most 30; matched wherever
# X would read an @mention (twitter-text: "@" or "＠" not after a letter, digit or one of _!#$%&*@＠).
_INSTAGRAM_HANDLE = re.compile(r"(?<![A-Za-z0-9_!#$%&*@＠])[@＠]([A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)")


def _instagram_handles_unlinked(text: str) -> str:
    return _INSTAGRAM_HANDLE.sub(lambda m: f"{m.group(1)} (Instagram)", text)


# ---------------------------------------------------------------------------------------------------
# Placeholder values


# What the alt text and the default credit line are made of (alt_text, attribution below).
_ALT_TEXT_FIELDS = frozenset({"alt_text", "description", "title"})
_DEFAULT_ATTRIBUTION_FIELDS = frozenset({"copyright", "creator", "year", "credit", "license"})


def _attribution_fields(config: Config) -> frozenset[str]:
    return frozenset(template_fields(config.attribution)) | _DEFAULT_ATTRIBUTION_FIELDS if config.attribution \
        else _DEFAULT_ATTRIBUTION_FIELDS


def placeholder_values(config: Config, target: str, metadata: Metadata, photo_path: PurePath,
                       link: str | None = None, *, needed: Collection[str] | None = None) -> dict[str, str]:
    """Every placeholder's text for one photo and target (hashtags are filled in by the fitter).

    Where a target takes no URL, the values that can reach the text (``needed``; None: all) have theirs
    taken out; the rest (the file name, say, which looks like one to a quick check) are left as they are,
    unused."""
    title = _meaningful(metadata.title, metadata, photo_path)
    description = _meaningful(metadata.description, metadata, photo_path)
    year = (metadata.date_taken or "")[:4] if re.match(r"\d{4}", metadata.date_taken or "") else ""
    kind = config.targets[target].kind if target in config.targets else target
    with_urls = urls_allowed(config, target, kind)
    values = {
        "title": title,
        "description": description if description != title else "",
        "creator": ", ".join(metadata.creator),
        "copyright": normalise_copyright(metadata.copyright) or "",
        "credit": _clean(metadata.credit),
        "license": licence_text(metadata, with_url=with_urls),
        "keywords": ", ".join(k for k in metadata.keywords if not _is_private(config, k)),
        "year": year,
        "date": (metadata.date_taken or "")[:10],
        "camera": camera_name(metadata.make, metadata.model),
        "make": _clean(metadata.make),
        "model": _clean(metadata.model),
        "lens": _clean(metadata.lens),
        "link": add_utm(link or config.links.url or "", config.links.utm.get(target, {})),
        "filename": photo_path.name,
        "rating": "" if metadata.rating is None else str(metadata.rating),
        "alt_text": _meaningful(metadata.alt_text, metadata, photo_path) or description or title,
        "hashtags": "",
    }
    if not with_urls:
        values = {name: value if name == "link" or (needed is not None and name not in needed) else without_urls(value)
                  for name, value in values.items()}
    values["attribution"] = attribution(config, metadata, values)
    return values


# ---------------------------------------------------------------------------------------------------
# No URL unless asked (X)


def urls_allowed(config: Config, target: str, kind: str) -> bool:
    """Whether text the user asked no link for may still carry URLs on ``target``."""
    if not pricing.charges(kind):
        return True
    own = config.targets.get(target)
    return own is not None and own.allow_urls


_DANGLING = " \t,;:·|/–—-"


def without_urls(text: str) -> str:
    """``text`` without whatever X would autolink in it, and the separators that joined it tidied.
    Each pass shortens the text, so this ends; a removal that brings two halves together as a new
    URL is caught by the next pass."""
    while spans := pricing.url_spans(text):
        for start, end in reversed(spans):
            text = text[:start] + text[end:]
        text = re.sub(r"\(\s*\)|\[\s*\]", "", text)
        text = "\n".join(re.sub(r"[ \t]{2,}", " ", line).rstrip() for line in text.split("\n"))
        text = text.strip(_DANGLING)
    return text


def _only_asked_urls(text: str, link: str, *templates: str) -> str:
    """The fitted caption without any URL nobody asked for: a cut with "…" can make one of a word
    ("example.co…"). Asked for: the link, and URLs the user wrote into a template."""
    asked = {text_of(span, link) for span in pricing.url_spans(link)}
    for template in templates:
        literal = render(template, {name: "" for name in template_fields(template)}) if template else ""
        asked |= {text_of(span, literal) for span in pricing.url_spans(literal)}
    while unasked := [span for span in pricing.url_spans(text) if text_of(span, text) not in asked]:
        start, end = unasked[-1]
        text = (text[:start].rstrip(" \t") + " " + text[end:].lstrip(" \t")).strip()
    return text


def text_of(span: tuple[int, int], text: str) -> str:
    return text[span[0]:span[1]]


def _clean(text: str | None) -> str:
    """NFC, Unix line ends, no surrounding blanks."""
    if not text:
        return ""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _meaningful(text: str | None, metadata: Metadata, photo_path: PurePath) -> str:
    """``text`` unless it is camera boilerplate or just a file name."""
    cleaned = _clean(text)
    folded = cleaned.casefold()
    if not cleaned or folded in _CAMERA_BOILERPLATE:
        return ""
    if folded in (photo_path.name.casefold(), photo_path.stem.casefold()):
        return ""
    if _FILE_NAME_LIKE.fullmatch(cleaned):
        return ""
    if folded in ((metadata.make or "").strip().casefold(), (metadata.model or "").strip().casefold()):
        return ""
    return cleaned


def camera_name(make: str | None, model: str | None) -> str:
    """"Canon" + "Canon EOS 7D" -> "Canon EOS 7D"; "Apple" + "iPhone 7" -> "Apple iPhone 7"."""
    make_text, model_text = _clean(make), _clean(model)
    brand = make_text.split(" ")[0].casefold() if make_text else ""
    if not model_text:
        return make_text
    if not brand or model_text.casefold().startswith(brand):
        return model_text
    return f"{make_text} {model_text}"


# ---------------------------------------------------------------------------------------------------
# Attribution and licence

_COPYRIGHT_MARK = re.compile(r"(?i)^\s*(?:©|\(c\)|copyright\b|copr\.)[\s,:]*")
_DOUBLED_MARK = re.compile(r"(?i)©(?:\s*(?:©|\(c\)|copyright\b|copr\.))+")


def normalise_copyright(notice: str | None) -> str | None:
    """One "©" in front, however the notice spelled it; None when nothing but the mark is left."""
    text = _clean(notice)
    while True:
        stripped = _COPYRIGHT_MARK.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = text.strip(" ,;:.-")
    if not regex.search(r"[\p{L}\p{N}]", text):
        return None
    return f"© {text}"


def attribution(config: Config, metadata: Metadata, values: Mapping[str, str]) -> str:
    """The credit line: the configured template, or the notice / creator and year, with the licence."""
    if config.attribution:
        rendered = _render_attribution(config.attribution, values)
        if rendered:
            return rendered
    owner = values["copyright"]
    if not owner and values["creator"]:
        owner = " ".join(part for part in ("©", values["year"], values["creator"]) if part)
    parts = [owner]
    credit = values["credit"]
    if credit and credit.casefold() not in owner.casefold():
        parts.append(f"Credit: {credit}")
    parts.append(values["license"])
    return " · ".join(part for part in parts if part)


def _render_attribution(template: str, values: Mapping[str, str]) -> str:
    # A template that names who owns the photo but finds none of it ("© {year} {creator}" with no
    # creator) would print a bare year: fall back to the notice instead.
    names = template_fields(template)
    identity = [n for n in names if n in ("creator", "copyright", "credit", "attribution")]
    if identity and not any(values.get(n) for n in identity):
        return ""
    text = render(template, {**values, "attribution": ""})
    return _DOUBLED_MARK.sub("©", text).strip()


_CC_URL = re.compile(r"creativecommons\.org/licenses/([a-z-]+)/(\d\.\d)", re.IGNORECASE)
_CC_ZERO = re.compile(r"creativecommons\.org/publicdomain/zero/(\d\.\d)|\bCC0\b", re.IGNORECASE)
_CC_SHORT = re.compile(r"\bCC[ -](BY(?:[ -](?:NC|ND|SA)){0,2})[ -]?(\d\.\d)?", re.IGNORECASE)
_CC_WORDS = {
    "attribution": "by", "noncommercial": "nc", "non-commercial": "nc", "noderivatives": "nd",
    "noderivs": "nd", "no derivatives": "nd", "sharealike": "sa", "share-alike": "sa", "share alike": "sa",
}


def licence_text(metadata: Metadata, *, with_url: bool = True) -> str:
    """A short licence line from UsageTerms / WebStatement: "CC BY 4.0 https://…" or the terms as given;
    without ``with_url``, the licence by its short name ("CC BY 4.0") and no URL at all."""
    terms, statement = _clean(metadata.usage_terms), _clean(metadata.web_statement)
    creative_commons = _creative_commons(f"{terms} {statement}")
    if creative_commons is not None:
        return creative_commons if with_url else without_urls(creative_commons)
    line = " ".join(part for part in (terms, statement) if part)
    return line if with_url else without_urls(line)


def _creative_commons(text: str) -> str | None:
    url_match = _CC_URL.search(text)
    if url_match:
        return _cc_line(url_match.group(1).lower(), url_match.group(2))
    zero = _CC_ZERO.search(text)
    if zero:
        version = zero.group(1) or "1.0"
        return f"CC0 {version} https://creativecommons.org/publicdomain/zero/{version}/"
    short = _CC_SHORT.search(text)
    if short and short.group(2):
        return _cc_line(re.sub(r"[ -]", "-", short.group(1)).lower(), short.group(2))
    if "creative commons" in text.casefold():
        folded = text.casefold()
        version = re.search(r"\d\.\d", text)
        elements = [code for word, code in _CC_WORDS.items() if word in folded]
        if "by" in elements and version:
            ordered = [code for code in ("by", "nc", "nd", "sa") if code in elements]
            return _cc_line("-".join(ordered), version.group(0))
    return None


def _cc_line(code: str, version: str) -> str:
    return f"CC {code.upper()} {version} https://creativecommons.org/licenses/{code}/{version}/"


# ---------------------------------------------------------------------------------------------------
# Hashtags


def build_hashtags(config: Config, metadata: Metadata) -> list[str]:
    """Extras first (the photographer always wants them), then keywords; deduplicated, private ones out."""
    candidates = list(config.hashtags.extra)
    if config.hashtags.from_keywords:
        candidates += [k for k in metadata.keywords if not _is_private(config, k)]
    tags: list[str] = []
    seen: set[str] = set()
    for candidate in candidates:
        tag = hashtag(candidate)
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
    return tags


def hashtag(keyword: str) -> str | None:
    """"New York" -> "#NewYork"; None when nothing tag-worthy is left (e.g. "2006": all digits)."""
    words = [w for w in regex.split(r"[^\p{L}\p{M}\p{N}_]+", unicodedata.normalize("NFC", keyword)) if w]
    if not words:
        return None
    body = words[0] if len(words) == 1 else "".join(w[:1].upper() + w[1:] for w in words)
    if not regex.search(r"\p{L}", body):
        return None
    return "#" + body


def _is_private(config: Config, keyword: str) -> bool:
    folded = keyword.strip().casefold()
    return any(folded == p.strip().casefold() for p in config.hashtags.private)


def _capped_tags(tags: list[str], cap: int, values: Mapping[str, str], kind: str) -> list[str]:
    if not registry.limits(kind).caps_hashtags:
        return tags[: max(cap, 0)]
    # Instagram's cap counts every hashtag in the caption, including any typed in the description.
    typed = len({t.casefold() for field in ("title", "description") for t in _HASHTAG.findall(values[field])})
    return tags[: max(cap - typed, 0)]


# ---------------------------------------------------------------------------------------------------
# Links


def add_utm(url: str, utm: Mapping[str, str]) -> str:
    """``url`` with the UTM parameters set, its own query and fragment kept as they were."""
    if not url or not utm:
        return url
    parts = urlsplit(url)
    wanted = {(k if k.startswith("utm_") else f"utm_{k}"): v for k, v in utm.items()}
    # keep every existing parameter byte for byte, except those we replace
    kept = [p for p in parts.query.split("&") if p and unquote_plus(p.split("=", 1)[0]) not in wanted]
    added = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in wanted.items()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept + added), parts.fragment))


# ---------------------------------------------------------------------------------------------------
# Alt text


def alt_text(config: Config, metadata: Metadata, values: Mapping[str, str],
             platform_limit: int | None = None) -> str | None:
    """The alt text (at most 1,000 characters, or the platform's lower limit); never the file name."""
    text = render(config.alt_text, {**values, "filename": ""})
    if not text:
        return None
    most = min(ALT_TEXT_LIMIT, platform_limit or ALT_TEXT_LIMIT)
    fitted = shorten_to_fit(text, lambda candidate: len(candidate) <= most)
    return fitted or None


# ---------------------------------------------------------------------------------------------------
# Fitting


@dataclass
class _Fitted:
    text: str
    tags: list[str]
    shortened: list[str]


class _Fitter:
    """Shortens one caption's parts, least important first, until it satisfies the rules."""

    def __init__(self, template: str, values: Mapping[str, str], tags: Sequence[str], rules: _Rules,
                 order: Sequence[str]) -> None:
        self.template = template
        self.values = dict(values)
        self.tags = list(tags)
        self.values["hashtags"] = " ".join(self.tags)
        self.rules = rules
        self.order = order
        self.shortened: list[str] = []

    def text(self) -> str:
        return render(self.template, self.values)

    def fits(self) -> bool:
        return self.rules.fits(self.text())

    def fit(self) -> _Fitted:
        for part in self._parts_in_order():
            if self.fits():
                break
            self._shorten(part)
        return _Fitted(self.text(), self.tags, self.shortened)

    def _parts_in_order(self) -> list[str]:
        used = [n for n in dict.fromkeys(template_fields(self.template)) if self.values.get(n)]
        first = [p for p in self.order if p in used and p != "attribution"]
        # parts the order does not name go next, the last-written first; the attribution last of all
        rest = [p for p in reversed(used) if p not in first and p != "attribution"]
        return [*first, *rest, *(["attribution"] if "attribution" in used else [])]

    def _shorten(self, part: str) -> None:
        before = self.values[part]
        if part == "hashtags":
            while self.tags and not self.fits():
                self.tags.pop()
                self.values["hashtags"] = " ".join(self.tags)
        elif part in _WHOLE_PARTS:
            self.values[part] = ""
        else:
            self.values[part] = shorten_to_fit(before, self._fits_with(part))
        if self.values[part] != before:
            self.shortened.append(part)

    def _fits_with(self, part: str) -> Callable[[str], bool]:
        def fits(candidate: str) -> bool:
            return self.rules.fits(render(self.template, {**self.values, part: candidate}))
        return fits


def shorten_to_fit(text: str, fits: Callable[[str], bool]) -> str:
    """The longest cut of ``text`` that ``fits``: at a sentence end, else a word end with "…", else
    between grapheme clusters outside URLs, mentions and hashtags with "…"; "" when nothing fits."""
    if fits(text):
        return text
    cuts = _Cuts(text)
    by_word = _longest(cuts.word_ends, lambda end: fits(cuts.with_ellipsis(end)))
    by_sentence = _longest(cuts.sentence_ends, lambda end: fits(text[:end]))
    # A whole sentence reads better than a longer cut mid-sentence, unless it loses too much.
    if by_sentence is not None and (by_word is None or by_sentence * 2 >= by_word):
        return text[:by_sentence]
    if by_word is not None:
        return cuts.with_ellipsis(by_word)
    by_grapheme = _longest(cuts.grapheme_ends, lambda end: fits(cuts.with_ellipsis(end)))
    return cuts.with_ellipsis(by_grapheme) if by_grapheme is not None else ""


def _longest(ends: Sequence[int], fits: Callable[[int], bool]) -> int | None:
    """The largest end for which ``fits`` holds, by binary search (fitting shrinks with the end)."""
    low, high, best = 0, len(ends) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if fits(ends[middle]):
            best, low = ends[middle], middle + 1
        else:
            high = middle - 1
    return best


class _Cuts:
    """The places where one text may be cut, each a grapheme boundary outside protected tokens."""

    def __init__(self, text: str) -> None:
        self.text = text
        boundaries = {m.end() for m in regex.finditer(r"\X", text)}
        protected = _protected_spans(text)
        allowed = sorted(b for b in boundaries if 0 < b < len(text) and not _inside(b, protected))
        allowed_set = set(allowed)
        self.grapheme_ends = allowed
        self.word_ends = [
            end for end in (m.start() for m in re.finditer(r"\s+", text))
            if end in allowed_set and text[:end].strip()
        ]
        self.sentence_ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() in allowed_set]

    def with_ellipsis(self, end: int) -> str:
        return self.text[:end].rstrip(" \t\n,;:-–—") + ELLIPSIS


def _protected_spans(text: str) -> list[tuple[int, int]]:
    spans = pricing.url_spans(text)
    spans += [m.span() for m in _MENTION.finditer(text)]
    spans += [m.span() for m in _HASHTAG.finditer(text)]
    return spans


def _inside(position: int, spans: Sequence[tuple[int, int]]) -> bool:
    # a cut exactly at a token's end is fine; anywhere after its start and before its end is not
    return any(start < position < end for start, end in spans)
