"""The crosswatch exception tree.

Every exception a user can meet derives from ``CrosswatchError`` and carries one line that says what
went wrong and what to do. The CLI prints that line and exits with ``exit_code``; it never prints a
traceback for these.

    CrosswatchError                     exit 1 unless noted
    ├── UserError                       the user's input is wrong: fix it and run again
    │   ├── ConfigError                 exit 2: the config file (names the file, line and key)
    │   ├── UsageError                  exit 2: the command line
    │   └── BadPhoto                    a file that cannot be posted (not an image, broken, too big)
    ├── JournalError                    the journal cannot be opened or written
    │   └── JournalLocked               exit 2: another daemon holds the journal
    ├── AuthError                       a token is missing, expired or revoked: sign in again
    ├── SecretStoreError                the keyring is unavailable
    └── PlatformError                   a platform answered with an error
        ├── TransientPlatformError      worth retrying later (5xx, timeouts, throttling)
        └── PermanentPlatformError      retrying will not help (validation, media rejected)

Inside the runner, platform answers are values (outcomes), not exceptions; the platform branch is for
code paths outside the runner (sign-in, doctor).
"""

from __future__ import annotations


class CrosswatchError(Exception):
    exit_code = 1


class UserError(CrosswatchError):
    pass


class ConfigError(UserError):
    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.file = file
        self.line = line
        self.key = key
        where = ""
        if file:
            where = file + (f":{line}" if line else "") + ": "
        key_part = f"{key}: " if key else ""
        super().__init__(f"{where}{key_part}{message}")


class UsageError(UserError):
    exit_code = 2


class BadPhoto(UserError):
    pass


class JournalError(CrosswatchError):
    pass


class JournalLocked(JournalError):
    exit_code = 2


class AuthError(CrosswatchError):
    pass


class SecretStoreError(CrosswatchError):
    pass


class PlatformError(CrosswatchError):
    pass


class TransientPlatformError(PlatformError):
    pass


class PermanentPlatformError(PlatformError):
    pass
