"""Hostile configs (issue 11, defects 3 and 4): each is refused at start-up by the real CLI with one line
on stderr naming the file, the line and the key, exit 2, fast; none is expanded, created or run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from crosswatch.config import MAX_CONFIG_BYTES, MAX_DEPTH, MAX_TEXT_CHARS, MAX_VALUES, load_config
from crosswatch.errors import ConfigError
from tests.config_helpers import assert_one_line, in_process
from tests.conftest import REPO, run_cli

# Lines 1-6 of every case; what a case adds starts at line 7 (or, for the watched folder, at line 5).
BASE = """state_dir: {state}
watch:
  - path: {inbox}
    targets: [outbox]
{watch_item}targets:
  outbox: {{path: {outbox}}}
"""


def alias_bomb(levels: int) -> str:
    """The billion laughs: each level is a list of nine uses of the level below."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{n}: &l{n} [{','.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def nested(depth: int) -> str:
    return "x: " + "[" * depth + "]" * depth + "\n"


# name: (what follows BASE, the line the message names, the dotted key it names or None, a phrase in it)
CASES: dict[str, tuple[str, int, str | None, str]] = {
    "alias bomb": (alias_bomb(6), 10, None, f"more than {MAX_VALUES:,} values counting each use of an alias"),
    "alias loop": ("x: &loop [1, *loop]\n", 7, None, "the alias *loop is used inside the value it names"),
    "deep nesting": (nested(30_000), 7, None, f"nested more than {MAX_DEPTH} levels deep"),
    "deep block nesting": ("x:\n" + "".join(" " * n + "-\n" for n in range(1, 80)), 7 + MAX_DEPTH, None,
                           "levels deep"),
    "python tag": ("attribution: !!python/object/apply:os.system ['touch /tmp/crosswatch-pwned']\n", 7,
                   "attribution", "the YAML tag !!python/object/apply:os.system is not allowed"),
    "python name tag": ("attribution: !!python/name:os.system\n", 7, "attribution", "!!python/name:os.system"),
    "local tag": ("hashtags:\n  extra: !env [HOME]\n", 8, "hashtags.extra", "the YAML tag !env is not allowed"),
    "set tag": ("hashtags:\n  extra: !!set {a, b}\n", 8, "hashtags.extra", "!!set is not allowed"),
    "merge key": ("defaults: &d {from_keywords: false}\nhashtags:\n  <<: *d\n", 9, "hashtags",
                  "merge keys (<<) are not supported"),
    "a list as a key": ("hashtags:\n  ? [a, b]\n  : 1\n", 8, "hashtags", "a key must be plain text"),
    "infinite rescan": ("intake:\n  rescan_seconds: .inf\n", 8, "intake.rescan_seconds", "finite number, not inf"),
    "nan rescan": ("intake:\n  rescan_seconds: .nan\n", 8, "intake.rescan_seconds", "finite number, not nan"),
    "zero rescan": ("intake:\n  rescan_seconds: 0\n", 8, "intake.rescan_seconds", "must be more than 0"),
    "negative stagger": ("schedule:\n  stagger_minutes: -5\n", 8, "schedule.stagger_minutes",
                         "must be from 0 to 43,200, not -5"),
    "nan poll while the bridge is off": ("bridge:\n  enabled: false\n  poll_seconds: .nan\n", 9,
                                         "bridge.poll_seconds", "finite number"),
    "huge max_pixels": ("media:\n  max_pixels: 1000000000000000000000000000000\n", 8, "media.max_pixels",
                        "must be from 1 to 1,000,000,000, not 1,000,000,000,000,000,000,000,000,000,000"),
    "a 5,000-digit number": ("media:\n  max_pixels: " + "9" * 5000 + "\n", 8, "media.max_pixels",
                             "far too large"),
    "bridge caption attribute access": ("bridge:\n  caption: '{title.__class__}'\n", 8, "bridge.caption",
                                        "plain {placeholders} only"),
    "bridge caption indexing": ("bridge:\n  caption: '{title[0]}'\n", 8, "bridge.caption",
                                "plain {placeholders} only"),
    "bridge caption unknown field": ("bridge:\n  caption: '{title} {description}'\n", 8, "bridge.caption",
                                     "unknown placeholder {description}; known: attribution, hashtags, link, title"),
    "caption indexing": ("captions:\n  outbox: '{hashtags[0]}'\n", 8, "captions.outbox", "plain {placeholders}"),
    "a long template": (f"captions:\n  outbox: '{'x' * (MAX_TEXT_CHARS + 1)}'\n", 8, "captions.outbox",
                        f"is {MAX_TEXT_CHARS + 1:,} characters long; text here may be at most {MAX_TEXT_CHARS:,}"),
    "a NUL in a value": ('attribution: "a\\0b"\n', 7, "attribution", "U+0000"),
    "a lone surrogate": ('attribution: "a\\ud800b"\n', 7, "attribution", "U+D800"),
    "a control character": ("attribution: a\x01b\n", 7, None, "the character U+0001 is not allowed in YAML"),
    "a date that does not exist": ("attribution: 2024-13-45\n", 7, "attribution", "cannot read '2024-13-45'"),
    "two documents": ("---\nx: 1\n", 7, None, "expected a single document"),
    "a key too long": ("k" * 300 + ": 1\n", 7, None, "keys are at most 200"),
}
# The same, for keys of the watched folder (they start at line 5).
WATCH_ITEM_CASES: dict[str, tuple[str, int, str | None, str]] = {
    "a year-long settle": ("    settle_seconds: 31536000\n", 5, "watch.0.settle_seconds",
                           "must be from 0 to 86,400, not 31,536,000"),
    "a negative settle": ("    settle_seconds: -1\n", 5, "watch.0.settle_seconds", "must be from 0 to 86,400"),
    "an undefined variable": ("    include: ['*.jpg']\n  - path: $CROSSWATCH_TEST_UNDEFINED/photos\n"
                              "    targets: [outbox]\n", 6, "watch.1.path",
                              "$CROSSWATCH_TEST_UNDEFINED is not set in the environment"),
}


