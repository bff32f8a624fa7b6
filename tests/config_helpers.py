"""The CLI run in this process, for config tests that run it hundreds of times (a subprocess costs a
second of start-up each), and the shape every config error must have."""

from __future__ import annotations

import time

from click.testing import CliRunner

from crosswatch import cli


def in_process(*args: str) -> tuple[int, str, float]:
    """``crosswatch ARGS`` through the CLI's own entry point: exit status, stderr, CPU seconds used.

    CPU time rather than wall time: six test runs share two cores, and what must stay small is the
    work a config costs, not how long the scheduler keeps us waiting.
    """
    code: int | str | None = 0
    with CliRunner().isolation() as (_stdout, stderr, _output):
        started = time.process_time()
        try:
            cli.main(list(args))
        except SystemExit as exited:
            code = exited.code
        seconds = time.process_time() - started
        text = stderr.getvalue().decode("utf-8", "replace")
    return code if isinstance(code, int) else 1, text, seconds


def assert_one_line(stderr: str, *fragments: str) -> str:
    """The one line a user error gives: ``crosswatch: ...``, no traceback, the given fragments in it."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("crosswatch: "), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr and "<unicode string>" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
