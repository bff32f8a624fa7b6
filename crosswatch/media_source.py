"""Opening a photo safely and turning it into upright sRGB pixels (the first half of media.py).

Order of work, cheapest and most defensive first:
0. only a regular file is opened, without blocking (photofile.open_photo: a FIFO or a device in a
   watched folder must not stop anything);
1. the file's size on disk (``media.max_input_bytes``), before anything reads it;
2. the header only (``Image.open`` is lazy): format, pixel count (``media.max_pixels``), orientation,
   the credit (creator, copyright) and the keepable EXIF groups;
3. one decode, shrunk in the DCT domain (``Image.draft``) when every target wants a much smaller
   image, then mode, colour profile, alpha and orientation put right once for all targets.

Pillow's warnings about odd files (corrupt EXIF, decompression-bomb size, malformed MPO) are
collected into ``Source.warnings`` rather than escaping: the sizes are checked here against the
config, and a metadata warning must not cost a photo whose pixels are good.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image, ImageCms, IptcImagePlugin, TiffImagePlugin, UnidentifiedImageError

from crosswatch.config import MediaConfig
from crosswatch.errors import BadPhoto
from crosswatch.photofile import NotRegularFile, heif_support, open_photo

# The formats crosswatch reads; anything else is refused before a decoder runs on it.
# (MPO, a JPEG with extra frames, is opened by the JPEG plugin.)
READABLE_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "GIF", "BMP", "HEIF", "AVIF")
# Major brands of the ISO-BMFF ``ftyp`` box that mean HEIF/HEIC (AVIF is read by Pillow itself).
HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
                         b"msf1"})
HEIC_HINT = "HEIC/HEIF photos need the optional extra: pip install 'crosswatch[heic]'"

TAG_ORIENTATION = 0x0112
TAG_ARTIST = 0x013B
TAG_COPYRIGHT = 0x8298
IFD_EXIF = 0x8769

# EXIF tags per keepable group, as (sub-IFD or None for IFD0, tag). Serial numbers, maker notes and
# GPS are deliberately in no group: they are never copied.
KEEPABLE_TAGS: dict[str, tuple[tuple[int | None, int], ...]] = {
    "camera": ((None, 0x010F), (None, 0x0110), (IFD_EXIF, 0xA433), (IFD_EXIF, 0xA434)),
    "datetime": ((IFD_EXIF, 0x9003), (IFD_EXIF, 0x9011), (IFD_EXIF, 0x9291)),
    "exposure": ((IFD_EXIF, 0x829A), (IFD_EXIF, 0x829D), (IFD_EXIF, 0x8827), (IFD_EXIF, 0x920A),
                 (IFD_EXIF, 0x9204), (IFD_EXIF, 0xA405)),
}

# EXIF orientation -> the transpose that makes the pixels upright (as ImageOps.exif_transpose).
ORIENTATION_FIX: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# "<!DOCTYPE" or "<!ENTITY", in UTF-8 or UTF-16 (a NUL byte may follow each character).
DTD_MARK = re.compile(b"<\x00?!\x00?(" + b"|".join(b"\x00?".join(bytes([c]) for c in word)
                                                      for word in (b"DOCTYPE", b"ENTITY")) + b")")
NS_DC = "{http://purl.org/dc/elements/1.1/}"
NS_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
NS_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class Credit:
    """Who made the photo and who holds the rights: the metadata that travels with the file."""

    creator: tuple[str, ...] = ()
    copyright: str | None = None


@dataclass
class Source:
    """One photo, opened: header facts first, pixels after ``decode``."""

    path: Path
    image: Image.Image
    format: str
    orientation: int
    credit: Credit
    keepable: dict[str, list[tuple[int | None, int, Any]]]
    warnings: list[str] = field(default_factory=list)
    # False until orientation, credit and keepable EXIF are read (for most formats: at open).
    metadata_read: bool = False
    # The file the image reads from (opened by open_photo), and the limits it was opened under.
    handle: BinaryIO | None = None
    media: MediaConfig = field(default_factory=MediaConfig)

    def close(self) -> None:
        self.image.close()
        if self.handle is not None:
            self.handle.close()

    @property
    def stored_size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def upright_size(self) -> tuple[int, int]:
        """The header's size as it will be after orientation (before any draft shrink)."""
        width, height = self.image.size
        return (height, width) if self.orientation in (5, 6, 7, 8) else (width, height)


