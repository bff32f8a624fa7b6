"""``crosswatch links check``: are the posts crosswatch made still there?

Every done job on X or Instagram with a platform id is read back through the platform's API (no
scraping): X ``GET /2/tweets/{id}`` (a missing post answers 200 with a resource-not-found error, or
404), Instagram ``GET /{media-id}?fields=permalink`` (a missing post answers code 100, subcode 33).
Each link comes out ``ok``, ``broken`` (the post is gone), or ``unknown`` (the platform could not be
asked: no sign-in, a refused token, a network error), with the platform's words.

The request builders and parsers are sans-I/O; ``check_links`` sends, and records what X bills for
each read in the journal (pricing.py: the post, once per UTC day).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from crosswatch import pricing
from crosswatch.config import Config, TargetConfig
from crosswatch.errors import CrosswatchError
from crosswatch.journal import Journal
from crosswatch.models import JobState
from crosswatch.platforms.instagram import steps as instagram
from crosswatch.platforms.x import steps as x

State = Literal["ok", "broken", "unknown"]
# Graph's answer for an object that does not exist (or is not visible to this token).
IG_MISSING = (100, 33)


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


def build_check_request(config: TargetConfig, remote_id: str, token: str | None) -> httpx.Request:
    if config.kind == "x":
        return httpx.Request("GET", x.api_url(config, f"/2/tweets/{remote_id}"), headers=x.bearer(token))
    return instagram.build_permalink_request(config, remote_id, token)


def _body(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return None


def parse_check(config: TargetConfig, response: httpx.Response) -> tuple[State, str]:
    """Whether the post is there, and a few words on why; never raises."""
    if config.kind == "x":
        return _parse_x(response)
    return _parse_instagram(response)


def _parse_x(response: httpx.Response) -> tuple[State, str]:
    body = _body(response)
    if response.status_code == 200 and isinstance(body, Mapping):
        if isinstance(body.get("data"), Mapping):
            return "ok", "the post is there"
        errors = body.get("errors")
        for error in errors if isinstance(errors, list) else ():
            if isinstance(error, Mapping) and str(error.get("type", "")).endswith("/resource-not-found"):
                return "broken", str(error.get("detail") or "X cannot find the post; it was deleted")
    if response.status_code == 404:
        return "broken", "X cannot find the post; it was deleted"
    return "unknown", x.parse_problem(response).reason


def _parse_instagram(response: httpx.Response) -> tuple[State, str]:
    if response.is_success:
        body = _body(response)
        permalink = body.get("permalink") if isinstance(body, Mapping) else None
        return "ok", f"the post is there ({permalink})" if permalink else "the post is there"
    error = instagram.parse_graph_error(response)
    if error.pair == IG_MISSING or response.status_code == 404:
        return "broken", f"Instagram cannot find the post; it was deleted ({error.reason})"
    return "unknown", error.reason


class TokenSource(Protocol):
    def access_token(self) -> str: ...


def check_links(config: Config, journal: Journal, client: httpx.Client,
                tokens: Mapping[str, TokenSource]) -> list[LinkStatus]:
    """Every done X and Instagram job, checked against its platform."""
    results: list[LinkStatus] = []
    token_of: dict[str, str | CrosswatchError] = {}
    for job in journal.jobs(state=JobState.DONE):
        target = config.targets.get(job.target)
        if target is None or target.kind not in ("x", "instagram") or not job.remote_id:
            continue
        if job.target not in token_of:
            source = tokens.get(job.target)
            try:
                token_of[job.target] = source.access_token() if source else CrosswatchError(
                    f"target {job.target} has no token source")
            except CrosswatchError as exc:
                token_of[job.target] = exc
        token = token_of[job.target]
        state: State
        if isinstance(token, CrosswatchError):
            state, detail = "unknown", str(token)
        else:
            state, detail = _ask(target, job.remote_id, token, client, journal, job.id)
        results.append(LinkStatus(job.id, job.target, job.remote_id, job.permalink, state, detail))
        journal.record_link_check(job.id, state, detail)  # the console's posted page shows the last one
    return results


def _ask(target: TargetConfig, remote_id: str, token: str, client: httpx.Client, journal: Journal,
         job_id: int) -> tuple[State, str]:
    request = build_check_request(target, remote_id, token)
    try:
        response = client.send(request)
        response.read()
    except httpx.HTTPError as exc:
        return "unknown", f"cannot reach {request.url.host}: {type(exc).__name__}"
    prices = pricing.prices_for(target.kind, target.prices)
    if prices is not None and response.is_success:
        resources = pricing.billed_resources(_body(response))
        if resources:
            journal.record_reads(target.name, resources, prices["read"], job_id=job_id, purpose="link_check")
    return parse_check(target, response)