def base_config(workspace: dict[str, Path], watch_item: str = "", **paths: str) -> str:
    chosen = {"state": str(workspace["state"]), "inbox": str(workspace["inbox"]),
              "outbox": str(workspace["outbox"]), **paths}
    return BASE.format(watch_item=watch_item, **chosen)


def write_case(name: str, workspace: dict[str, Path]) -> Path:
    path = workspace["config"]
    if name in WATCH_ITEM_CASES:
        text = base_config(workspace, WATCH_ITEM_CASES[name][0])
    else:
        text = base_config(workspace) + CASES[name][0]
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


@pytest.mark.parametrize("case", sorted(CASES | WATCH_ITEM_CASES))
def test_a_hostile_config_is_one_line_exit_2_naming_file_line_and_key(case: str,
                                                                     workspace: dict[str, Path]) -> None:
    path = write_case(case, workspace)
    _extra, line, key, phrase = (CASES | WATCH_ITEM_CASES)[case]
    result = run_cli("run", "--once", config=path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert_one_line(result.stderr, f"{path}:{line}: " + (f"{key}: " if key else ""), phrase)
    assert not workspace["state"].exists()  # refused before anything was started
    assert not Path("/tmp/crosswatch-pwned").exists()


@pytest.mark.parametrize("levels", [6, 7, 9])
def test_an_alias_bomb_is_refused_in_well_under_a_second(levels: int, tmp_path: Path) -> None:
    # Before: 6 levels took 41 s, 7 more than two minutes and gigabytes; 9 levels is 387 million strings.
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(levels))
    assert len(path.read_bytes()) < 700
    code, stderr, seconds = in_process("--config", str(path), "run", "--once")
    assert code == 2
    assert_one_line(stderr, f"{path}:4: ", "alias")
    assert seconds < 0.5


# Room left for a case after the base config, within the size limit.
ROOM = MAX_CONFIG_BYTES - 400


