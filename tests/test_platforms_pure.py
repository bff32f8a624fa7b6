"""The platforms' pure modules (limits, steps, the registry, the shared protocol) import no I/O.

design.md, Part 2: pure modules import no sqlite3, no sockets, no keyring, no watchdog. The check
reads each module's imports (every ``import``, at any depth, except under ``if TYPE_CHECKING``), so it
fails as soon as someone adds ``import sqlite3`` or ``import keyring`` to one of them; every new
platform's ``limits.py`` and ``steps.py`` is covered by the glob.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLATFORMS = Path(__file__).resolve().parent.parent / "crosswatch" / "platforms"
# Modules that do I/O themselves, and crosswatch's own modules that do (keyring, files, sockets, S3).
IO_MODULES = {"sqlite3", "socket", "keyring", "watchdog", "subprocess", "urllib.request", "http.server",
              "boto3", "crosswatch.journal", "crosswatch.secrets", "crosswatch.hosting", "crosswatch.auth"}
PURE = sorted([*PLATFORMS.glob("*/limits.py"), *PLATFORMS.glob("*/steps.py"),
               PLATFORMS / "registry.py", PLATFORMS / "limits.py", PLATFORMS / "base.py", PLATFORMS / "reading.py"])


def run_time_imports(source: str) -> set[str]:
    tree = ast.parse(source)
    type_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                 for node in ast.walk(block)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def io_in(names: set[str]) -> set[str]:
    return {name for name in names
            if any(name == io or name.startswith(io + ".") for io in IO_MODULES)}


def test_every_platform_has_pure_limits_and_steps() -> None:
    folders = {p.parent.name for p in PLATFORMS.glob("*/__init__.py")}
    assert {"x", "instagram", "outbox"} <= folders
    assert all((PLATFORMS / name / "limits.py") in PURE and (PLATFORMS / name / "steps.py") in PURE
               for name in folders)


@pytest.mark.parametrize("module", PURE, ids=lambda p: p.relative_to(PLATFORMS).as_posix())
def test_pure_platform_modules_import_no_io(module: Path) -> None:
    names = run_time_imports(module.read_text())
    assert names, "the check found no imports at all"
    assert not io_in(names)


@pytest.mark.parametrize("line", ["import sqlite3", "import keyring", "from socket import socket",
                                  "from crosswatch import journal", "from crosswatch.auth.tokens import TokenSet",
                                  "def f() -> None:\n    import watchdog.observers"])
def test_the_check_catches_an_io_import(line: str) -> None:
    assert io_in(run_time_imports(line + "\n"))


def test_the_check_ignores_type_only_imports() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from crosswatch.hosting import MediaHost\n"
    assert not io_in(run_time_imports(source))
