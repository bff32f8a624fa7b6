"""read_metadata against exiftool's readings of 43 real photos, plus broken and hand-built files."""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from crosswatch.errors import BadPhoto
from crosswatch.metadata import read_metadata

PHOTOS = Path(__file__).resolve().parent / "data" / "photos"
EXPECTED: dict[str, dict[str, Any]] = json.loads((PHOTOS / "expected.json").read_text(encoding="utf-8"))
FULL: dict[str, dict[str, Any]] = {
    Path(entry["SourceFile"]).name: entry
    for entry in json.loads((PHOTOS / "exiftool-full.json").read_text(encoding="utf-8"))
}
PHOTO_NAMES = sorted(EXPECTED)


# ---------------------------------------------------------------------------------------------------
# What exiftool says each JSON key should be


def _first_of(entry: dict[str, Any], *keys: str) -> Any:
    return next((entry[k] for k in keys if entry.get(k) is not None), None)


def _as_list(value: Any) -> list[str]:
    # exiftool prints a one-item list as a plain value, and numeric-looking strings as numbers
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _iso(exiftool_date: str | None) -> str | None:
    if exiftool_date is None:
        return None
    return re.sub(r"^(\d{4}):(\d{2}):(\d{2})(?: (.*))?$",
                  lambda m: f"{m[1]}-{m[2]}-{m[3]}" + (f"T{m[4]}" if m[4] else ""), exiftool_date)


def exiftool_reading(name: str) -> dict[str, Any]:
    """exiftool's value for each key of ``Metadata.as_json``: MWG composites where exiftool has them."""
    expected, full = EXPECTED[name], FULL[name]
    rating = full.get("XMP-xmp:Rating")
    return {
        "title": _first_of(expected, "XMP-dc:Title", "IPTC:ObjectName"),
        "description": expected["MWG:Description"],
        "creator": _as_list(expected["MWG:Creator"]),
        "copyright": expected["MWG:Copyright"],
        "credit": _first_of(expected, "XMP-photoshop:Credit", "IPTC:Credit"),
        "usage_terms": expected["XMP-xmpRights:UsageTerms"],
        "web_statement": expected["XMP-xmpRights:WebStatement"],
        "keywords": _as_list(expected["MWG:Keywords"]),
        "rating": None if rating is None else int(rating),
        "alt_text": full.get("XMP-iptcCore:AltTextAccessibility"),
        "date_taken": _iso(expected["MWG:DateTimeOriginal"]),
        # MWG:Orientation is EXIF only; XMP tiff:Orientation is the fallback when there is no EXIF.
        "orientation": _first_of(expected, "MWG:Orientation", "XMP-tiff:Orientation"),
        "make": expected["EXIF:Make"],
        "model": expected["EXIF:Model"],
        "lens": _first_of(full, "ExifIFD:LensModel", "XMP-exifEX:LensModel", "XMP-aux:Lens"),
        "width": expected["File:ImageWidth"],
        "height": expected["File:ImageHeight"],
        "has_gps": expected["GPS:present"],
        "label": full.get("XMP-xmp:Label"),
        "hierarchical_subject": _as_list(full.get("XMP-lr:HierarchicalSubject")),
    }


# (file, key) -> (our value, why it differs from exiftool's reading)
EXCEPTIONS: dict[tuple[str, str], tuple[Any, str]] = {
    ("dn-Nikon D1X.jpg", "creator"): (
        [], "exiftool returns the empty IPTC By-line ''; a blank credit is no credit, so it is dropped"),
    ("dn-Nikon D1X.jpg", "title"): (
        None, "exiftool returns the empty IPTC ObjectName ''; blank values are treated as absent"),
    ("dn-Nikon D1X.jpg", "credit"): (
        None, "exiftool returns the empty IPTC Credit ''; blank values are treated as absent"),
}


@pytest.mark.parametrize("name", PHOTO_NAMES)
def test_every_key_equals_exiftools_reading(name: str) -> None:
    ours = read_metadata(PHOTOS / name).as_json()
    theirs = exiftool_reading(name)
    for key, exiftool_value in theirs.items():
        exception = EXCEPTIONS.get((name, key))
        if exception is not None:
            expected_value, reason = exception
            assert exiftool_value != expected_value, f"stale exception {name}/{key}: {reason}"
            assert ours[key] == expected_value, f"{name}: {key} ({reason})"
        else:
            assert ours[key] == exiftool_value, f"{name}: {key}"


def test_every_json_key_is_compared() -> None:
    compared = set(exiftool_reading(PHOTO_NAMES[0]))
    assert set(read_metadata(PHOTOS / PHOTO_NAMES[0]).as_json()) - compared == {"warnings"}


