"""The outbox: a local folder target (``steps``); it has no sign-in."""
