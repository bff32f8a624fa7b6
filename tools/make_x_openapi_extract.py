"""Write the emulator's extract of X's OpenAPI document (crosswatch/emulator/data/x-openapi-params.json).

The emulator refuses any query parameter an endpoint does not list, as X does, taking the lists from
X's own document. The full document (tests/data/x-openapi.json, about 860 KB) stays with the tests;
the package ships only the parameters of the operations the emulator serves. Run this after updating
the document or adding an X endpoint to the emulator; tests/test_emulator_openapi.py fails until the
extract matches.

Run: python tools/make_x_openapi_extract.py [path/to/x-openapi.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from crosswatch.emulator import openapi_params, x_api

ROOT = Path(__file__).resolve().parent.parent
FULL_DOCUMENT = ROOT / "tests" / "data" / "x-openapi.json"
EXTRACT = ROOT / "crosswatch" / "emulator" / "data" / openapi_params.EXTRACT_NAME


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else FULL_DOCUMENT
    document = json.loads(source.read_text(encoding="utf-8"))
    EXTRACT.write_text(openapi_params.render(document, x_api.served_operations()), encoding="utf-8")
    print(f"wrote {EXTRACT.relative_to(ROOT)} from {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
