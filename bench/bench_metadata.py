"""Benchmark: crosswatch.metadata.read_metadata against `exiftool -json -fast` on the same 1,000+ files.

    python bench/bench_metadata.py [--copies 25] [--repeat 3]

Copies the test photos (tests/data/photos) ``--copies`` times into a temporary folder, then, in the
same run and on the same files:

1. times ``read_metadata`` over every file in this process (best of ``--repeat``), and again as a
   fresh ``python`` process so interpreter start-up and imports are counted, as exiftool's are;
2. times ``exiftool -json -fast`` over the same files (best of ``--repeat``);
3. runs exiftool once more with group names, numeric values and its MWG composites
   (``-json -fast -n -G1 -use MWG``) and checks that every compared field equals crosswatch's value.

Prints the ratios and the mismatches; exits 1 when a value differs, 2 when exiftool is missing.
Blank exiftool strings ('') count as absent: crosswatch treats a blank credit as no credit.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crosswatch.metadata import read_metadata  # noqa: E402

PHOTOS = REPO / "tests" / "data" / "photos"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".heic"}


def copy_photos(destination: Path, copies: int) -> list[Path]:
    originals = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    files = []
    for copy in range(copies):
        for original in originals:
            target = destination / f"{copy:03d}-{original.name}"
            shutil.copyfile(original, target)
            files.append(target)
    return files


def time_in_process(files: list[Path], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for path in files:
            read_metadata(path)
        best = min(best, time.perf_counter() - started)
    return best


def time_fresh_process(folder: Path, repeat: int) -> float:
    script = (
        "import sys; from pathlib import Path; from crosswatch.metadata import read_metadata\n"
        "for p in sorted(Path(sys.argv[1]).iterdir()): read_metadata(p)\n"
    )
    return _best_of(repeat, [sys.executable, "-c", script, str(folder)], cwd=REPO)


def time_exiftool(exiftool: str, folder: Path, repeat: int) -> float:
    return _best_of(repeat, [exiftool, "-json", "-fast", str(folder)])


def _best_of(repeat: int, command: list[str], cwd: Path | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
        best = min(best, time.perf_counter() - started)
    return best


# ---------------------------------------------------------------------------------------------------
# Comparing values


def _first(entry: dict[str, Any], *keys: str) -> Any:
    return next((entry[k] for k in keys if entry.get(k) not in (None, "")), None)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [str(v) for v in values if str(v).strip()]


def _iso(date: str | None) -> str | None:
    if date is None:
        return None
    return re.sub(r"^(\d{4}):(\d{2}):(\d{2})(?: (.*))?$",
                  lambda m: f"{m[1]}-{m[2]}-{m[3]}" + (f"T{m[4]}" if m[4] else ""), str(date))


def exiftool_view(entry: dict[str, Any]) -> dict[str, Any]:
    """exiftool's -G1 -n -use MWG output as crosswatch's metadata JSON keys."""
    rating = entry.get("XMP-xmp:Rating")
    return {
        "title": _first(entry, "XMP-dc:Title", "IPTC:ObjectName"),
        "description": _first(entry, "MWG:Description"),
        "creator": _as_list(entry.get("MWG:Creator")),
        "copyright": _first(entry, "MWG:Copyright"),
        "credit": _first(entry, "XMP-photoshop:Credit", "IPTC:Credit"),
        "usage_terms": _first(entry, "XMP-xmpRights:UsageTerms"),
        "web_statement": _first(entry, "XMP-xmpRights:WebStatement"),
        "keywords": _as_list(entry.get("MWG:Keywords")),
        "rating": None if rating is None else int(rating),
        "alt_text": _first(entry, "XMP-iptcCore:AltTextAccessibility"),
        "date_taken": _iso(_first(entry, "MWG:DateTimeOriginal")),
        "orientation": _first(entry, "MWG:Orientation", "XMP-tiff:Orientation"),
        "make": _first(entry, "IFD0:Make"),
        "model": _first(entry, "IFD0:Model"),
        "lens": _first(entry, "ExifIFD:LensModel", "XMP-exifEX:LensModel", "XMP-aux:Lens"),
        "width": _first(entry, "File:ImageWidth", "PNG:ImageWidth"),
        "height": _first(entry, "File:ImageHeight", "PNG:ImageHeight"),
        "has_gps": any(k.startswith(("GPS:", "XMP-exif:GPS")) for k in entry),
        "label": _first(entry, "XMP-xmp:Label"),
        "hierarchical_subject": _as_list(entry.get("XMP-lr:HierarchicalSubject")),
    }


def compare(exiftool: str, folder: Path) -> tuple[int, list[str]]:
    completed = subprocess.run([exiftool, "-json", "-fast", "-n", "-G1", "-use", "MWG", str(folder)],
                               check=True, capture_output=True, text=True)
    compared, mismatches = 0, []
    for entry in json.loads(completed.stdout):
        path = Path(entry["SourceFile"])
        ours = read_metadata(path).as_json()
        for key, theirs in exiftool_view(entry).items():
            compared += 1
            if ours[key] != theirs:
                mismatches.append(f"{path.name}: {key}: crosswatch {ours[key]!r} != exiftool {theirs!r}")
    return compared, mismatches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=25, help="copies of the test photos (default 25)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each reader; best is kept")
    args = parser.parse_args()
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        print("exiftool not found: apt-get install -y libimage-exiftool-perl", file=sys.stderr)
        return 2
    version = subprocess.run([exiftool, "-ver"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="crosswatch-bench-") as temp:
        folder = Path(temp)
        files = copy_photos(folder, args.copies)
        time_in_process(files[:50], 1)  # warm the page cache and the imports
        ours = time_in_process(files, args.repeat)
        ours_fresh = time_fresh_process(folder, args.repeat)
        theirs = time_exiftool(exiftool, folder, args.repeat)
        compared, mismatches = compare(exiftool, folder)
    count = len(files)
    print(f"files: {count} ({args.copies} copies of the test photos), best of {args.repeat} runs")
    print(f"crosswatch read_metadata, in process: {ours:.3f} s ({ours / count * 1000:.3f} ms/file)")
    print(f"crosswatch, fresh python process:     {ours_fresh:.3f} s (start-up and imports included)")
    print(f"exiftool {version} -json -fast:         {theirs:.3f} s ({theirs / count * 1000:.3f} ms/file)")
    print(f"ratio exiftool / crosswatch: {theirs / ours:.1f}x in process, {theirs / ours_fresh:.1f}x as processes")
    print(f"values compared: {compared} ({count} files x {compared // max(count, 1)} fields); "
          f"mismatches: {len(mismatches)}")
    for line in mismatches[:40]:
        print("  " + line)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
