"""Sign-in, token storage and refresh, against hand-written handlers and the bundled emulator."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring

from crosswatch.auth import import_tokens, load_tokens, login, revoke, status, token_provider
from crosswatch.auth.http import RedactQueryFilter
from crosswatch.auth.locks import file_lock
from crosswatch.auth.loopback import LoopbackListener, code_from_redirect
from crosswatch.auth.tokens import TokenSet
from crosswatch.emulator import (
    DEFAULT_IG_CLIENT_SECRET,
    DEFAULT_IG_USER_ID,
    DEFAULT_IG_USERNAME,
    DEFAULT_X_CLIENT_ID,
    DEFAULT_X_USER_ID,
    DEFAULT_X_USERNAME,
    Emulator,
    EmulatorServer,
    EmulatorSettings,
    ManualClock,
)
from crosswatch.errors import AuthError, ConfigError, SecretStoreError, UsageError
from crosswatch.platforms.instagram.signin import (
    InstagramTokenProvider,
    instagram_authorize_url,
    parse_instagram_short_token,
)
from crosswatch.platforms.x.signin import XTokenProvider, x_authorize_url
from crosswatch.secrets import SecretStore
from tests.auth_helpers import browser, instagram_config, isolated_keyring, x_config
from tests.emulator_fixtures import watch_openapi
from tests.openapi_check import XOpenAPI

BASE = "https://emulator.test"
START = 1_800_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SecretStore]:
    with isolated_keyring(tmp_path):
        yield SecretStore()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def make_emulator(clock: ManualClock, **settings: Any) -> Emulator:
    return Emulator(EmulatorSettings(**settings), clock=clock)


@pytest.fixture(scope="module")
def x_spec() -> XOpenAPI:
    return XOpenAPI()


@pytest.fixture
def emulator(clock: ManualClock, x_spec: XOpenAPI) -> Iterator[Emulator]:
    emulator = make_emulator(clock, x_access_token_lifetime=60.0)
    # X API calls made while signing in (/2/users/me) must follow X's OpenAPI document.
    recorder = watch_openapi(emulator, x_spec)
    yield emulator
    recorder.assert_clean()


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(emulator.handle)) as http:
        yield http


def no_prompt(question: str) -> str:
    raise AssertionError(f"unexpected prompt: {question}")


# ---------------------------------------------------------------------------------------------------
# Authorize URLs, token parsing, the secret store


def test_x_authorize_url_has_exact_scopes_pkce_s256_and_state() -> None:
    cfg = x_config(BASE)
    verifier = "v" * 64
    url = urllib.parse.urlsplit(x_authorize_url(cfg, "http://127.0.0.1:8765/callback", "st4te", verifier))
    assert "scope=tweet.read%20tweet.write%20users.read%20media.write%20offline.access" in url.query
    params = dict(urllib.parse.parse_qsl(url.query))
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert params == {"response_type": "code", "client_id": cfg.client_id, "state": "st4te",
                      "redirect_uri": "http://127.0.0.1:8765/callback",
                      "scope": "tweet.read tweet.write users.read media.write offline.access",
                      "code_challenge": expected, "code_challenge_method": "S256"}


def test_instagram_authorize_url_scopes() -> None:
    url = instagram_authorize_url(instagram_config(BASE), "http://127.0.0.1:1/callback", "s")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert params["scope"] == "instagram_business_basic,instagram_business_content_publish"
    assert params["response_type"] == "code" and params["state"] == "s"


def test_sign_in_needs_a_client_id(store: SecretStore, client: httpx.Client) -> None:
    cfg = x_config(BASE, client_id="")
    with pytest.raises(ConfigError, match=r"targets\.x\.client_id"):
        login(cfg, store, client, open_browser=lambda url: None)


@pytest.mark.parametrize("body", [
    {"access_token": "IGAAshort", "user_id": 17841400000000001, "permissions": ["instagram_business_basic"]},
    {"data": [{"access_token": "IGAAshort", "user_id": "17841400000000001",
               "permissions": "instagram_business_basic"}]},
])
def test_instagram_code_exchange_accepts_both_shapes(body: dict[str, Any]) -> None:
    assert parse_instagram_short_token(body) == ("IGAAshort", "17841400000000001", ("instagram_business_basic",))


def test_secret_store_round_trip_and_delete(store: SecretStore) -> None:
    store.set("x:client_secret", "s3cr3t")
    assert store.get("x:client_secret") == "s3cr3t"
    assert store.delete("x:client_secret") is True
    assert store.delete("x:client_secret") is False
    assert store.get("x:client_secret") is None


def test_keyring_failures_become_secret_store_errors(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    try:
        with pytest.raises(SecretStoreError, match="PYTHON_KEYRING_BACKEND"):
            SecretStore().set("x:token", "value-never-shown")
        with pytest.raises(SecretStoreError, match="cannot read crosswatch/x:token"):
            SecretStore().get("x:token")
    finally:
        keyring.set_keyring(previous)


def test_token_set_repr_never_shows_tokens() -> None:
    tokens = TokenSet("access-AAAA", "refresh-BBBB", expires_at=1.0, scopes=("a",), account_id="1")
    for text in (repr(tokens), str(tokens), f"{tokens}", repr([tokens])):
        assert "access-AAAA" not in text and "refresh-BBBB" not in text
    assert "account_id='1'" in repr(tokens)


def test_redaction_filter_rewrites_query_tokens() -> None:
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s"',
                               ("GET", "https://g/access_token?grant_type=x&access_token=IGAAsecret&client_secret=abc",
                                "200"), None)
    RedactQueryFilter().filter(record)
    assert "IGAAsecret" not in record.getMessage() and "abc" not in record.getMessage()
    assert "access_token=[redacted]" in record.getMessage()


# ---------------------------------------------------------------------------------------------------
# The loopback listener


def test_listener_binds_loopback_only_and_takes_exactly_one_callback() -> None:
    with LoopbackListener("right-state") as listener, httpx.Client() as http:
        host, port = listener.address
        assert host == "127.0.0.1" and port > 0
        wrong = http.get(listener.redirect_uri, params={"state": "wrong", "code": "c1"})
        assert wrong.status_code == 400 and "does not belong" in wrong.text
        missing = http.get(listener.redirect_uri, params={"code": "c1"})
        assert missing.status_code == 400
        assert http.get(f"http://127.0.0.1:{port}/other").status_code == 404
        ok = http.get(listener.redirect_uri, params={"state": "right-state", "code": "the-code"})
        assert ok.status_code == 200 and "close this tab" in ok.text
        second = http.get(listener.redirect_uri, params={"state": "right-state", "code": "other"})
        assert second.status_code == 409
        assert listener.wait(1) == "the-code"
        assert listener.rejected == 2
    with httpx.Client() as http, pytest.raises(httpx.ConnectError):
        http.get(f"http://127.0.0.1:{port}/callback", params={"state": "right-state", "code": "late"})


def test_listener_refusal_and_timeout() -> None:
    with LoopbackListener("s") as listener, httpx.Client() as http:
        http.get(listener.redirect_uri, params={"state": "s", "error": "access_denied",
                                                "error_description": "The user denied your request"})
        with pytest.raises(AuthError, match=r"refused.*access_denied: The user denied"):
            listener.wait(1)
    with LoopbackListener("s") as listener, pytest.raises(AuthError, match="no sign-in arrived within 0 s"):
        listener.wait(0.2)


def non_loopback_address() -> str | None:
    """An address of this machine that is not 127.0.0.0/8 (None when it has none)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_listener_is_not_reachable_on_a_non_loopback_address() -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with LoopbackListener("s") as listener:
        port = listener.address[1]
        with httpx.Client(timeout=2) as http:
            assert http.get(f"http://127.0.0.1:{port}/callback").status_code == 400
            with pytest.raises(httpx.ConnectError):
                http.get(f"http://{address}:{port}/callback", params={"state": "s", "code": "c"})


