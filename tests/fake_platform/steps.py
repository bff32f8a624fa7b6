"""The test platform's steps and its LINK_CHECK (sans-I/O)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from crosswatch.config import TargetConfig
from crosswatch.platforms.base import JobContext, Kind, LinkState, Outcome, Step


class Nothing:
    name = "nothing"
    safe_to_repeat = True

    def run(self, ctx: JobContext) -> Outcome:
        return Outcome(Kind.DONE, remote_id=str(ctx.job_id))


class FakeTarget:
    kind = "fake"

    def __init__(self, config: TargetConfig) -> None:
        self.name = config.name

    def steps(self) -> Sequence[Step]:
        return (Nothing(),)


class FakeLinkCheck:
    def build(self, cfg: TargetConfig, remote_id: str, token: str | None) -> httpx.Request:
        return httpx.Request("GET", f"{cfg.api_base}/posts/{remote_id}")

    def parse(self, response: httpx.Response) -> tuple[LinkState, str]:
        if response.status_code == 200:
            return "ok", "Fakegram has it"
        if response.status_code == 410:
            return "broken", "Fakegram says it is gone"
        return "unknown", f"Fakegram answered {response.status_code}"


LINK_CHECK = FakeLinkCheck()