def reject(path: Path, reason: str) -> BadPhoto:
    return BadPhoto(f"{path.name}: {reason}")


# ---------------------------------------------------------------------------------------------------
# Opening


_WARNINGS_TURN = threading.RLock()


@contextlib.contextmanager
def collected_warnings(into: list[str]) -> Iterator[None]:
    """Pillow's warnings become notes on the photo instead of exceptions or log noise.

    ``warnings.catch_warnings`` swaps process-wide state; at worst a warning raised by another thread
    at the same instant lands in this list, which costs nothing. Two threads inside it at once (the
    runner decoding, intake checking a new file) could leave in the wrong order and leave one's
    filters and recorder installed for good, so they take turns.
    """
    with _WARNINGS_TURN, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        text = str(item.message).splitlines()[0] if str(item.message) else type(item.message).__name__
        if text not in into:
            into.append(text)


def _looks_like_heif(head: bytes) -> bool:
    return len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def open_source(path: Path, media: MediaConfig) -> Source:
    """Check size, open the header, and read what must be read before decoding. Raises BadPhoto."""
    try:
        handle = open_photo(path)
    except NotRegularFile as exc:
        raise reject(path, exc.reason) from None
    except OSError as exc:
        raise reject(path, f"cannot read the file ({exc.strerror or exc})") from None
    try:
        return _open_source(path, handle, media)
    except BaseException:
        handle.close()
        raise


def _open_source(path: Path, handle: BinaryIO, media: MediaConfig) -> Source:
    try:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(16)
    except OSError as exc:
        raise reject(path, f"cannot read the file ({exc.strerror or exc})") from None
    if size > media.max_input_bytes:
        raise reject(path, f"the file is {size:,} bytes, more than media.max_input_bytes "
                           f"({media.max_input_bytes:,}); export it smaller or raise the limit")
    if size == 0:
        raise reject(path, "the file is empty")
    formats = readable_formats(head)
    if formats is None:
        raise reject(path, HEIC_HINT)
    notes: list[str] = []
    with collected_warnings(notes):
        image = _open_header(path, handle, formats, media)
    source = Source(path=path, image=image, format=image.format or "?", orientation=1, credit=Credit(),
                    keepable={}, warnings=notes, handle=handle, media=media)
    try:
        _check_pixels(path, image, media)
        if _metadata_in_header(image):
            with collected_warnings(source.warnings):
                _read_header_metadata(source)
    except BaseException:
        image.close()
        raise
    return source


def readable_formats(head: bytes) -> list[str] | None:
    """The Pillow formats a file starting with ``head`` may be opened as; None for a HEIF file when
    the optional plugin is not installed (say HEIC_HINT)."""
    heif = _looks_like_heif(head)
    if heif and not heif_support():
        return None
    Image.init()
    return [name for name in READABLE_FORMATS if name in Image.OPEN and (heif or name != "HEIF")]


def _open_header(path: Path, handle: BinaryIO, formats: list[str], media: MediaConfig) -> Image.Image:
    try:
        return Image.open(handle, formats=formats)
    except Image.DecompressionBombError as exc:
        raise reject(path, bomb_reason(exc, media)) from None
    except UnidentifiedImageError:
        raise reject(path, "not an image crosswatch can read (JPEG, PNG, WEBP, TIFF, GIF, BMP, AVIF, "
                           "HEIC) or its header is broken") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise reject(path, f"the image header is broken ({exc})") from None


def _check_pixels(path: Path, image: Image.Image, media: MediaConfig) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise reject(path, f"the image declares an empty size ({width}x{height})")
    reason = too_many_pixels(width, height, media)
    if reason:
        raise reject(path, reason)


