"""Sign-in and tokens: what every platform's sign-in shares.

- ``commands``: ``login``, ``import_tokens``, ``status``, ``revoke`` (the ``crosswatch auth``
  commands) and ``token_provider`` (what the runner asks for a valid access token), the same for every
  platform; each drives the platform's ``SignIn`` (``flow``) found in ``crosswatch.platforms.registry``.
- ``tokens``: the ``TokenSet`` and the app's client secret in the keyring.
- ``loopback``: the listener on ``127.0.0.1`` that takes the browser's redirect, or the pasted address.
- ``locks``: one refresh at a time per target, across threads (a lock) and processes (a file lock).
- ``provider``: the token provider's shared part; ``state``: what ``auth status`` shows.
- ``http``: sending, reading the platforms' OAuth answers, keeping secrets out of logs and messages.

What is particular to a platform (its OAuth flavour, refresh rules, account lookup) lives in
``crosswatch/platforms/<name>/signin.py``.

Secrets live only in the keyring (``crosswatch.secrets``). No token, code or client secret is ever put
in an exception message, a log line or a repr; platform error text is scrubbed of them too. All HTTP
goes through the ``httpx.Client`` passed in, so tests mount an ``httpx.MockTransport`` or the emulator.
"""

from crosswatch.auth.commands import import_tokens, login, revoke, token_provider
from crosswatch.auth.state import status
from crosswatch.auth.tokens import load_tokens

__all__ = ["import_tokens", "load_tokens", "login", "revoke", "status", "token_provider"]
