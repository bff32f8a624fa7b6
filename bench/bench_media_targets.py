"""Benchmark: all five targets (X, Instagram, Threads-, Mastodon- and Bluesky-sized) from one 24 MP JPEG,
against vipsthumbnail making only the two largest of those outputs.

    .venv/bin/python bench/bench_media_targets.py [--runs 5] [--photo FILE] [--bluesky-long-edge 2000]

crosswatch prepares the five targets in one prepare_all call (one decode) in a fresh process per
round; vipsthumbnail runs once per output for the two largest outputs (by pixel count) with the
same sizes, the same JPEG quality crosswatch chose, progressive encoding, 4:2:0 chroma and no
metadata (the matching is bench_media.py's). Rounds interleave the two, so a busy moment on this
shared machine hits both alike; times and peak RSS (each process's own, wait4) are medians over
the rounds. Printed: crosswatch time / vipsthumbnail time (the two outputs summed), for the
prepare_all call and for the whole process (Python start-up and imports included), the CPU-time
ratio (less at the mercy of a busy machine), and crosswatch peak RSS / vipsthumbnail's (the larger
of its two runs).

Aim (issue 12): at most 1.3x vipsthumbnail's time and at most 1.5x its peak RSS.

Where crosswatch's peak sits (measured with /proc/self/status around each step): Mastodon's default
limits take the 6000x4000 photo at full size, so its output is the photo's own JPEG data passed
through (media.py: no decode, no encode for it). Before that, its progressive encode held the whole
decode (Pillow keeps 4 bytes a pixel: 92 MiB) beside libjpeg's whole-image coefficient buffer (about
70 MiB): 197 MiB, 1.70x. Now the peak is X's 4096 px render from the full decode: the interpreter
and its imports (28 MiB), the decode (92 MiB), X's output (43 MiB) and the resize strips in flight
and what they leave in the heap (about 7 MiB at 32 rows): about 173 MiB, and the decode is let go
before X is encoded.

The specs the targets are prepared for (passed as prepare_all(specs=...), as the Mastodon target
passes its server's limits):
- X and Instagram: media.SPECS (4096 px long edge / 5 MB; 1440 wide, 4:5 to 1.91:1, 8 MB).
- Threads-sized: 320 to 1440 wide, 8 MB JPEG (api-notes.md B6).
- Mastodon, a default server: image_matrix_limit 33,177,600 px (Attachmentable::MAX_MATRIX_LIMIT,
  "7680x4320px", app/models/concerns/attachmentable.rb, served as
  configuration.media_attachments.image_matrix_limit by the instance serializer) and
  image_size_limit 16 MB (MediaAttachment::IMAGE_LIMIT = 16.megabytes since Mastodon 4.2,
  mastodon/mastodon#23726; Rails megabytes are 1,048,576 bytes and the check is
  ``validates_attachment_size :file, less_than: IMAGE_LIMIT``, so at most 16,777,215 bytes).
- Bluesky: 2,000,000 bytes (the app.bsky.embed.images lexicon's maxSize) and a 2000 px long edge by
  default (--bluesky-long-edge): bluesky-social/social-app resized posts to 2000x2000 / 1 MB
  (POST_IMG_MAX); its src/lib/constants.ts (008fe5ea) now has IMAGE_SIZE_CONFIG_POSTS =
  {maxDimension: 4000, maxSize: 2000000}, so --bluesky-long-edge 4000 is today's app.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_media import REPO, Run, run_measured
from PIL import Image

MASTODON_IMAGE_BYTES = 16 * 1024 * 1024 - 1  # Rails' 16.megabytes, and the check is less_than
MASTODON_MATRIX_PIXELS = 33_177_600
BLUESKY_IMAGE_BYTES = 2_000_000


def target_specs(bluesky_edge: int) -> dict[str, dict[str, object]]:
    """TargetSpec fields per target (X and Instagram: None, i.e. media.SPECS)."""
    return {
        "x": {}, "instagram": {},
        "threads": {"kind": "threads", "label": "Threads", "max_bytes": 8_000_000, "min_width": 320,
                    "max_width": 1440},
        "mastodon": {"kind": "mastodon", "label": "Mastodon", "max_bytes": MASTODON_IMAGE_BYTES,
                     "max_pixels": MASTODON_MATRIX_PIXELS},
        "bluesky": {"kind": "bluesky", "label": "Bluesky", "max_bytes": BLUESKY_IMAGE_BYTES,
                    "max_long_edge": bluesky_edge},
    }


# Runs in a fresh interpreter: a clean cache and a clean RSS figure each time.
CHILD = r"""
import json, sys, time
from pathlib import Path
from crosswatch.config import Config, TargetConfig
from crosswatch.media import SPECS, prepare_all
from crosswatch.platforms.limits import TargetSpec
photo, state, fields = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
config = Config(source=state / "config.yaml", state_dir=state, watch=(), targets={})
# Threads, Mastodon and Bluesky are not platforms here yet: their specs stand in for SPECS[kind].
specs = {name: TargetSpec(**spec) if spec else SPECS[name] for name, spec in fields.items()}
targets = [TargetConfig(name=name, kind=name if name in SPECS else "outbox") for name in specs]
started, cpu_started = time.perf_counter(), time.process_time()
result = prepare_all(photo, "bench", targets, config, specs=specs)
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
facts = {name: {"width": p.width, "height": p.height, "quality": p.quality, "bytes": p.bytes}
         for name, p in result.items()}
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "targets": facts}))
"""

LIMITS = {"x": 5_000_000, "instagram": 8_000_000, "threads": 8_000_000, "mastodon": MASTODON_IMAGE_BYTES,
          "bluesky": BLUESKY_IMAGE_BYTES}


def crosswatch_once(photo: Path, workdir: Path, bluesky_edge: int) -> tuple[Run, dict[str, object]]:
    state = Path(tempfile.mkdtemp(dir=workdir))
    run = run_measured([sys.executable, "-c", CHILD, str(photo), str(state), json.dumps(target_specs(bluesky_edge))],
                       workdir)
    shutil.rmtree(state)
    facts = json.loads(run.stdout)
    for name, target in facts["targets"].items():
        if target["bytes"] > LIMITS[name]:
            raise SystemExit(f"{name}: {target['bytes']:,} bytes is over its limit {LIMITS[name]:,}")
    return run, facts


def largest_two(outputs: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    ranked = sorted(outputs, key=lambda name: -outputs[name]["width"] * outputs[name]["height"])
    return {name: outputs[name] for name in ranked[:2]}


def vips_once(photo: Path, outputs: dict[str, dict[str, int]], workdir: Path) -> Run:
    runs = []
    for name, facts in outputs.items():
        out = workdir / f"vips-{name}.jpg"
        # "!" forces the exact size; subsample-mode=on keeps 4:2:0 at any quality, as crosswatch does.
        runs.append(run_measured(["vipsthumbnail", str(photo), "-s", f"{facts['width']}x{facts['height']}!",
                                  "-o", f"{out}[Q={facts['quality']},interlace,strip,subsample-mode=on]"],
                                 workdir))
    return Run(seconds=sum(r.seconds for r in runs), peak_rss_kib=max(r.peak_rss_kib for r in runs), stdout="",
               cpu_seconds=sum(r.cpu_seconds for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--photo", type=Path, help="a JPEG to use instead of the generated 6000x4000 one")
    parser.add_argument("--bluesky-long-edge", type=int, default=2000)
    args = parser.parse_args()
    if not shutil.which("vipsthumbnail"):
        raise SystemExit("vipsthumbnail is not installed (apt-get install -y libvips-tools)")
    with tempfile.TemporaryDirectory(prefix="bench-targets-") as tmp:
        workdir = Path(tmp)
        photo = args.photo or workdir / "photo-6000x4000.jpg"
        if not args.photo:
            # In a child: a parent grown by a 24 MP image would pass its RSS on to every fork.
            subprocess.run([sys.executable, str(REPO / "bench" / "bench_media.py"), "--make-photo", str(photo)],
                           check=True)
        ours = [crosswatch_once(photo, workdir, args.bluesky_long_edge)]  # also tells the sizes
        outputs = ours[0][1]["targets"]
        assert isinstance(outputs, dict)
        reference = largest_two(outputs)
        vips: list[Run] = []
        for round_number in range(args.runs):
            if round_number:
                ours.append(crosswatch_once(photo, workdir, args.bluesky_long_edge))
            vips.append(vips_once(photo, reference, workdir))
        report(photo, outputs, reference, ours, vips, workdir)


def report(photo: Path, outputs: dict[str, dict[str, int]], reference: dict[str, dict[str, int]],
           ours: list[tuple[Run, dict[str, object]]], vips: list[Run], workdir: Path) -> None:
    call = statistics.median(float(facts["seconds"]) for _, facts in ours)  # type: ignore[arg-type]
    process = statistics.median(run.seconds for run, _ in ours)
    vips_s = statistics.median(run.seconds for run in vips)
    our_rss = statistics.median(run.peak_rss_kib for run, _ in ours)
    vips_rss = statistics.median(run.peak_rss_kib for run in vips)
    our_cpu = statistics.median(run.cpu_seconds for run, _ in ours)
    call_cpu = statistics.median(float(facts["cpu_seconds"]) for _, facts in ours)  # type: ignore[arg-type]
    vips_cpu = statistics.median(run.cpu_seconds for run in vips)
    with Image.open(photo) as image:  # the header only: the parent stays small
        print(f"photo: {image.size[0]}x{image.size[1]} JPEG, {photo.stat().st_size:,} bytes; "
              f"cores: {len(os.sched_getaffinity(0))}; rounds: {len(ours)}")
    for name, facts in outputs.items():
        vips_bytes = f", vipsthumbnail {(workdir / f'vips-{name}.jpg').stat().st_size:,}" if name in reference else ""
        print(f"  {name:9s} {facts['width']}x{facts['height']} q{facts['quality']}: crosswatch "
              f"{facts['bytes']:,} bytes (limit {LIMITS[name]:,}){vips_bytes}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"{'(medians)':44s} {'seconds':>8s} {'CPU s':>7s} {'peak RSS':>10s}")
    rows = [("crosswatch, 5 targets (prepare_all call)", call, call_cpu, our_rss),
            ("crosswatch, 5 targets (whole process)", process, our_cpu, our_rss),
            (f"vipsthumbnail x2 ({' + '.join(reference)})", vips_s, vips_cpu, vips_rss)]
    for label, seconds, cpu, rss in rows:
        print(f"{label:44s} {seconds:8.3f} {cpu:7.2f} {rss / 1024:6.0f} MiB")
    print(f"time ratio: {call / vips_s:.2f}x (call), {process / vips_s:.2f}x (process)  aim <= 1.3x")
    print(f"CPU time ratio: {call_cpu / vips_cpu:.2f}x (call), {our_cpu / vips_cpu:.2f}x (process)")
    print(f"peak RSS ratio: {our_rss / vips_rss:.2f}x  aim <= 1.5x")


if __name__ == "__main__":
    main()