def too_many_pixels(width: int, height: int, media: MediaConfig) -> str | None:
    """Why an image this big is refused (``media.max_pixels``), or None when it is not too big."""
    if width * height <= media.max_pixels:
        return None
    return _over_the_limit(f"{width}x{height} = {width * height:,} pixels", media)


def _over_the_limit(declared: str, media: MediaConfig) -> str:
    return (f"the image is {declared}, more than media.max_pixels ({media.max_pixels:,}); "
            "a decompression bomb? If the photo is real, raise the limit")


# Pillow's DecompressionBombError says "Image size (N pixels) exceeds limit of M pixels, ...".
_PILLOW_BOMB_SIZE = re.compile(r"\((\d+) pixels\)")


def bomb_reason(exc: Image.DecompressionBombError, media: MediaConfig) -> str:
    """Pillow's own refusal (past twice its warning limit, before our check could run) in the terms
    of the setting the user controls, ``media.max_pixels``."""
    found = _PILLOW_BOMB_SIZE.search(str(exc))
    declared = int(found.group(1)) if found else None
    if declared is None or declared > media.max_pixels:
        return _over_the_limit(f"{declared:,} pixels" if declared else "more pixels than Pillow opens", media)
    # media.max_pixels was raised past what Pillow will open at all: raising it further cannot help.
    ceiling = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return (f"the image is {declared:,} pixels; media.max_pixels ({media.max_pixels:,}) allows it, but no "
            f"photo of more than {ceiling:,} pixels can be opened here (a decompression bomb?)")


def _metadata_in_header(image: Image.Image) -> bool:
    """False for a PNG whose eXIf chunk may follow the pixels: Pillow's getexif would decode the whole
    image to find it, before the decode that handles errors (and drafts) properly."""
    return not (image.format == "PNG" and "exif" not in image.info)


def _read_header_metadata(source: Source) -> None:
    source.metadata_read = True
    exif = _read_exif(source)
    source.orientation = _orientation(exif, source)
    source.credit = read_credit(source.image, exif)
    source.keepable = _keepable_values(exif)


def _read_exif(source: Source) -> Image.Exif | None:
    try:
        return source.image.getexif()
    except Exception as exc:  # any parser failure in EXIF means "no usable EXIF"
        source.warnings.append(f"EXIF unreadable, ignored ({type(exc).__name__}: {exc})")
        return None


def _orientation(exif: Image.Exif | None, source: Source) -> int:
    if exif is None:
        return 1
    value = exif.get(TAG_ORIENTATION, 1)
    if isinstance(value, tuple) and value:
        value = value[0]
    if not isinstance(value, int) or not 1 <= value <= 8:
        source.warnings.append(f"EXIF orientation {value!r} is not 1..8; treated as 1 (upright)")
        return 1
    return value


def _keepable_values(exif: Image.Exif | None) -> dict[str, list[tuple[int | None, int, Any]]]:
    if exif is None:
        return {}
    found: dict[str, list[tuple[int | None, int, Any]]] = {}
    for group, tags in KEEPABLE_TAGS.items():
        for ifd, tag in tags:
            try:
                value = (exif.get_ifd(ifd) if ifd is not None else exif).get(tag)
            except Exception:  # a broken sub-IFD only loses optional values
                value = None
            if isinstance(value, str):
                value = _clean_text(_repair_utf8(value))
            if value not in (None, "", b""):
                found.setdefault(group, []).append((ifd, tag, value))
    return found


# ---------------------------------------------------------------------------------------------------
# Credit: creator and copyright, EXIF first, then XMP, then IPTC (the MWG order for these fields)


def read_credit(image: Image.Image, exif: Image.Exif | None) -> Credit:
    exif_creator, exif_rights = _exif_credit(exif)
    xmp_creator, xmp_rights = _xmp_credit(image)
    iptc_creator, iptc_rights = _iptc_credit(image)
    creator = exif_creator or xmp_creator or iptc_creator
    rights = exif_rights or xmp_rights or iptc_rights
    return Credit(creator=creator, copyright=rights)


def _clean_text(value: str) -> str:
    return value.replace("\x00", " ").strip()


def _exif_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = _decode_legacy(value)
    return value if isinstance(value, str) else ""


