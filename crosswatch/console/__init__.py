"""The local web console: the queue with the pictures, approval with editing, what went out, what
needs you, the accounts. Server-rendered (Starlette, Jinja2, uvicorn); it reads ``crosswatch.views``
and decides through ``crosswatch.decisions``, so it holds no SQL and no business rule of its own.

Its safety follows Syncthing's GUI: a session from a one-time sign-in token (or the console password
when it listens beyond loopback), a CSRF token and an Origin check on every change, the Host header
checked against the bound address (DNS rebinding), images served by id from the journal only.
"""
