"""Config fuzz, in the spirit of h11's "a parse or a protocol error, never anything else".

Whatever the config file holds (random bytes, or a real config mangled with YAML's sharpest edges),
the CLI either loads it (exit 0) or refuses it with one line on stderr naming the file (exit 2):
never a traceback, never an internal error, never more than a second.

The command is ``auth status --json``: it loads and validates the whole config and reads the test's
own file keyring, and touches neither the network nor the state folder, so whatever path a mutation
writes into state_dir, nothing is created (these tests run as root on CI).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.config_helpers import assert_one_line, in_process
from tests.conftest import REPO, cli_env

COMMAND = ("auth", "status", "--json")


def readme_config() -> str:
    block = re.search(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert block is not None
    return block.group(1)


# Valid configs once HOME holds Pictures/Export/Social (see the fixture): the seeds mutations start from.
SEEDS = ((REPO / "config.example.yaml").read_text(), readme_config())

# What YAML and crosswatch treat specially, for mutations to put anywhere.
PIECES = (
    "&a ", "*a", "&b [*a, *a, *a, *a, *a, *a, *a, *a, *a]", "!!python/object/apply:os.system ['true'] ",
    "!!python/name:os.system ", "!!str ", "!!int ", "!!float ", "!!binary ", "!!set ", "!!omap ", "!local ",
    "!!timestamp ", "<<: ", "<<: *a", "? ", "- ", ": ", "[", "]", "{", "}", ",", "#", "'", '"', "|", ">-", "\n",
    "\t", "  ", "~", "null", "=", ".inf", "-.inf", ".nan", "-1", "0", "1e999", "0x" + "f" * 40, "9" * 90,
    "2024-13-45", "$CROSSWATCH_FUZZ_UNDEFINED", "${HOME}", "${", "~crosswatch-no-such-user/", "{title}",
    "{title.__class__}", "{x[0]}", "{title!r}", "}}", "\x00", '"\\ud800"', '"\\0"', "\ufeff", "\x85",
    "\u2028", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "é", "🌅", "targets", "watch",
    "state_dir: ", "enabled: true", "bridge:\n  enabled: true\n", "x" * 300,
)


# A value after "key: " (up to a comment): where a mutation reaches past the parser into validation.
_VALUE = re.compile(r"(?<=: )[^\n#]*")
_PIECE = st.sampled_from(PIECES) | st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=8)


@st.composite
def mutated_configs(draw: st.DrawFn) -> bytes:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        end = min(len(text), at + draw(st.integers(0, 40)))
        piece = draw(_PIECE)
        kind = draw(st.sampled_from(("value", "value", "value", "insert", "delete", "replace", "duplicate")))
        values = list(_VALUE.finditer(text))
        if kind == "value" and values:
            value = draw(st.sampled_from(values))
            text = text[:value.start()] + piece + text[value.end():]
        elif kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[end:]
        elif kind == "replace":
            text = text[:at] + piece + text[end:]
        else:  # a slice copied elsewhere: duplicated keys, anchors, half-lines
            to = draw(st.integers(0, len(text)))
            text = text[:to] + text[at:end] + text[to:]
    data = bytearray(text.encode("utf-8", "surrogatepass"))
    if data and draw(st.integers(0, 9)) == 0:  # now and then a byte changed: broken UTF-8 too
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CROSSWATCH_FUZZ_UNDEFINED", raising=False)
    (tmp_path / "Pictures" / "Export" / "Social").mkdir(parents=True)
    return tmp_path


def check(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    started = time.monotonic()
    code, stderr, cpu_seconds = in_process("--config", str(path), *COMMAND)
    assert code in (0, 2), stderr
    if code == 2:
        assert_one_line(stderr, f"crosswatch: {path}")
    else:
        assert stderr == ""
    assert cpu_seconds < 1.0, (cpu_seconds, data[:200])
    assert time.monotonic() - started < 10.0  # a sanity bound on a loaded machine: nothing waits


def test_the_seeds_are_valid_configs(home: Path) -> None:
    for seed in SEEDS:
        path = home / "config.yaml"
        path.write_text(seed)
        code, stderr, _seconds = in_process("--config", str(path), *COMMAND)
        assert (code, stderr) == (0, "")


# deadline=None: each example's own time is checked in CPU seconds (see check). Together these take
# about 10 CPU seconds.
def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@fuzz(300)
@given(data=mutated_configs())
def test_a_mangled_config_loads_or_is_one_line_exit_2(home: Path, data: bytes) -> None:
    check(home / "config.yaml", data)


@fuzz(200)
@given(data=st.binary(max_size=2000) | st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_random_bytes_load_or_are_one_line_exit_2(home: Path, data: bytes) -> None:
    check(home / "config.yaml", data)


@fuzz(4)
@given(data=mutated_configs())
def test_a_mangled_config_through_a_real_process_loads_or_is_one_line_exit_2(home: Path, data: bytes) -> None:
    path = home / "config.yaml"
    path.write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "crosswatch.cli", "--config", str(path), *COMMAND],
                            capture_output=True, timeout=60, env=cli_env({"HOME": str(home)}), cwd=REPO)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode in (0, 2), stderr
    if result.returncode == 2:
        assert_one_line(stderr, f"crosswatch: {path}")
    else:
        assert stderr == ""