@pytest.mark.parametrize(("text", "says"), [
    (nested(100_000), f"larger than {MAX_CONFIG_BYTES // 1024} KiB"),  # before: RecursionError, exit 1
    (nested(ROOM // 2 - 4), "levels deep"),
    ("x: " + "{a: " * (ROOM // 5) + "1" + "}" * (ROOM // 5) + "\n", "levels deep"),
    ("x: [" + "1," * (ROOM // 2 - 4) + "]\n", f"more than {MAX_VALUES:,} values"),
    ("x:\n" + "- 1\n" * (ROOM // 4 - 2), f"more than {MAX_VALUES:,} values"),
    ("attribution: '" + "a" * (ROOM - 20) + "'\n", "text here may be at most 10,000"),
    ("attribution: " + "a b " * (ROOM // 4 - 8) + "\n", "text here may be at most 10,000"),
    ("attribution: |\n" + ("  " + "a" * 70 + "\n") * (ROOM // 73), "text here may be at most 10,000"),
])
def test_the_slowest_configs_within_the_limits_are_refused_in_under_a_second(text: str, says: str,
                                                                               workspace: dict[str, Path]) -> None:
    path = workspace["config"]
    path.write_text(base_config(workspace) + text)
    code, stderr, seconds = in_process("--config", str(path), "run", "--once")
    assert code == 2
    assert_one_line(stderr, str(path), says)
    assert seconds < 1.0


def test_a_twenty_megabyte_template_is_refused_unread_and_the_message_says_the_limit(
        workspace: dict[str, Path]) -> None:
    path = workspace["config"]
    path.write_text(base_config(workspace) + "captions:\n  outbox: '" + "x" * 20_000_000 + "'\n")
    code, stderr, seconds = in_process("--config", str(path), "run", "--once")  # before: 22 s
    assert code == 2
    assert_one_line(stderr, f"{path}: the config file is larger than 128 KiB")
    assert seconds < 0.2


def test_an_endless_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    code, stderr, seconds = in_process("--config", "/dev/zero", "run", "--once")
    assert code == 2
    assert_one_line(stderr, "/dev/zero: the config file is larger than")
    assert seconds < 0.5


def test_an_undefined_variable_in_a_path_is_refused_and_nothing_is_created(workspace: dict[str, Path],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROSSWATCH_TEST_UNDEFINED", raising=False)
    path = workspace["config"]
    path.write_text(base_config(workspace, state="${CROSSWATCH_TEST_UNDEFINED}/state"))
    result = run_cli("run", "--once", config=path, timeout=60)
    assert result.returncode == 2
    assert_one_line(result.stderr, f"{path}:1: state_dir: $CROSSWATCH_TEST_UNDEFINED is not set")
    assert not any("CROSSWATCH_TEST_UNDEFINED" in p.name for p in path.parent.rglob("*"))
    assert not (Path.cwd() / "$CROSSWATCH_TEST_UNDEFINED").exists()


def test_defined_variables_and_home_are_still_expanded(workspace: dict[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSWATCH_TEST_ROOT", str(workspace["inbox"].parent))
    monkeypatch.setenv("HOME", str(workspace["inbox"].parent))
    path = workspace["config"]
    path.write_text(base_config(workspace, state="${CROSSWATCH_TEST_ROOT}/state",
                                inbox="$CROSSWATCH_TEST_ROOT/inbox", outbox="~/outbox"))
    config = load_config(path)
    assert config.state_dir == workspace["state"]
    assert config.watch[0].path == workspace["inbox"]
    assert config.targets["outbox"].path == workspace["outbox"]


def test_the_home_of_an_unknown_user_is_one_line(workspace: dict[str, Path]) -> None:
    path = workspace["config"]
    path.write_text(base_config(workspace, state="~crosswatch-no-such-user/state"))
    with pytest.raises(ConfigError, match=r":1: state_dir: cannot expand '~crosswatch-no-such-user'"):
        load_config(path)


def test_aliases_within_the_bound_still_work(workspace: dict[str, Path]) -> None:
    path = workspace["config"]
    path.write_text(base_config(workspace) + "hashtags:\n  extra: &tags [heron, lake]\n  private: *tags\n")
    config = load_config(path)
    assert config.hashtags.private == ("heron", "lake")


def file_cases() -> dict[str, tuple[Callable[[Path], None], str]]:
    """Files that are no config at all: how each is written, and what the one line says."""
    return {
        "a folder": (lambda p: p.mkdir(), "is a folder, not a config file; pass the file in it"),
        "latin-1": (lambda p: p.write_bytes(b"state_dir: /tmp\n\nattribution: \xa9 Ana\n"),
                    ":3: is not UTF-8 text (byte 0xa9)"),
        "utf-16": (lambda p: p.write_text("state_dir: /tmp\n", encoding="utf-16"), ":1: is not UTF-8 text"),
        "empty": (lambda p: p.write_text(""), "the config file is empty"),
        "only comments": (lambda p: p.write_text("# state_dir: /tmp\n"), "the config file is empty"),
        "a bare scalar": (lambda p: p.write_text("hello\n"), ":1: the config file must be a mapping"),
        "a list": (lambda p: p.write_text("- state_dir\n- /tmp\n"), "must be a mapping of keys to values, not a list"),
        "binary": (lambda p: p.write_bytes(bytes(range(256))), "not UTF-8"),
    }


@pytest.mark.parametrize("case", sorted(file_cases()))
def test_a_file_that_is_no_config_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    write, says = file_cases()[case]
    path = tmp_path / "config.yaml"
    write(path)
    result = run_cli("run", "--once", config=path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert_one_line(result.stderr, f"crosswatch: {path}", says)


def test_crosswatch_config_naming_a_folder_is_one_line_too(tmp_path: Path) -> None:
    result = run_cli("status", env={"CROSSWATCH_CONFIG": str(tmp_path)})
    assert result.returncode == 2
    assert_one_line(result.stderr, f"{tmp_path}: is a folder, not a config file")


def test_the_documented_limits_are_the_real_ones() -> None:
    documented = (REPO / "config.example.yaml").read_text() + (REPO / "README.md").read_text()
    for limit in (f"{MAX_CONFIG_BYTES // 1024} KiB", f"{MAX_VALUES:,} values", f"{MAX_DEPTH} levels",
                  f"{MAX_TEXT_CHARS:,} characters"):
        assert documented.count(limit) >= 2, limit  # in both files
