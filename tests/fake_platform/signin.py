"""The test platform's sign-in, as far as doctor and ``auth status`` use it: its scopes, and the
account lookup (``GET {api_base}/me`` with the token). It has no browser flow: tests store its tokens
in the (isolated) keyring directly."""

from __future__ import annotations

import httpx

from crosswatch.config import TargetConfig
from crosswatch.errors import AuthError


class FakeSignIn:
    scopes: tuple[str, ...] = ()
    needs_client_secret = False
    refreshes_expired = True

    def lookup_account(self, cfg: TargetConfig, client: httpx.Client, access_token: str) -> tuple[str, str | None]:
        response = client.get(f"{cfg.api_base}/me", headers={"Authorization": f"Bearer {access_token}"})
        if response.status_code != 200:
            raise AuthError(f"Fakegram answered {response.status_code}: the token is not valid")
        body = response.json()
        return str(body["id"]), body.get("username")


SIGN_IN = FakeSignIn()
