"""The YAML config, validated entirely at load into frozen dataclasses.

Pure apart from reading the one file and checking that watched folders exist. There is no global
config object: ``load_config`` returns a ``Config`` and callers pass it on.

Every section is a frozen dataclass; ``_build`` turns a YAML mapping into one by the dataclass's own
field types, so a new key is added by adding a field (and documenting it in config.example.yaml).
Errors name the file, the line and the dotted key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from crosswatch.errors import ConfigError
from crosswatch.platforms import registry
from crosswatch.templates import BRIDGE_PLACEHOLDERS, KNOWN_PLACEHOLDERS, TemplateError, template_fields

# The console's port unless console.port says otherwise (the next free one when it is taken).
DEFAULT_CONSOLE_PORT = 8484
DEFAULT_INCLUDE = ("*.jpg", "*.jpeg", "*.png", "*.heic", "*.heif", "*.webp", "*.tif", "*.tiff")


@dataclass(frozen=True)
class WatchFolder:
    path: Path
    targets: tuple[str, ...]
    recursive: bool = True
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = ()
    # A file is taken once its size and mtime have not changed for this long.
    settle_seconds: float = 2.0
    # albums: folder makes each sub-folder of this folder one album: one post per target for the set.
    albums: Literal["off", "folder"] = "off"
    # An album is complete when no file in it has changed for this long (an export of a shoot takes
    # longer than one photo's).
    album_settle_seconds: float = 30.0
    # A photo that arrives in an album folder after the album was taken: its own post, or not posted.
    late: Literal["new_post", "skip"] = "new_post"
    # The album's order: by file name, or by capture time (EXIF DateTimeOriginal; name breaks ties).
    album_order: Literal["name", "capture_time"] = "name"
    # More photos than a platform takes in one post: the rest as replies to the first post (thread),
    # or only the first ones (first). Instagram has no replies: the rest are named in status.
    overflow: Literal["thread", "first"] = "thread"


@dataclass(frozen=True)
class IntakeConfig:
    # Periodic full rescan that finds whatever file events were missed.
    rescan_seconds: float = 300.0
    # A photo re-exported under the same path with new content: skip (log it) or post it again.
    on_change: Literal["skip", "repost"] = "skip"
    # File events (inotify, FSEvents). Turn off for network shares (NFS, SMB), where no events arrive
    # for changes made by other machines: the periodic rescan then finds new photos on its own.
    use_events: bool = True
    # A journal started afresh in a state folder that had another (deleted, lost): what to do with the
    # photos already in the folders, which the old journal may have posted. ask: `run` stops and says
    # how many; post: post them (again); skip: record them as handled (rejected jobs, retry-able).
    existing: Literal["ask", "post", "skip"] = "ask"


@dataclass(frozen=True)
class MediaHostConfig:
    type: Literal["directory", "s3", "command"]
    public_url: str | None = None
    path: Path | None = None
    bucket: str | None = None
    prefix: str = "crosswatch/"
    endpoint_url: str | None = None
    region: str | None = None
    expires_seconds: int = 3600
    command: tuple[str, ...] = ()
    delete_command: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetConfig:
    """One entry under ``targets``; ``kind`` is the key name unless ``type`` says otherwise."""

    name: str
    kind: str  # a platform name in crosswatch.platforms.registry
    enabled: bool = True
    # outbox
    path: Path | None = None
    # platform sign-in and endpoints
    client_id: str | None = None
    api_base: str | None = None
    authorize_url: str | None = None
    graph_base: str | None = None
    redirect_port: int = 8765
    # Unset: the browser comes back to http://127.0.0.1:<redirect_port>/callback, answered by crosswatch.
    # An https:// address registered with the app (Instagram accepts no other): `auth login` then asks
    # for the address the browser ended on, pasted.
    redirect_uri: str | None = None
    media_host: MediaHostConfig | None = None
    # Where links to posts point (X builds them itself): https://x.com, or the emulator's pages.
    web_base: str | None = None
    # pacing (0 = no limit of our own)
    max_per_hour: int = 0
    max_per_day: int = 0
    # Cross-promotion: the name of an instagram target. This target's job for a photo waits until
    # the same photo's job there is done, then {link} is that post's permalink (if ``link`` says so).
    link_to: str | None = None
    link: Literal["permalink", "none"] = "permalink"
    # Where the platform charges per call (X): overrides of its price table, e.g. {post: 0.015}.
    prices: Mapping[str, float] = field(default_factory=dict)
    # Posts wait for the next month (in schedule.timezone) once the next one would pass this.
    monthly_budget_usd: float | None = None
    # X charges more for a post with a URL: false keeps URLs out of what the user did not ask a link
    # for (the credit line names its licence, "CC BY 4.0", instead of linking it).
    allow_urls: bool = False
    # mastodon: the server (its API, OAuth and app registration live under it; a path prefix is kept),
    # who sees the status.
    instance: str | None = None
    visibility: Literal["public", "unlisted", "private"] | None = None
    # bluesky: where sessions are made (the entryway; posts then go to the account's own PDS from its
    # DID document), the account's handle (alice.bsky.social).
    service: str | None = None
    handle: str | None = None
    # Whether this target's post metrics are read (`crosswatch report`); unset: analytics.enabled.
    # With it on, Instagram and Threads sign-ins also ask for their insights scope.
    analytics: bool | None = None
    # mastodon, bluesky: the post's language (mastodon: ISO 639; bluesky: BCP 47, its langs; unset:
    # the platform guesses).
    language: str | None = None


@dataclass(frozen=True)
class HashtagConfig:
    from_keywords: bool = True
    extra: tuple[str, ...] = ()
    # Keywords that never become hashtags (case-insensitive).
    private: tuple[str, ...] = ("private",)
    # Per target name; targets not listed use ``default_max``.
    max: Mapping[str, int] = field(default_factory=lambda: {"instagram": 5, "x": 3})
    default_max: int = 5


@dataclass(frozen=True)
class LinksConfig:
    url: str | None = None
    # Per target name: UTM parameters merged into {link}.
    utm: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class FitConfig:
    # Where a caption is too long: what to shorten first.
    order: tuple[str, ...] = ("hashtags", "description", "title")


# Metadata groups a prepared image may carry (``privacy.keep``); the output's EXIF is built from
# scratch out of these, so anything not kept is absent.
PRIVACY_KEEPABLE = ("creator", "copyright", "camera", "datetime", "exposure")
# Groups that are never copied, whatever ``keep`` says; ``privacy.strip`` names them (and may name
# keepable groups too, to state that they must go).
PRIVACY_ALWAYS_STRIPPED = ("gps", "makernotes", "serial", "xmp_history", "thumbnail", "comments")


@dataclass(frozen=True)
class PrivacyConfig:
    # What the prepared image must not carry, and what it must keep.
    strip: tuple[str, ...] = PRIVACY_ALWAYS_STRIPPED
    keep: tuple[str, ...] = ("creator", "copyright")
    # Also write the kept creator and copyright as XMP dc:creator and dc:rights (UTF-8, unlike EXIF).
    xmp_credit: bool = True


@dataclass(frozen=True)
class MediaConfig:
    fit: Literal["pad", "crop", "reject"] = "pad"
    pad_color: str = "#ffffff"
    background: str = "#ffffff"
    max_input_bytes: int = 200 * 1024 * 1024
    max_pixels: int = 120_000_000
    min_quality: int = 70
    max_quality: int = 92
    # When even min_quality exceeds a byte limit, the image is made smaller instead, but its long
    # edge never below this; past it the photo is rejected for that target.
    shrink_floor: int = 1080


@dataclass(frozen=True)
class BridgeConfig:
    """Instagram -> the other targets: new posts on the ``source`` account are re-shared on every
    one of ``targets`` (one job each)."""

    enabled: bool = False
    poll_seconds: float = 600.0
    # When first enabled, also bridge the newest N posts (0: only posts made from then on).
    backfill: int = 0
    source: str = "instagram"  # a target whose platform can be bridged from: whose media is read
    targets: tuple[str, ...] = ("x",)  # where the re-shares go: one job per target per post
    # The old spelling of ``targets`` (one name), still read: ``target: x`` is ``targets: [x]``.
    target: str | None = None
    # A link back to the Instagram post: X charges more for a post with a URL (pay-per-use).
    link: Literal["permalink", "none"] = "permalink"
    # UTM parameters for that link; empty: links.utm of the target.
    utm: Mapping[str, str] = field(default_factory=dict)
    max_images: int = 4
    # Each target's caption, from the Instagram caption's parts, fitted to its platform's rules:
    # {title} its first line or sentence, {attribution} its credit line (kept whenever it fits),
    # {hashtags} capped, {link}.
    caption: str = "{title} {attribution} {hashtags} {link}"


@dataclass(frozen=True)
class RuleSet:
    """Which photos go to a target. Keywords match the photo's keywords, hierarchical keywords and
    XMP label, case-insensitively."""

    min_rating: int = 0
    # At least one of these must be present (empty: no requirement).
    require_keywords: tuple[str, ...] = ()
    # None of these may be present.
    exclude_keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleOverride:
    """A target's own rules: each key set here replaces the top-level one; the rest is inherited, so
    an override for rating never lets `private` photos through."""

    min_rating: int | None = None
    require_keywords: tuple[str, ...] | None = None
    exclude_keywords: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RulesConfig:
    min_rating: int = 0
    require_keywords: tuple[str, ...] = ()
    exclude_keywords: tuple[str, ...] = ("private",)
    targets: Mapping[str, RuleOverride] = field(default_factory=dict)

    def for_target(self, name: str) -> RuleSet:
        own = self.targets.get(name, RuleOverride())
        return RuleSet(
            self.min_rating if own.min_rating is None else own.min_rating,
            self.require_keywords if own.require_keywords is None else own.require_keywords,
            self.exclude_keywords if own.exclude_keywords is None else own.exclude_keywords,
        )


@dataclass(frozen=True)
class TargetSchedule:
    # Posting windows in the schedule's time zone, e.g. "mon-fri 08:00-10:00", "sat,sun 09:30-12:00",
    # "daily 18:00-21:00". Empty: any time.
    windows: tuple[str, ...] = ()
    # At least this long between two posts on this target.
    min_gap_minutes: float = 0.0
    # At most this many posts per calendar day (in the schedule's time zone); 0: no cap.
    daily_max: int = 0


@dataclass(frozen=True)
class ScheduleConfig:
    # An IANA time zone such as Europe/Berlin; empty: the machine's local time zone.
    timezone: str | None = None
    # The second target's post of a photo waits this long after the first target's post started.
    stagger_minutes: float = 0.0
    targets: Mapping[str, TargetSchedule] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggingConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    # auto: key=value on a terminal, JSON under systemd (JOURNAL_STREAM set) or when piped.
    format: Literal["auto", "console", "json"] = "auto"


@dataclass(frozen=True)
class ConsoleConfig:
    """The local web console (``crosswatch console``; also served by ``crosswatch run`` when enabled)."""

    enabled: bool = True
    # Keep it loopback: another address needs a console password in the keyring
    # (`crosswatch console --set-password`) and TLS in front (a reverse proxy).
    host: str = "127.0.0.1"
    # The first free port from here on is taken; 0: any free port (the printed address says which).
    port: int = DEFAULT_CONSOLE_PORT


NotifyEvent = Literal["failed", "in_doubt", "awaiting_approval", "sign_in_needed", "token_expiring",
                      "quota_or_budget", "digest"]


@dataclass(frozen=True)
class NotifyConfig:
    """What is sent to the destinations `crosswatch notify add NAME` keeps in the keyring."""

    # digest: once a day, what went out (off unless named here).
    events: tuple[NotifyEvent, ...] = ("failed", "in_doubt", "awaiting_approval", "sign_in_needed",
                                       "token_expiring", "quota_or_budget")
    # Events are gathered this long per destination and sent as one message (a burst is one message).
    coalesce_seconds: float = 30.0
    # A token that cannot be refreshed and lapses within this many days is reported.
    token_warning_days: float = 7.0


# How old a post is when its metrics are read: a number and a unit, m(inutes), h(ours), d(ays), w(eeks).
DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([mhdw])\s*$")
DURATION_UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def duration_seconds(text: str) -> float | None:
    """``"24h"`` -> 86400.0; None when it is not a duration."""
    match = DURATION.match(text)
    return float(match.group(1)) * DURATION_UNITS[match.group(2)] if match else None


@dataclass(frozen=True)
class AnalyticsConfig:
    """Reading each done post's metrics (`crosswatch report`; the daemon reads them on this schedule)."""

    enabled: bool = False
    # Ages after posting at which the metrics are read; each reading is kept (a time series). X's
    # non-public metrics end 30 days after posting, so the default's last reading is at 28 days.
    schedule: tuple[str, ...] = ("1h", "24h", "7d", "28d")
    # Suggestions of the best posting windows need at least this many posts with metrics per target.
    min_posts: int = 20

    @property
    def ages(self) -> tuple[float, ...]:
        return tuple(sorted(duration_seconds(item) or 0.0 for item in self.schedule))


