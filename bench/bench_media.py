"""Benchmark: prepare a 6000x4000 JPEG for X and Instagram, against ImageMagick and vipsthumbnail.

    /work/venv/bin/python bench/bench_media.py [--runs 5] [--orientation 6] [--photo FILE]

Every tool runs as its own process on the same machine in the same run, so the ratios hold whatever
the machine. crosswatch prepares both targets in one call (one decode); the reference tools run once
per target, asked for the same output sizes, the same JPEG quality crosswatch chose, progressive
(interlaced) encoding, 4:2:0 chroma (crosswatch's; both tools switch to 4:4:4 at quality >= 90
unless told) and no metadata, i.e. the same work. Times are the median of --runs; peak RSS is
each process's own (wait4), the maximum over its runs. crosswatch's time is reported twice: inside the
process (the prepare_all call) and for the whole process (Python start-up and imports included).

Aim: at most 0.5x ImageMagick's time and at most 1.5x vipsthumbnail's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: a clean cache and a clean RSS figure each time.
CHILD = r"""
import json, sys, time
from pathlib import Path
from crosswatch.config import Config, TargetConfig
from crosswatch.media import prepare_all
photo, state = Path(sys.argv[1]), Path(sys.argv[2])
config = Config(source=state / "config.yaml", state_dir=state, watch=(), targets={})
targets = [TargetConfig(name="x", kind="x"), TargetConfig(name="instagram", kind="instagram")]
started = time.perf_counter()
result = prepare_all(photo, "bench", targets, config)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "targets": {name: {"width": p.width, "height": p.height,
      "quality": p.quality, "bytes": p.bytes} for name, p in result.items()}}))
"""


@dataclass
class Run:
    seconds: float
    peak_rss_kib: int
    stdout: str
    cpu_seconds: float = 0.0  # user + system: less at the mercy of a busy machine than wall time


def run_measured(command: list[str], workdir: Path) -> Run:
    """Wall time and the child's own peak RSS (wait4), stdout captured through a file."""
    out_path = workdir / f"stdout-{time.monotonic_ns()}.txt"
    with out_path.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, cwd=REPO)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({process.returncode}): {stderr.strip()}")
    return Run(seconds=seconds, peak_rss_kib=usage.ru_maxrss, stdout=out_path.read_text(),
               cpu_seconds=usage.ru_utime + usage.ru_stime)


def make_photo(path: Path, orientation: int = 1) -> None:
    """A 6000x4000 photo-like JPEG: smooth gradients, mid-frequency texture and fine grain."""
    size = (6000, 4000)
    sky = Image.linear_gradient("L").resize(size)
    texture = Image.effect_noise((750, 500), 64).resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 6)
    red = Image.blend(sky, texture, 0.5)
    green = Image.blend(texture, grain, 0.3)
    blue = Image.blend(sky.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grain, 0.2)
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation  # a camera held upright: stored landscape, shown portrait
    Image.merge("RGB", (red, green, blue)).save(path, quality=92, exif=exif.tobytes())


def crosswatch_once(photo: Path, workdir: Path) -> tuple[Run, dict[str, object]]:
    state = Path(tempfile.mkdtemp(dir=workdir))
    run = run_measured([sys.executable, "-c", CHILD, str(photo), str(state)], workdir)
    shutil.rmtree(state)
    return run, json.loads(run.stdout)


def reference_commands(tool: str, photo: Path, outputs: dict[str, dict[str, int]],
                       workdir: Path) -> list[list[str]]:
    commands = []
    for name, facts in outputs.items():
        width, height, quality = facts["width"], facts["height"], facts["quality"]
        out = workdir / f"{tool}-{name}.jpg"
        if tool == "imagemagick":
            commands.append([str(magick_convert()), str(photo), "-auto-orient", "-resize", f"{width}x{height}!",
                             "-quality", str(quality), "-sampling-factor", "2x2", "-interlace", "JPEG", "-strip",
                             str(out)])
        else:
            commands.append(["vipsthumbnail", str(photo), "-s", f"{width}x{height}!", "-o",
                             f"{out}[Q={quality},interlace,strip,subsample-mode=on]"])
    return commands


def magick_convert() -> str | None:
    """The real ImageMagick binary, or None (a wrapper script on PATH would add a shell's start-up to
    every call, and a stand-in that is not ImageMagick at all cannot be measured)."""
    for candidate in ("/usr/bin/convert-im6.q16", "/usr/bin/convert", "magick", "convert"):
        found = shutil.which(candidate)
        if found and _is_imagemagick(found):
            return found
    return None


def _is_imagemagick(binary: str) -> bool:
    try:
        version = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "ImageMagick" in version