def test_mwg_precedence_on_the_deliberately_conflicting_file() -> None:
    metadata = read_metadata(PHOTOS / "et-MWG.jpg")
    assert metadata.creator == ("RIGHT1of2-EXIF-Creator", "RIGHT2of2-EXIF-Creator")
    assert metadata.description == "RIGHT-EXIF-Description"
    assert metadata.copyright == "RIGHT-XMP-Copyright"
    assert metadata.keywords == ("RIGHT1of2-XMP-Keywords", "RIGHT2of2-XMP-Keywords")


def test_a_stale_iptc_digest_makes_iptc_win_and_says_so() -> None:
    metadata = read_metadata(PHOTOS / "et-ExifTool.jpg")
    assert metadata.keywords == ("jambalaya",)  # IPTC, not the XMP's ExifTool/Test/XMP
    assert any("IPTCDigest is not current" in w for w in metadata.warnings)


def test_xmp_in_sync_recovers_the_full_credit_that_iptc_cut_at_32_bytes() -> None:
    metadata = read_metadata(PHOTOS / "dn-Issue 600 (1).jpg")
    assert metadata.credit is not None
    assert metadata.credit.startswith("NASA, ESA, Michael Wong (Space Telescope Science Institute")
    assert metadata.usage_terms == "Creative Commons Attribution 4.0 International License"


def test_undeclared_latin1_iptc_is_decoded_from_the_raw_bytes() -> None:
    raw_hex = EXPECTED["dn-Nikon E995 (iptc).jpg"]["IPTC:raw_hex_nonascii"]["IPTC:Caption-Abstract"][0]
    raw = bytes.fromhex(raw_hex)
    metadata = read_metadata(PHOTOS / "dn-Nikon E995 (iptc).jpg")
    assert metadata.description == raw.decode("latin-1")
    assert "Dateigröße" in (metadata.description or "")


def test_heic_size_and_exif_come_through_pillow_heif() -> None:
    pytest.importorskip("pillow_heif")
    metadata = read_metadata(PHOTOS / "dn-IMG_2927.HEIC")
    assert (metadata.width, metadata.height) == (3024, 4032)
    assert metadata.date_taken == "2020-05-04T18:39:11.644-04:00"


# ---------------------------------------------------------------------------------------------------
# Broken files: never an exception, warnings that say what is wrong

BROKEN_FILE_WARNINGS = {
    "pil-truncated_exif_dpi.jpg": "EXIF block is only 7 bytes (truncated)",
    "pil-invalid-exif.jpg": "no valid TIFF header",
    "pil-hopper_bad_exif.jpg": "IFD0 directory is bad",
    "pil-exif_gps_typeerror.jpg": "GPS pointer has the wrong format (string)",
    "pil-exif-ifd-offset.jpg": "IFD1 tag 0x0000 points outside the data",
    "pil-multiple_exif.jpg": "EXIF is split over 2 APP1 segments",
    "pil-empty_gps_ifd.jpg": "GPS directory is empty",
    "pil-broken.png": "PNG chunk at byte 8 is damaged",
    "dn-Nikon D1X.jpg": "GPS tag 0x0000 has an unknown type (0)",
}
# Broken in a part crosswatch never reads, so there is nothing to warn about (exiftool agrees: no
# warning for the first; the second's damage is in the Nikon maker notes, which crosswatch skips).
BROKEN_BUT_NOT_IN_WHAT_WE_READ = {
    "pil-truncated_jpeg.jpg": "the image data is cut short; metadata is read without decoding pixels",
    "exifpy-nikon_D3100_TypeError.jpg": "the damage is inside the Nikon MakerNote, which is not read",
}


@pytest.mark.parametrize("name", sorted(BROKEN_FILE_WARNINGS))
def test_broken_files_yield_what_could_be_read_plus_a_warning(name: str) -> None:
    metadata = read_metadata(PHOTOS / name)
    assert any(BROKEN_FILE_WARNINGS[name] in w for w in metadata.warnings), metadata.warnings


@pytest.mark.parametrize("name", sorted(BROKEN_BUT_NOT_IN_WHAT_WE_READ))
def test_damage_outside_the_metadata_we_read_does_not_disturb_reading(name: str) -> None:
    metadata = read_metadata(PHOTOS / name)
    assert metadata.warnings == ()
    assert metadata.width and metadata.height