@dataclass(frozen=True)
class Config:
    source: Path
    state_dir: Path
    watch: tuple[WatchFolder, ...]
    targets: Mapping[str, TargetConfig]
    captions: Mapping[str, str] = field(default_factory=dict)
    alt_text: str = "{alt_text}"
    attribution: str = ""
    intake: IntakeConfig = IntakeConfig()
    hashtags: HashtagConfig = HashtagConfig()
    links: LinksConfig = LinksConfig()
    fit: FitConfig = FitConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    media: MediaConfig = MediaConfig()
    bridge: BridgeConfig = BridgeConfig()
    rules: RulesConfig = RulesConfig()
    # Hold every new job until `crosswatch approve ID`: true for all targets, or a list of target names.
    approval: bool | tuple[str, ...] = False
    schedule: ScheduleConfig = ScheduleConfig()
    logging: LoggingConfig = LoggingConfig()
    console: ConsoleConfig = ConsoleConfig()
    notify: NotifyConfig = NotifyConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()

    def needs_approval(self, target: str) -> bool:
        return self.approval is True or (isinstance(self.approval, tuple) and target in self.approval)

    @property
    def journal_path(self) -> Path:
        return self.state_dir / "journal.sqlite3"

    @property
    def media_cache_dir(self) -> Path:
        return self.state_dir / "media"

    @property
    def twitter_text_answers_path(self) -> Path:
        """twitter-text's answers kept between processes (twitter_counting.remember_in)."""
        return self.state_dir / "twitter-text-answers.json"