def reference_once(commands: list[list[str]], workdir: Path) -> Run:
    runs = [run_measured(command, workdir) for command in commands]
    return Run(seconds=sum(r.seconds for r in runs), peak_rss_kib=max(r.peak_rss_kib for r in runs), stdout="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--photo", type=Path, help="a JPEG to use instead of the generated 6000x4000 one")
    parser.add_argument("--orientation", type=int, default=1, choices=range(1, 9),
                        help="EXIF orientation of the generated photo (6: a portrait shot)")
    parser.add_argument("--make-photo", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_photo:
        make_photo(args.make_photo, args.orientation)
        return
    if not shutil.which("vipsthumbnail"):
        raise SystemExit("vipsthumbnail is not installed (apt-get install -y libvips-tools)")
    with_magick = magick_convert() is not None
    if not with_magick:
        print("ImageMagick is not installed (apt-get install -y imagemagick): measuring vipsthumbnail only")
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        workdir = Path(tmp)
        photo = args.photo or workdir / "photo-6000x4000.jpg"
        if not args.photo:
            # In a child: a parent grown by a 24 MP image would pass its RSS on to every fork
            # (ru_maxrss counts the pages shared after fork), skewing every peak-RSS figure.
            subprocess.run([sys.executable, __file__, "--make-photo", str(photo),
                            "--orientation", str(args.orientation)], check=True)
        crosswatch_runs = [crosswatch_once(photo, workdir)]  # also tells the sizes and qualities
        outputs = crosswatch_runs[0][1]["targets"]
        assert isinstance(outputs, dict)
        magick: list[Run] = []
        vips: list[Run] = []
        # Rounds interleave the tools, so a busy moment on the machine hits all of them alike.
        for round_number in range(args.runs):
            if round_number:
                crosswatch_runs.append(crosswatch_once(photo, workdir))
            if with_magick:
                magick.append(reference_once(reference_commands("imagemagick", photo, outputs, workdir), workdir))
            vips.append(reference_once(reference_commands("vips", photo, outputs, workdir), workdir))
        report(photo, outputs, crosswatch_runs, magick, vips, workdir)


def report(photo: Path, outputs: dict[str, dict[str, int]], ours: list[tuple[Run, dict[str, object]]],
           magick: list[Run], vips: list[Run], workdir: Path) -> None:
    inner = statistics.median(float(facts["seconds"]) for _, facts in ours)  # type: ignore[arg-type]
    whole = statistics.median(run.seconds for run, _ in ours)
    magick_s = statistics.median(run.seconds for run in magick) if magick else math.nan
    vips_s = statistics.median(run.seconds for run in vips)
    with Image.open(photo) as image:  # the header only: the parent stays small
        print(f"photo: {image.size[0]}x{image.size[1]} JPEG (EXIF orientation "
              f"{image.getexif().get(0x0112, 1)}), {photo.stat().st_size:,} bytes; "
              f"cores: {len(os.sched_getaffinity(0))}; runs: {len(ours)}")
    for name, facts in outputs.items():
        sizes = {tool: (workdir / f"{tool}-{name}.jpg").stat().st_size for tool in ("imagemagick", "vips")
                 if (workdir / f"{tool}-{name}.jpg").exists()}
        magick_bytes = f"imagemagick {sizes['imagemagick']:,}, " if "imagemagick" in sizes else ""
        print(f"  {name}: {facts['width']}x{facts['height']} q{facts['quality']} progressive; bytes: "
              f"crosswatch {facts['bytes']:,}, {magick_bytes}vipsthumbnail {sizes['vips']:,}")
    rows = [
        ("crosswatch (prepare_all call)", inner, max(run.peak_rss_kib for run, _ in ours)),
        ("crosswatch (whole process)", whole, max(run.peak_rss_kib for run, _ in ours)),
        ("vipsthumbnail x2", vips_s, max(run.peak_rss_kib for run in vips)),
    ]
    if magick:
        rows.insert(2, ("ImageMagick convert x2", magick_s, max(run.peak_rss_kib for run in magick)))
    print(f"{'':32s} {'seconds':>8s} {'peak RSS':>10s}")
    for label, seconds, rss in rows:
        print(f"{label:32s} {seconds:8.3f} {rss / 1024:8.0f} MiB")
    if magick:
        print(f"ratio vs ImageMagick:   {inner / magick_s:.2f}x (call), {whole / magick_s:.2f}x (process)  "
              "aim <= 0.5x")
    print(f"ratio vs vipsthumbnail: {inner / vips_s:.2f}x (call), {whole / vips_s:.2f}x (process)  aim <= 1.5x")


if __name__ == "__main__":
    main()
