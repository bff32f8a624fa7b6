"""``python -m crosswatch.emulator [--host H] [--port N] [...]``: serve the emulator until Ctrl-C.

``crosswatch emulator`` offers the same through the main CLI; this entry point lets tests and scripts
start the emulator as a subprocess with short lifetimes and small quotas.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from crosswatch.emulator.server import run_emulator
from crosswatch.emulator.settings import EmulatorSettings


def build_settings(args: argparse.Namespace) -> EmulatorSettings:
    return EmulatorSettings(
        x_access_token_lifetime=args.x_token_lifetime,
        ig_short_token_lifetime=args.ig_token_lifetime,
        ig_long_token_lifetime=args.ig_long_token_lifetime,
        ig_refresh_min_age=args.ig_refresh_min_age,
        ig_container_processing_seconds=args.container_seconds,
        ig_publish_quota=args.ig_quota,
    )


def parser() -> argparse.ArgumentParser:
    defaults = EmulatorSettings()
    p = argparse.ArgumentParser(prog="python -m crosswatch.emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    p.add_argument("--x-token-lifetime", type=float, default=defaults.x_access_token_lifetime)
    p.add_argument("--ig-token-lifetime", type=float, default=defaults.ig_short_token_lifetime)
    p.add_argument("--ig-long-token-lifetime", type=float, default=defaults.ig_long_token_lifetime)
    p.add_argument("--ig-refresh-min-age", type=float, default=defaults.ig_refresh_min_age)
    p.add_argument("--container-seconds", type=float, default=defaults.ig_container_processing_seconds)
    p.add_argument("--ig-quota", type=int, default=defaults.ig_publish_quota)
    p.add_argument("--hosted-dir", type=Path, default=None, help="folder served under /_emulator/hosted/")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run_emulator(args.host, args.port, settings=build_settings(args), hosted_dir=args.hosted_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