# ---------------------------------------------------------------------------------------------------
# Finding the file


def default_config_path() -> Path:
    env = os.environ.get("CROSSWATCH_CONFIG")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("crosswatch")) / "config.yaml"


def default_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir("crosswatch"))


# ---------------------------------------------------------------------------------------------------
# YAML with line numbers


class _Located:
    """Line numbers for every mapping key and value, by dotted key path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[tuple[str, ...], int] = {}

    def error(self, path: tuple[str, ...], message: str) -> ConfigError:
        line = None
        probe = path
        while probe and line is None:
            line = self.lines.get(probe)
            probe = probe[:-1]
        return ConfigError(message, file=self.file, line=line, key=".".join(path) or None)


# What a config file may be: far more than any real config needs (the example is 11 KB and holds
# about 200 values), far less than what makes start-up slow. PyYAML's pure-Python composer needs about
# 50 microseconds a value, so these keep the worst file under a second.
MAX_CONFIG_BYTES = 128 * 1024
MAX_VALUES = 5000
MAX_DEPTH = 50
MAX_KEY_CHARS = 200

_YAML_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp", "binary"))


_Collection = TypeVar("_Collection", yaml.SequenceNode, yaml.MappingNode)


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML this loader will not take (too big once expanded, too deep, a loop)."""


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that counts, while composing, the values the document expands to.

    The composer hands an alias back as the very node it names, so nothing is copied yet; the copies
    happen when the tree is walked. Counting each alias as the full size of what it names (sizes are
    known once a node is complete) refuses an alias bomb before any of it is expanded, and a depth
    limit keeps the recursive composer and the walk far from Python's recursion limit.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._values = 0
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(collection node) -> values it expands to, once complete
        self._aliases_used = False

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            named = self.anchors.get(event.anchor)
            if named is not None:  # an undefined alias is left to PyYAML's own error
                size = 1 if isinstance(named, yaml.ScalarNode) else self._sizes.get(id(named))
                if size is None:
                    raise _Refused(None, None, f"the alias *{event.anchor} is used inside the value it names "
                                   "(a loop); write that value out instead", event.start_mark)
                self._aliases_used = True
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise self._too_deep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        # The scanner looks up to 1,024 characters ahead for a possible key at every open bracket, each
        # time over all the brackets still open: "[[[[..." takes quadratic time before the composer
        # sees a single level. So the scanner counts brackets too.
        if self.flow_level >= MAX_DEPTH:
            raise self._too_deep(self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    @staticmethod
    def _too_deep(mark: yaml.Mark) -> _Refused:
        return _Refused(None, None, f"values are nested more than {MAX_DEPTH} levels deep; a config needs a few",
                        mark)

    def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
        node = super().compose_scalar_node(anchor)
        self._count(1, node.start_mark)
        return node

    def compose_sequence_node(self, anchor: Any) -> yaml.SequenceNode:
        return self._measured(super().compose_sequence_node, anchor)

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        return self._measured(super().compose_mapping_node, anchor)

    def _measured(self, compose: Callable[[Any], _Collection], anchor: Any) -> _Collection:
        """A collection composed, and the number of values it expands to kept for its aliases."""
        before = self._values
        self._count(1, self.peek_event().start_mark)
        node = compose(anchor)
        self._sizes[id(node)] = self._values - before
        return node

    def _count(self, values: int, mark: yaml.Mark) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            counted = " counting each use of an alias in full" if self._aliases_used else ""
            raise _Refused(None, None, f"the config holds more than {MAX_VALUES:,} values{counted}; "
                           "refused before expanding (a config needs a few hundred)", mark)


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _plain(node: yaml.Node, path: tuple[str, ...], where: _Located) -> Any:
    where.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _YAML_TAG + "map":
            raise _tag_refused(node, path, where)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _key(key_node, path, where)
            where.lines[(*path, key)] = key_node.start_mark.line + 1
            if key in result:
                raise where.error((*path, key), "this key appears twice")
            result[key] = _plain(value_node, (*path, key), where)
        return result
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _YAML_TAG + "seq":
            raise _tag_refused(node, path, where)
        items = []
        for index, item in enumerate(node.value):
            items.append(_plain(item, (*path, str(index)), where))
        return items
    return _scalar(node, path, where)


def _node_error(node: yaml.Node, path: tuple[str, ...], where: _Located, message: str) -> ConfigError:
    return ConfigError(message, file=where.file, line=node.start_mark.line + 1, key=".".join(path) or None)


def _key(node: yaml.Node, path: tuple[str, ...], where: _Located) -> str:
    if node.tag == _YAML_TAG + "merge":
        raise _node_error(node, path, where, "merge keys (<<) are not supported; write the keys out "
                          "(an alias such as *name works as a value)")
    if not isinstance(node, yaml.ScalarNode):
        raise _node_error(node, path, where, "a key must be plain text, not a list or mapping")
    key = str(_scalar(node, path, where))
    if len(key) > MAX_KEY_CHARS:
        raise _node_error(node, path, where, f"a key of {len(key):,} characters is no setting or name; "
                          f"keys are at most {MAX_KEY_CHARS}")
    return key


def _tag_refused(node: yaml.Node, path: tuple[str, ...], where: _Located) -> ConfigError:
    tag = node.tag.replace(_YAML_TAG, "!!", 1)
    return _node_error(node, path, where, f"the YAML tag {tag} is not allowed: the config takes plain text, "
                       "numbers, true/false, lists and mappings")


def _scalar(node: yaml.Node, path: tuple[str, ...], where: _Located) -> Any:
    if node.tag == _YAML_TAG + "value":  # a lone "=": plain text to anyone but a YAML resolver
        return node.value
    if node.tag not in _SCALAR_TAGS:
        raise _tag_refused(node, path, where)
    if node.tag in (_YAML_TAG + "int", _YAML_TAG + "float") and len(node.value) > 80:
        raise _node_error(node, path, where, "is a number far too large for any setting")
    try:
        value = _CONSTRUCTOR.construct_object(node)
    except (yaml.YAMLError, ValueError, LookupError, TypeError, OverflowError, AttributeError) as exc:
        # e.g. "!!int x", an empty "!!int", "!!bool maybe", a date that does not exist; only a
        # ValueError's own words help ("month must be in 1..12"), the others are PyYAML's insides.
        detail = f": {str(exc).splitlines()[0]}" if type(exc) is ValueError else ""
        raise _node_error(node, path, where, f"cannot read {_shown(node.value)} as "
                          f"{node.tag.replace(_YAML_TAG, '')}{detail}") from None
    finally:
        _CONSTRUCTOR.constructed_objects.clear()
    if isinstance(value, str) and (bad := _UNWRITABLE.search(value)):
        raise _node_error(node, path, where, f"contains the character U+{ord(bad.group()):04X}, which no "
                          "path, name or caption may hold; remove it")
    return value


# NUL ends a path at the operating system; a lone surrogate cannot be written out as UTF-8.
_UNWRITABLE = re.compile(r"[\x00\ud800-\udfff]")


def _read_text(path: Path) -> str:
    """The file's text, read no further than the size limit (so /dev/zero or a huge file cannot stall)."""
    try:
        if path.is_dir():
            raise ConfigError("is a folder, not a config file; pass the file in it, e.g. "
                              f"--config {path / 'config.yaml'}", file=str(path))
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            "no config file here; copy config.example.yaml there, or pass --config PATH "
            "(or set CROSSWATCH_CONFIG)", file=str(path)) from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read the config file ({reason})", file=str(path)) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the config file is larger than {MAX_CONFIG_BYTES // 1024} KiB, the most crosswatch "
                          "reads (a config needs a few KB); is this the right file?", file=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
                          file=str(path), line=line) from None


