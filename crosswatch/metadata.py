"""Read a photo's EXIF, IPTC and XMP into one normalised ``Metadata``.

Reading happens in three layers, each small and defensive:

1. **Containers** (JPEG, PNG, HEIF, TIFF, WebP) are walked with bounds checks to find the raw blocks:
   a TIFF-structured EXIF block, an XMP packet, an IPTC IIM block with the Photoshop IPTC digest, and
   the image size. No pixel is decoded. A file that is not an image raises ``BadPhoto``; a broken
   image never raises, it yields what could be read plus ``warnings``.
2. **Blocks** are parsed by our own IFD walker, IIM reader and XMP reader. piexif and Pillow raise
   on many real files (see tests/data/photos/KNOWN-CRASHES.md), and a dedicated walker that reads
   only the dozen tags we need is several times faster than exiftool.
3. **Reconciliation** follows the Metadata Working Group rules exactly as exiftool's MWG module
   does (``_reconcile``): EXIF wins when it holds a non-blank value; XMP wins over IPTC unless the
   IPTC block was edited after the XMP (the stored IPTCDigest no longer matches the IPTC data), in
   which case IPTC wins, with values cut by the IIM length limits recovered from XMP.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree

from crosswatch.errors import BadPhoto
from crosswatch.models import Metadata
from crosswatch.photofile import NotRegularFile, open_photo

_U16BE = struct.Struct(">H")
_U32BE = struct.Struct(">I")
_U16LE = struct.Struct("<H")
_U32LE = struct.Struct("<I")

# Decompressed PNG text chunks larger than this are not metadata we want (and may be a zip bomb).
_MAX_INFLATED = 16 * 1024 * 1024
# The JPEG header (everything before the image data) is read in chunks of this size.
_JPEG_CHUNK = 1 << 16


@dataclass
class _Blocks:
    """The raw metadata blocks found in one file, before any parsing."""

    kind: str
    width: int | None = None
    height: int | None = None
    exif: bytes | None = None  # TIFF structure: byte order mark, IFD0, ...
    xmp: bytes | None = None
    iptc: bytes | None = None  # IIM records from the standard place (Photoshop resource 0x0404)
    iptc_digest: bytes | None = None  # Photoshop resource 0x0425: MD5 of the IPTC when XMP was synced
    # JPEG extended XMP (packets over 64 KB): GUID -> (full length, {offset: chunk})
    xmp_extended: dict[bytes, tuple[int, dict[int, bytes]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------
# Entry point


def read_metadata(path: Path) -> Metadata:
    """Read and reconcile the metadata of one photo.

    Raises ``BadPhoto`` only when the file cannot be read or is not an image at all.
    """
    return _assemble(_read_blocks(Path(path)))


def _read_blocks(path: Path) -> _Blocks:
    try:
        with open_photo(path) as file:
            head = file.read(_JPEG_CHUNK)
            return _read_container(path, file, head)
    except NotRegularFile as exc:
        raise BadPhoto(f"{path}: {exc.reason}") from None
    except OSError as exc:
        raise BadPhoto(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _read_container(path: Path, file: BinaryIO, head: bytes) -> _Blocks:
    if head.startswith(b"\xff\xd8\xff"):
        return _read_jpeg(file, head)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _read_png(file)
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return _read_heif(file)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _read_tiff(file)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _read_webp(file)
    what = "the file is empty" if not head else f"it starts with {head[:8].hex(' ')}"
    raise BadPhoto(f"{path}: not an image crosswatch can read (JPEG, PNG, HEIC, TIFF or WebP); {what}")


# ---------------------------------------------------------------------------------------------------
# JPEG

# SOFn markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_EXIF_HEADER = b"Exif\x00"
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
_PHOTOSHOP_HEADER = b"Photoshop 3.0\x00"


def _read_jpeg(file: BinaryIO, head: bytes) -> _Blocks:
    blocks = _Blocks("jpeg")
    data = bytearray(head)
    exif_parts: list[bytes] = []
    photoshop = b""
    pos = 2
    while True:
        if pos + 4 > len(data):
            data += file.read(max(_JPEG_CHUNK, pos + 4 - len(data)))
            if pos + 4 > len(data):
                blocks.warnings.append("JPEG ends before its image data")
                break
        if data[pos] != 0xFF:
            blocks.warnings.append(f"JPEG marker expected at byte {pos}; the rest of the header was not read")
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata beyond
            break
        (length,) = _U16BE.unpack_from(data, pos + 2)
        end = pos + 2 + length
        if length < 2:
            blocks.warnings.append(f"JPEG segment at byte {pos} has an impossible length {length}")
            break
        if marker in _SOF_MARKERS or 0xE0 <= marker <= 0xEF:
            if end > len(data):
                data += file.read(end - len(data) + _JPEG_CHUNK)
            segment = bytes(data[pos + 4 : end])
            if len(segment) < length - 2:
                blocks.warnings.append(f"JPEG segment {marker:02X} at byte {pos} is cut short by end of file")
            if marker in _SOF_MARKERS:
                if blocks.width is None and len(segment) >= 5:
                    blocks.height = _U16BE.unpack_from(segment, 1)[0]
                    blocks.width = _U16BE.unpack_from(segment, 3)[0]
            elif marker == 0xE1:
                _jpeg_app1(segment, blocks, exif_parts)
            elif marker == 0xED and segment.startswith(_PHOTOSHOP_HEADER):
                # Photoshop splits large resource blocks over consecutive APP13 segments.
                photoshop += segment[len(_PHOTOSHOP_HEADER) :]
        pos = end
    if exif_parts:
        if len(exif_parts) > 1:
            blocks.warnings.append(f"EXIF is split over {len(exif_parts)} APP1 segments; they were joined")
        blocks.exif = b"".join(exif_parts)
    if photoshop:
        _read_photoshop_resources(photoshop, blocks)
    return blocks


def _jpeg_app1(segment: bytes, blocks: _Blocks, exif_parts: list[bytes]) -> None:
    if segment.startswith(_EXIF_HEADER):
        # "Exif\0\0" then TIFF; a continuation segment repeats the header and continues the data.
        exif_parts.append(segment[6:])
    elif segment.startswith(_XMP_HEADER):
        if blocks.xmp is None:
            blocks.xmp = segment[len(_XMP_HEADER) :]
        else:
            blocks.warnings.append("more than one standard XMP segment; only the first was read")
    elif segment.startswith(_XMP_EXTENSION_HEADER):
        # GUID (32 hex digits), full length, this chunk's offset, chunk
        body = segment[len(_XMP_EXTENSION_HEADER) :]
        if len(body) < 40:
            blocks.warnings.append("an extended XMP segment is too short; it was ignored")
            return
        guid, (full_length, offset) = body[:32], struct.unpack_from(">II", body, 32)
        _length, chunks = blocks.xmp_extended.setdefault(guid, (full_length, {}))
        chunks[offset] = body[40:]


def _read_photoshop_resources(data: bytes, blocks: _Blocks) -> None:
    """Find the IPTC block (0x0404) and its digest (0x0425) among Photoshop image resources."""
    pos = 0
    while pos + 12 <= len(data):
        if data[pos : pos + 4] not in (b"8BIM", b"PHUT", b"AgHg", b"DCSR", b"MeSa"):
            if data[pos:].strip(b"\x00"):
                blocks.warnings.append("Photoshop resources hold unexpected bytes; the rest was skipped")
            return
        (resource_id,) = _U16BE.unpack_from(data, pos + 4)
        name_length = data[pos + 6]
        size_at = pos + 6 + ((name_length + 2) & ~1)  # Pascal name padded to an even length
        if size_at + 4 > len(data):
            break
        (size,) = _U32BE.unpack_from(data, size_at)
        start = size_at + 4
        if start + size > len(data):
            blocks.warnings.append(f"Photoshop resource 0x{resource_id:04X} is cut short; it was skipped")
            return
        if resource_id == 0x0404 and blocks.iptc is None:
            blocks.iptc = data[start : start + size]
        elif resource_id == 0x0425 and size == 16:
            blocks.iptc_digest = data[start : start + size]
        pos = start + size + (size & 1)


# ---------------------------------------------------------------------------------------------------
# PNG

_PNG_TEXT_CHUNKS = frozenset({b"eXIf", b"iTXt", b"zTXt", b"tEXt"})


def _read_png(file: BinaryIO) -> _Blocks:
    blocks = _Blocks("png")
    pos = 8
    seen_image_data = False
    late_metadata = False
    for index, (ctype, length, chunk_at) in enumerate(_png_chunks(file, pos, blocks)):
        if index == 0 and ctype != b"IHDR":
            blocks.warnings.append("PNG image did not start with IHDR; the file is damaged")
            break
        if ctype == b"IHDR":
            file.seek(chunk_at)
            ihdr = file.read(8)
            if len(ihdr) == 8:
                blocks.width, blocks.height = _U32BE.unpack_from(ihdr, 0)[0], _U32BE.unpack_from(ihdr, 4)[0]
        elif ctype == b"IDAT":
            seen_image_data = True
        elif ctype in _PNG_TEXT_CHUNKS:
            file.seek(chunk_at)
            found = _png_metadata_chunk(ctype, file.read(length), blocks)
            late_metadata = late_metadata or (found and seen_image_data)
        elif ctype == b"IEND":
            break
    if late_metadata:
        blocks.warnings.append("metadata chunks come after the PNG image data (some readers ignore them)")
    return blocks


def _png_chunks(file: BinaryIO, pos: int, blocks: _Blocks) -> Iterator[tuple[bytes, int, int]]:
    """(type, data length, data offset) for each chunk, stopping cleanly at damage or end of file."""
    while True:
        file.seek(pos)
        header = file.read(8)
        if len(header) < 8:
            blocks.warnings.append("PNG ends without an IEND chunk; the file may be truncated")
            return
        length, ctype = _U32BE.unpack_from(header, 0)[0], header[4:8]
        if length > 0x7FFFFFFF or not ctype.isalpha():
            blocks.warnings.append(f"PNG chunk at byte {pos} is damaged; the rest of the file was not read")
            return
        yield ctype, length, pos + 8
        pos += 12 + length


def _png_metadata_chunk(ctype: bytes, data: bytes, blocks: _Blocks) -> bool:
    """Take EXIF or XMP out of one PNG chunk; True when the chunk held metadata."""
    if ctype == b"eXIf":
        blocks.exif = data[6:] if data.startswith(_EXIF_HEADER) else data
        return True
    keyword, _, rest = data.partition(b"\x00")
    if ctype in (b"tEXt", b"zTXt") and keyword == b"XML:com.adobe.xmp":
        # not where the XMP spec puts it, but some writers do
        text = _inflate(rest[1:], blocks) if ctype == b"zTXt" else rest
        if text is not None and blocks.xmp is None:
            blocks.xmp = text
        return text is not None
    if ctype == b"iTXt" and keyword == b"XML:com.adobe.xmp":
        compressed = rest[:1] == b"\x01"
        # compression flag, method, then language tag and translated keyword, each NUL-ended
        parts = rest[2:].split(b"\x00", 2)
        if len(parts) == 3:
            text = _inflate(parts[2], blocks) if compressed else parts[2]
            if text is not None and blocks.xmp is None:
                blocks.xmp = text
            return True
        blocks.warnings.append("PNG iTXt XMP chunk is malformed")
        return False
    if keyword.startswith(b"Raw profile type "):
        # ImageMagick stores profiles hex-encoded in tEXt/zTXt: "\n<name>\n<length>\n<hex lines>"
        raw = _inflate(rest[1:], blocks) if ctype == b"zTXt" else rest
        profile = _raw_profile(raw) if raw is not None else None
        kind = keyword[len(b"Raw profile type ") :].lower()
        if profile is None:
            blocks.warnings.append(f"PNG '{keyword.decode('latin-1')}' chunk is malformed")
            return False
        if kind == b"xmp" and blocks.xmp is None:
            blocks.xmp = profile
        elif kind in (b"exif", b"app1") and blocks.exif is None:
            blocks.exif = profile[6:] if profile.startswith(_EXIF_HEADER) else profile
        return kind in (b"xmp", b"exif", b"app1")
    return False


def _inflate(data: bytes, blocks: _Blocks) -> bytes | None:
    try:
        inflater = zlib.decompressobj()
        out = inflater.decompress(data, _MAX_INFLATED)
    except zlib.error:
        blocks.warnings.append("a compressed PNG text chunk is damaged")
        return None
    if inflater.unconsumed_tail:
        blocks.warnings.append("a compressed PNG text chunk is too large; it was skipped")
        return None
    return out


def _raw_profile(text: bytes) -> bytes | None:
    lines = text.split(b"\n", 3)
    if len(lines) < 4:
        return None
    try:
        return bytes.fromhex(lines[3].decode("ascii").replace("\n", "").replace(" ", ""))
    except (ValueError, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------------------------------------------
# HEIF (HEIC/AVIF) through pillow-heif, which reads the boxes without decoding the image

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif"})


def _read_heif(file: BinaryIO) -> _Blocks:
    blocks = _Blocks("heif")
    try:
        import pillow_heif
    except ImportError:
        blocks.warnings.append("HEIC metadata needs pillow-heif (pip install 'crosswatch[heic]')")
        return blocks
    try:
        file.seek(0)  # pillow-heif reads from where the file is, and the header is already read
        heif = pillow_heif.open_heif(file, convert_hdr_to_8bit=False)
        blocks.width, blocks.height = heif.size  # already turned by the file's rotation property
        exif = heif.info.get("exif")
        xmp = heif.info.get("xmp")
    except Exception as exc:  # libheif reports damage through many exception types
        blocks.warnings.append(f"HEIF container could not be read ({exc})")
        return blocks
    if isinstance(exif, bytes) and exif:
        blocks.exif = exif[6:] if exif.startswith(_EXIF_HEADER) else exif
    if isinstance(xmp, bytes) and xmp:
        blocks.xmp = xmp
    return blocks


# ---------------------------------------------------------------------------------------------------
# TIFF (metadata lives in IFD0 itself) and WebP (RIFF chunks)


def _read_tiff(file: BinaryIO) -> _Blocks:
    blocks = _Blocks("tiff")
    # A TIFF's metadata may sit anywhere, often after the pixels, so the whole file is the EXIF block.
    file.seek(0)
    data = file.read()
    tiff = _Tiff.open(data, blocks.warnings, "EXIF")
    if tiff is None:
        return blocks
    ifd0 = tiff.ifd(tiff.first_ifd, "IFD0")  # _parse_exif walks it again for the EXIF tags
    blocks.width = tiff.number(ifd0.get(0x0100))
    blocks.height = tiff.number(ifd0.get(0x0101))
    xmp_entry, iptc_entry, photoshop_entry = ifd0.get(0x02BC), ifd0.get(0x83BB), ifd0.get(0x8649)
    blocks.xmp = tiff.raw(xmp_entry) if xmp_entry else None
    blocks.iptc = tiff.raw(iptc_entry) if iptc_entry else None
    if photoshop_entry:  # the IPTC digest lives among the Photoshop resources
        digest_holder = _Blocks("tiff")
        _read_photoshop_resources(tiff.raw(photoshop_entry), digest_holder)
        blocks.iptc_digest = digest_holder.iptc_digest
    blocks.exif = data
    return blocks


def _read_webp(file: BinaryIO) -> _Blocks:
    blocks = _Blocks("webp")
    file.seek(12)
    while True:
        header = file.read(8)
        if len(header) < 8:
            break
        fourcc, size = header[:4], _U32LE.unpack_from(header, 4)[0]
        if fourcc in (b"VP8X", b"VP8 ", b"VP8L", b"EXIF", b"XMP "):
            data = file.read(size)
            if len(data) < size:
                blocks.warnings.append(f"WebP chunk {fourcc.decode('latin-1')!r} is cut short")
                break
            _webp_chunk(fourcc, data, blocks)
            file.seek(size & 1, 1)
        else:
            file.seek(size + (size & 1), 1)
    return blocks


def _webp_chunk(fourcc: bytes, data: bytes, blocks: _Blocks) -> None:
    if fourcc == b"VP8X" and len(data) >= 10:
        blocks.width = 1 + int.from_bytes(data[4:7], "little")
        blocks.height = 1 + int.from_bytes(data[7:10], "little")
    elif fourcc == b"VP8 " and len(data) >= 10 and blocks.width is None:
        blocks.width = _U16LE.unpack_from(data, 6)[0] & 0x3FFF
        blocks.height = _U16LE.unpack_from(data, 8)[0] & 0x3FFF
    elif fourcc == b"VP8L" and len(data) >= 5 and blocks.width is None:
        bits = _U32LE.unpack_from(data, 1)[0]
        blocks.width, blocks.height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif fourcc == b"EXIF":
        blocks.exif = data[6:] if data.startswith(_EXIF_HEADER) else data
    elif fourcc == b"XMP ":
        blocks.xmp = data


# ---------------------------------------------------------------------------------------------------
# The TIFF/IFD walker (EXIF is a TIFF structure)

# bytes per value, by TIFF field type
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8}
_MAX_ENTRIES = 1000  # real IFDs hold a few hundred entries at most; more means garbage


@dataclass(frozen=True)
class _Entry:
    tag: int
    type: int
    count: int
    offset: int  # where the value bytes start in the TIFF data
    size: int


class _Tiff:
    """Bounds-checked reads from a TIFF structure; bad parts become warnings, never exceptions."""

    def __init__(self, data: bytes, little_endian: bool, warnings: list[str], label: str) -> None:
        self.data = data
        self.u16 = _U16LE if little_endian else _U16BE
        self.u32 = _U32LE if little_endian else _U32BE
        self.endian = "<" if little_endian else ">"
        self.warnings = warnings
        self.label = label
        self.first_ifd = self.u32.unpack_from(data, 4)[0]
        self.visited: set[int] = set()

    @classmethod
    def open(cls, data: bytes, warnings: list[str], label: str) -> _Tiff | None:
        order = bytes(data[:4])
        if len(data) < 8:
            warnings.append(f"{label} block is only {len(data)} bytes (truncated); it was ignored")
            return None
        if order == b"II*\x00":
            return cls(data, True, warnings, label)
        if order == b"MM\x00*":
            return cls(data, False, warnings, label)
        shown = order.hex(" ") if order else "nothing"
        warnings.append(f"{label} block has no valid TIFF header ({shown}); it was ignored")
        return None

    def ifd(self, offset: int, name: str) -> dict[int, _Entry]:
        """The entries of the IFD at ``offset``; an IFD that does not fit the data is ignored whole."""
        if offset in self.visited:
            self.warnings.append(f"{self.label} {name} points back at an IFD already read (a loop); ignored")
            return {}
        self.visited.add(offset)
        data_length = len(self.data)
        if offset < 8 or offset + 2 > data_length:
            self.warnings.append(f"{self.label} {name} offset {offset} is outside the data; {name} ignored")
            return {}
        (count,) = self.u16.unpack_from(self.data, offset)
        if count > _MAX_ENTRIES or offset + 2 + 12 * count > data_length:
            self.warnings.append(f"{self.label} {name} directory is bad ({count} entries don't fit); ignored")
            return {}
        entries: dict[int, _Entry] = {}
        for position in range(offset + 2, offset + 2 + 12 * count, 12):
            entry = self._entry(position, name)
            if entry is not None:
                entries.setdefault(entry.tag, entry)
        return entries

    def next_ifd(self, offset: int) -> int:
        (count,) = self.u16.unpack_from(self.data, offset)
        end = offset + 2 + 12 * count
        return int(self.u32.unpack_from(self.data, end)[0]) if end + 4 <= len(self.data) else 0

    def _entry(self, position: int, name: str) -> _Entry | None:
        (tag,) = self.u16.unpack_from(self.data, position)
        (field_type,) = self.u16.unpack_from(self.data, position + 2)
        (count,) = self.u32.unpack_from(self.data, position + 4)
        unit = _TYPE_SIZES.get(field_type)
        if unit is None:
            self.warnings.append(f"{self.label} {name} tag 0x{tag:04X} has an unknown type ({field_type})")
            return None
        size = unit * count
        if size <= 4:
            return _Entry(tag, field_type, count, position + 8, size)
        (value_offset,) = self.u32.unpack_from(self.data, position + 8)
        if value_offset + size > len(self.data):
            self.warnings.append(
                f"{self.label} {name} tag 0x{tag:04X} points outside the data (bad offset); skipped"
            )
            return None
        return _Entry(tag, field_type, count, value_offset, size)

    def raw(self, entry: _Entry) -> bytes:
        return bytes(self.data[entry.offset : entry.offset + entry.size])

    def number(self, entry: _Entry | None) -> int | None:
        """An integer value (BYTE, SHORT, LONG and their signed forms); None for other types."""
        if entry is None or entry.count < 1:
            return None
        if entry.type in (1, 7):
            return int(self.data[entry.offset])
        if entry.type == 6:
            return int(struct.unpack_from("b", self.data, entry.offset)[0])
        if entry.type == 3:
            return int(self.u16.unpack_from(self.data, entry.offset)[0])
        if entry.type == 8:
            return int(struct.unpack_from(self.endian + "h", self.data, entry.offset)[0])
        if entry.type in (4, 13):
            return int(self.u32.unpack_from(self.data, entry.offset)[0])
        if entry.type == 9:
            return int(struct.unpack_from(self.endian + "i", self.data, entry.offset)[0])
        return None

    def text(self, entry: _Entry | None) -> str | None:
        """An ASCII (or UNDEFINED used as text) value, up to its first NUL."""
        if entry is None or entry.type not in (1, 2, 7):
            return None
        return _decode_exif_text(self.raw(entry).split(b"\x00", 1)[0])


@dataclass
class _Exif:
    artist: str | None = None
    copyright: str | None = None
    description: str | None = None
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    orientation: int | None = None
    date_original: str | None = None
    subsec_original: str | None = None
    offset_original: str | None = None
    has_gps: bool = False


# IFD0 tags
_DESCRIPTION, _MAKE, _MODEL, _ORIENTATION = 0x010E, 0x010F, 0x0110, 0x0112
_ARTIST, _COPYRIGHT = 0x013B, 0x8298
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
# ExifIFD tags
_DATE_ORIGINAL, _OFFSET_ORIGINAL, _SUBSEC_ORIGINAL, _LENS_MODEL = 0x9003, 0x9011, 0x9291, 0xA434


def _parse_exif(data: bytes, warnings: list[str]) -> _Exif:
    exif = _Exif()
    if len(data) < 8:
        warnings.append(f"EXIF block is only {len(data)} bytes (truncated); it was ignored")
        return exif
    tiff = _Tiff.open(data, warnings, "EXIF")
    if tiff is None:
        return exif
    ifd0 = tiff.ifd(tiff.first_ifd, "IFD0")
    exif.description = tiff.text(ifd0.get(_DESCRIPTION))
    exif.make = tiff.text(ifd0.get(_MAKE))
    exif.model = tiff.text(ifd0.get(_MODEL))
    exif.artist = tiff.text(ifd0.get(_ARTIST))
    exif.copyright = _exif_copyright(tiff, ifd0.get(_COPYRIGHT))
    exif.orientation = tiff.number(ifd0.get(_ORIENTATION))
    exif_ifd = _sub_ifd(tiff, ifd0, _EXIF_IFD, "ExifIFD")
    exif.date_original = tiff.text(exif_ifd.get(_DATE_ORIGINAL))
    exif.subsec_original = tiff.text(exif_ifd.get(_SUBSEC_ORIGINAL))
    exif.offset_original = tiff.text(exif_ifd.get(_OFFSET_ORIGINAL))
    exif.lens = tiff.text(exif_ifd.get(_LENS_MODEL))
    gps = _sub_ifd(tiff, ifd0, _GPS_IFD, "GPS")
    exif.has_gps = bool(gps)
    if _GPS_IFD in ifd0 and not gps and not any("GPS" in w for w in warnings):
        warnings.append("EXIF GPS directory is empty")
    if ifd0:
        _check_ifd1(tiff)
    return exif


def _sub_ifd(tiff: _Tiff, ifd0: dict[int, _Entry], tag: int, name: str) -> dict[int, _Entry]:
    entry = ifd0.get(tag)
    if entry is None:
        return {}
    if entry.type not in (4, 13, 9) or entry.count != 1:
        type_name = "string" if entry.type == 2 else f"type {entry.type}"
        tiff.warnings.append(f"EXIF {name} pointer has the wrong format ({type_name}); {name} ignored")
        return {}
    return tiff.ifd(tiff.number(entry) or 0, name)


def _check_ifd1(tiff: _Tiff) -> None:
    # IFD1 holds only the thumbnail, which we never use; walking it costs little and reports the
    # damage (bad offsets) that makes other libraries fail on the file.
    offset = tiff.next_ifd(tiff.first_ifd)
    if offset:
        tiff.ifd(offset, "IFD1")


def _exif_copyright(tiff: _Tiff, entry: _Entry | None) -> str | None:
    # "photographer\0editor\0": exiftool shows "photographer\neditor", trailing blanks dropped.
    if entry is None or entry.type not in (1, 2, 7):
        return None
    raw = tiff.raw(entry)
    photographer, _, rest = raw.partition(b"\x00")
    editor = rest.split(b"\x00", 1)[0].rstrip(b" ")
    text = photographer.rstrip(b" ") + (b"\n" + editor if editor else b"")
    return _decode_exif_text(text)


def _decode_exif_text(raw: bytes) -> str:
    # EXIF says ASCII; MWG says UTF-8; old cameras and editors wrote Latin-1/cp1252.
    return _decode_legacy(raw, assume_utf8=True)


def _decode_legacy(raw: bytes, *, assume_utf8: bool) -> str:
    if assume_utf8:
        utf8 = _decode_utf8(raw)
        if utf8 is not None:
            return utf8
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
        return raw.decode("latin-1")


# ---------------------------------------------------------------------------------------------------
# IPTC IIM

_IIM_NAMES = {
    (2, 5): "object_name",
    (2, 25): "keywords",
    (2, 55): "date_created",
    (2, 60): "time_created",
    (2, 80): "byline",
    (2, 105): "headline",
    (2, 110): "credit",
    (2, 116): "copyright",
    (2, 120): "caption",
}
_CODED_CHARACTER_SET = (1, 90)
_UTF8_DECLARATION = b"\x1b%G"


def _parse_iim(data: bytes, warnings: list[str]) -> dict[str, list[str]]:
    raw_values: dict[str, list[bytes]] = {}
    charset: bytes | None = None
    for record, dataset, value in _iim_records(data, warnings):
        if (record, dataset) == _CODED_CHARACTER_SET:
            charset = value
        name = _IIM_NAMES.get((record, dataset))
        if name is not None:
            raw_values.setdefault(name, []).append(value.rstrip(b"\x00"))
    return {name: [_decode_iim(v, charset, warnings) for v in values] for name, values in raw_values.items()}


def _iim_records(data: bytes, warnings: list[str]) -> Iterator[tuple[int, int, bytes]]:
    pos = 0
    while pos + 5 <= len(data):
        if data[pos] != 0x1C:
            if data[pos:].strip(b"\x00"):
                warnings.append(f"IPTC data has unexpected bytes at {pos}; the rest was not read")
            return
        record, dataset = data[pos + 1], data[pos + 2]
        (length,) = _U16BE.unpack_from(data, pos + 3)
        start = pos + 5
        if length & 0x8000:  # extended dataset: the low bits give the size of the length field
            length_size = length & 0x7FFF
            if length_size > 4 or start + length_size > len(data):
                warnings.append(f"IPTC dataset {record}:{dataset} has a bad extended length; rest not read")
                return
            length = int.from_bytes(data[start : start + length_size], "big")
            start += length_size
        if start + length > len(data):
            warnings.append(f"IPTC dataset {record}:{dataset} is cut short; the rest was not read")
            return
        yield record, dataset, data[start : start + length]
        pos = start + length


def _decode_utf8(raw: bytes) -> str | None:
    """UTF-8 text, tolerating only a character cut in half at the very end (IIM length limits do
    that); None when the bytes are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(raw) - 3 and exc.start > 0:
            return raw[: exc.start].decode("utf-8", errors="strict")
        return None


