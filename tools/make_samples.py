"""Make the sample photos that `crosswatch demo` posts (crosswatch/samples/).

The pictures are drawn here (sky, sun, ridges, grain), so the project owns them outright and
releases them under CC0 (crosswatch/samples/LICENSE). Their metadata looks like a photographer's
export: EXIF artist, copyright, camera, date and GPS position (which crosswatch must strip), and XMP
title, description, keywords, alt text and a Creative Commons licence.

Run: python tools/make_samples.py  (deterministic: the same files every time)
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import piexif
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent.parent / "crosswatch" / "samples"
CREATOR = "Ada Lumen"
LICENSE_NAME = "Creative Commons Attribution 4.0 International"
LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"


@dataclass(frozen=True)
class Sample:
    name: str
    size: tuple[int, int]
    sky: tuple[tuple[int, int, int], tuple[int, int, int]]
    title: str
    description: str
    keywords: tuple[str, ...]
    alt_text: str
    date: str
    gps: tuple[float, float]


SAMPLES = (
    Sample("blue-hour-ridge.jpg", (1200, 800), ((18, 32, 84), (230, 140, 90)), "Blue hour over the ridge",
           "The last light slides off the eastern ridge while the valley fills with cold air. Shot from the "
           "old fire lookout, twenty minutes after sunset.",
           ("landscape", "blue hour", "mountains", "Swiss Alps"),
           "Layered mountain ridges in deep blue under an orange band of sky just after sunset.",
           "2026:10:03 19:12:44", (46.5763, 7.9904)),
    Sample("harbour-morning.jpg", (1080, 1350), ((150, 190, 230), (250, 230, 200)), "Harbour, 6:40 a.m.",
           "Fog lifting off the water as the first ferry leaves.",
           ("harbour", "morning", "fog", "New York"),
           "A tall view of a calm harbour in pale morning light, hills fading into fog.",
           "2026:09:14 06:40:02", (40.7003, -74.0122)),
    Sample("salt-flats-panorama.jpg", (2400, 700), ((60, 110, 190), (240, 220, 170)), "Salt flats panorama",
           "A very wide frame of the salt flats at noon — mirror-flat, endless, blinding.",
           ("panorama", "desert", "salt flats", "Bonneville"),
           "A wide, flat white plain under a clear blue sky, with a thin line of distant hills.",
           "2026:06:21 12:03:10", (40.7606, -113.8853)),
    Sample("autumn-canopy.jpg", (900, 1200), ((200, 120, 40), (250, 210, 120)), "Autumn canopy",
           "Looking straight up through beech leaves turning gold.",
           ("autumn", "forest", "beech", "Ōtautahi"),
           "Golden leaves against a bright sky, seen from below.",
           "2026:10:28 15:22:57", (-43.5321, 172.6362)),
)


def draw(sample: Sample, rng: random.Random) -> Image.Image:
    width, height = sample.size
    top, bottom = sample.sky
    image = Image.new("RGB", sample.size)
    pen = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        pen.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    sun = (int(width * rng.uniform(0.2, 0.8)), int(height * rng.uniform(0.25, 0.5)))
    radius = int(min(width, height) * 0.06)
    pen.ellipse([sun[0] - radius, sun[1] - radius, sun[0] + radius, sun[1] + radius], fill=(255, 236, 190))
    for layer in range(4):
        base = int(height * (0.55 + 0.1 * layer))
        shade = tuple(max(0, int(c * (0.55 - 0.12 * layer))) for c in top)
        points = [(0, height)]
        x = 0
        while x <= width:
            points.append((x, base - int(rng.uniform(0, height * 0.18))))
            x += max(20, width // 14)
        points += [(width, base), (width, height)]
        pen.polygon(points, fill=shade)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    grain = Image.effect_noise(sample.size, 18).convert("RGB")
    return Image.blend(image, grain, 0.06)


def exif_for(sample: Sample) -> bytes:
    def rational(value: float) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        seconds = round(((value - degrees) * 60 - minutes) * 60 * 100)
        return ((degrees, 1), (minutes, 1), (seconds, 100))

    lat, lon = sample.gps
    return piexif.dump({
        "0th": {
            piexif.ImageIFD.Artist: CREATOR.encode(),
            piexif.ImageIFD.Copyright: f"© 2026 {CREATOR}".encode(),
            piexif.ImageIFD.ImageDescription: sample.description.encode("utf-8"),
            piexif.ImageIFD.Make: b"Fujifilm",
            piexif.ImageIFD.Model: b"X-T5",
            piexif.ImageIFD.Software: b"crosswatch sample generator",
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: sample.date.encode(),
            piexif.ExifIFD.OffsetTimeOriginal: b"+02:00",
            piexif.ExifIFD.LensModel: b"XF16-55mmF2.8 R LM WR",
            piexif.ExifIFD.BodySerialNumber: b"5FB12345",
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
            piexif.GPSIFD.GPSLatitude: rational(abs(lat)),
            piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
            piexif.GPSIFD.GPSLongitude: rational(abs(lon)),
        },
    })


def lang_alt(tag: str, text: str) -> str:
    return f'<{tag}><rdf:Alt><rdf:li xml:lang="x-default">{escape(text)}</rdf:li></rdf:Alt></{tag}>'


def xmp_for(sample: Sample) -> bytes:
    keywords = "".join(f"<rdf:li>{escape(k)}</rdf:li>" for k in sample.keywords)
    packet = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    photoshop:Credit="{escape(CREATOR)}"
    xmp:Rating="4"
    xmpRights:WebStatement="{LICENSE_URL}">
   {lang_alt("dc:title", sample.title)}
   {lang_alt("dc:description", sample.description)}
   <dc:creator><rdf:Seq><rdf:li>{escape(CREATOR)}</rdf:li></rdf:Seq></dc:creator>
   {lang_alt("dc:rights", f"© 2026 {CREATOR}")}
   <dc:subject><rdf:Bag>{keywords}</rdf:Bag></dc:subject>
   {lang_alt("xmpRights:UsageTerms", LICENSE_NAME)}
   {lang_alt("Iptc4xmpCore:AltTextAccessibility", sample.alt_text)}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return packet.encode("utf-8")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for index, sample in enumerate(SAMPLES):
        picture = draw(sample, random.Random(index))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=80, exif=exif_for(sample), xmp=xmp_for(sample))
        (OUT / sample.name).write_bytes(buffer.getvalue())
        print(f"{sample.name}: {len(buffer.getvalue())} bytes")


if __name__ == "__main__":
    main()