def test_the_broken_set_is_the_eleven_files_named_in_sources() -> None:
    assert len(BROKEN_FILE_WARNINGS) + len(BROKEN_BUT_NOT_IN_WHAT_WE_READ) == 11
    sources = (PHOTOS / "SOURCES.md").read_text(encoding="utf-8")
    for name in (*BROKEN_FILE_WARNINGS, *BROKEN_BUT_NOT_IN_WHAT_WE_READ):
        assert f"`{name}`" in sources


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from([n for n in PHOTO_NAMES if not n.endswith(".HEIC")]),
    cut=st.floats(min_value=0.0, max_value=1.0),
    flips=st.lists(st.tuples(st.floats(min_value=0.0, max_value=1.0), st.integers(0, 255)), max_size=8),
)
def test_truncated_or_corrupted_photos_never_raise(tmp_path_factory: pytest.TempPathFactory, name: str,
                                                   cut: float, flips: list[tuple[float, int]]) -> None:
    data = bytearray((PHOTOS / name).read_bytes())
    # keep the signature so the file is still recognisably an image; damage everything after it
    head = 16
    for where, value in flips:
        data[head + int(where * (len(data) - head - 1))] = value
    damaged = bytes(data[: max(head, int(cut * len(data)))])
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(damaged)
    metadata = read_metadata(path)
    assert isinstance(metadata.warnings, tuple)


def _pillow_made(image_format: str) -> bytes:
    exif = Image.Exif()
    exif[0x013B] = "Ana Lima"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    out = io.BytesIO()
    if image_format == "TIFF":
        Image.new("RGB", (9, 5)).save(out, image_format, tiffinfo=exif)
    else:
        Image.new("RGB", (9, 5)).save(out, image_format, exif=exif.tobytes())
    return out.getvalue()