def _decode_iim(raw: bytes, charset: bytes | None, warnings: list[str]) -> str:
    if charset == _UTF8_DECLARATION:
        text = _decode_utf8(raw)
        if text is None:
            warnings.append("IPTC declares UTF-8 but holds other bytes; they were read as Latin-1")
            return _decode_legacy(raw, assume_utf8=False)
        return text
    # Declared ISO 8859-1, or undeclared: valid UTF-8 is taken as UTF-8 (modern tools often forget the
    # declaration), anything else as Latin-1/cp1252, which is what undeclared IIM text usually is.
    return _decode_legacy(raw, assume_utf8=charset is None)


# ---------------------------------------------------------------------------------------------------
# XMP

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XMP_PREFIXES = {
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://ns.adobe.com/lightroom/1.0/": "lr",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://cipa.jp/exif/1.0/": "exifEX",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
    "http://ns.adobe.com/xmp/note/": "xmpNote",
}
_XMP_WANTED = frozenset({
    "dc:title", "dc:description", "dc:creator", "dc:rights", "dc:subject",
    "photoshop:Credit", "photoshop:DateCreated",
    "xmpRights:UsageTerms", "xmpRights:WebStatement",
    "xmp:Rating", "xmp:Label",
    "Iptc4xmpCore:AltTextAccessibility",
    "lr:hierarchicalSubject",
    "tiff:Orientation",
    "exifEX:LensModel", "aux:Lens",
    "xmpNote:HasExtendedXMP",
})  # fmt: skip