# ---------------------------------------------------------------------------------------------------
# Sign-in end to end against the emulator (MockTransport for the platform, a socket for the redirect)


def test_x_login_public_client(store: SecretStore, client: httpx.Client, clock: ManualClock) -> None:
    seen: list[str] = []
    result = login(x_config(BASE), store, client, browser(client, seen), prompt_secret=lambda q: "", clock=clock)
    assert result["account_id"] == DEFAULT_X_USER_ID and result["username"] == DEFAULT_X_USERNAME
    assert result["scopes"] == ["tweet.read", "tweet.write", "users.read", "media.write", "offline.access"]
    assert result["has_refresh_token"] and not result["needs_login"]
    assert result["expires_in_seconds"] == 60
    assert seen[0].startswith("http://127.0.0.1:") and "/callback?" in seen[0]
    tokens = load_tokens(store, "x")
    assert tokens is not None and tokens.refresh_token
    # An empty answer means a public client: nothing is stored as a secret.
    assert store.get("x:client_secret") is None
    assert result["client_secret_stored"] is False


def test_x_login_confidential_client_asks_for_the_secret_once(store: SecretStore, emulator: Emulator,
                                                               client: httpx.Client) -> None:
    emulator.add_x_client("conf-app", client_secret="conf-secret")
    cfg = x_config(BASE, client_id="conf-app")
    questions: list[str] = []

    def prompt(question: str) -> str:
        questions.append(question)
        return "conf-secret"

    result = login(cfg, store, client, browser(client), prompt_secret=prompt)
    assert store.get("x:client_secret") == "conf-secret"
    assert result["client_secret_stored"] is True and "conf-secret" not in json.dumps(result)
    login(cfg, store, client, browser(client), prompt_secret=prompt)
    assert len(questions) == 1
    # The emulator accepts only Basic auth for this client, so the sign-ins prove it was used.
    assert [r.status for r in emulator.requests_log("x.token")] == [200, 200]


