"""``crosswatch audit`` against the emulator after posting to every platform: the accounts' scopes,
expiry and last use; each thing that needs the user (an extra scope, a token about to lapse that
cannot be refreshed, a copy left on the media host) is a problem with exit 1; and no secret from the
keyring appears anywhere in what it prints."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from crosswatch import auth
from crosswatch.auth.tokens import load_tokens, save_tokens
from crosswatch.emulator.accounts import X_DAEMON_SCOPES
from crosswatch.models import JobState
from crosswatch.notify import add_destination
from crosswatch.platforms.instagram.steps import INSTAGRAM_SCOPES
from crosswatch.platforms.mastodon.steps import MASTODON_SCOPES
from crosswatch.platforms.threads.steps import THREADS_SCOPES
from crosswatch.platforms.x.steps import X_SCOPES
from crosswatch.secrets import SecretStore
from tests.conftest import run_cli
from tests.fault_harness import Rig, make_rig
from tests.openapi_check import XOpenAPI

DAY = 86400.0
ALL = ("x", "instagram", "threads", "bluesky", "mastodon")
NOTIFY_URL = "json://127.0.0.1:9/hook?token=notify-secret-5f2a9c"


@pytest.fixture
def rig(workspace: dict[str, Path], x_openapi: XOpenAPI) -> Iterator[Rig]:
    made = make_rig(workspace, x_openapi, targets=ALL)
    yield made
    made.close()


def run_audit(rig: Rig) -> tuple[int, dict[str, Any], str]:
    assert rig.config.source is not None
    result = run_cli("audit", "--json", config=Path(rig.config.source))
    assert result.stderr == "", result.stderr
    return result.returncode, json.loads(result.stdout), result.stdout


def keyring_secrets(document: dict[str, Any]) -> list[str]:
    """Every string stored under the keyring entries the audit names (tokens, secrets, URLs)."""
    store = SecretStore()
    found: list[str] = []

    def leaves(value: Any) -> None:
        if isinstance(value, str) and len(value) >= 8:
            found.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key not in ("username", "account_id", "api_base", "scopes", "dead"):
                    leaves(item)
        elif isinstance(value, list):
            for item in value:
                leaves(item)

    for name in document["stored"]["keyring"]["entries"]:
        raw = store.get(name)
        assert raw is not None
        try:
            leaves(json.loads(raw))
        except ValueError:
            leaves(raw)
    return found


def test_audit_after_posting_everywhere(rig: Rig) -> None:
    rig.add_photos(1)
    rig.drive()
    assert {job.target: job.state for job in rig.jobs()} == dict.fromkeys(ALL, JobState.DONE)
    add_destination(SecretStore(), "phone", NOTIFY_URL)

    code, document, text = run_audit(rig)
    assert document["problems"] == [] and code == 0
    accounts = {a["target"]: a for a in document["accounts"]}
    assert list(accounts) == list(ALL)
    needed = {"x": X_SCOPES, "instagram": INSTAGRAM_SCOPES, "threads": THREADS_SCOPES, "bluesky": (),
              "mastodon": MASTODON_SCOPES}
    for name, account in accounts.items():
        tokens = load_tokens(SecretStore(), name)
        assert tokens is not None
        assert account["platform"] == name and account["signed_in"] is True
        assert account["account"] == (tokens.username or tokens.account_id)
        assert account["needed_scopes"] == list(needed[name])
        assert account["scopes"] == list(tokens.scopes)
        assert account["extra_scopes"] == [] and account["missing_scopes"] == []
        assert account["used_at"] is not None, f"{name}: its post is the last use"
        assert account["revoke"]["command"] == f"crosswatch auth revoke {name}"
        assert account["revoke"]["page"].startswith("http")
        assert account["token_age_seconds"] is not None and account["refreshed_at"] is not None
    assert sorted(accounts["x"]["scopes"]) == sorted(X_DAEMON_SCOPES)
    assert accounts["mastodon"]["token_expires_at"] is None and accounts["mastodon"]["refreshable"] is False
    for name in ("x", "instagram", "threads", "bluesky"):
        assert accounts[name]["token_expires_at"] is not None and accounts[name]["refreshable"] is True
    instance = rig.config.targets["mastodon"].instance
    assert accounts["mastodon"]["revoke"]["page"] == f"{instance}/oauth/authorized_applications"
    stored = document["stored"]
    assert {"x:token", "instagram:token", "mastodon:token", "notify:phone"} <= set(stored["keyring"]["entries"])
    assert stored["journal"]["rows"]["jobs"] == 5 and stored["journal"]["oldest_entry"] is not None
    assert stored["journal"]["bytes"] > 0
    assert stored["prepared_images"]["files"] == 0, "posted jobs' prepared images are discarded"
    assert stored["media_host_copies"] == []
    assert "journalctl --user -u crosswatch.service" in stored["log"]
    assert document["privacy"]["uploads_checked"] == 5 and document["privacy"]["uploads_failed"] == 0

    secrets = keyring_secrets(document)
    assert NOTIFY_URL in secrets and len(secrets) >= 8
    text_run = run_cli("audit", config=Path(rig.config.source or ""))
    assert text_run.returncode == 0 and "no problems" in text_run.stdout
    for output in (text, text_run.stdout, text_run.stderr):
        leaked = [s for s in secrets if s in output]
        assert leaked == [], "a secret in the audit's output"

    # An extra scope: the X account granted more than crosswatch needs.
    wider = rig.emulator.mint_x_token(scopes=(*X_DAEMON_SCOPES, "dm.read"))
    auth.import_tokens(rig.config.targets["x"], SecretStore(), json.dumps(wider), rig.client, clock=rig.clock)
    # A token nothing can renew that lapses in three days.
    mastodon = load_tokens(SecretStore(), "mastodon")
    assert mastodon is not None
    save_tokens(SecretStore(), "mastodon", replace(mastodon, expires_at=rig.clock() + 3 * DAY))
    # A copy left on the media host after its post (its removal failed, simulated by putting it back).
    instagram_job = rig.jobs("instagram")[0]
    key = str(instagram_job.data["hosted_key"])
    shutil.copyfile(rig.inbox / "photo-0000.jpg", rig.hosted / key)

    code, document, text = run_audit(rig)
    assert code == 1
    problems = document["problems"]
    assert len(problems) == 3, problems
    assert problems[0].startswith("x: the token holds scopes crosswatch does not need (dm.read)")
    assert "crosswatch auth revoke x" in problems[0]
    assert problems[1].startswith("mastodon: the mastodon token lapses in 3.0 days")
    assert "crosswatch auth login mastodon" in problems[1]
    assert problems[2].startswith(f"instagram: a copy of job {instagram_job.id}'s image is still on the media host")
    accounts = {a["target"]: a for a in document["accounts"]}
    assert accounts["x"]["extra_scopes"] == ["dm.read"]
    assert document["stored"]["media_host_copies"] == [
        {"target": "instagram", "job": instagram_job.id, "key": key, "where": str(rig.hosted / key)}]
    secrets = keyring_secrets(document)
    assert [s for s in secrets if s in text] == []
