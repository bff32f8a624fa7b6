"""``crosswatch links check``: are the posts crosswatch made still there?

Every done job with a platform id, on a platform that can read a post back (its ``steps.LINK_CHECK``,
asked of the registry), is read back through the platform's API (no scraping): X ``GET
/2/tweets/{id}``, Instagram ``GET /{media-id}?fields=permalink``, and so on; each platform's folder
says how it answers for a post that is gone. Each link comes out ``ok``, ``broken`` (the post is
gone), or ``unknown`` (the platform could not be asked: no sign-in, a refused token, a network
error), with the platform's words.

The request builders and parsers are the platforms' own and sans-I/O; ``check_links`` sends, and
records in the journal what a platform that charges bills for each read (pricing.py: X bills the
post, once per UTC day).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from crosswatch import pricing
from crosswatch.config import Config, TargetConfig
from crosswatch.errors import CrosswatchError
from crosswatch.journal import Journal
from crosswatch.models import JobState
from crosswatch.platforms import registry
from crosswatch.platforms.base import LinkCheck, LinkState
from crosswatch.platforms.reading import json_body

State = LinkState


@dataclass(frozen=True)
class LinkStatus:
    job_id: int
    target: str
    remote_id: str
    permalink: str | None
    state: State
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"job": self.job_id, "target": self.target, "remote_id": self.remote_id,
                "permalink": self.permalink, "state": self.state, "detail": self.detail}


def _link_check(config: TargetConfig) -> LinkCheck:
    check = registry.link_check(config.kind)
    if check is None:
        raise ValueError(f"{config.kind} posts cannot be read back (its platform has no LINK_CHECK)")
    return check


def build_check_request(config: TargetConfig, remote_id: str, token: str | None) -> httpx.Request:
    return _link_check(config).build(config, remote_id, token)


def parse_check(config: TargetConfig, response: httpx.Response) -> tuple[State, str]:
    """Whether the post is there, and a few words on why; never raises."""
    return _link_check(config).parse(response)


class TokenSource(Protocol):
    def access_token(self) -> str: ...


def check_links(config: Config, journal: Journal, client: httpx.Client,
                tokens: Mapping[str, TokenSource]) -> list[LinkStatus]:
    """Every done job on a platform that can read its posts back, checked against that platform."""
    results: list[LinkStatus] = []
    token_of: dict[str, str | CrosswatchError | None] = {}
    for job in journal.jobs(state=JobState.DONE):
        target = config.targets.get(job.target)
        if target is None or registry.link_check(target.kind) is None or not job.remote_id:
            continue
        if job.target not in token_of:
            token_of[job.target] = _token(target, tokens.get(job.target))
        token = token_of[job.target]
        state: State
        if isinstance(token, CrosswatchError):
            state, detail = "unknown", str(token)
        else:
            state, detail = _ask(target, job.remote_id, token, client, journal, job.id)
        results.append(LinkStatus(job.id, job.target, job.remote_id, job.permalink, state, detail))
        journal.record_link_check(job.id, state, detail)  # the console's posted page shows the last one
    return results


def _token(target: TargetConfig, source: TokenSource | None) -> str | CrosswatchError | None:
    """The access token to read with: None on a platform that reads without signing in."""
    if source is None:
        if not registry.signs_in(target.kind):
            return None
        return CrosswatchError(f"target {target.name} has no token source")
    try:
        return source.access_token()
    except CrosswatchError as exc:
        return exc


def _ask(target: TargetConfig, remote_id: str, token: str | None, client: httpx.Client, journal: Journal,
         job_id: int) -> tuple[State, str]:
    request = build_check_request(target, remote_id, token)
    try:
        response = client.send(request)
        response.read()
    except httpx.HTTPError as exc:
        return "unknown", f"cannot reach {request.url.host}: {type(exc).__name__}"
    prices = pricing.prices_for(target.kind, target.prices)
    if prices is not None and response.is_success:
        resources = pricing.billed_resources(json_body(response))
        if resources:
            journal.record_reads(target.name, resources, prices["read"], job_id=job_id, purpose="link_check")
    return parse_check(target, response)