XmpValue = str | list[str]


def _parse_xmp(packet: bytes, warnings: list[str]) -> tuple[dict[str, XmpValue], bool]:
    """The wanted XMP properties by prefixed name, and whether any GPS property is present."""
    document = _xmp_document(packet)
    if b"<!DOCTYPE" in document or b"<!ENTITY" in document or b"\x00!\x00D" in document:
        # XMP never needs a DTD; refusing one keeps entity expansion attacks out.
        warnings.append("XMP packet contains a DTD, which XMP does not allow; it was ignored")
        return {}, False
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as exc:
        warnings.append(f"XMP packet is not well-formed XML ({exc}); it was ignored")
        return {}, False
    rdf = root if root.tag == f"{{{_RDF}}}RDF" else root.find(f".//{{{_RDF}}}RDF")
    if rdf is None:
        warnings.append("XMP packet has no rdf:RDF element; it was ignored")
        return {}, False
    values: dict[str, XmpValue] = {}
    has_gps = False
    for description in rdf.iterfind(f"{{{_RDF}}}Description"):
        for key, text in description.attrib.items():
            name = _xmp_name(key)
            has_gps = has_gps or name.startswith("exif:GPS")
            if name in _XMP_WANTED:
                values.setdefault(name, text)
        for prop in description:
            name = _xmp_name(prop.tag)
            has_gps = has_gps or name.startswith("exif:GPS")
            if name in _XMP_WANTED and name not in values:
                value = _xmp_value(prop)
                if value is not None:
                    values[name] = value
    return values, has_gps