def test_login_on_a_busy_port_names_the_setting(store: SecretStore, client: httpx.Client) -> None:
    with LoopbackListener("other") as busy:
        cfg = dataclasses.replace(x_config(BASE), redirect_port=busy.address[1])
        with pytest.raises(ConfigError, match=r"targets\.x\.redirect_port: cannot listen on 127\.0\.0\.1"):
            login(cfg, store, client, browser(client))


def test_x_login_wrong_secret_fails_clearly(store: SecretStore, emulator: Emulator, client: httpx.Client) -> None:
    emulator.add_x_client("conf-app", client_secret="conf-secret")
    with pytest.raises(AuthError, match=r"X refused the sign-in code \(unauthorized_client"):
        login(x_config(BASE, client_id="conf-app"), store, client, browser(client), prompt_secret=lambda q: "nope")
    assert load_tokens(store, "x") is None


def test_x_login_refused_by_the_user(store: SecretStore, emulator: Emulator, client: httpx.Client) -> None:
    emulator.set_consent("x", approve=False)
    with pytest.raises(AuthError, match="access_denied"):
        login(x_config(BASE), store, client, browser(client), timeout=5)
    assert load_tokens(store, "x") is None


def test_x_code_must_be_exchanged_within_30_seconds(store: SecretStore, emulator: Emulator,
                                                   client: httpx.Client, clock: ManualClock) -> None:
    def slow_browser(url: str) -> None:
        browser(client)(url)
        clock.advance(31)  # the user (or crosswatch) dawdled

    with pytest.raises(AuthError, match="authorization code was invalid"):
        login(x_config(BASE), store, client, slow_browser)


@pytest.mark.parametrize("shape", ["flat", "data"])
def test_instagram_login_gets_a_long_lived_token(tmp_path: Path, clock: ManualClock, shape: str) -> None:
    emulator = make_emulator(clock, ig_token_response_shape=shape)
    with isolated_keyring(tmp_path), httpx.Client(transport=httpx.MockTransport(emulator.handle)) as http:
        store = SecretStore()
        result = login(instagram_config(BASE), store, http, browser(http),
                       prompt_secret=lambda q: DEFAULT_IG_CLIENT_SECRET, clock=clock)
        assert result["account_id"] == DEFAULT_IG_USER_ID and result["username"] == DEFAULT_IG_USERNAME
        assert result["scopes"] == ["instagram_business_basic", "instagram_business_content_publish"]
        assert result["expires_in_seconds"] == 5183944  # 60 days, not the 1-hour short-lived token
        assert store.get("instagram:client_secret") == DEFAULT_IG_CLIENT_SECRET
        endpoints = [r.endpoint for r in emulator.requests_log() if r.endpoint.startswith("ig.")]
        assert endpoints == ["ig.authorize", "ig.code_exchange", "ig.exchange_token", "ig.me"]
        # Token endpoints unversioned as Meta documents them; the Graph API under the configured version.
        paths = [r.path.split("?")[0] for r in emulator.requests_log() if r.endpoint in ("ig.exchange_token", "ig.me")]
        assert paths == ["/access_token", "/v25.0/me"]