def _exif_credit(exif: Image.Exif | None) -> tuple[tuple[str, ...], str | None]:
    if exif is None:
        return (), None
    artist = _clean_text(_repair_utf8(_exif_text(exif.get(TAG_ARTIST))))
    # EXIF Copyright may hold "photographer\0editor"; keep both parts.
    raw_rights = _repair_utf8(_exif_text(exif.get(TAG_COPYRIGHT)))
    rights = "; ".join(part.strip() for part in raw_rights.split("\x00") if part.strip())
    creators = tuple(name.strip() for name in artist.split(";") if name.strip())
    return creators, rights or None


def _repair_utf8(text: str) -> str:
    """Pillow decodes EXIF ASCII as Latin-1; most writers (exiftool, Lightroom) store UTF-8 there."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _decode_legacy(data: bytes, utf8_declared: bool = False) -> str:
    if utf8_declared:
        return data.decode("utf-8", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def xmp_packet(image: Image.Image) -> bytes | None:
    """The raw XMP packet, wherever this format keeps it."""
    info = image.info
    for key in ("xmp", "XML:com.adobe.xmp"):
        value = info.get(key)
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, bytes) and value:
            return value
    raw = info.get("Raw profile type xmp")  # ImageMagick's PNG zTXt form: "\nxmp\n  LEN\nHEX..."
    if isinstance(raw, str):
        lines = raw.strip().split("\n", 2)
        if len(lines) == 3:
            with contextlib.suppress(ValueError):
                return bytes.fromhex("".join(lines[2].split()))
    if isinstance(image, TiffImagePlugin.TiffImageFile):
        value = image.tag_v2.get(700)
        if isinstance(value, bytes):
            return value
    return None


def _parse_xmp(packet: bytes) -> ET.Element | None:
    # ElementTree never fetches external entities; refusing any DTD also rules out entity expansion.
    if DTD_MARK.search(packet):
        return None
    try:
        return ET.fromstring(packet.strip(b"\x00 \t\r\n"))
    except ET.ParseError:
        return None


def _xmp_credit(image: Image.Image) -> tuple[tuple[str, ...], str | None]:
    packet = xmp_packet(image)
    root = _parse_xmp(packet) if packet else None
    if root is None:
        return (), None
    creators: list[str] = []
    for element in root.iter(f"{NS_DC}creator"):
        creators += [_clean_text(li.text or "") for li in element.iter(f"{NS_RDF}li")]
    rights: str | None = None
    for element in root.iter(f"{NS_DC}rights"):
        items = list(element.iter(f"{NS_RDF}li"))
        preferred = [li for li in items if li.get(NS_XML_LANG) == "x-default"] or items
        if preferred and preferred[0].text and preferred[0].text.strip():
            rights = _clean_text(preferred[0].text)
            break
    return tuple(name for name in creators if name), rights


def _iptc_credit(image: Image.Image) -> tuple[tuple[str, ...], str | None]:
    try:
        iptc = IptcImagePlugin.getiptcinfo(image)  # type: ignore[arg-type]
    except Exception:  # malformed IPTC only loses the fallback credit
        return (), None
    if not iptc:
        return (), None
    utf8 = iptc.get((1, 90)) == b"\x1b%G"

    def texts(key: tuple[int, int]) -> list[str]:
        value = iptc.get(key)
        values = value if isinstance(value, list) else [value] if value else []
        return [_clean_text(_decode_legacy(v, utf8)) for v in values if isinstance(v, bytes)]

    creators = tuple(name for name in texts((2, 80)) if name)
    rights = next((text for text in texts((2, 116)) if text), None)
    return creators, rights


# ---------------------------------------------------------------------------------------------------
# Decoding and correcting the pixels


def decode(source: Source, draft_size: tuple[int, int] | None, background: str) -> Image.Image:
    """The pixels as 8-bit sRGB RGB, alpha flattened onto ``background``; raises BadPhoto.

    The pixels stay as stored: ``source.orientation`` is applied per target after resizing, where it
    moves far fewer pixels. ``draft_size`` is in upright coordinates: the decoded image will be at
    least this big.
    """
    image = source.image
    if getattr(image, "is_animated", False):  # (not n_frames: that walks every frame of a GIF)
        source.warnings.append("animated or multi-page image: the first frame is used")
        image.seek(0)
    if draft_size and source.format in ("JPEG", "MPO"):
        width, height = draft_size
        stored = (height, width) if source.orientation in (5, 6, 7, 8) else (width, height)
        image.draft(None, stored)
    with collected_warnings(source.warnings):
        _load(source)
        if not source.metadata_read:
            _read_header_metadata(source)
        rgb = to_srgb(image, source, background)
    # Nothing of the source's info (comment, EXIF, ICC, XMP) may ride along into an encoder.
    rgb.info = {}
    return rgb


def _load(source: Source) -> None:
    try:
        source.image.load()
    except Image.DecompressionBombError as exc:
        raise reject(source.path, bomb_reason(exc, source.media)) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise reject(source.path, f"the image data cannot be decoded ({_short(exc)}); "
                                  "the file is probably cut short or corrupt: export it again") from None


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def to_srgb(image: Image.Image, source: Source, background: str) -> Image.Image:
    """Any supported mode to 8-bit RGB in sRGB, with alpha flattened."""
    image = _to_eight_bit(image, source)
    image = _convert_profile(image, source)
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    return _flatten(image, background)


def _to_eight_bit(image: Image.Image, source: Source) -> Image.Image:
    mode = image.mode
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode == "PA":
        return image.convert("RGBA")
    if mode == "1":
        return image.convert("L")
    if mode in ("La", "RGBa"):
        return image.convert(mode.upper())
    if mode.startswith("I"):
        return _sixteen_bit_grey_to_l(image)
    if mode == "F":
        raise reject(source.path, "floating-point (HDR/scientific) images are not supported; "
                                  "export an 8- or 16-bit photo")
    if mode not in ("RGB", "RGBA", "RGBX", "L", "LA", "CMYK", "YCbCr", "LAB", "HSV"):
        raise reject(source.path, f"pixel mode {mode} is not supported; export RGB or greyscale")
    return image


def _sixteen_bit_grey_to_l(image: Image.Image) -> Image.Image:
    # Pillow's own I;16 -> L conversion clips at 255; a 16-bit range must be scaled down instead.
    wide = image if image.mode == "I" else image.convert("I")
    _low, high = wide.getextrema()
    if isinstance(high, int | float) and high > 255:
        wide = wide.point(lambda value: value * (255 / 65535))
    return wide.convert("L")


def _convert_profile(image: Image.Image, source: Source) -> Image.Image:
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if _describes_srgb(profile):
            return image  # already sRGB: converting would cost time and change nothing
        output = "RGBA" if "A" in image.mode else "RGB"
        converted = ImageCms.profileToProfile(
            image, profile, _srgb_profile(), renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode=output, flags=ImageCms.Flags.BLACKPOINTCOMPENSATION)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        source.warnings.append(f"embedded colour profile not usable, pixels taken as sRGB ({_short(exc)})")
        return image
    assert converted is not None  # profileToProfile returns None only with inPlace=True
    return converted


def is_srgb(icc: bytes | None) -> bool:
    """Whether pixels tagged with this ICC profile are sRGB as they are (no profile: taken as sRGB),
    so that dropping the profile changes nothing (media.py's outputs carry none)."""
    if not icc:
        return True
    try:
        return _describes_srgb(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return False  # an unreadable profile: the decode path decides what to do with it


def _describes_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    return "srgb" in ImageCms.getProfileDescription(profile).lower().replace(" ", "")


_SRGB: ImageCms.ImageCmsProfile | None = None


def _srgb_profile() -> ImageCms.ImageCmsProfile:
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB


def _flatten(image: Image.Image, background: str) -> Image.Image:
    if image.mode in ("RGBA", "LA"):
        canvas = Image.new("RGB", image.size, background)
        canvas.paste(image.convert("RGBA"), mask=image.getchannel("A"))
        return canvas
    return image.convert("RGB") if image.mode != "RGB" else image