def _xmp_document(packet: bytes) -> bytes:
    """The packet cut after its last '>', so padding and trailing junk do not upset the parser."""
    little_endian_utf16 = packet.startswith((b"\xff\xfe", b"<\x00"))
    end = packet.rfind(b">")
    if end < 0:
        return packet
    return packet[: end + (2 if little_endian_utf16 else 1)]


def _xmp_name(qualified: str) -> str:
    if qualified.startswith("{"):
        namespace, _, local = qualified[1:].partition("}")
        prefix = _XMP_PREFIXES.get(namespace)
        return f"{prefix}:{local}" if prefix else ""
    return ""


def _xmp_value(prop: ElementTree.Element) -> XmpValue | None:
    resource = prop.get(f"{{{_RDF}}}resource")
    if resource is not None:
        return resource
    container = prop.find("*")
    if container is None:
        return prop.text or ""
    items = container.findall(f"{{{_RDF}}}li")
    if container.tag == f"{{{_RDF}}}Alt":
        # language alternatives: the x-default item, else the first one
        chosen = next((li for li in items if li.get(_XML_LANG) == "x-default"), items[0] if items else None)
        return (chosen.text or "") if chosen is not None else None
    if container.tag in (f"{{{_RDF}}}Bag", f"{{{_RDF}}}Seq"):
        return [li.text or "" for li in items]
    return None  # a structure: none of the properties we read is one