def test_instagram_login_needs_the_app_secret(store: SecretStore, client: httpx.Client) -> None:
    with pytest.raises(AuthError, match="app secret is needed"):
        login(instagram_config(BASE), store, client, browser(client), prompt_secret=None)


def test_instagram_login_with_a_pasted_https_redirect(store: SecretStore, emulator: Emulator,
                                                      client: httpx.Client) -> None:
    emulator.add_ig_app("app-https", "app-secret", redirect_uris=("https://crosswatch.example/callback",))
    cfg = dataclasses.replace(instagram_config(BASE, client_id="app-https"),
                              redirect_uri="https://crosswatch.example/callback")
    landed: list[str] = []

    def user_browser(url: str) -> None:
        answer = client.get(url)  # approve; the browser would now show crosswatch.example/callback?...
        landed.append(answer.headers["location"])

    result = login(cfg, store, client, user_browser, prompt_secret=lambda q: "app-secret",
                   paste_redirect=lambda question: landed[-1])
    assert landed[-1].startswith("https://crosswatch.example/callback?") and landed[-1].endswith("#_")
    assert result["account_id"] == DEFAULT_IG_USER_ID
    with pytest.raises(AuthError, match="does not belong to this sign-in"):
        login(cfg, store, client, user_browser, paste_redirect=lambda q: landed[0])  # an old address
    with pytest.raises(UsageError, match=r"redirect_uri is set"):
        login(cfg, store, client, user_browser)


def test_code_from_redirect() -> None:
    assert code_from_redirect(" https://a.example/cb?code=abc&state=s#_ ", "s") == "abc"
    with pytest.raises(AuthError, match="refused"):
        code_from_redirect("https://a.example/cb?error=access_denied&state=s", "s")
    with pytest.raises(AuthError, match="no code"):
        code_from_redirect("https://a.example/cb?state=s", "s")


def test_login_over_real_sockets(tmp_path: Path) -> None:
    """The whole sign-in with the emulator as a real server and a real HTTP client as the browser."""
    emulator = Emulator()
    with isolated_keyring(tmp_path), EmulatorServer(emulator) as server, httpx.Client() as http:
        store = SecretStore()

        def real_browser(url: str) -> None:
            with httpx.Client(follow_redirects=True) as user_agent:
                assert user_agent.get(url).status_code == 200

        x_result = login(x_config(server.url), store, http, real_browser, prompt_secret=lambda q: "")
        ig_result = login(instagram_config(server.url), store, http, real_browser,
                          prompt_secret=lambda q: DEFAULT_IG_CLIENT_SECRET)
        assert x_result["account_id"] == DEFAULT_X_USER_ID
        assert ig_result["account_id"] == DEFAULT_IG_USER_ID
        x_token = XTokenProvider(x_config(server.url), store, http, tmp_path).access_token()
        me = http.get(server.url + "/2/users/me", headers={"Authorization": f"Bearer {x_token}"})
        assert me.json()["data"]["username"] == DEFAULT_X_USERNAME


# ---------------------------------------------------------------------------------------------------
# X tokens: refresh near expiry, single-use refresh tokens, locks


def signed_in_x(store: SecretStore, client: httpx.Client, clock: ManualClock) -> TokenSet:
    login(x_config(BASE), store, client, browser(client), prompt_secret=lambda q: "", clock=clock)
    tokens = load_tokens(store, "x")
    assert tokens is not None
    return tokens


