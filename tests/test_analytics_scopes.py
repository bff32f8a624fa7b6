"""Insights scopes are asked for only when analytics is on, and `auth status` and `doctor` say when a
sign-in lacks them (posting is not affected)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from crosswatch.auth.tokens import TokenSet, save_tokens
from crosswatch.config import load_config
from crosswatch.platforms.instagram.signin import instagram_authorize_url
from crosswatch.platforms.threads.signin import threads_authorize_url
from crosswatch.secrets import SecretStore
from tests.conftest import run_cli, write_config

POSTING = ("instagram_business_basic", "instagram_business_content_publish")


def config_with(workspace: dict[str, Path], analytics: bool) -> Path:
    media_host = {"type": "directory", "path": str(workspace["outbox"]), "public_url": "https://example.com/"}
    targets = {"instagram": {"client_id": "1234", "media_host": media_host},
               "threads": {"client_id": "5678", "media_host": media_host}}
    watch = [{"path": str(workspace["inbox"]), "targets": ["instagram", "threads"]}]
    return write_config(workspace, targets=targets, watch=watch, analytics={"enabled": analytics})


def asked(url: str) -> set[str]:
    return set(parse_qs(urlsplit(url).query)["scope"][0].split(","))


@pytest.mark.parametrize("analytics", [False, True])
def test_sign_in_asks_for_insights_only_with_analytics_on(workspace: dict[str, Path], analytics: bool) -> None:
    config = load_config(config_with(workspace, analytics))
    ig = asked(instagram_authorize_url(config.targets["instagram"], "https://example.com/cb", "s"))
    threads = asked(threads_authorize_url(config.targets["threads"], "https://example.com/cb", "s"))
    assert ("instagram_business_manage_insights" in ig) is analytics and set(POSTING) <= ig
    assert ("threads_manage_insights" in threads) is analytics and "threads_content_publish" in threads


def test_auth_status_and_doctor_say_when_a_sign_in_lacks_the_insights_scope(workspace: dict[str, Path]) -> None:
    config = config_with(workspace, analytics=True)
    store = SecretStore()
    save_tokens(store, "instagram", TokenSet(access_token="a", scopes=POSTING, username="ada", account_id="1"))
    save_tokens(store, "threads", TokenSet(access_token="b", username="ada", account_id="2",
                                           scopes=("threads_basic", "threads_content_publish",
                                                   "threads_manage_insights")))
    status = json.loads(run_cli("auth", "status", "--json", config=config).stdout)["targets"]
    by_target = {s["target"]: s for s in status}
    assert "instagram_business_manage_insights" in by_target["instagram"]["analytics_problem"]
    assert by_target["instagram"]["problem"] is None and by_target["instagram"]["needs_login"] is False
    assert by_target["threads"]["analytics_problem"] is None
    text = run_cli("auth", "status", config=config).stdout
    assert "lacks instagram_business_manage_insights" in text and "crosswatch auth login instagram" in text
    doctor = run_cli("doctor", config=config)
    assert "target instagram: the token lacks instagram_business_manage_insights" in doctor.stdout + doctor.stderr
    off = json.loads(run_cli("auth", "status", "--json", config=config_with(workspace, analytics=False)).stdout)
    assert all(s["analytics_problem"] is None for s in off["targets"])