# ---------------------------------------------------------------------------------------------------
# Reconciliation (Metadata Working Group rules, as exiftool's MWG module applies them)


@dataclass(frozen=True)
class _IptcSync:
    """Whether IPTC exists and whether the XMP was written after it (digest still matching)."""

    iptc_present: bool
    xmp_in_sync: bool

    def pick(self, iptc: list[str] | None, xmp: list[str] | None, limit: int) -> list[str] | None:
        if not self.iptc_present:
            return xmp
        if xmp is not None and self.xmp_in_sync:
            return xmp
        return _recover_truncated(iptc, xmp, limit)


def _recover_truncated(iptc: list[str] | None, xmp: list[str] | None, limit: int) -> list[str] | None:
    """IPTC values, except that one cut at the IIM length limit is replaced by its full XMP text."""
    if iptc is None or xmp is None:
        return iptc
    recovered = []
    for index, value in enumerate(iptc):
        full = xmp[index] if index < len(xmp) else None
        value_bytes = value.encode("utf-8")
        if full is not None and len(value_bytes) == limit:
            full_bytes = full.encode("utf-8")
            if len(full_bytes) > limit and full_bytes[:limit] == value_bytes:
                value = full
        recovered.append(value)
    return recovered


def _assemble(blocks: _Blocks) -> Metadata:
    warnings = blocks.warnings
    exif = _parse_exif(blocks.exif, warnings) if blocks.exif is not None else _Exif()
    iptc = _parse_iim(blocks.iptc, warnings) if blocks.iptc is not None else {}
    xmp, xmp_gps = _parse_xmp(blocks.xmp, warnings) if blocks.xmp is not None else ({}, False)
    extended = _extended_xmp(blocks, xmp.get("xmpNote:HasExtendedXMP"))
    if extended is not None:
        extended_values, extended_gps = _parse_xmp(extended, warnings)
        xmp = {**extended_values, **xmp}  # the main packet wins where both hold a property
        xmp_gps = xmp_gps or extended_gps
    sync = _iptc_sync(blocks)
    if blocks.iptc is not None and not sync.xmp_in_sync and blocks.xmp is not None:
        warnings.append("IPTCDigest is not current: the IPTC was edited after the XMP, so IPTC values win")
    orientation = exif.orientation if exif.orientation is not None else _xmp_int(xmp.get("tiff:Orientation"))
    if orientation is not None and not 1 <= orientation <= 8:
        warnings.append(f"orientation {orientation} is not one of 1-8; ignored")
        orientation = None
    def iptc_or_xmp(iptc_name: str, xmp_name: str, limit: int) -> list[str] | None:
        return sync.pick(iptc.get(iptc_name), _as_list(xmp.get(xmp_name)), limit)

    xmp_lens = _first(_as_list(xmp.get("exifEX:LensModel") or xmp.get("aux:Lens")))
    return Metadata(
        # the numbers are the IIM length limits, for recovering IPTC values cut short
        title=_first(iptc_or_xmp("object_name", "dc:title", 64)),
        description=_exif_first(exif.description, iptc_or_xmp("caption", "dc:description", 2000)),
        creator=_creators(exif.artist, iptc_or_xmp("byline", "dc:creator", 32)),
        copyright=_exif_first(exif.copyright, iptc_or_xmp("copyright", "dc:rights", 128)),
        credit=_first(iptc_or_xmp("credit", "photoshop:Credit", 32)),
        usage_terms=_first(_as_list(xmp.get("xmpRights:UsageTerms"))),
        web_statement=_first(_as_list(xmp.get("xmpRights:WebStatement"))),
        keywords=_non_blank(iptc_or_xmp("keywords", "dc:subject", 64)),
        rating=_rating(xmp.get("xmp:Rating"), warnings),
        alt_text=_first(_as_list(xmp.get("Iptc4xmpCore:AltTextAccessibility"))),
        date_taken=_date_taken(exif, iptc, xmp, sync, warnings),
        orientation=orientation,
        # exiftool trims the padding cameras leave after Make, Model and LensModel
        make=_blank_to_none(exif.make and exif.make.rstrip()),
        model=_blank_to_none(exif.model and exif.model.rstrip()),
        lens=_blank_to_none(exif.lens and exif.lens.rstrip()) or xmp_lens,
        width=blocks.width,
        height=blocks.height,
        has_gps=exif.has_gps or xmp_gps,
        label=_first(_as_list(xmp.get("xmp:Label"))),
        hierarchical_subject=_non_blank(_as_list(xmp.get("lr:hierarchicalSubject"))),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _extended_xmp(blocks: _Blocks, guid: XmpValue | None) -> bytes | None:
    """The extended XMP packet the main packet names, when all its chunks are there."""
    if not isinstance(guid, str):
        if blocks.xmp_extended:
            blocks.warnings.append("extended XMP found but the main XMP does not name it; it was ignored")
        return None
    full_length, chunks = blocks.xmp_extended.get(guid.encode("ascii", "replace"), (0, {}))
    packet = bytearray()
    for offset in sorted(chunks):
        if offset != len(packet):
            break
        packet += chunks[offset]
    if not chunks or len(packet) != full_length:
        blocks.warnings.append("extended XMP is missing or incomplete; only the main XMP was read")
        return None
    return bytes(packet)


def _iptc_sync(blocks: _Blocks) -> _IptcSync:
    if blocks.iptc is None:
        return _IptcSync(iptc_present=False, xmp_in_sync=True)
    current = hashlib.md5(blocks.iptc, usedforsecurity=False).digest()
    return _IptcSync(iptc_present=True, xmp_in_sync=blocks.iptc_digest in (None, current))


def _as_list(value: XmpValue | None) -> list[str] | None:
    if value is None:
        return None
    return value if isinstance(value, list) else [value]


def _blank_to_none(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def _first(values: list[str] | None) -> str | None:
    return _blank_to_none(values[0]) if values else None


def _non_blank(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v for v in values or () if v.strip())


def _exif_first(exif_value: str | None, others: list[str] | None) -> str | None:
    # MWG: the EXIF value wins unless it is missing or only spaces.
    if exif_value is not None and exif_value.strip(" "):
        return _blank_to_none(exif_value)
    return _first(others)


def _creators(artist: str | None, others: list[str] | None) -> tuple[str, ...]:
    if artist is not None and artist.strip(" "):
        return _non_blank(_split_mwg_list(artist))
    return _non_blank(others)


def _split_mwg_list(text: str) -> list[str]:
    """MWG stores a list in one EXIF string: "a; b", with quotes around items containing "; "."""
    values: list[str] = []
    in_quotes = False
    for part in text.split("; "):
        was_quoted = in_quotes
        if not in_quotes and part.startswith('"'):
            in_quotes, part = True, part[1:]
        if in_quotes:
            closing = re.search(r'(^|[^"])("")*"$', part)
            if closing:
                in_quotes, part = False, part[:-1]
            part = part.replace('""', '"')
        if was_quoted:
            values[-1] += "; " + part
        else:
            values.append(part)
    return values


def _xmp_int(value: XmpValue | None) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _rating(value: XmpValue | None, warnings: list[str]) -> int | None:
    rating = _xmp_int(value)
    if value is not None and (rating is None or not -1 <= rating <= 5):
        warnings.append(f"XMP rating {value!r} is not a number from -1 to 5; ignored")
        return None
    return rating


_EXIF_DATE = re.compile(r"(\d{4}):(\d{2}):(\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2})?)(.*))?\Z")
_ISO_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?\Z")


def _date_taken(exif: _Exif, iptc: dict[str, list[str]], xmp: dict[str, XmpValue], sync: _IptcSync,
                warnings: list[str]) -> str | None:
    """MWG DateTimeOriginal in ISO 8601: EXIF (with sub-seconds and offset), else XMP or IPTC."""
    original = exif.date_original
    if original is not None and original.strip(": "):
        return _iso_from_exif(_with_subsec_and_offset(original, exif), "EXIF DateTimeOriginal", warnings)
    xmp_date = _first(_as_list(xmp.get("photoshop:DateCreated")))
    iptc_date = _first(iptc.get("date_created"))
    if not sync.iptc_present or (xmp_date is not None and sync.xmp_in_sync):
        if xmp_date is None:
            return None
        if _ISO_DATE.match(xmp_date):
            return xmp_date
        warnings.append(f"XMP DateCreated {xmp_date!r} is not an ISO 8601 date; ignored")
        return None
    if iptc_date is None:
        return None
    return _iso_from_iptc(iptc_date, _first(iptc.get("time_created")), warnings)


def _with_subsec_and_offset(original: str, exif: _Exif) -> str:
    # exiftool's SubSecDateTimeOriginal: append ".subsec" to the seconds, then the offset if the
    # date carries none of its own.
    value = original
    subsec = re.match(r"\d+", exif.subsec_original or "")
    if subsec:
        value = re.sub(r"( \d{2}:\d{2}:\d{2})(?!\.\d+)", rf"\g<1>.{subsec.group(0)}", value, count=1)
    offset = re.match(r"([-+])(\d{1,2}):(\d{2})", exif.offset_original or "")
    if offset and not re.search(r"[-+]", original):
        value += f"{offset.group(1)}{int(offset.group(2)):02d}:{offset.group(3)}"
    return value


def _iso_from_exif(value: str, source: str, warnings: list[str]) -> str | None:
    match = _EXIF_DATE.match(value.strip())
    if match is None or match.group(1) == "0000":
        warnings.append(f"{source} {value!r} is not a date; ignored")
        return None
    year, month, day, time, rest = match.groups()
    return f"{year}-{month}-{day}" + (f"T{time}{rest}" if time else "")


def _iso_from_iptc(date: str, time: str | None, warnings: list[str]) -> str | None:
    date_match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", date.strip())
    if date_match is None:
        warnings.append(f"IPTC DateCreated {date!r} is not a CCYYMMDD date; ignored")
        return None
    iso = "-".join(date_match.groups())
    time_match = re.fullmatch(r"(\d{2})(\d{2})(\d{2})(?:([-+])(\d{2})(\d{2}))?", (time or "").strip())
    if time_match:
        hours, minutes, seconds, sign, offset_hours, offset_minutes = time_match.groups()
        iso += f"T{hours}:{minutes}:{seconds}" + (f"{sign}{offset_hours}:{offset_minutes}" if sign else "")
    return iso


# ---------------------------------------------------------------------------------------------------
# Private traces: what an image about to be uploaded must not carry (the upload check, uploadcheck.py)

# EXIF tags that identify the camera, the lens or their owner, by (IFD name, tag): never written by
# media.py, so finding one in a prepared image means preparation went wrong.
_PRIVATE_EXIF_TAGS = {
    ("IFD0", 0xC62F): "camera serial number (EXIF CameraSerialNumber)",
    ("ExifIFD", 0xA431): "camera serial number (EXIF BodySerialNumber)",
    ("ExifIFD", 0xA435): "lens serial number (EXIF LensSerialNumber)",
    ("ExifIFD", 0xA430): "camera owner's name (EXIF CameraOwnerName)",
    ("ExifIFD", 0x927C): "maker notes (EXIF MakerNote, which carry serial numbers)",
}
# IPTC IIM datasets that place the photo.
_PRIVATE_IIM = {
    (2, 90): "location text (IPTC City)", (2, 92): "location text (IPTC Sub-location)",
    (2, 95): "location text (IPTC Province-State)", (2, 100): "location text (IPTC Country-Code)",
    (2, 101): "location text (IPTC Country-Name)",
}
_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_XMP_MM = "http://ns.adobe.com/xap/1.0/mm/"
# XMP properties by (namespace, local name); a local name of "GPS" stands for every GPS* property.
_PRIVATE_XMP = {
    ("http://ns.adobe.com/exif/1.0/", "GPS"): "GPS position (XMP exif:GPS)",
    ("http://ns.adobe.com/photoshop/1.0/", "City"): "location text (XMP photoshop:City)",
    ("http://ns.adobe.com/photoshop/1.0/", "State"): "location text (XMP photoshop:State)",
    ("http://ns.adobe.com/photoshop/1.0/", "Country"): "location text (XMP photoshop:Country)",
    ("http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/", "Location"): "location text (XMP Iptc4xmpCore:Location)",
    ("http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/", "CountryCode"): "location text (XMP Iptc4xmpCore:CountryCode)",
    (_IPTC_EXT, "LocationCreated"): "location text (XMP Iptc4xmpExt:LocationCreated)",
    (_IPTC_EXT, "LocationShown"): "location text (XMP Iptc4xmpExt:LocationShown)",
    (_IPTC_EXT, "Sublocation"): "location text (XMP Iptc4xmpExt:Sublocation)",
    (_IPTC_EXT, "City"): "location text (XMP Iptc4xmpExt:City)",
    ("http://ns.adobe.com/exif/1.0/aux/", "SerialNumber"): "camera serial number (XMP aux:SerialNumber)",
    ("http://ns.adobe.com/exif/1.0/aux/", "LensSerialNumber"): "lens serial number (XMP aux:LensSerialNumber)",
    ("http://ns.adobe.com/exif/1.0/aux/", "OwnerName"): "camera owner's name (XMP aux:OwnerName)",
    ("http://cipa.jp/exif/1.0/", "BodySerialNumber"): "camera serial number (XMP exifEX:BodySerialNumber)",
    ("http://cipa.jp/exif/1.0/", "LensSerialNumber"): "lens serial number (XMP exifEX:LensSerialNumber)",
    ("http://cipa.jp/exif/1.0/", "CameraOwnerName"): "camera owner's name (XMP exifEX:CameraOwnerName)",
    (_XMP_MM, "History"): "editing history (XMP xmpMM:History)",
}


def private_traces(path: Path) -> list[str]:
    """What private metadata the image at ``path`` carries (GPS, serial numbers, the owner's name,
    location text, editing history), one phrase each; [] when it carries none.

    Fails closed: a block that cannot be read through (unparseable XMP, a broken EXIF structure) is a
    trace itself, since what it hides cannot be vouched for. Raises ``BadPhoto`` when the file cannot
    be read at all."""
    blocks = _read_blocks(Path(path))
    found: list[str] = []
    if blocks.exif is not None:
        found += _exif_traces(blocks.exif)
    if blocks.iptc is not None:
        warnings: list[str] = []
        found += [_PRIVATE_IIM[(r, d)] for r, d, value in _iim_records(blocks.iptc, warnings)
                  if (r, d) in _PRIVATE_IIM and value.strip(b"\x00 ")]
        found += ["IPTC data that cannot be read through"] if warnings else []
    packets = [blocks.xmp] if blocks.xmp is not None else []
    packets += [b"".join(chunks[o] for o in sorted(chunks)) for _n, chunks in blocks.xmp_extended.values()]
    for packet in packets:
        found += _xmp_traces(packet)
    return list(dict.fromkeys(found))


def _exif_traces(data: bytes) -> list[str]:
    warnings: list[str] = []
    tiff = _Tiff.open(data, warnings, "EXIF")
    if tiff is None:
        return ["an EXIF block that cannot be read"]
    ifd0 = tiff.ifd(tiff.first_ifd, "IFD0")
    found = ["GPS position (EXIF GPS directory)"] if _GPS_IFD in ifd0 else []
    directories = {"IFD0": ifd0, "ExifIFD": _sub_ifd(tiff, ifd0, _EXIF_IFD, "ExifIFD")}
    found += [what for (name, tag), what in _PRIVATE_EXIF_TAGS.items() if tag in directories[name]]
    if any("outside the data" in w or "directory is bad" in w or "loop" in w for w in warnings):
        found.append("an EXIF structure that cannot be read through")
    return found


def _xmp_traces(packet: bytes) -> list[str]:
    document = _xmp_document(packet)
    if b"<!DOCTYPE" in document or b"<!ENTITY" in document or b"\x00!\x00D" in document:
        return ["an XMP packet with a DTD"]
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError:
        return ["an XMP packet that cannot be read"]
    names = [element.tag for element in root.iter()] + [key for element in root.iter() for key in element.attrib]
    found = []
    for qualified in names:
        namespace, _, local = qualified[1:].partition("}") if qualified.startswith("{") else ("", "", qualified)
        key = (namespace, "GPS" if local.startswith("GPS") else local)
        if key in _PRIVATE_XMP:
            found.append(_PRIVATE_XMP[key])
    return found
