"""A platform that exists only in tests: registered by monkeypatching ``registry.PLATFORMS`` to prove a
new platform needs its folder and a registry line, and nothing in config, links check, doctor or the
bridge learning its name. It "posts" nowhere (its one step writes nothing); its posts are read back
from ``GET {api_base}/posts/{id}`` on whatever server the test puts there."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crosswatch.config import TargetConfig
    from tests.fake_platform.steps import FakeTarget


def build(target: TargetConfig) -> FakeTarget:
    from tests.fake_platform.steps import FakeTarget

    return FakeTarget(target)


def doctor(target: TargetConfig) -> list[tuple[bool, str]]:
    return [(target.api_base is not None, f"target {target.name}: fake platform at {target.api_base}")]
