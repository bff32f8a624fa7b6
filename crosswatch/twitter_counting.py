"""twitter-text (X's own counting and URL-finding rules), imported when first needed and without pkg_resources.

Importing twitter_text builds its emoji pattern from a 400 KB list, and its ``twitter_text.regexp.emoji``
reads that list with ``pkg_resources.resource_string``. pkg_resources comes with setuptools, which
twitter-text-parser does not require: it is missing from a venv of Python 3.12 and later, and setuptools 81 and
later no longer have it, so a plain ``import twitter_text`` fails there; where it is present, importing it
costs more than twitter-text's own work. So the commands that never count an X post (``status``, ``queue``, ``--help``)
never import it, and the ones that do import it with a stand-in ``pkg_resources`` that offers just that one
call (read a file beside the module), taken out of ``sys.modules`` again straight after. Measured by
bench/bench_startup.py (``--importtime``).
"""

from __future__ import annotations

import functools
import sys
import types
from pathlib import Path


def _resource_string(module: str, name: str) -> bytes:
    """``pkg_resources.resource_string`` for a file beside a module (as twitter_text uses it)."""
    return Path(str(sys.modules[module].__file__)).with_name(name).read_bytes()


@functools.cache
def twitter_text() -> types.ModuleType:
    if sys.modules.get("pkg_resources") is not None:  # imported already by something else: use it
        import twitter_text as loaded

        return loaded
    stand_in = types.ModuleType("pkg_resources", "crosswatch's stand-in while twitter_text is imported")
    stand_in.resource_string = _resource_string  # type: ignore[attr-defined]
    absent = object()
    before = sys.modules.get("pkg_resources", absent)
    sys.modules["pkg_resources"] = stand_in
    try:
        import twitter_text as loaded
    finally:
        if sys.modules.get("pkg_resources") is stand_in:
            if before is absent:
                del sys.modules["pkg_resources"]
            else:
                sys.modules["pkg_resources"] = before  # type: ignore[assignment]
    return loaded
