"""Sign-in errors carry the platform's own words, never a secret (issue 10 defect 5): code exchange,
refresh, account lookup and revoke, against the emulator as a real server, through the CLI where
there is a command for it. The refusals are injected with the bodies X uses (``errors[]`` lists,
OAuth's ``error``/``error_description``), some echoing back the secret that was sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from crosswatch import auth
from crosswatch.config import TargetConfig
from crosswatch.emulator import DEFAULT_X_CLIENT_ID, Emulator, EmulatorServer
from crosswatch.errors import AuthError, PlatformError
from crosswatch.platforms.x.signin import x_lookup_account
from crosswatch.secrets import SecretStore
from tests.auth_helpers import isolated_keyring, x_config
from tests.conftest import run_cli, write_config

CLIENT_SECRET = "conf-secret-value-0123456789"


def cli_config(workspace: dict[str, Path], url: str) -> Path:
    targets = {"x": {"client_id": DEFAULT_X_CLIENT_ID, "api_base": url, "authorize_url": f"{url}/i/oauth2/authorize"}}
    return write_config(workspace, targets=targets, watch=[{"path": str(workspace["inbox"]), "targets": ["x"]}])


def test_auth_import_shows_xs_words_from_errors_but_not_the_token_it_echoes(
        workspace: dict[str, Path], live_emulator: Emulator) -> None:
    token = live_emulator.mint_x_token()
    echoed = f"Invalid or expired token: {token['access_token']}"
    body: dict[str, Any] = {"title": "Unauthorized", "type": "about:blank", "status": 401,
                            "errors": [{"message": echoed, "code": 89}]}
    live_emulator.respond_with("x.users.me", 401, body)
    with EmulatorServer(live_emulator) as server:
        config = cli_config(workspace, server.url)
        result = run_cli("auth", "import", "x", config=config, input=json.dumps(token))
    assert result.returncode == 1
    assert "(Unauthorized: Invalid or expired token: [redacted])" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for secret in (token["access_token"], token["refresh_token"]):
        assert secret not in result.stdout + result.stderr


def test_auth_revoke_says_what_x_answered(workspace: dict[str, Path], live_emulator: Emulator) -> None:
    token = live_emulator.mint_x_token()
    with EmulatorServer(live_emulator) as server:
        config = cli_config(workspace, server.url)
        assert run_cli("auth", "import", "x", config=config, input=json.dumps(token)).returncode == 0
        live_emulator.respond_with("x.revoke", 503, {"errors": [
            {"message": f"Service temporarily unavailable for {token['refresh_token']}"}]}, times=2)
        result = run_cli("auth", "revoke", "x", config=config)
    assert result.returncode == 0, result.stderr
    assert "X did not confirm the revocation (Service temporarily unavailable for [redacted])" in result.stdout
    assert token["refresh_token"] not in result.stdout + result.stderr


def confidential(url: str) -> TargetConfig:
    return TargetConfig(name="x", kind="x", client_id="conf-app", api_base=url,
                        authorize_url=url + "/i/oauth2/authorize", redirect_port=0)


def real_browser(url: str) -> None:
    with httpx.Client(follow_redirects=True) as user_agent:
        user_agent.get(url)


def test_a_refused_code_exchange_shows_xs_words_without_the_client_secret(
        tmp_path: Path, live_emulator: Emulator) -> None:
    live_emulator.add_x_client("conf-app", client_secret=CLIENT_SECRET)
    live_emulator.respond_with("x.token", 400, {"errors": [
        {"message": f"Client application conf-app ({CLIENT_SECRET}) is suspended", "code": 416}]})
    with (isolated_keyring(tmp_path), EmulatorServer(live_emulator) as server, httpx.Client() as http,
          pytest.raises(AuthError) as refused):
        auth.login(confidential(server.url), SecretStore(), http, real_browser,
                   prompt_secret=lambda question: CLIENT_SECRET)
    message = str(refused.value)
    assert "X refused the sign-in code (Client application conf-app ([redacted]) is suspended)" in message
    assert CLIENT_SECRET not in message


def test_a_refused_refresh_shows_xs_words_without_the_refresh_token(
        tmp_path: Path, live_emulator: Emulator) -> None:
    with isolated_keyring(tmp_path), EmulatorServer(live_emulator) as server, httpx.Client() as http:
        store = SecretStore()
        cfg = x_config(server.url)
        auth.import_tokens(cfg, store, json.dumps(live_emulator.mint_x_token()), http)
        tokens = auth.load_tokens(store, "x")
        assert tokens is not None and tokens.refresh_token
        live_emulator.respond_with("x.token", 400, {
            "error": "invalid_request",
            "error_description": f"Value passed for the token was invalid: {tokens.refresh_token}"})
        provider = auth.token_provider(cfg, store, http, tmp_path)
        with pytest.raises(AuthError) as refused:
            provider.force_refresh()
        status = auth.status(cfg, store)
    for text in (str(refused.value), json.dumps(status)):
        assert "invalid_request: Value passed for the token was invalid: [redacted]" in text
        assert tokens.refresh_token not in text and tokens.access_token not in text


def test_an_account_lookup_problem_shows_xs_detail(live_emulator: Emulator) -> None:
    live_emulator.respond_with("x.users.me", 503, {"title": "Service Unavailable", "type": "about:blank",
                                                   "status": 503, "detail": "Service Unavailable"})
    with (EmulatorServer(live_emulator) as server, httpx.Client() as http,
          pytest.raises(PlatformError, match=r"X could not say which account this is \(Service Unavailable\)$")):
        x_lookup_account(x_config(server.url), http, live_emulator.mint_x_token()["access_token"])