def test_x_token_is_refreshed_near_expiry_and_the_rotated_pair_persisted(
        store: SecretStore, client: httpx.Client, clock: ManualClock, tmp_path: Path) -> None:
    first = signed_in_x(store, client, clock)
    provider = XTokenProvider(x_config(BASE), store, client, tmp_path, clock)
    assert provider.access_token() == first.access_token
    clock.advance(50)  # 10 s of a 60 s token left: inside the refresh margin
    fresh = provider.access_token()
    assert fresh != first.access_token
    stored = load_tokens(store, "x")
    assert stored is not None and stored.access_token == fresh
    assert stored.refresh_token and stored.refresh_token != first.refresh_token
    assert stored.account_id == DEFAULT_X_USER_ID  # kept across the refresh
    # The spent refresh token is refused by the platform: it really was single-use.
    assert first.refresh_token is not None
    reuse = client.post(BASE + "/2/oauth2/token", data={"grant_type": "refresh_token", "client_id": DEFAULT_X_CLIENT_ID,
                                                         "refresh_token": first.refresh_token})
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_request"
    # The rotated one, read back from the keyring by a new provider (as after a restart), works.
    clock.advance(55)
    restarted = XTokenProvider(x_config(BASE), store, client, tmp_path, clock)
    assert restarted.access_token() not in (fresh, first.access_token)


def test_force_refresh_after_401_and_no_double_refresh(store: SecretStore, emulator: Emulator,
                                                        client: httpx.Client, clock: ManualClock,
                                                        tmp_path: Path) -> None:
    signed_in_x(store, client, clock)
    a = XTokenProvider(x_config(BASE), store, client, tmp_path, clock)
    b = XTokenProvider(x_config(BASE), store, client, tmp_path, clock)
    old = a.access_token()
    assert b.access_token() == old
    new = a.force_refresh()
    assert new != old
    # b was refused with the same old token; a already replaced it, so b takes the new one.
    assert b.force_refresh() == new
    assert len(emulator.requests_log("x.token")) == 2  # the sign-in and one refresh


def test_concurrent_threads_refresh_once(store: SecretStore, emulator: Emulator, client: httpx.Client,
                                         clock: ManualClock, tmp_path: Path) -> None:
    signed_in_x(store, client, clock)
    clock.advance(59)
    providers = [XTokenProvider(x_config(BASE), store, client, tmp_path, clock) for _ in range(6)]
    results: list[str] = []
    errors: list[BaseException] = []

    def use(provider: XTokenProvider) -> None:
        try:
            results.append(provider.access_token())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=use, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert len(emulator.requests_log("x.token")) == 2  # sign-in + exactly one refresh


def test_unreachable_token_endpoint_keeps_a_valid_token_and_is_not_a_dead_sign_in(
        store: SecretStore, emulator: Emulator, client: httpx.Client, clock: ManualClock, tmp_path: Path) -> None:
    first = signed_in_x(store, client, clock)
    provider = XTokenProvider(x_config(BASE), store, client, tmp_path, clock)
    emulator.drop_connection("x.token", times=2)
    clock.advance(55)  # inside the refresh margin, not yet expired
    assert provider.access_token() == first.access_token
    clock.advance(10)  # expired now, and X still cannot be reached
    with pytest.raises(AuthError, match="could not be refreshed just now") as caught:
        provider.access_token()
    assert "auth login" not in str(caught.value)
    assert status(x_config(BASE), store, clock=clock)["needs_login"] is False
    # Once X answers again, the same refresh token still works: it was never spent.
    assert provider.access_token() != first.access_token


