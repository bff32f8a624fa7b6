"""Which photos go where: rating, keywords and labels, per target (pure).

Folders already choose targets (``watch[].targets``); rules then say, per target, whether a photo
from there goes out. A photo a rule keeps back gets a rejected job whose reason says which rule, so
``crosswatch status`` explains it and ``crosswatch retry ID`` can still send it by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crosswatch.config import Config, RuleSet
from crosswatch.models import Metadata

RULES_PREFIX = "not posted by the rules: "


def photo_words(metadata: Metadata) -> set[str]:
    """Keywords, every level of hierarchical keywords ("Places|France|Paris"), and the XMP label."""
    words = {k.casefold() for k in metadata.keywords}
    for path in metadata.hierarchical_subject:
        words.update(part.strip().casefold() for part in path.split("|") if part.strip())
    if metadata.label:
        words.add(metadata.label.casefold())
    return words


def refusal(rule: RuleSet, metadata: Metadata) -> str | None:
    """None when ``rule`` lets the photo go out; else why it does not."""
    rating = metadata.rating or 0
    if rule.min_rating and rating < rule.min_rating:
        return f"rated {rating} star{'s' if rating != 1 else ''}, below min_rating {rule.min_rating}"
    words = photo_words(metadata)
    excluded = sorted(k for k in rule.exclude_keywords if k.casefold() in words)
    if excluded:
        return f"tagged {excluded[0]!r}, which exclude_keywords keeps back"
    if rule.require_keywords and not any(k.casefold() in words for k in rule.require_keywords):
        return f"not tagged {' or '.join(repr(k) for k in rule.require_keywords)} (require_keywords)"
    return None


def route(config: Config, targets: Iterable[str], metadata: Metadata) -> Mapping[str, str | None]:
    """Per target: None to post, or the reason (prefixed) the rules keep the photo back."""
    decisions: dict[str, str | None] = {}
    for target in targets:
        why = refusal(config.rules.for_target(target), metadata)
        decisions[target] = RULES_PREFIX + why if why else None
    return decisions