PILLOW_MADE = {name: _pillow_made(name) for name in ("TIFF", "WEBP", "PNG")}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    image_format=st.sampled_from(sorted(PILLOW_MADE)),
    cut=st.integers(min_value=12, max_value=4000),
    flips=st.lists(st.tuples(st.integers(min_value=12, max_value=4000), st.integers(0, 255)), max_size=6),
)
def test_damaged_tiff_webp_and_png_never_raise(tmp_path_factory: pytest.TempPathFactory, image_format: str,
                                               cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(PILLOW_MADE[image_format])
    for where, value in flips:
        if where < len(data):
            data[where] = value
    path = tmp_path_factory.mktemp("fuzz") / f"damaged.{image_format.lower()}"
    path.write_bytes(bytes(data[:cut]))
    assert isinstance(read_metadata(path).warnings, tuple)


# ---------------------------------------------------------------------------------------------------
# Not an image at all


@pytest.mark.parametrize(("content", "says"), [
    (b"", "the file is empty"),
    (b"hello, this is text\n", "not an image"),
    (b"%PDF-1.7\n", "not an image"),
])
def test_a_file_that_is_not_an_image_is_a_bad_photo_with_one_clear_line(tmp_path: Path, content: bytes,
                                                                        says: str) -> None:
    path = tmp_path / "notes.jpg"
    path.write_bytes(content)
    with pytest.raises(BadPhoto) as raised:
        read_metadata(path)
    message = str(raised.value)
    assert says in message and str(path) in message and "\n" not in message


def test_a_missing_file_is_a_bad_photo(tmp_path: Path) -> None:
    with pytest.raises(BadPhoto, match="cannot read"):
        read_metadata(tmp_path / "gone.jpg")


# ---------------------------------------------------------------------------------------------------
# Hand-built files for the rules no test photo covers


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _iim(*datasets: tuple[int, int, bytes]) -> bytes:
    return b"".join(b"\x1c" + bytes([record, number]) + struct.pack(">H", len(value)) + value
                    for record, number, value in datasets)


def _photoshop(iptc: bytes, digest: bytes | None) -> bytes:
    def resource(resource_id: int, data: bytes) -> bytes:
        padding = b"\x00" if len(data) % 2 else b""
        # signature, id, empty Pascal name (padded to even), size, data padded to even
        return b"8BIM" + struct.pack(">HHI", resource_id, 0, len(data)) + data + padding
    return b"Photoshop 3.0\x00" + resource(0x0404, iptc) + (resource(0x0425, digest) if digest else b"")


def _xmp(properties: str) -> bytes:
    return (
        b"http://ns.adobe.com/xap/1.0/\x00<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?>"
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
        b"<rdf:Description xmlns:dc='http://purl.org/dc/elements/1.1/' "
        b"xmlns:photoshop='http://ns.adobe.com/photoshop/1.0/' xmlns:xmp='http://ns.adobe.com/xap/1.0/' "
        b"xmlns:Iptc4xmpCore='http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/' "
        b"xmlns:lr='http://ns.adobe.com/lightroom/1.0/' xmlns:exif='http://ns.adobe.com/exif/1.0/' "
        b"xmlns:xmpRights='http://ns.adobe.com/xap/1.0/rights/'"
        + properties.encode("utf-8")
        + b"</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end='w'?>   \x00\x00"
    )


def _jpeg(*segments: bytes) -> bytes:
    frame = _segment(0xC0, b"\x08" + struct.pack(">HH", 30, 40) + b"\x01\x01\x11\x00")
    return b"\xff\xd8" + b"".join(segments) + frame + b"\xff\xda\x00\x02\xff\xd9"


def test_undeclared_utf8_iptc_is_read_as_utf8_not_latin1(tmp_path: Path) -> None:
    path = tmp_path / "corbis.jpg"
    iptc = _iim((2, 116, "© Corbis".encode()))
    path.write_bytes(_jpeg(_segment(0xED, _photoshop(iptc, None))))
    assert read_metadata(path).copyright == "© Corbis"


def test_declared_latin1_iptc_is_read_as_latin1(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jpg"
    iptc = _iim((1, 90, b"\x1b-A"), (2, 80, "Zoë Müller".encode("latin-1")))
    path.write_bytes(_jpeg(_segment(0xED, _photoshop(iptc, None))))
    assert read_metadata(path).creator == ("Zoë Müller",)


def test_xmp_wins_when_the_iptc_digest_matches(tmp_path: Path) -> None:
    iptc = _iim((1, 90, b"\x1b%G"), (2, 5, b"IPTC title"), (2, 25, b"iptc"))
    xmp = "><dc:title><rdf:Alt><rdf:li xml:lang='x-default'>XMP title</rdf:li></rdf:Alt></dc:title>"
    path = tmp_path / "synced.jpg"
    path.write_bytes(_jpeg(_segment(0xE1, _xmp(xmp)),
                           _segment(0xED, _photoshop(iptc, hashlib.md5(iptc).digest()))))
    metadata = read_metadata(path)
    assert metadata.title == "XMP title"
    assert metadata.keywords == ("iptc",)  # XMP has no dc:subject, and it is in sync: IPTC keywords


def test_stale_digest_keeps_iptc_but_recovers_values_cut_at_the_iim_limit(tmp_path: Path) -> None:
    full_credit = "A very long credit line that IIM had to cut"
    iptc = _iim((2, 110, full_credit.encode()[:32]), (2, 5, b"Edited later"))
    xmp = f" photoshop:Credit='{full_credit}'><dc:title><rdf:Alt><rdf:li xml:lang='x-default'>Old</rdf:li>" \
          "</rdf:Alt></dc:title>"
    path = tmp_path / "stale.jpg"
    path.write_bytes(_jpeg(_segment(0xE1, _xmp(xmp)), _segment(0xED, _photoshop(iptc, b"\x00" * 16))))
    metadata = read_metadata(path)
    assert metadata.title == "Edited later"
    assert metadata.credit == full_credit


def test_xmp_only_fields_alt_text_rating_label_and_hierarchy(tmp_path: Path) -> None:
    xmp = (" xmp:Rating='4' xmp:Label='Red'><Iptc4xmpCore:AltTextAccessibility><rdf:Alt>"
           "<rdf:li xml:lang='en'>A heron</rdf:li><rdf:li xml:lang='x-default'>A grey heron</rdf:li>"
           "</rdf:Alt>"
           "</Iptc4xmpCore:AltTextAccessibility><lr:hierarchicalSubject><rdf:Bag><rdf:li>Birds|Heron</rdf:li>"
           "</rdf:Bag></lr:hierarchicalSubject><exif:GPSLatitude>51,30.0N</exif:GPSLatitude>"
           "<xmpRights:WebStatement rdf:resource='https://example.com/licence'/>")
    path = tmp_path / "xmp.jpg"
    path.write_bytes(_jpeg(_segment(0xE1, _xmp(xmp))))
    metadata = read_metadata(path)
    assert metadata.alt_text == "A grey heron"
    assert (metadata.rating, metadata.label) == (4, "Red")
    assert metadata.hierarchical_subject == ("Birds|Heron",)
    assert metadata.web_statement == "https://example.com/licence"
    assert metadata.has_gps
    assert (metadata.width, metadata.height) == (40, 30)


def test_jpeg_extended_xmp_is_joined_and_merged(tmp_path: Path) -> None:
    extended = (
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
        "<rdf:Description xmlns:dc='http://purl.org/dc/elements/1.1/'><dc:subject><rdf:Bag>"
        + "".join(f"<rdf:li>keyword {i}</rdf:li>" for i in range(40))
        + "</rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    guid = hashlib.md5(extended).hexdigest().upper().encode()
    header = b"http://ns.adobe.com/xmp/extension/\x00" + guid + struct.pack(">I", len(extended))
    half = len(extended) // 2
    main = _xmp(f" xmlns:xmpNote='http://ns.adobe.com/xmp/note/' xmpNote:HasExtendedXMP='{guid.decode()}'>"
                "<dc:title><rdf:Alt><rdf:li xml:lang='x-default'>Main</rdf:li></rdf:Alt></dc:title>")
    path = tmp_path / "extended.jpg"
    path.write_bytes(_jpeg(_segment(0xE1, main),
                           _segment(0xE1, header + struct.pack(">I", half) + extended[half:]),
                           _segment(0xE1, header + struct.pack(">I", 0) + extended[:half])))
    metadata = read_metadata(path)
    assert metadata.title == "Main"
    assert metadata.keywords == tuple(f"keyword {i}" for i in range(40))
    assert metadata.warnings == ()


def test_png_xmp_in_compressed_itxt_and_in_plain_text_chunks(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    packet = _xmp(" photoshop:Credit='Agency'>").split(b"\x00", 1)[1].rstrip(b"\x00 ").decode()
    for chunk in ("itxt", "text"):
        info = PngImagePlugin.PngInfo()
        if chunk == "itxt":
            info.add_itxt("XML:com.adobe.xmp", packet, zip=True)
        else:
            info.add_text("XML:com.adobe.xmp", packet)
        path = tmp_path / f"{chunk}.png"
        Image.new("RGB", (3, 2)).save(path, pnginfo=info)
        assert read_metadata(path).credit == "Agency", chunk


def test_utf8_iptc_cut_inside_a_character_by_the_iim_limit_loses_only_that_character(tmp_path: Path) -> None:
    cut = "Zoë Ångström-Sø".encode()[:-1]  # a length limit fell between the two bytes of "ø"
    path = tmp_path / "cut.jpg"
    path.write_bytes(_jpeg(_segment(0xED, _photoshop(_iim((1, 90, b"\x1b%G"), (2, 80, cut)), None))))
    metadata = read_metadata(path)
    assert metadata.creator == ("Zoë Ångström-S",)
    assert metadata.warnings == ()


def test_xmp_with_a_dtd_is_refused(tmp_path: Path) -> None:
    packet = (b"http://ns.adobe.com/xap/1.0/\x00<!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'>]>"
              b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>&a;</x:xmpmeta>")
    path = tmp_path / "dtd.jpg"
    path.write_bytes(_jpeg(_segment(0xE1, packet)))
    assert any("DTD" in w for w in read_metadata(path).warnings)


def test_mwg_quoted_artist_list_is_split_like_exiftool(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x013B] = '"Smith; Jones"; Doe'
    path = tmp_path / "artists.jpg"
    Image.new("RGB", (4, 4)).save(path, exif=exif.tobytes())
    assert read_metadata(path).creator == ("Smith; Jones", "Doe")


def test_exif_offset_time_and_subseconds_make_the_iso_date(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 3
    exif.get_ifd(0x8769).update({0x9003: "2024:05:06 07:08:09", 0x9291: "25", 0x9011: "+02:00"})
    path = tmp_path / "dated.jpg"
    Image.new("RGB", (6, 4)).save(path, exif=exif.tobytes())
    metadata = read_metadata(path)
    assert metadata.date_taken == "2024-05-06T07:08:09.25+02:00"
    assert metadata.orientation == 3


@pytest.mark.parametrize("image_format", ["TIFF", "WEBP", "PNG"])
def test_tiff_webp_and_png_carry_exif(tmp_path: Path, image_format: str) -> None:
    exif = Image.Exif()
    exif[0x013B] = "Ana Lima"
    exif[0x0112] = 6
    path = tmp_path / f"photo.{image_format.lower()}"
    out = io.BytesIO()
    if image_format == "TIFF":  # in a TIFF the EXIF tags live in IFD0 itself
        Image.new("RGB", (12, 7)).save(out, image_format, tiffinfo=exif)
    else:
        Image.new("RGB", (12, 7)).save(out, image_format, exif=exif.tobytes())
    path.write_bytes(out.getvalue())
    metadata = read_metadata(path)
    assert (metadata.creator, metadata.orientation) == (("Ana Lima",), 6)
    assert (metadata.width, metadata.height) == (12, 7)