def test_file_lock_excludes_another_process(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "auth-x.lock"
    script = ("import sys, time; from pathlib import Path; from crosswatch.auth.locks import file_lock\n"
              "with file_lock(Path(sys.argv[1])):\n    print(time.time(), flush=True)\n")
    with file_lock(lock):
        child = subprocess.Popen([sys.executable, "-c", script, str(lock)], stdout=subprocess.PIPE, text=True,
                                 cwd=Path(__file__).resolve().parent.parent)
        time.sleep(0.8)
        assert child.poll() is None  # still waiting for the lock
        released = time.time()
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 0
    assert float(out.strip()) >= released


REFRESH_IN_A_PROCESS = """
import hashlib, sys, time
from pathlib import Path
import httpx, keyring
from keyrings.alt.file import PlaintextKeyring
ring = PlaintextKeyring()
ring.file_path = sys.argv[1]
keyring.set_keyring(ring)
from crosswatch.platforms.x.signin import XTokenProvider
from crosswatch.secrets import SecretStore
from tests.auth_helpers import x_config
start = float(sys.argv[4])
time.sleep(max(0.0, start - time.time()))
with httpx.Client() as client:
    token = XTokenProvider(x_config(sys.argv[2]), SecretStore(), client, Path(sys.argv[3])).access_token()
print(hashlib.sha256(token.encode()).hexdigest())
"""


def test_processes_refresh_once_and_share_the_rotated_token(tmp_path: Path) -> None:
    """Four daemons (or a daemon and `auth status`) waking at once on an expiring token: one refresh."""
    emulator = Emulator()
    repo = Path(__file__).resolve().parent.parent
    with isolated_keyring(tmp_path) as ring, EmulatorServer(emulator) as server:
        minted = emulator.mint_x_token()
        # Our record says it expires in a second (the platform would still take it): due for refresh.
        import_tokens(x_config(server.url), SecretStore(), json.dumps({**minted, "expires_in": 1}))
        # A slow token endpoint widens the window in which an unlocked refresh would overlap.
        emulator.delay("x.token", 0.5, times=None)
        start = time.time() + 1.5
        children = [subprocess.Popen([sys.executable, "-c", REFRESH_IN_A_PROCESS, ring.file_path, server.url,
                                      str(tmp_path / "state"), str(start)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=repo)
                    for _ in range(4)]
        results = [child.communicate(timeout=60) for child in children]
        assert [child.returncode for child in children] == [0] * 4, [err for _, err in results]
        digests = [out.strip().splitlines()[-1] for out, _ in results]  # after any log line
        assert len(set(digests)) == 1
        assert len(emulator.requests_log("x.token")) == 1
        stored = load_tokens(SecretStore(), "x")
        assert stored is not None and stored.refresh_token != minted["refresh_token"]
        assert hashlib.sha256(stored.access_token.encode()).hexdigest() == digests[0]


def test_dead_refresh_token_needs_sign_in(store: SecretStore, emulator: Emulator, client: httpx.Client,
                                          clock: ManualClock, tmp_path: Path) -> None:
    tokens = signed_in_x(store, client, clock)
    # Someone else spent the refresh token (or X revoked the chain).
    spent = client.post(BASE + "/2/oauth2/token", data={"grant_type": "refresh_token", "client_id": DEFAULT_X_CLIENT_ID,
                                                         "refresh_token": tokens.refresh_token or ""})
    assert spent.status_code == 200
    provider = XTokenProvider(x_config(BASE), store, client, tmp_path, clock)
    clock.advance(61)
    with pytest.raises(AuthError, match="crosswatch auth login x"):
        provider.access_token()
    report = status(x_config(BASE), store, clock=clock)
    assert report["needs_login"] and "X refused the refresh token" in report["problem"]
    calls = len(emulator.requests_log("x.token"))
    with pytest.raises(AuthError):
        provider.access_token()
    assert len(emulator.requests_log("x.token")) == calls  # a dead sign-in is not retried at X


def test_not_signed_in(store: SecretStore, client: httpx.Client, tmp_path: Path) -> None:
    provider = token_provider(x_config(BASE), store, client, tmp_path)
    with pytest.raises(AuthError, match="not signed in to x; run `crosswatch auth login x`"):
        provider.access_token()
    assert status(x_config(BASE), store)["needs_login"] is True


def test_account_id_is_looked_up_when_missing(store: SecretStore, emulator: Emulator, client: httpx.Client,
                                              tmp_path: Path) -> None:
    import_tokens(x_config(BASE), store, json.dumps(emulator.mint_x_token()))  # no client: no lookup
    tokens = load_tokens(store, "x")
    assert tokens is not None and tokens.account_id is None
    provider = token_provider(x_config(BASE), store, client, tmp_path)
    assert provider.account_id() == DEFAULT_X_USER_ID
    assert provider.status()["username"] == DEFAULT_X_USERNAME


# ---------------------------------------------------------------------------------------------------
# Instagram tokens


def test_instagram_refresh_after_min_age(tmp_path: Path, clock: ManualClock) -> None:
    emulator = make_emulator(clock, ig_long_token_lifetime=100.0, ig_refresh_min_age=20.0)
    cfg = instagram_config(BASE)
    with isolated_keyring(tmp_path), httpx.Client(transport=httpx.MockTransport(emulator.handle)) as http:
        store = SecretStore()
        import_tokens(cfg, store, json.dumps(emulator.mint_ig_token()), http, clock=clock)
        provider = InstagramTokenProvider(cfg, store, http, tmp_path, clock)
        first = provider.access_token()
        clock.advance(10)  # too young to refresh: the same token, no refresh call
        assert provider.access_token() == first
        assert emulator.requests_log("ig.refresh_token") == []
        clock.advance(45)  # past half its life
        second = provider.access_token()
        assert second != first
        stored = load_tokens(store, "instagram")
        assert stored is not None and stored.access_token == second and stored.account_id == DEFAULT_IG_USER_ID
        assert status(cfg, store, clock=clock)["expires_in_seconds"] == 100


def test_instagram_refresh_refused_keeps_the_valid_token(tmp_path: Path, clock: ManualClock) -> None:
    # The platform's own 24-hour rule is stricter than ours here: keep using the current token.
    emulator = make_emulator(clock, ig_long_token_lifetime=100.0, ig_refresh_min_age=1000.0)
    cfg = instagram_config(BASE)
    with isolated_keyring(tmp_path), httpx.Client(transport=httpx.MockTransport(emulator.handle)) as http:
        store = SecretStore()
        import_tokens(cfg, store, json.dumps(emulator.mint_ig_token()), http, clock=clock)
        provider = InstagramTokenProvider(cfg, store, http, tmp_path, clock)
        first = provider.access_token()
        clock.advance(60)
        assert provider.access_token() == first
        assert [r.status for r in emulator.requests_log("ig.refresh_token")] == [400]
        clock.advance(50)  # now expired: sign in again
        with pytest.raises(AuthError, match="expired; run `crosswatch auth login instagram`"):
            provider.access_token()
        assert status(cfg, store, clock=clock)["needs_login"] is True


# ---------------------------------------------------------------------------------------------------
# import, status, revoke


def test_import_x_tokens_looks_up_the_account(store: SecretStore, emulator: Emulator, client: httpx.Client,
                                              clock: ManualClock) -> None:
    result = import_tokens(x_config(BASE), store, json.dumps(emulator.mint_x_token()), client, clock=clock)
    assert result["account_id"] == DEFAULT_X_USER_ID and result["has_refresh_token"]
    assert set(result) >= {"account_id", "username", "scopes", "expires_at", "needs_login"}
    assert "access_token" not in json.dumps(result)


def test_import_instagram_tokens(store: SecretStore, emulator: Emulator, client: httpx.Client) -> None:
    minted = emulator.mint_ig_token()
    body = {k: minted[k] for k in ("access_token", "user_id", "expires_in")}
    result = import_tokens(instagram_config(BASE), store, json.dumps(body), client)
    assert result["account_id"] == DEFAULT_IG_USER_ID and result["username"] == DEFAULT_IG_USERNAME


def test_import_rejects_bad_input_without_echoing_it(store: SecretStore) -> None:
    with pytest.raises(UsageError) as not_json:
        import_tokens(x_config(BASE), store, '{"access_token": "tok-SECRET-1", ')
    assert "tok-SECRET-1" not in str(not_json.value)
    assert not_json.value.__cause__ is None and not_json.value.__suppress_context__
    with pytest.raises(UsageError, match="no access_token"):
        import_tokens(x_config(BASE), store, '{"refresh_token": "tok-SECRET-2"}')


def test_import_with_a_revoked_token_fails(store: SecretStore, emulator: Emulator, client: httpx.Client) -> None:
    minted = emulator.mint_x_token()
    client.post(BASE + "/2/oauth2/revoke", data={"token": minted["access_token"],
                                                 "client_id": DEFAULT_X_CLIENT_ID})
    with pytest.raises(AuthError, match="X refused the access token"):
        import_tokens(x_config(BASE), store, json.dumps(minted), client)
    assert load_tokens(store, "x") is None


def test_revoke_x_at_the_platform_and_locally(store: SecretStore, client: httpx.Client, clock: ManualClock) -> None:
    tokens = signed_in_x(store, client, clock)
    result = revoke(x_config(BASE), store, client)
    assert result == {"target": "x", "revoked_at_platform": True, "deleted": True, "note": None}
    assert load_tokens(store, "x") is None
    me = client.get(BASE + "/2/users/me", headers={"Authorization": f"Bearer {tokens.access_token}"})
    assert me.status_code == 401


def test_revoke_instagram_deletes_locally(store: SecretStore, emulator: Emulator, client: httpx.Client) -> None:
    import_tokens(instagram_config(BASE), store, json.dumps(emulator.mint_ig_token()))
    store.set("instagram:client_secret", "s")
    result = revoke(instagram_config(BASE), store, client)
    assert result["deleted"] and not result["revoked_at_platform"] and "Instagram" in result["note"]
    assert load_tokens(store, "instagram") is None and store.get("instagram:client_secret") is None


# ---------------------------------------------------------------------------------------------------
# Token strings never leak


def test_tokens_never_appear_in_logs_errors_or_output(tmp_path: Path, clock: ManualClock,
                                                      caplog: pytest.LogCaptureFixture,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    emulator = make_emulator(clock, x_access_token_lifetime=60.0, ig_long_token_lifetime=100.0,
                             ig_refresh_min_age=20.0)
    emulator.add_x_client("conf-app", client_secret="conf-secret-value")
    texts: list[str] = []
    with isolated_keyring(tmp_path), httpx.Client(transport=httpx.MockTransport(emulator.handle)) as http:
        store = SecretStore()
        x_cfg = x_config(BASE, client_id="conf-app")
        ig_cfg = instagram_config(BASE)
        texts.append(repr(login(x_cfg, store, http, browser(http), prompt_secret=lambda q: "conf-secret-value")))
        texts.append(repr(login(ig_cfg, store, http, browser(http), prompt_secret=lambda q: DEFAULT_IG_CLIENT_SECRET,
                                clock=clock)))
        x_provider = token_provider(x_cfg, store, http, tmp_path, clock=clock)
        ig_provider = token_provider(ig_cfg, store, http, tmp_path, clock=clock)
        clock.advance(55)
        x_provider.access_token()
        ig_provider.access_token()
        x_provider.force_refresh()
        texts += [repr(x_provider), repr(ig_provider), repr(load_tokens(store, "x")), repr(store),
                  json.dumps(x_provider.status()), json.dumps(ig_provider.status())]
        # Failures: a spent refresh token, an expired Instagram token, a bad import.
        tokens = load_tokens(store, "x")
        assert tokens is not None and tokens.refresh_token
        http.post(BASE + "/2/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
                  auth=("conf-app", "conf-secret-value"))
        clock.advance(200)
        for action in (x_provider.access_token, ig_provider.access_token, ig_provider.force_refresh):
            with pytest.raises(AuthError) as caught:
                action()
            texts.append(str(caught.value))
        with pytest.raises(UsageError) as bad:
            import_tokens(x_cfg, store, '{"access_token": ' + json.dumps(tokens.access_token))
        texts.append(str(bad.value))
        texts.append(json.dumps(revoke(x_cfg, store, http)))
    with emulator.state.lock:
        secrets = [*emulator.state.x_access_tokens, *emulator.state.x_refresh_tokens, *emulator.state.x_codes,
                   *emulator.state.ig_tokens, *emulator.state.ig_codes, "conf-secret-value",
                   DEFAULT_IG_CLIENT_SECRET]
    assert len(secrets) > 8
    captured = capsys.readouterr()
    haystack = "\n".join([caplog.text, captured.out, captured.err, *texts,
                          *(r.getMessage() for r in caplog.records)])
    assert "HTTP Request" in caplog.text  # httpx did log the requests, query strings and all
    leaked = [s for s in secrets if s in haystack]
    assert leaked == []
