"""The console's accounts page shows the audit (as `crosswatch audit`) and revokes an account with its
revoke button: the real console on a loopback port, the emulator as a real server, the real keyring."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from crosswatch import views
from crosswatch.auth.tokens import load_tokens
from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.journal import Journal
from crosswatch.models import JobState
from crosswatch.platforms.x.steps import X_SCOPES
from crosswatch.secrets import SecretStore
from tests.conftest import run_cli
from tests.console_helpers import console_config, drop_photos, make_console, take_in


def test_the_accounts_page_shows_the_audit_and_its_revoke_button_revokes(
        workspace: dict[str, Path], emulator: Emulator) -> None:
    with EmulatorServer(emulator) as server:
        config = console_config(workspace, url=server.url)
        token = emulator.mint_x_token(scopes=(*X_SCOPES, "dm.read"))
        assert run_cli("auth", "import", "x", config=config, input=json.dumps(token)).returncode == 0
        drop_photos(workspace, 1, real=False)
        console = make_console(config)
        try:
            take_in(console.config)
            csrf = console.sign_in()
            before = console.client.get("/accounts").text
            refused = console.post("/accounts/x/revoke", {"csrf": "wrong"})
            assert refused.status_code == 403
            no_session = httpx.post(f"{console.base}/accounts/x/revoke", data={"csrf": csrf},
                                    headers={"Origin": console.base})
            assert no_session.status_code == 403
            assert load_tokens(SecretStore(), "x") is not None, "a refused POST changes nothing"
            revoked = console.post("/accounts/x/revoke", {"csrf": csrf})
            assert revoked.status_code == 303 and revoked.headers["location"] == "/accounts#account-x"
            after = console.client.get("/accounts").text
        finally:
            console.close()
        # The platform no longer takes the token, and the keyring no longer holds it.
        me = httpx.get(f"{server.url}/2/users/me", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert me.status_code == 401
    assert load_tokens(SecretStore(), "x") is None

    assert 'data-audit="x"' in before
    assert re.search(r'data-field="needed-scopes">' + re.escape(" ".join(X_SCOPES)) + "<", before)
    assert 'data-field="extra-scopes">dm.read<' in before
    assert 'data-field="refreshable">yes<' in before
    assert 'href="https://x.com/settings/connected_apps"' in before
    assert 'data-action="revoke" data-target="x"' in before
    assert 'data-field="audit-problem">x: the token holds scopes crosswatch does not need (dm.read)' in before
    assert re.search(r'data-field="stored">journal .*journal.sqlite3', before)
    assert re.search(r'data-field="stored">privacy: 0 uploads checked before they left, 0 blocked<', before)
    assert 'data-field="revoke-result">x: revoked at the platform; tokens deleted from the keyring' in after
    assert re.search(r'data-field="sign-in">sign-in needed<', after)
    for page in (before, after):
        assert token["access_token"] not in page and token["refresh_token"] not in page


# Every time on a console page, as views.when shows it: "2026-12-02 16:40:00 UTC".
READABLE_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [^<\s]+"


def test_the_accounts_page_shows_every_time_in_one_readable_format(
        workspace: dict[str, Path], emulator: Emulator) -> None:
    with EmulatorServer(emulator) as server:
        config = console_config(workspace, url=server.url, approval=False)
        token = emulator.mint_x_token(scopes=X_SCOPES)
        assert run_cli("auth", "import", "x", config=config, input=json.dumps(token)).returncode == 0
        drop_photos(workspace, 1, real=False)
        console = make_console(config)
        try:
            take_in(console.config)
            with Journal(console.config.journal_path) as journal:
                job = next(j for j in journal.jobs() if j.target == "x")
                # the runner takes the job: the token's last use (the audit's "used_at")
                journal.transition(job.id, JobState.IN_FLIGHT, expect=JobState.READY, step="upload_media")
                used_at = journal.last_attempts()["x"]
            console.sign_in()
            page = console.client.get("/accounts").text
        finally:
            console.close()
    assert f'data-field="used">{views.when(used_at)}<' in page, "last used, as last refresh: not an ISO time"
    for field in ("used", "refreshed", "expires"):
        assert re.search(f'data-field="{field}">{READABLE_TIME} ?<', page), field
    assert re.search(f'data-field="stored">journal .* oldest entry {READABLE_TIME}<', page)
