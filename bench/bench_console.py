"""Console benchmark: the queue page with 2,000 jobs (1,000 real JPEGs with XMP metadata, each bound
for X and the outbox, all awaiting approval), served by the real console over loopback HTTP.

Prints, for the first, a middle and the last queue page:
- the time per page as the browser waits for it (median of several requests), and the part of it
  spent building the view (views.queue_page) and rendering it;
- SQL statements per page, counted by the journal's trace hook on the console's own connection;
and, with views.queue_page called directly for pages of 5 to 500 photos, the statement count and
the time per job shown, so that "no query per row" is measured, not assumed. The reference is one
``SELECT`` of the same rows (every job not done, with its photo) straight from SQLite, in the same
run; ratios are printed against it.

Not a test: the figures depend on the machine. Usage: python bench/bench_console.py [--photos N]
[--repeats N]
"""

from __future__ import annotations

import argparse
import io
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crosswatch import views
from crosswatch.config import load_config
from crosswatch.console.server import make_console
from crosswatch.journal import Journal
from crosswatch.watcher import Intake

XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
       'xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/">'
       '<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>'
       '<dc:subject><rdf:Bag><rdf:li>harbour</rdf:li><rdf:li>morning</rdf:li></rdf:Bag></dc:subject>'
       '<Iptc4xmpCore:AltTextAccessibility><rdf:Alt><rdf:li xml:lang="x-default">{alt}</rdf:li></rdf:Alt>'
       '</Iptc4xmpCore:AltTextAccessibility></rdf:Description></rdf:RDF></x:xmpmeta>')


def photo_bytes(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.effect_noise((480, 320), 40).convert("RGB")
    image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (0, 0, 32, 32))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, xmp=XMP.format(title=f"Harbour study {seed}",
                                                      alt=f"Boats at a quay, study {seed}").encode())
    return out.getvalue()


def setup(root: Path, photos: int) -> Path:
    inbox = root / "inbox"
    inbox.mkdir()
    for index in range(photos):
        (inbox / f"harbour-{index:05d}.jpg").write_bytes(photo_bytes(index))
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(root / "state"),
        "watch": [{"path": str(inbox), "targets": ["x", "outbox"], "settle_seconds": 0}],
        "targets": {"outbox": {"path": str(root / "outbox")},
                    "x": {"client_id": "bench", "api_base": "http://127.0.0.1:9"}},
        "approval": True,
        "logging": {"level": "warning", "format": "json"},
        "console": {"port": 0},
    }))
    loaded = load_config(config)
    with Journal(loaded.journal_path) as journal:
        intake = Intake(loaded, journal)
        intake.scan()
        intake.process()
    return config


class Counter:
    def __init__(self) -> None:
        self.statements = 0

    def __call__(self, _sql: str) -> None:
        self.statements += 1


def reference_seconds(journal_path: Path, repeats: int) -> float:
    """One SELECT of every job not done with its photo, straight from SQLite (the floor)."""
    times = []
    with sqlite3.connect(journal_path) as db:
        for _ in range(repeats):
            start = time.perf_counter()
            rows = db.execute("SELECT j.*, p.* FROM jobs j JOIN photos p ON p.id = j.photo_id "
                              "WHERE j.state != 'done' ORDER BY j.id").fetchall()
            times.append(time.perf_counter() - start)
    assert rows
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=1000, help="photos (two jobs each)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from crosswatch import logs

    logs.configure("warning", "console")  # intake of 1,000 photos would print a line each
    with tempfile.TemporaryDirectory(prefix="crosswatch-bench-console-") as scratch:
        root = Path(scratch)
        made = time.perf_counter()
        config_path = setup(root, args.photos)
        config = load_config(config_path)
        with Journal(config.journal_path) as journal:
            jobs = len(journal.jobs())
        print(f"journal: {args.photos} photos, {jobs} jobs, all awaiting approval "
              f"(made in {time.perf_counter() - made:.1f} s)")
        floor = reference_seconds(config.journal_path, args.repeats)
        print(f"reference: one SELECT of the {jobs} rows not done, with their photos: {floor * 1000:.2f} ms")

        console = make_console(config)
        thread = console.start_thread()
        while not console.server.started:
            time.sleep(0.01)
        client = httpx.Client(base_url=console.url, timeout=120.0, follow_redirects=True)
        client.get(f"/signin?token={console.token}")
        counter = Counter()
        with console.state.lock:
            journal = console.state.journal()
            assert journal is not None
            journal.trace(counter)
        pages = max(1, -(-args.photos // 25))
        print(f"\nqueue page over HTTP (25 photos = 50 jobs a page, {pages} pages), median of {args.repeats}:")
        for page in sorted({1, (pages + 1) // 2, pages}):
            client.get(f"/queue?page={page}")  # warm: metadata and the first compose of these photos
            times, counts = [], []
            for _ in range(args.repeats):
                counter.statements = 0
                start = time.perf_counter()
                response = client.get(f"/queue?page={page}")
                times.append(time.perf_counter() - start)
                counts.append(counter.statements)
            shown = len(re.findall(r"data-job-card=", response.text))
            median = statistics.median(times)
            print(f"  page {page:>3}: {shown} jobs shown, {median * 1000:7.1f} ms a page, "
                  f"{min(counts)}-{max(counts)} SQL statements, {median / floor:6.1f}x the reference SELECT")
        # Cold: a page whose photos' metadata is not cached yet (the console reads each photo's
        # metadata to compose its captions, as the runner will).
        counter.statements = 0
        start = time.perf_counter()
        client.get(f"/queue?page={max(1, pages - 1)}")
        print(f"  page {max(1, pages - 1):>3} cold (metadata read from the files): "
              f"{(time.perf_counter() - start) * 1000:.1f} ms, {counter.statements} SQL statements")
        client.close()
        console.stop()
        thread.join(timeout=10)

        print("\nviews.queue_page called directly, by photos shown (2 jobs each):")
        with Journal(config.journal_path) as journal:
            direct = Counter()
            journal.trace(direct)
            for per_page in (5, 25, 100, 500):
                views.queue_page(config, journal, time.time(), page=1, per_page=per_page)  # warm
                times = []
                for _ in range(args.repeats):
                    direct.statements = 0
                    start = time.perf_counter()
                    view = views.queue_page(config, journal, time.time(), page=1, per_page=per_page)
                    times.append(time.perf_counter() - start)
                shown = sum(len(g.cards) for g in view.groups)
                median = statistics.median(times)
                print(f"  {shown:>4} jobs shown: {direct.statements} SQL statements, {median * 1000:7.1f} ms, "
                      f"{median / shown * 1000:.2f} ms a job, {median / floor:6.1f}x the reference SELECT")


if __name__ == "__main__":
    main()
