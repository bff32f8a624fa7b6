"""A JPEG's own compressed data, re-wrapped with new metadata and nothing else (media.py's passthrough).

When a target takes the photo exactly as it is (media.py decides that), its output is the source's
own entropy-coded data: no decode, no re-encode, so no generation loss. What is copied and what is
not, segment by segment:

- kept: the frame (SOF0, SOF1 or SOF2: 8-bit Huffman-coded baseline, extended or progressive), its
  tables (DQT, DHT, DRI, DNL), every scan (SOS and its entropy-coded data), and an Adobe APP14
  segment (a few bytes saying how the colour channels are coded; decoders read it, it says nothing
  about the photographer);
- dropped: every APPn but that APP14 (JFIF with its thumbnail, Exif, XMP, ICC, MPF, Photoshop/IPTC,
  maker segments), every COM, and everything after the first EOI (the further frames of an MPO, a
  gain map, a phone's appended depth or motion data);
- inserted after SOI: the header segments the re-encoded outputs carry (``header``: JFIF, the
  credit EXIF and XMP, as media.py's encoder writes them).

A stream with anything else in it (arithmetic coding or 12-bit samples, which browsers do not show;
hierarchical frames; an unknown marker; no EOI) is not passed through: ``rewrap`` says None and
media.py re-encodes it as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
FRAMES = frozenset({0xC0, 0xC1, 0xC2})  # baseline, extended sequential, progressive (Huffman, 8 bit)
TABLES = frozenset({0xC4, 0xDB, 0xDD, 0xDC})  # DHT, DQT, DRI, DNL
APP0, APP14, APP15, COM = 0xE0, 0xEE, 0xEF, 0xFE
RESTARTS = frozenset(range(0xD0, 0xD8))
# The end of a scan's entropy-coded data: 0xFF followed by neither a stuffed 0x00, a restart marker
# nor another 0xFF (fill).
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

# libjpeg's luminance table (ITU T.81 Annex K) in natural order, which Pillow's ``quantization`` uses.
_STANDARD_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)


def segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(marker, start, end)`` of each segment of a JPEG stream, SOI to the first EOI; a scan's
    entropy-coded data belongs to its SOS segment. Raises ValueError where the structure breaks."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("no SOI")
    yield SOI, 0, 2
    position = 2
    while True:
        if position >= len(data) or data[position] != 0xFF:
            raise ValueError(f"no marker at byte {position}")
        while position < len(data) and data[position] == 0xFF:  # fill bytes may precede a marker
            position += 1
        if position >= len(data):
            raise ValueError("cut short")
        marker, start = data[position], position - 1
        position += 1
        if marker == EOI:
            yield marker, start, position
            return
        if marker in RESTARTS or marker in (0x00, 0x01, SOI):
            raise ValueError(f"marker {marker:02X} out of place")
        length = int.from_bytes(data[position:position + 2], "big")
        end = position + length
        if length < 2 or end > len(data):
            raise ValueError(f"segment {marker:02X} overruns the file")
        if marker == SOS:
            found = _SCAN_END.search(data, end)
            if found is None:
                raise ValueError("a scan with no end")
            end = found.start()
        yield marker, start, end
        position = end


def rewrap(data: bytes, header: bytes) -> bytes | None:
    """The JPEG stream ``data`` with its metadata replaced by ``header`` (segments to follow SOI), or
    None when the stream is not one to pass through (see the module docstring)."""
    kept: list[bytes] = [b"\xff\xd8", header]
    frames = 0
    try:
        for marker, start, end in segments(data):
            if marker == SOI:
                continue
            segment = data[start:end]
            if marker in FRAMES:
                frames += 1
                if frames > 1 or not _plain_frame(segment):
                    return None
            elif marker == APP14:
                if segment[4:9] != b"Adobe":
                    continue
            elif APP0 <= marker <= APP15 or marker == COM:
                continue
            elif marker not in TABLES and marker not in (SOS, EOI):
                return None  # arithmetic, hierarchical, JPEG extensions: re-encode instead
            kept.append(segment)
    except ValueError:
        return None
    return b"".join(kept) if frames == 1 else None


def _plain_frame(segment: bytes) -> bool:
    """8-bit samples and one or three components (greyscale or YCbCr; not CMYK)."""
    return len(segment) >= 10 and segment[4] == 8 and segment[9] in (1, 3)


def header_segments(jpeg: bytes) -> bytes:
    """The APPn segments at the head of ``jpeg`` (one of media.py's own encodings), to put on a
    passed-through stream so that it carries what the re-encoded outputs carry."""
    return b"".join(jpeg[start:end] for marker, start, end in _head(jpeg) if APP0 <= marker <= APP15)


def _head(jpeg: bytes) -> Iterator[tuple[int, int, int]]:
    for marker, start, end in segments(jpeg):
        if marker in FRAMES or marker == SOS:
            return
        yield marker, start, end


def estimate_quality(luminance: Sequence[int]) -> int:
    """The libjpeg quality (1 to 100) whose scaled standard table is nearest to this luminance
    quantization table: what a passed-through file reports as its quality (a camera's own tables
    are not libjpeg's, so for those this is only the nearest equivalent)."""
    def distance(quality: int) -> int:
        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        return sum(abs(min(255, max(1, (base * scale + 50) // 100)) - value)
                   for base, value in zip(_STANDARD_LUMINANCE, luminance, strict=False))
    return min(range(100, 0, -1), key=distance)