def _read_yaml(path: Path) -> tuple[dict[str, Any], _Located]:
    where = _Located(str(path))
    text = _read_text(path)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # refuses a control character at once
        # SafeLoader composes the node tree and _plain builds only plain values, so no tag runs code.
        node = loader.get_single_node()
    except _Refused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError(str(exc.problem), file=str(path), line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {_yaml_problem(exc)}", file=str(path), line=_yaml_line(exc, text)) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise ConfigError("the config file is empty; copy config.example.yaml to start from", file=str(path))
    data = _plain(node, (), where)
    if not isinstance(data, dict):
        raise ConfigError(f"the config file must be a mapping of keys to values, not {_yaml_kind(data)}",
                          file=str(path), line=node.start_mark.line + 1)
    return data, where


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        return f"the character U+{exc.character:04X} is not allowed in YAML"  # its own text names no file
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)  # e.g. "while scanning a quoted scalar"
    return f"{context}, {problem}" if context else str(problem)


def _yaml_line(exc: yaml.YAMLError, text: str) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    if isinstance(exc, yaml.reader.ReaderError):
        return text[:exc.position].count("\n") + 1
    return None


# ---------------------------------------------------------------------------------------------------
# Building dataclasses by their field types


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return "a list"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    names = {str: "text", int: "a whole number", float: "a number", bool: "true or false", Path: "a path"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


# Text values (captions, names, addresses) and paths longer than these are mistakes, and would make
# every caption slow to render.
MAX_TEXT_CHARS = 10_000
MAX_PATH_CHARS = 4096

_DAYS_30 = 30 * 86400
# The range of each number in the config, by dataclass and field. A number not listed here must lie
# in [0, 10**9]: none of the settings means anything negative, and a billion seconds is 31 years.
_ANY_NUMBER = (0, 10**9)
_NUMBER_RANGES: dict[tuple[type, str], tuple[int, int]] = {
    (WatchFolder, "settle_seconds"): (0, 86400),
    (WatchFolder, "album_settle_seconds"): (0, 86400),
    (IntakeConfig, "rescan_seconds"): (0, _DAYS_30),
    (MediaHostConfig, "expires_seconds"): (1, 7 * 86400),  # S3 signs an address for a week at most
    (TargetConfig, "redirect_port"): (0, 65535),
    (MediaConfig, "max_input_bytes"): (1, 4 * 1024**3),
    (MediaConfig, "max_pixels"): (1, 1_000_000_000),  # a gigapixel image already takes 3 GB to decode
    (MediaConfig, "min_quality"): (1, 100),
    (MediaConfig, "max_quality"): (1, 100),
    (MediaConfig, "shrink_floor"): (1, 65535),  # JPEG's largest side
    (BridgeConfig, "poll_seconds"): (0, _DAYS_30),
    (BridgeConfig, "backfill"): (0, 10_000),
    (BridgeConfig, "max_images"): (1, 4),  # X takes at most 4 images per post
    (RulesConfig, "min_rating"): (0, 5),
    (RuleOverride, "min_rating"): (0, 5),
    (TargetSchedule, "min_gap_minutes"): (0, _DAYS_30 // 60),
    (ScheduleConfig, "stagger_minutes"): (0, _DAYS_30 // 60),
}


def _check_numbers(value: Any, limits: tuple[int, int], path: tuple[str, ...], where: _Located) -> None:
    """Every number in ``value`` (a converted field: a number, or a list or mapping of them) in range."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        low, high = limits
        if not math.isfinite(value):
            raise where.error(path, f"must be a finite number, not {value}")
        if not low <= value <= high:
            whole = isinstance(value, int) or (value.is_integer() and abs(value) < 1e15)
            shown = f"{int(value):,}" if whole else f"{value:g}"
            raise where.error(path, f"must be from {low:,} to {high:,}, not {shown}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_numbers(item, limits, (*path, str(key)), where)
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            _check_numbers(item, limits, (*path, str(index)), where)


_ENV_VAR = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)  # what os.path.expandvars expands


def _expanded_path(value: str, path: tuple[str, ...], where: _Located) -> Path:
    """``~`` and ``$VARS`` expanded; an unset variable is an error, not a folder named after it."""
    def variable(match: re.Match[str]) -> str:
        name = match.group(1).strip("{}")
        if name not in os.environ:
            raise where.error(path, f"${name} is not set in the environment; set it, or write the path out")
        return os.environ[name]

    expanded = _ENV_VAR.sub(variable, value)
    if len(expanded) > MAX_PATH_CHARS:
        raise where.error(path, f"is {len(expanded):,} characters long; a path may be at most {MAX_PATH_CHARS:,}")
    try:
        return Path(expanded).expanduser()
    except RuntimeError:  # ~name of an unknown user, or no home folder at all
        raise where.error(path, f"cannot expand {expanded.split('/')[0]!r}: no such user's home folder; "
                          "write the path out") from None


def _convert(tp: Any, value: Any, path: tuple[str, ...], where: _Located, base_dir: Path) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, path, where, base_dir)
        for member in inner:  # the first member the value fits, e.g. `approval: true` or a list
            try:
                return _convert(member, value, path, where, base_dir)
            except ConfigError:
                continue
        raise where.error(path, f"must be {_type_name(tp)}, not {_shown(value)}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise where.error(path, f"must be {_type_name(tp)}, not {_shown(value)}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise where.error(path, f"must be a list, not {_yaml_kind(value)}")
        (item_tp, _ellipsis) = typing.get_args(tp)
        return tuple(_convert(item_tp, v, (*path, str(i)), where, base_dir) for i, v in enumerate(value))
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise where.error(path, f"must be a mapping, not {_yaml_kind(value)}")
        _key_tp, value_tp = typing.get_args(tp)
        return types.MappingProxyType(
            {str(k): _convert(value_tp, v, (*path, str(k)), where, base_dir) for k, v in value.items()}
        )
    if dataclasses.is_dataclass(tp):
        assert isinstance(tp, type)
        return _build(tp, value, path, where, base_dir)
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(path, f"must be true or false, not {_shown(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.error(path, f"must be a whole number, not {_shown(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise where.error(path, f"must be a number, not {_shown(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise where.error(path, f"must be text, not {_yaml_kind(value)}")
        if len(value) > MAX_TEXT_CHARS:
            raise where.error(path, f"is {len(value):,} characters long; text here may be at most "
                              f"{MAX_TEXT_CHARS:,} (a caption template is a few lines)")
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise where.error(path, f"must be a path, not {_shown(value)}")
        p = _expanded_path(value, path, where)
        return p if p.is_absolute() else (base_dir / p)
    raise where.error(path, f"unsupported setting type {tp!r}")  # a programming error, kept readable


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _shown(value)


def _shown(value: Any) -> str:
    """A value for an error message: one line, never longer than a message should be."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _build(cls: type, value: Any, path: tuple[str, ...], where: _Located, base_dir: Path,
           extra: Mapping[str, Any] | None = None) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise where.error(path, f"must be a mapping, not {_yaml_kind(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = dict(extra or {})
    for key, raw in value.items():
        if key not in fields or key in kwargs:
            known = ", ".join(sorted(k for k in fields if k not in (extra or {})))
            raise where.error((*path, key), f"unknown key; known keys here: {known}")
        kwargs[key] = _convert(hints[key], raw, (*path, key), where, base_dir)
        _check_numbers(kwargs[key], _NUMBER_RANGES.get((cls, key), _ANY_NUMBER), (*path, key), where)
    missing = [
        name for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise where.error((*path, missing[0]), "is required")
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------------
# The whole file


def load_config(path: Path | None = None) -> Config:
    """Read and validate the config; raises ConfigError naming file, line and key."""
    path = path or default_config_path()
    try:
        path = path.expanduser()
    except RuntimeError:  # ~name of an unknown user
        raise ConfigError("cannot expand ~ in the config file's path: no such user's home folder; "
                          "write the path out", file=str(path)) from None
    data, where = _read_yaml(path)
    return config_from_mapping(data, path, where)


def config_from_mapping(data: dict[str, Any], path: Path, where: _Located | None = None) -> Config:
    where = where or _Located(str(path))
    base_dir = path.parent.resolve()
    data = dict(data)
    if "targets" not in data or not data["targets"]:
        raise where.error(("targets",), f"is required: name at least one target ({', '.join(registry.names())})")
    if not isinstance(data["targets"], dict):
        raise where.error(("targets",), f"must be a mapping, not {_yaml_kind(data['targets'])}")
    targets = {
        name: _build_target(name, raw, where, base_dir) for name, raw in data.pop("targets").items()
    }
    if "state_dir" not in data:  # not setdefault: platformdirs is imported only when it is needed
        data["state_dir"] = str(default_state_dir())
    if "watch" not in data:
        data["watch"] = []
    data = _bridge_alias(data, where)
    config: Config = _build(Config, data, (), where, base_dir,
                            extra={"source": path, "targets": types.MappingProxyType(targets)})
    _check_references(config, where)
    # Each target's analytics flag, settled: its own, else analytics.enabled.
    settled = {name: dataclasses.replace(t, analytics=config.analytics.enabled if t.analytics is None else t.analytics)
               for name, t in config.targets.items()}
    return dataclasses.replace(config, targets=types.MappingProxyType(settled))


def _build_target(name: str, raw: Any, where: _Located, base_dir: Path) -> TargetConfig:
    path = ("targets", name)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise where.error(path, f"must be a mapping, not {_yaml_kind(raw)}")
    raw = dict(raw)
    kind = raw.pop("type", name)
    if registry.platform(kind) is None:  # asked at load time: the registry is the one list of platforms
        raise where.error(path, f"unknown target type {kind!r}; use type: one of {', '.join(registry.names())}")
    merged = {**registry.limits(kind).config_defaults, **raw}
    target: TargetConfig = _build(TargetConfig, merged, path, where, base_dir, extra={"name": name, "kind": kind})
    for key, purpose in registry.limits(kind).required_config.items():
        if getattr(target, key, None) is None:
            article = "an" if kind[:1] in "aeiou" else "a"
            raise where.error((*path, key), f"is required for {article} {kind} target ({purpose})")
    own_check = registry.limits(kind).check_config
    problem = own_check(target) if own_check is not None else None
    if problem is not None:
        raise where.error((*path, problem[0]), problem[1])
    return target


def _check_references(config: Config, where: _Located) -> None:
    if not config.watch:
        raise where.error(("watch",), "is required: list at least one folder to watch")
    for index, folder in enumerate(config.watch):
        path = ("watch", str(index))
        if not _is_folder(folder.path, (*path, "path"), where):
            raise where.error((*path, "path"), f"folder {folder.path} does not exist; create it or fix the path")
        for t_index, name in enumerate(folder.targets):
            if name not in config.targets:
                raise where.error((*path, "targets", str(t_index)),
                                  f"names target {name!r}, which is not under targets")
    for name, template in config.captions.items():
        if name not in config.targets:
            raise where.error(("captions", name), f"is a caption for target {name!r}, which is not under targets")
        _check_template(template, ("captions", name), where)
    _check_template(config.alt_text, ("alt_text",), where)
    _check_template(config.attribution, ("attribution",), where)
    for name, target in config.targets.items():
        if target.media_host and not registry.limits(target.kind).needs_media_host:
            raise where.error(("targets", name, "media_host"),
                              f"only a target of type {_kinds_where('needs_media_host')} uses a media host")
    _check_links(config, where)
    _check_pricing(config, where)
    if config.intake.rescan_seconds <= 0:
        raise where.error(("intake", "rescan_seconds"), "must be more than 0")
    if not 1 <= config.media.min_quality <= config.media.max_quality <= 100:
        raise where.error(("media", "min_quality"), "qualities must satisfy 1 <= min_quality <= max_quality <= 100")
    _check_media(config.media, where)
    _check_privacy(config.privacy, where)
    _check_rules_and_schedule(config, where)
    _check_console(config, where)
    _check_notify(config, where)
    _check_analytics(config, where)


def _is_folder(folder: Path, path: tuple[str, ...], where: _Located) -> bool:
    try:
        return folder.is_dir()
    except OSError as exc:  # a name too long, a folder on the way that cannot be read
        raise where.error(path, f"cannot look at folder {folder}: {exc.strerror or exc}") from None


def _check_console(config: Config, where: _Located) -> None:
    if not 0 <= config.console.port <= 65535:
        raise where.error(("console", "port"),
                          f"{config.console.port} is not a port; use 1-65535, or 0 for any free one")
    if not config.console.host.strip():
        raise where.error(("console", "host"), "is empty; use 127.0.0.1 (loopback) or the address to listen on")


def _check_analytics(config: Config, where: _Located) -> None:
    analytics = config.analytics
    if not analytics.schedule:
        raise where.error(("analytics", "schedule"),
                          "is empty; list the ages to read metrics at, e.g. [1h, 24h, 7d, 28d]")
    for index, item in enumerate(analytics.schedule):
        seconds = duration_seconds(item)
        if seconds is None or not 60 <= seconds <= 366 * 86400:
            raise where.error(("analytics", "schedule", str(index)),
                              f"{item!r} is not an age from 1m to 366d; write a number and m, h, d or w, e.g. 24h")
    if not 3 <= analytics.min_posts <= 100_000:
        raise where.error(("analytics", "min_posts"), "must be at least 3 (fewer posts cannot show a pattern)")


def _check_notify(config: Config, where: _Located) -> None:
    if not 0 <= config.notify.coalesce_seconds <= 3600:
        raise where.error(("notify", "coalesce_seconds"), "must be 0-3600 seconds (a burst is gathered this long)")
    if not 0 < config.notify.token_warning_days <= 60:
        raise where.error(("notify", "token_warning_days"), "must be more than 0 and at most 60 days")


def _check_rules_and_schedule(config: Config, where: _Located) -> None:
    from crosswatch.schedule import parse_window, time_zone  # schedule imports this module

    for section, names in (("rules", config.rules.targets), ("schedule", config.schedule.targets)):
        for name in names:
            if name not in config.targets:
                raise where.error((section, "targets", name), f"names target {name!r}, which is not under targets")
    if isinstance(config.approval, tuple):
        for index, name in enumerate(config.approval):
            if name not in config.targets:
                raise where.error(("approval", str(index)), f"names target {name!r}, which is not under targets")
    try:
        time_zone(config.schedule)
    except ValueError as exc:
        raise where.error(("schedule", "timezone"), str(exc)) from None
    for name, rules in config.schedule.targets.items():
        for index, window in enumerate(rules.windows):
            try:
                parse_window(window)
            except ValueError as exc:
                raise where.error(("schedule", "targets", name, "windows", str(index)), str(exc)) from None


def _check_links(config: Config, where: _Located) -> None:
    """``targets.*.link_to`` and ``bridge`` must name configured targets of the right kind."""
    for name, target in config.targets.items():
        if target.link_to is None:
            continue
        other = config.targets.get(target.link_to)
        if other is None or not registry.limits(other.kind).bridge_source or other.name == name:
            raise where.error(("targets", name, "link_to"), f"names {target.link_to!r}; it must name another "
                              f"target of type {_kinds_where('bridge_source')} under targets")
    bridge = config.bridge
    # Checked whether or not the bridge is on: turning it on later must not reveal a bad setting.
    if bridge.poll_seconds <= 0:
        raise where.error(("bridge", "poll_seconds"), "must be more than 0")
    _check_template(bridge.caption, ("bridge", "caption"), where, BRIDGE_PLACEHOLDERS)
    if not bridge.enabled:
        return
    source = config.targets.get(bridge.source)
    if source is None or not registry.limits(source.kind).bridge_source:
        raise where.error(("bridge", "source"), f"names {bridge.source!r}; it must name a target of type "
                          f"{_kinds_where('bridge_source')} under targets")
    key = "target" if bridge.target is not None else "targets"
    if not bridge.targets:
        raise where.error(("bridge", key), "is empty: list at least one target to re-share to, e.g. [x]")
    for index, name in enumerate(bridge.targets):
        path = ("bridge", key) if key == "target" else ("bridge", key, str(index))
        if name not in config.targets:
            raise where.error(path, f"names target {name!r}, which is not under targets")
        if name == bridge.source:
            raise where.error(path, f"names {name!r}, the bridge's own source; a post is not re-shared to itself")
        if name in bridge.targets[:index]:
            raise where.error(path, f"names {name!r} twice")


def _kinds_where(flag: str) -> str:
    """"instagram" (or "instagram or threads"): the platforms whose limits set ``flag``."""
    return " or ".join(registry.kinds_where(flag)) or "(none)"


def _bridge_alias(data: dict[str, Any], where: _Located) -> dict[str, Any]:
    """``bridge.target: x`` (the old spelling) read as ``bridge.targets: [x]``."""
    bridge = data.get("bridge")
    if not isinstance(bridge, dict) or "target" not in bridge:
        return data
    if "targets" in bridge:
        raise where.error(("bridge", "target"), "is the old spelling of bridge.targets; keep only targets")
    old = bridge["target"]
    if not isinstance(old, str):
        raise where.error(("bridge", "target"), f"must be text (one target's name), not {_yaml_kind(old)}; "
                          "for several write targets: [x, ...]")
    return {**data, "bridge": {**bridge, "targets": [old]}}


def _check_pricing(config: Config, where: _Located) -> None:
    """``prices`` and ``monthly_budget_usd`` only where the platform charges, with known names."""
    from crosswatch.pricing import charges, known_prices

    for name, target in config.targets.items():
        path = ("targets", name)
        if not charges(target.kind):
            set_here = [key for key, value in (("prices", target.prices or None),
                                               ("monthly_budget_usd", target.monthly_budget_usd)) if value is not None]
            if set_here:
                raise where.error((*path, set_here[0]), f"{target.kind} does not charge per call; remove this key")
            continue
        known = known_prices(target.kind)
        for item, usd in target.prices.items():
            if item not in known:
                raise where.error((*path, "prices", item), f"unknown price; known: {', '.join(known)}")
            if usd < 0:
                raise where.error((*path, "prices", item), "must not be negative")
        if target.monthly_budget_usd is not None and target.monthly_budget_usd < 0:
            raise where.error((*path, "monthly_budget_usd"), "must not be negative; leave it out for no budget")


def _check_media(media: MediaConfig, where: _Located) -> None:
    for key in ("pad_color", "background"):
        if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})", getattr(media, key)):
            raise where.error(("media", key), "must be a colour written #rgb or #rrggbb, e.g. #ffffff")


def _check_privacy(privacy: PrivacyConfig, where: _Located) -> None:
    vocabulary = PRIVACY_KEEPABLE + PRIVACY_ALWAYS_STRIPPED
    for index, word in enumerate(privacy.strip):
        if word not in vocabulary:
            raise where.error(("privacy", "strip", str(index)),
                              f"unknown group {word!r}; known: {', '.join(vocabulary)}")
    for index, word in enumerate(privacy.keep):
        if word in PRIVACY_ALWAYS_STRIPPED:
            raise where.error(("privacy", "keep", str(index)),
                              f"{word!r} is private and always stripped; "
                              f"keepable: {', '.join(PRIVACY_KEEPABLE)}")
        if word not in PRIVACY_KEEPABLE:
            raise where.error(("privacy", "keep", str(index)),
                              f"unknown group {word!r}; keepable: {', '.join(PRIVACY_KEEPABLE)}")
        if word in privacy.strip:
            raise where.error(("privacy", "keep", str(index)),
                              f"{word!r} is both kept and stripped; choose one")


def _check_template(template: str, path: tuple[str, ...], where: _Located,
                    known: frozenset[str] = KNOWN_PLACEHOLDERS) -> None:
    try:
        template_fields(template, known)
    except TemplateError as exc:
        raise where.error(path, str(exc)) from None
