"""A new platform is its folder and one registry line: config, links check, doctor, compose and the
runner find it through the registry (platforms/base.py's hooks, PlatformLimits' flags).

The proof is a platform that exists only here (tests/fake_platform), registered by monkeypatching
``registry.PLATFORMS``; nothing else is told its name. (media.SPECS is a table the registry fills at
import, before this test registers anything, so the fixture adds the platform's image spec to it as
its registry line would have at import.)
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch import doctor, media
from crosswatch.config import Config, config_from_mapping
from crosswatch.errors import ConfigError
from crosswatch.journal import Journal, NewFile
from crosswatch.linkcheck import check_links
from crosswatch.models import JobState
from crosswatch.platforms import registry
from crosswatch.platforms.base import LinkCheck
from crosswatch.platforms.registry import Platform, build_target
from crosswatch.runner import Runner
from tests.conftest import jpeg_bytes

FAKE_API = "http://fake.test"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "PLATFORMS",
                        {**registry.PLATFORMS, "fake": Platform("fake", "tests.fake_platform", signs_in=False)})
    monkeypatch.setattr(media, "SPECS", {**media.SPECS, "fake": registry.limits("fake").image})


def load(tmp_path: Path, targets: dict[str, Any], **rest: Any) -> Config:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    document = {"state_dir": str(tmp_path / "state"), "watch": [{"path": str(inbox), "targets": list(targets)}],
                "targets": targets, **rest}
    return config_from_mapping(document, tmp_path / "config.yaml")


def test_the_builtin_platforms_state_their_facts_in_the_registry() -> None:
    assert isinstance(registry.link_check("x"), LinkCheck) and isinstance(registry.link_check("instagram"), LinkCheck)
    assert registry.link_check("outbox") is None and registry.link_check("nowhere") is None
    flags = {name: (registry.limits(name).needs_media_host, registry.limits(name).bridge_source)
             for name in ("x", "instagram", "outbox")}
    # The outbox copies Instagram's caption rules, but not its media host or its bridge.
    assert flags == {"x": (False, False), "instagram": (True, True), "outbox": (False, False)}
    assert registry.kinds_where("bridge_source") == ("instagram",)
    assert registry.limits("x").max_images == 4 and registry.limits("outbox").max_images == 100
    assert registry.doctor("outbox") is not None and registry.doctor("x") is None


def test_a_new_platform_is_a_target_type_with_its_defaults_media_host_and_bridge(fake: None,
                                                                                  tmp_path: Path) -> None:
    host = {"type": "directory", "path": str(tmp_path / "hosted"), "public_url": "https://example.com/h/"}
    config = load(tmp_path, {"fk": {"type": "fake", "media_host": host},
                             "x": {"client_id": "id", "link_to": "fk"}},
                  bridge={"enabled": True, "source": "fk", "targets": ["x"]})
    assert config.targets["fk"].api_base == "https://fake.invalid"  # its limits' config_defaults
    assert config.bridge.source == "fk" and config.targets["x"].link_to == "fk"


@pytest.mark.parametrize(("targets", "bridge", "key", "words"), [
    ({"x": {"client_id": "id", "media_host": {"type": "directory", "path": "/tmp", "public_url": "https://e/"}}},
     {}, "targets.x.media_host", "only a target of type instagram or threads or fake uses a media host"),
    ({"x": {"client_id": "id", "link_to": "o"}, "o": {"type": "outbox", "path": "/tmp/o"}},
     {}, "targets.x.link_to", "target of type instagram or fake"),
    ({"x": {"client_id": "id"}}, {"enabled": True, "source": "x"}, "bridge.source",
     "must name a target of type instagram or fake"),
    ({"f": {"type": "fake"}, "y": {"type": "fake"}}, {"enabled": True, "source": "f", "targets": ["y", "f"]},
     "bridge.targets.1", "the bridge's own source"),
])
def test_config_messages_name_what_the_registry_says(fake: None, tmp_path: Path, targets: dict[str, Any],
                                                     bridge: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, targets, bridge=bridge)
    assert key in str(refused.value) and words in str(refused.value)


def test_targets_required_and_unknown_types_list_the_registry(fake: None, tmp_path: Path) -> None:
    listed = ", ".join(registry.names())
    assert listed.endswith(", fake")
    with pytest.raises(ConfigError, match=re.escape(f"name at least one target ({listed})")):
        load(tmp_path, {})
    with pytest.raises(ConfigError, match=re.escape(f"use type: one of {listed}")):
        load(tmp_path, {"m": {"type": "myspace"}})


def test_a_platforms_required_keys_come_from_its_limits(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"targets\.o\.path.*is required for an outbox target \(the folder"):
        load(tmp_path, {"o": {"type": "outbox"}})


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "state" / "journal.sqlite3") as opened:
        yield opened


def fake_api(request: httpx.Request) -> httpx.Response:
    """Fakegram's read-back: post 1 is there, post 2 was deleted, anything else is a server error;
    ``/me`` knows the token "good" only, and ``down.test`` cannot be reached."""
    if request.url.host == "down.test":
        raise httpx.ConnectError("connection refused", request=request)
    if request.url.path == "/me":
        known = request.headers.get("Authorization") == "Bearer good"
        return httpx.Response(200, json={"id": "7", "username": "ada"}) if known else httpx.Response(401)
    post = request.url.path.rsplit("/", 1)[-1]
    return httpx.Response({"1": 200, "2": 410}.get(post, 503), json={"id": post})


def test_links_check_and_the_runner_take_a_new_platform_from_the_registry(fake: None, tmp_path: Path,
                                                                          journal: Journal) -> None:
    config = load(tmp_path, {"fk": {"type": "fake", "api_base": FAKE_API}})
    for seed in range(3):
        path = tmp_path / "inbox" / f"p{seed}.jpg"
        path.write_bytes(jpeg_bytes(seed, size=(320, 240)))
        journal.add_files([NewFile(str(path), path.stat().st_size, os.stat(path).st_mtime_ns,
                                   hashlib.sha256(path.read_bytes()).hexdigest(), ("fk",))])
    with httpx.Client(transport=httpx.MockTransport(fake_api)) as client:
        runner = Runner(config, journal, {"fk": build_target(config.targets["fk"])}, client=client, tokens={})
        for _ in range(10):
            runner.run_due()
            if len(journal.jobs(state=JobState.DONE)) == 3:
                break
            time.sleep(0.02)
        done = journal.jobs(state=JobState.DONE)
        assert sorted(j.remote_id or "" for j in done) == ["1", "2", "3"]
        results = check_links(config, journal, client, tokens={})  # no sign-in: read without a token
    by_id = {r.remote_id: (r.state, r.detail) for r in results}
    assert by_id == {"1": ("ok", "Fakegram has it"), "2": ("broken", "Fakegram says it is gone"),
                     "3": ("unknown", "Fakegram answered 503")}
    caption = runner.contexts.caption(done[0], journal.photo(done[0].photo_id))  # type: ignore[arg-type]
    assert caption.limit == 50  # its own limits, through compose


def test_doctor_gives_a_new_platform_the_generic_checks_and_its_own(fake: None, tmp_path: Path) -> None:
    config = load(tmp_path, {"fk": {"type": "fake", "api_base": FAKE_API},
                             "o": {"type": "outbox", "path": str(tmp_path / "out")}})
    with httpx.Client(transport=httpx.MockTransport(fake_api)) as client:
        checks = doctor.target_checks(config, client)
    assert checks == [
        (False, "target fk: no media_host; Fakegram fetches images from a public URL"),  # needs_media_host
        (True, f"target fk: fake platform at {FAKE_API}"),  # its package's doctor
        (True, f"target o: outbox {tmp_path / 'out'}"),
    ]


@pytest.mark.parametrize(("token", "api", "reachable"), [
    ("good", FAKE_API, (True, "target fa: the platform answers, for ada")),
    ("stale", FAKE_API, (False, "target fa: the platform refused the token: Fakegram answered 401: the token "
                                "is not valid")),
    ("good", "http://down.test", (False, "target fa: cannot reach the platform (ConnectError)")),
])
def test_doctor_asks_a_signed_in_platform_whether_it_answers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             token: str, api: str, reachable: tuple[bool, str]
                                                             ) -> None:
    from crosswatch.auth.tokens import TokenSet, save_tokens
    from crosswatch.secrets import SecretStore

    monkeypatch.setattr(registry, "PLATFORMS", {**registry.PLATFORMS,
                                                "fakeauth": Platform("fakeauth", "tests.fake_platform", signs_in=True)})
    config = load(tmp_path, {"fa": {"type": "fakeauth", "api_base": api}})
    save_tokens(SecretStore(), "fa", TokenSet(token, account_id="7", username="ada"))
    with Journal(config.journal_path), httpx.Client(transport=httpx.MockTransport(fake_api)) as client:
        checks = doctor.target_checks(config, client)
    assert checks[:2] == [(True, "target fa: signed in as ada, token expires never"), reachable]
    assert token not in repr(checks)
