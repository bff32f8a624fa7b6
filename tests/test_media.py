"""Image preparation per target (crosswatch.media): limits, pixels, privacy, safety, cache.

Every output is checked by reading it back (Pillow, piexif, and exiftool where installed), never by
trusting the PreparedImage that describes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import piexif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageStat

import crosswatch.media as media
import crosswatch.media_passthrough as media_passthrough
import crosswatch.media_source as media_source
import crosswatch.metadata as metadata
from crosswatch.config import Config, MediaConfig, PrivacyConfig, TargetConfig, config_from_mapping
from crosswatch.errors import BadPhoto, ConfigError
from crosswatch.models import Metadata, PreparedImage

PHOTOS = Path(__file__).parent / "data" / "photos"
EXPECTED: dict[str, dict[str, Any]] = json.loads((PHOTOS / "expected.json").read_text(encoding="utf-8"))
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".heic"}
ALL_PHOTOS = sorted(p.name for p in PHOTOS.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

# Of the 11 files SOURCES.md calls malformed, only these two have broken *pixels*; the other nine
# break EXIF, IPTC or maker notes only (Pillow decodes their image data completely), so they must be
# prepared, their broken metadata dropped like any other.
BROKEN_PIXELS = {
    "pil-truncated_jpeg.jpg": "cannot be decoded",  # the entropy-coded data is cut short
    "pil-broken.png": "not an image",  # garbage after the PNG signature: no IHDR to read
}
METADATA_ONLY_BROKEN = {
    "pil-truncated_exif_dpi.jpg", "pil-invalid-exif.jpg", "pil-hopper_bad_exif.jpg",
    "pil-exif_gps_typeerror.jpg", "pil-exif-ifd-offset.jpg", "pil-multiple_exif.jpg", "pil-empty_gps_ifd.jpg",
    "dn-Nikon D1X.jpg", "exifpy-nikon_D3100_TypeError.jpg",
}
GOOD_PHOTOS = [name for name in ALL_PHOTOS if name not in BROKEN_PIXELS]

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
MAKER_NOTE = 0x927C
SERIAL_TAGS = {0xA431: "BodySerialNumber", 0xA435: "LensSerialNumber", 0xC62F: "CameraSerialNumber"}
ARTIST, COPYRIGHT, ORIENTATION = 0x013B, 0x8298, 0x0112
EXIFTOOL = shutil.which("exiftool") or ("/usr/bin/exiftool" if Path("/usr/bin/exiftool").exists() else None)


def make_config(tmp: Path, **media_changes: Any) -> Config:
    return Config(source=tmp / "config.yaml", state_dir=tmp / "state", watch=(), targets={},
                  media=dataclasses.replace(MediaConfig(), **media_changes))


X = TargetConfig(name="x", kind="x")
INSTAGRAM = TargetConfig(name="instagram", kind="instagram")
OUTBOX = TargetConfig(name="outbox", kind="outbox", path=Path("/nonexistent-outbox"))
ALL_TARGETS = (X, INSTAGRAM, OUTBOX)


def read_back(prepared: PreparedImage) -> Image.Image:
    image = Image.open(prepared.path)
    image.load()
    return image


def scan_data(data: bytes) -> bytes:
    """A JPEG's compressed image data: from its first scan (SOS) to its first EOI."""
    marks = [(marker, start, end) for marker, start, end in media_passthrough.segments(data)]
    return data[next(start for marker, start, _end in marks if marker == media_passthrough.SOS):marks[-1][2]]


def passed_through(prepared: PreparedImage, source: Path) -> bool:
    """Whether the output carries the source's own compressed data (a lossless passthrough)."""
    source_data = source.read_bytes()
    if source_data[:2] != b"\xff\xd8":
        return False
    try:
        return scan_data(Path(prepared.path).read_bytes()) == scan_data(source_data)
    except (ValueError, StopIteration):  # a source whose structure breaks was re-encoded
        return False


def assert_meets_spec(prepared: PreparedImage, target: TargetConfig, source: Path) -> None:
    """The file on disk, read back, is what the platform accepts and what the record says; it is
    either the source's own JPEG data (upright, same size, same pixels) or a progressive re-encode."""
    spec = media.SPECS[target.kind]
    data = Path(prepared.path).read_bytes()
    assert len(data) == prepared.bytes
    passthrough = passed_through(prepared, source)
    with read_back(prepared) as image:
        assert image.format == "JPEG" and prepared.format == "JPEG"
        assert image.mode in (("RGB", "L") if passthrough else ("RGB",))
        assert image.size == (prepared.width, prepared.height)
        if passthrough:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a source's broken EXIF (read as no orientation)
                with Image.open(source) as original:
                    assert original.size == image.size and original.tobytes() == image.tobytes()
                with Image.open(source) as original:
                    try:
                        orientation = original.getexif().get(ORIENTATION, 1)
                    except Exception:
                        orientation = 1
                    assert orientation == 1
        else:
            assert image.info.get("progressive") or image.info.get("progression")
        assert "icc_profile" not in image.info  # untagged JPEG == sRGB
        width, height = image.size
    if spec.max_bytes:
        assert len(data) <= spec.max_bytes
    if spec.max_long_edge:
        assert max(width, height) <= spec.max_long_edge
    if spec.max_width:
        assert width <= spec.max_width
    if spec.min_width:
        assert width >= spec.min_width
    if spec.min_aspect:
        assert width / height >= spec.min_aspect
    if spec.max_aspect:
        assert width / height <= spec.max_aspect
    assert prepared.quality is not None
    # A passthrough reports the source's own quality (estimated); a re-encode is within the settings.
    assert 1 <= prepared.quality <= 100 if passthrough else 70 <= prepared.quality <= 92


def assert_private_free(path: Path) -> None:
    """No GPS, maker notes, serial numbers, thumbnail, comments, XMP history or orientation tag."""
    data = path.read_bytes()
    with Image.open(path) as image:
        exif = image.getexif()
        assert GPS_IFD not in exif and not exif.get_ifd(GPS_IFD)
        exif_ifd = exif.get_ifd(EXIF_IFD)
        assert MAKER_NOTE not in exif_ifd
        assert not (set(SERIAL_TAGS) & (set(exif) | set(exif_ifd)))
        assert ORIENTATION not in exif
        assert "comment" not in image.info
        assert not exif.get_ifd(0x1)  # IFD1, the embedded thumbnail
    assert b"\xff\xfe" not in data.split(b"\xff\xda", 1)[0]  # no COM segment before the scan
    assert b"xmpMM" not in data and b"History" not in data and b"photoshop:" not in data
    if b"Exif\x00\x00" in data:
        loaded = piexif.load(data)
        assert loaded["GPS"] == {} and loaded["1st"] == {} and loaded["thumbnail"] is None
        assert piexif.ExifIFD.MakerNote not in loaded["Exif"]
        assert piexif.ExifIFD.BodySerialNumber not in loaded["Exif"]
        assert piexif.ExifIFD.LensSerialNumber not in loaded["Exif"]


def exiftool_private_keys(paths: list[Path]) -> dict[str, list[str]]:
    """exiftool's view: per file, every tag that would be private."""
    assert EXIFTOOL is not None
    out = subprocess.run([EXIFTOOL, "-json", "-G1", "-a", "-n", "--System:all", "--File:all", "--",
                          *map(str, paths)], capture_output=True, check=True, text=True).stdout
    found: dict[str, list[str]] = {}
    for record in json.loads(out):
        bad = [key for key in record
               if key.startswith(("GPS:", "MakerNotes", "XMP-xmpMM", "IFD1:", "XMP-photoshop", "IPTC:"))
               or "Serial" in key or key.endswith((":Comment", ":UserComment", ":ThumbnailImage"))]
        found[record["SourceFile"]] = bad
    return found


# ---------------------------------------------------------------------------------------------------
# Every real photo, once for all tests (module scope keeps the whole file fast)


@pytest.fixture(scope="module")
def prepared_photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("real")
    config = make_config(tmp)
    outcomes: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(ALL_PHOTOS):
        try:
            outcomes[name] = dict(media.prepare_all(PHOTOS / name, f"photo{index}", ALL_TARGETS, config))
        except BadPhoto as exc:
            outcomes[name] = {"rejected": exc}
    return outcomes


@pytest.mark.parametrize("name", GOOD_PHOTOS)
def test_every_good_photo_meets_every_targets_limits(prepared_photos: dict[str, dict[str, Any]],
                                                      name: str) -> None:
    outcome = prepared_photos[name]
    assert "rejected" not in outcome, outcome.get("rejected")
    for target in ALL_TARGETS:
        prepared = outcome[target.name]
        assert isinstance(prepared, PreparedImage), prepared
        assert_meets_spec(prepared, target, PHOTOS / name)


@pytest.mark.parametrize("name", sorted(BROKEN_PIXELS))
def test_photos_with_broken_pixels_are_rejected_with_a_reason(prepared_photos: dict[str, dict[str, Any]],
                                                              name: str) -> None:
    rejected = prepared_photos[name].get("rejected")
    assert isinstance(rejected, BadPhoto)
    message = str(rejected)
    assert message.startswith(name) and BROKEN_PIXELS[name] in message
    assert "\n" not in message


def test_the_broken_set_is_the_one_sources_md_lists() -> None:
    assert set(BROKEN_PIXELS) | METADATA_ONLY_BROKEN <= set(ALL_PHOTOS)
    assert len(set(BROKEN_PIXELS) | METADATA_ONLY_BROKEN) == 11


@pytest.mark.parametrize("name", sorted(METADATA_ONLY_BROKEN))
def test_broken_metadata_keeps_good_pixels(prepared_photos: dict[str, dict[str, Any]], name: str) -> None:
    prepared = prepared_photos[name]["outbox"]
    expected = EXPECTED[name]
    width, height = expected["File:ImageWidth"], expected["File:ImageHeight"]
    if expected.get("EXIF:Orientation") in (5, 6, 7, 8):
        width, height = height, width
    assert (prepared.width, prepared.height) == (width, height)


def test_no_output_carries_private_metadata(prepared_photos: dict[str, dict[str, Any]]) -> None:
    paths = [Path(p.path) for outcome in prepared_photos.values() for p in outcome.values()
             if isinstance(p, PreparedImage)]
    assert len(paths) == 3 * len(GOOD_PHOTOS)
    for path in paths:
        assert_private_free(path)
    if EXIFTOOL:
        leaks = {file: keys for file, keys in exiftool_private_keys(paths).items() if keys}
        assert leaks == {}


def test_sources_really_had_private_metadata_to_strip() -> None:
    # Guards the test above against passing vacuously.
    gps_sources = [name for name in GOOD_PHOTOS if EXPECTED.get(name, {}).get("GPS:present")]
    assert len(gps_sources) >= 4
    with Image.open(PHOTOS / "et-GPS.jpg") as image:
        assert image.getexif().get_ifd(GPS_IFD)
    with Image.open(PHOTOS / "et-NikonD70.jpg") as image:
        assert MAKER_NOTE in image.getexif().get_ifd(EXIF_IFD)
    with Image.open(PHOTOS / "et-ExifTool.jpg") as image:
        assert "comment" in image.info
    assert b"aux:SerialNumber" in (PHOTOS / "dn-Canon EOS 7D.jpg").read_bytes()
    if EXIFTOOL:
        sources = [PHOTOS / name for name in ("et-NikonD70.jpg", "et-GPS.jpg", "dn-Canon EOS 7D.jpg")]
        assert all(exiftool_private_keys(sources).values())


def _source_values(record: dict[str, Any], *keys: str) -> set[str]:
    values: set[str] = set()
    for key in keys:
        value = record.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str | int) and str(item).strip():
                values.add(str(item).strip())
    return values


def _exif_text(value: Any) -> str:
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


CREATOR_KEYS = ("EXIF:Artist", "XMP-dc:Creator", "IPTC:By-line")
RIGHTS_KEYS = ("EXIF:Copyright", "XMP-dc:Rights", "IPTC:CopyrightNotice")


@pytest.mark.parametrize("name", [n for n in GOOD_PHOTOS if n in EXPECTED
                                  and _source_values(EXPECTED[n], *CREATOR_KEYS, *RIGHTS_KEYS)])
def test_creator_and_copyright_travel_with_the_file(prepared_photos: dict[str, dict[str, Any]],
                                                    name: str) -> None:
    record = EXPECTED[name]
    creators = _source_values(record, *CREATOR_KEYS)
    rights = _source_values(record, *RIGHTS_KEYS)
    for target in ALL_TARGETS:
        prepared = prepared_photos[name][target.name]
        with Image.open(prepared.path) as image:
            exif = image.getexif()
            xmp = image.info.get("xmp", b"")
        if creators:
            artist = _exif_text(exif[ARTIST])
            assert artist in creators or set(artist.split("; ")) <= creators, (artist, creators)
            assert b"<dc:creator>" in xmp
        if rights:
            copyright_text = _exif_text(exif[COPYRIGHT])
            assert any(copyright_text.startswith(r) or r.startswith(copyright_text) for r in rights)
            assert b"<dc:rights>" in xmp


@pytest.mark.parametrize(("creator", "rights"), [("Zoë Ångström", "© 2026 Zoë Ångström"),
                                                  ("Tom & Jerry <studio>", "© A&B > C")],
                         ids=["non-ascii", "xml-markup"])
def test_credit_is_readable_by_exiftool(tmp_path: Path, creator: str, rights: str) -> None:
    config = make_config(tmp_path)
    metadata = Metadata(creator=(creator,), copyright=rights)
    prepared = media.prepare_all(PHOTOS / "et-GPS.jpg", "credit", [X], config, metadata=metadata)["x"]
    assert isinstance(prepared, PreparedImage)
    with Image.open(prepared.path) as image:
        assert _exif_text(image.getexif()[ARTIST]) == creator
        packet = image.info["xmp"].decode("utf-8")
    # The XMP is well-formed and carries the text itself (escaped on the way in, not mangled).
    root = ElementTree.fromstring(packet.split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    assert [li.text for li in root.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li")] == [creator, rights]
    if EXIFTOOL:
        out = subprocess.run([EXIFTOOL, "-json", "-G1", "-Artist", "-Copyright", "-XMP-dc:Creator",
                              "-XMP-dc:Rights", prepared.path], capture_output=True, check=True, text=True)
        record = json.loads(out.stdout)[0]
        assert record["IFD0:Artist"] == creator
        assert record["IFD0:Copyright"] == rights
        assert record["XMP-dc:Creator"] == creator
        assert record["XMP-dc:Rights"] == rights


def test_preparing_images_does_not_load_the_network_stack() -> None:
    # xml.sax.saxutils (for escaping XMP text) imported urllib.request, http.client, ssl and email:
    # 3 MB resident in every process that prepares an image, for nothing.
    code = ("import sys, crosswatch.media\n"
            "print(' '.join(m for m in ('urllib.request', 'http.client', 'ssl', 'email') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.strip() == ""


def test_privacy_keep_can_add_camera_and_never_serials(tmp_path: Path) -> None:
    config = dataclasses.replace(make_config(tmp_path),
                                 privacy=PrivacyConfig(keep=("creator", "copyright", "camera", "exposure")))
    prepared = media.prepare_all(PHOTOS / "dn-Canon EOS 7D.jpg", "camera", [X], config)["x"]
    assert isinstance(prepared, PreparedImage)
    with Image.open(prepared.path) as image:
        exif = image.getexif()
        assert exif[0x010F] == "Canon" and exif[0x0110] == "Canon EOS 7D"
        assert 0x829A in exif.get_ifd(EXIF_IFD)  # ExposureTime
    assert_private_free(Path(prepared.path))


def test_privacy_keep_nothing_writes_no_metadata(tmp_path: Path) -> None:
    config = dataclasses.replace(make_config(tmp_path), privacy=PrivacyConfig(keep=()))
    prepared = media.prepare_all(PHOTOS / "et-GPS.jpg", "bare", [X], config)["x"]
    assert isinstance(prepared, PreparedImage)
    data = Path(prepared.path).read_bytes()
    assert b"Exif\x00\x00" not in data and b"xmpmeta" not in data


@pytest.mark.parametrize(("privacy", "message"), [
    ({"keep": ["gps"]}, "always stripped"),
    ({"keep": ["creator", "weather"]}, "unknown group"),
    ({"strip": ["gps", "everything"]}, "unknown group"),
    ({"keep": ["camera"], "strip": ["camera"]}, "both kept and stripped"),
])
def test_privacy_vocabulary_is_validated(tmp_path: Path, privacy: dict[str, Any], message: str) -> None:
    data = {"state_dir": str(tmp_path), "watch": [{"path": str(tmp_path), "targets": ["x"]}],
            "targets": {"x": {}}, "privacy": privacy}
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data, tmp_path / "config.yaml")


# ---------------------------------------------------------------------------------------------------
# Orientation


def test_all_eight_orientations_give_the_same_upright_image(prepared_photos: dict[str, dict[str, Any]]) -> None:
    names = [f"pil-hopper_orientation_{n}.jpg" for n in range(2, 9)]
    uprights = [read_back(prepared_photos[name]["outbox"]) for name in names]
    reference = uprights[0]
    for name, image in zip(names, uprights, strict=True):
        assert image.size == reference.size
        mean_difference = max(ImageStat.Stat(ImageChops.difference(reference, image)).mean)
        assert mean_difference < 4, (name, mean_difference)


@pytest.mark.parametrize("fit", ["pad", "crop"])
@pytest.mark.parametrize("orientation", range(2, 9))
def test_orientation_with_resize_crop_and_pad(tmp_path: Path, orientation: int, fit: str) -> None:
    # The upright picture is 150x600 (1:4, outside Instagram's range); stored un-rotated with an EXIF
    # orientation it must come out exactly like the upright file does, resized, cropped or padded.
    upright = Image.merge("RGB", (Image.linear_gradient("L").resize((150, 600)),
                                  Image.linear_gradient("L").rotate(90).resize((150, 600)),
                                  _quadrants(150, 600).getchannel("B")))
    stored = upright.transpose(_INVERSE_FIX[orientation])
    upright.save(tmp_path / "upright.png")
    stored.save(tmp_path / "stored.png", exif=_exif_with_orientation(orientation))
    config = make_config(tmp_path, fit=fit)
    targets = [INSTAGRAM, TargetConfig(name="x", kind="x")]
    expected = media.prepare_all(tmp_path / "upright.png", "up", targets, config)
    actual = media.prepare_all(tmp_path / "stored.png", f"o{orientation}", targets, config)
    for name in ("instagram", "x"):
        want, got = read_back(expected[name]), read_back(actual[name])  # type: ignore[arg-type]
        assert got.size == want.size
        assert max(ImageStat.Stat(ImageChops.difference(want, got)).mean) < 2.5, name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_boxes_map_to_the_stored_pixels(orientation: int) -> None:
    # Off-centre, so a mapping that is only right for the centred crops media makes would fail here.
    upright = Image.frombytes("L", (40, 30), bytes(range(256)) * 4 + bytes(range(176)))
    stored = upright.transpose(_INVERSE_FIX[orientation]) if orientation > 1 else upright
    box = (3, 5, 17, 26)
    stored_box = media._stored_box(box, orientation, stored.size)
    piece = stored.crop(tuple(round(v) for v in stored_box))  # type: ignore[arg-type]
    if orientation > 1:
        piece = piece.transpose(media.ORIENTATION_FIX[orientation])
    assert piece.tobytes() == upright.crop(box).tobytes()


# Orientation N's stored pixels are the upright picture with the inverse of N's fix applied.
_INVERSE_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def test_orientation_test_is_discriminating() -> None:
    # The stored (un-rotated) pixels really differ, so the test above would catch a missed transpose.
    with Image.open(PHOTOS / "pil-hopper_orientation_2.jpg") as two, \
         Image.open(PHOTOS / "pil-hopper_orientation_6.jpg") as six:
        stored_difference = max(ImageStat.Stat(ImageChops.difference(two.convert("RGB"), six.convert("RGB"))).mean)
    assert stored_difference > 20


def test_orientation_one_and_no_tag_mean_upright(tmp_path: Path) -> None:
    upright = _quadrants(64, 48)
    for index, exif in enumerate((None, _exif_with_orientation(1), _exif_with_orientation(6))):
        path = tmp_path / f"o{index}.png"
        upright.save(path, exif=exif) if exif else upright.save(path)
        prepared = media.prepare_all(path, f"o{index}", [OUTBOX], make_config(tmp_path))["outbox"]
        assert isinstance(prepared, PreparedImage)
        result = read_back(prepared)
        if index < 2:
            assert result.size == (64, 48)
            assert _colour_at(result, 0.25, 0.25) == pytest.approx((255, 0, 0), abs=12)
        else:  # 6: stored rotated 90° clockwise on display, i.e. the red corner moves to top right
            assert result.size == (48, 64)
            assert _colour_at(result, 0.75, 0.25) == pytest.approx((255, 0, 0), abs=12)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        chunks.append((data[at + 4:at + 8], data[at:at + 12 + length]))
        at += 12 + length
    return chunks


def test_png_exif_after_the_pixels_still_orients(tmp_path: Path) -> None:
    # eXIf may legally follow IDAT (pil-exif.png does); Pillow only finds it after decoding.
    path = tmp_path / "late-exif.png"
    _quadrants(64, 48).save(path, exif=_exif_with_orientation(6))
    chunks = _png_chunks(path.read_bytes())
    exif = [raw for kind, raw in chunks if kind == b"eXIf"]
    others = [raw for kind, raw in chunks if kind != b"eXIf"]
    assert len(exif) == 1
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(others[:-1]) + exif[0] + others[-1])  # before IEND
    with Image.open(path) as probe:
        assert "exif" not in probe.info  # not known from the header alone
    prepared = media.prepare_all(path, "late", [OUTBOX], make_config(tmp_path))["outbox"]
    assert isinstance(prepared, PreparedImage) and (prepared.width, prepared.height) == (48, 64)


def test_truncated_png_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BadPhoto, match="cannot be decoded"):
        media.prepare_all(path, "cut", ALL_TARGETS, make_config(tmp_path))


def _exif_with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = value
    return exif.tobytes()


def _quadrants(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height // 2))
    image.paste((0, 255, 0), (width // 2, 0, width, height // 2))
    return image


def _colour_at(image: Image.Image, fx: float, fy: float) -> tuple[int, ...]:
    pixel = image.convert("RGB").getpixel((int(image.width * fx), int(image.height * fy)))
    assert isinstance(pixel, tuple)
    return pixel


# ---------------------------------------------------------------------------------------------------
# Pixel modes and colour


def _prepare_one(tmp_path: Path, image: Image.Image, name: str, target: TargetConfig = OUTBOX,
                 **save: Any) -> Image.Image:
    path = tmp_path / name
    image.save(path, **save)
    prepared = media.prepare_all(path, name.replace(".", "-"), [target],
                                 make_config(tmp_path, background="#ff0000"))[target.name]
    assert isinstance(prepared, PreparedImage)
    return read_back(prepared)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    out = _prepare_one(tmp_path, Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "cmyk.jpg", quality=95)
    assert _colour_at(out, 0.5, 0.5) == pytest.approx((255, 0, 0), abs=16)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    wide = Image.new("I", (32, 32), 32768)  # half of 65535
    out = _prepare_one(tmp_path, wide.convert("I;16"), "grey16.png")
    assert _colour_at(out, 0.5, 0.5) == pytest.approx((128, 128, 128), abs=3)


def test_greyscale_becomes_rgb(tmp_path: Path) -> None:
    out = _prepare_one(tmp_path, Image.new("L", (32, 32), 200), "grey.png")
    assert out.mode == "RGB" and _colour_at(out, 0.5, 0.5) == pytest.approx((200, 200, 200), abs=3)


def test_a_fitting_greyscale_jpeg_passes_through_as_it_is(tmp_path: Path) -> None:
    # The passthrough rule: a greyscale JPEG that fits is its own (greyscale) data, not an RGB re-encode.
    out = _prepare_one(tmp_path, Image.new("L", (32, 32), 200), "grey.jpg")
    assert out.mode == "L" and not out.info.get("progressive") and out.getpixel((16, 16)) == pytest.approx(200, abs=3)


def test_palette_transparency_is_flattened_onto_the_background(tmp_path: Path) -> None:
    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(0, (0, 0, 16, 32))
    out = _prepare_one(tmp_path, palette, "palette.png", transparency=0)
    assert _colour_at(out, 0.2, 0.5) == pytest.approx((255, 0, 0), abs=12)  # background
    assert _colour_at(out, 0.8, 0.5) == pytest.approx((0, 0, 255), abs=12)


def test_alpha_is_flattened_onto_the_background(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (32, 32), (0, 0, 255, 0))
    rgba.paste((0, 0, 255, 255), (16, 0, 32, 32))
    out = _prepare_one(tmp_path, rgba, "alpha.png")
    assert _colour_at(out, 0.2, 0.5) == pytest.approx((255, 0, 0), abs=12)
    assert _colour_at(out, 0.8, 0.5) == pytest.approx((0, 0, 255), abs=12)


def test_animated_images_use_the_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    prepared = media.prepare_all(path, "anim", [X], make_config(tmp_path))["x"]
    assert isinstance(prepared, PreparedImage)
    assert _colour_at(read_back(prepared), 0.5, 0.5) == pytest.approx((0, 255, 0), abs=12)
    assert any("first frame" in note for note in prepared.warnings)


def _icc_swapping_red_and_blue() -> bytes:
    """A minimal ICC v2 RGB profile whose red primary is sRGB's blue and vice versa."""
    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \x00\x00\x00\x00" + s15(x) + s15(y) + s15(z)

    gamma = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, 0x0233) + b"\x00\x00"
    text = b"swapped primaries\x00"
    desc = b"desc\x00\x00\x00\x00" + struct.pack(">I", len(text)) + text + b"\x00" * 4 + b"\x00" * 4 + b"\x00" * 70
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
            (b"rXYZ", xyz(0.1431, 0.0606, 0.7141)), (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
            (b"bXYZ", xyz(0.4361, 0.2225, 0.0139)), (b"rTRC", gamma), (b"gTRC", gamma), (b"bTRC", gamma),
            (b"cprt", b"text\x00\x00\x00\x00public domain\x00")]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        data += b"\x00" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"none" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\x00" * 12 + b"acsp" + b"\x00" * 24 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0)
              + s15(0.8249) + b"\x00" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def test_embedded_colour_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    red = Image.new("RGB", (32, 32), (255, 0, 0))
    out = _prepare_one(tmp_path, red, "tagged.png", icc_profile=_icc_swapping_red_and_blue())
    assert _colour_at(out, 0.5, 0.5) == pytest.approx((0, 0, 255), abs=16)
    assert "icc_profile" not in out.info


def test_unusable_colour_profile_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "badicc.png"
    Image.new("RGB", (16, 16), (10, 200, 30)).save(path, icc_profile=b"not a profile at all" * 10)
    prepared = media.prepare_all(path, "badicc", [X], make_config(tmp_path))["x"]
    assert isinstance(prepared, PreparedImage)
    assert any("colour profile" in note for note in prepared.warnings)


# ---------------------------------------------------------------------------------------------------
# Size, aspect, quality


def _synthetic_photo(path: Path, size: tuple[int, int], quality: int = 90) -> None:
    """A photo-like picture: smooth gradients plus fine detail, centre marked green."""
    width, height = size
    gradient = Image.linear_gradient("L").resize(size)
    detail = Image.effect_noise((width // 8, height // 8), 40).resize(size, Image.Resampling.BILINEAR)
    image = Image.merge("RGB", (gradient, detail, gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))
    image.paste((0, 255, 0), (width // 2 - width // 40, height // 2 - height // 40,
                              width // 2 + width // 40, height // 2 + height // 40))
    image.save(path, quality=quality)


@pytest.fixture(scope="module")
def wide_and_tall(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("synthetic")
    paths = {"4:1": tmp / "wide.jpg", "1:3": tmp / "tall.jpg"}
    _synthetic_photo(paths["4:1"], (9798, 2449))  # 24.0 MP
    _synthetic_photo(paths["1:3"], (2828, 8485))  # 24.0 MP
    return paths


@pytest.mark.parametrize("fit", ["pad", "crop"])
@pytest.mark.parametrize("shape", ["4:1", "1:3"])
def test_24_megapixel_extremes_fit_instagram(tmp_path: Path, wide_and_tall: dict[str, Path], fit: str,
                                             shape: str) -> None:
    config = make_config(tmp_path, fit=fit, pad_color="#0000ff")
    result = media.prepare_all(wide_and_tall[shape], "extreme", [INSTAGRAM, X], config)
    prepared = result["instagram"]
    assert isinstance(prepared, PreparedImage)
    assert_meets_spec(prepared, INSTAGRAM, wide_and_tall[shape])
    assert prepared.fit == fit
    untouched = result["x"]  # X takes any aspect
    assert isinstance(untouched, PreparedImage) and untouched.fit is None
    assert_meets_spec(untouched, X, wide_and_tall[shape])
    out = read_back(prepared)
    assert _colour_at(out, 0.5, 0.5) == pytest.approx((0, 255, 0), abs=20)  # the centre survives
    edge = (0.5, 0.01) if shape == "4:1" else (0.01, 0.5)
    if fit == "pad":
        assert _colour_at(out, *edge) == pytest.approx((0, 0, 255), abs=12)
        ratio = 1.91 if shape == "4:1" else 0.8
        assert out.width / out.height == pytest.approx(ratio, abs=0.01)
    else:
        assert _colour_at(out, *edge) != pytest.approx((0, 0, 255), abs=12)


def test_fit_reject_fails_only_that_target(tmp_path: Path, wide_and_tall: dict[str, Path]) -> None:
    config = make_config(tmp_path, fit="reject")
    result = media.prepare_all(wide_and_tall["4:1"], "reject", [X, INSTAGRAM], config)
    assert isinstance(result["x"], PreparedImage)
    failure = result["instagram"]
    assert isinstance(failure, BadPhoto)
    assert "aspect ratio 4.00:1" in str(failure) and "media.fit" in str(failure)
    with pytest.raises(BadPhoto, match="instagram: aspect ratio"):
        media.prepare_all(wide_and_tall["4:1"], "reject2", [INSTAGRAM], config)


def test_jpeg_draft_decoding_when_every_target_is_much_smaller(tmp_path: Path, wide_and_tall: dict[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[tuple[int, int] | None, tuple[int, int]]] = []
    real_decode = media.decode

    def spy(source: media_source.Source, draft: tuple[int, int] | None, background: str) -> Image.Image:
        pixels = real_decode(source, draft, background)
        seen.append((draft, pixels.size))
        return pixels

    monkeypatch.setattr(media, "decode", spy)
    media.prepare_all(wide_and_tall["4:1"], "draft", [INSTAGRAM], make_config(tmp_path))
    # (Not the outbox: it takes the photo as it is, passed through without a decode for it.)
    media.prepare_all(wide_and_tall["4:1"], "nodraft", [INSTAGRAM, X], make_config(tmp_path))
    (draft, decoded), (no_draft, full) = seen  # one decode per call, whatever the number of targets
    assert draft is not None and 2 * 1440 <= decoded[0] <= (9798 + 1) // 2  # DCT scaling: 1/2
    assert no_draft is None and full == (9798, 2449)


def test_small_photos_are_never_scaled_down_and_narrow_ones_scaled_up_for_instagram(
        prepared_photos: dict[str, dict[str, Any]]) -> None:
    canon = prepared_photos["dn-Canon EOS 7D.jpg"]
    assert (canon["x"].width, canon["x"].height) == (600, 900)
    tiny = prepared_photos["et-Canon.jpg"]
    assert (tiny["x"].width, tiny["instagram"].width) == (8, 320)


@pytest.fixture(scope="module")
def noise_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("noise") / "noise.jpg"
    Image.frombytes("RGB", (6000, 4000), os.urandom(6000 * 4000 * 3)).save(path, quality=90, subsampling=0)
    return path


def test_40_megabyte_jpeg_is_brought_under_both_limits(tmp_path: Path, noise_jpeg: Path) -> None:
    assert noise_jpeg.stat().st_size >= 40_000_000
    result = media.prepare_all(noise_jpeg, "noise", [X, INSTAGRAM], make_config(tmp_path))
    for target in (X, INSTAGRAM):
        prepared = result[target.name]
        assert isinstance(prepared, PreparedImage)
        assert_meets_spec(prepared, target, noise_jpeg)
    close = result["x"]  # the search went close to the limit, not far under it
    assert isinstance(close, PreparedImage) and close.bytes > 4_000_000


def test_when_quality_floor_cannot_fit_the_image_is_made_smaller(tmp_path: Path, noise_jpeg: Path) -> None:
    config = make_config(tmp_path, min_quality=88, max_quality=92)
    prepared = media.prepare_all(noise_jpeg, "shrink", [X], config)["x"]
    assert isinstance(prepared, PreparedImage)
    assert_meets_spec(prepared, X, noise_jpeg)
    assert prepared.quality is not None and prepared.quality >= 88
    assert prepared.width < 4096 and prepared.bytes <= 5_000_000


def test_rejects_rather_than_posting_mush(tmp_path: Path, noise_jpeg: Path) -> None:
    config = make_config(tmp_path, min_quality=90, max_quality=92, shrink_floor=4096)
    with pytest.raises(BadPhoto, match=r"x: even at quality 90 .* more than X's 5,000,000"):
        media.prepare_all(noise_jpeg, "mush", [X], config)


def test_quality_search_finds_the_highest_quality_that_fits() -> None:
    sizes = {q: 1000 + 100 * q for q in range(1, 101)}  # monotonic, like JPEG
    tried: list[int] = []

    def encode(quality: int) -> bytes:
        tried.append(quality)
        return b"x" * sizes[quality]

    data, quality = media.search_quality(encode, 9_000, 70, 92)  # type: ignore[misc]
    assert quality == 80 and len(data) == 9_000
    assert len(tried) <= 6
    assert media.search_quality(encode, 100_000, 70, 92)[1] == 92  # type: ignore[index]
    assert media.search_quality(encode, 5_000, 70, 92) == sizes[70]


@pytest.mark.parametrize("size", [(1000, 1000), (1441, 1800), (1440, 1801), (999, 523), (5000, 2617),
                                  (3, 10_000), (10_000, 3), (321, 400), (100, 80)])
@pytest.mark.parametrize("fit", ["pad", "crop"])
def test_geometry_always_lands_inside_instagrams_box(size: tuple[int, int], fit: str) -> None:
    geometry = media.plan_geometry(size, media.SPECS["instagram"], fit)
    width, height = geometry.canvas
    assert 320 <= width <= 1440 and 0.8 <= width / height <= 1.91
    assert geometry.content[0] <= width and geometry.content[1] <= height


# ---------------------------------------------------------------------------------------------------
# Safety


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares width x height but holds almost nothing: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (12_000, 12_000)])
def test_decompression_bombs_are_rejected_fast(tmp_path: Path, width: int, height: int) -> None:
    # 10 G pixels is past Pillow's own hard limit; 144 M is under it (Pillow only warns, which pytest
    # would turn into an error) but over media.max_pixels (120 M).
    path = tmp_path / "bomb.png"
    _png_header_only(path, width, height)
    started = time.perf_counter()
    with pytest.raises(BadPhoto, match="bomb"):
        media.prepare_all(path, "bomb", ALL_TARGETS, make_config(tmp_path))
    assert time.perf_counter() - started < 0.25


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    with pytest.raises(BadPhoto, match=r"media\.max_pixels"):
        media.prepare_all(PHOTOS / "dn-Canon EOS 7D.jpg", "px", [X], make_config(tmp_path, max_pixels=500_000))


def test_oversize_files_are_rejected_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the image must not be opened")

    monkeypatch.setattr(media_source.Image, "open", no_open)
    with pytest.raises(BadPhoto, match=r"media\.max_input_bytes"):
        media.prepare_all(PHOTOS / "dn-Canon EOS 7D.jpg", "big", [X], make_config(tmp_path, max_input_bytes=1000))


def test_heic_with_the_extra_and_a_clear_rejection_without(tmp_path: Path,
                                                           prepared_photos: dict[str, dict[str, Any]],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(prepared_photos["dn-IMG_2927.HEIC"]["x"], PreparedImage)
    monkeypatch.setattr(media_source, "heif_support", lambda: False)
    with pytest.raises(BadPhoto, match=r"pip install 'crosswatch\[heic\]'"):
        media.prepare_all(PHOTOS / "dn-IMG_2927.HEIC", "heic", [X], make_config(tmp_path))


def test_not_an_image_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("just text, named like a photo")
    with pytest.raises(BadPhoto, match="not an image"):
        media.prepare_all(path, "txt", [X], make_config(tmp_path))


_FUZZ_SEEDS = {name: (PHOTOS / name).read_bytes() for name in
               ("et-GPS.jpg", "pil-hopper_orientation_6.jpg", "et-PNG.png", "dn-Issue 614.jpg")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(sorted(_FUZZ_SEEDS)), cut=st.integers(0, 100),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8))
def test_damaged_files_give_a_result_or_badphoto_never_a_crash(tmp_path: Path, seed: str, cut: int,
                                                                flips: list[tuple[int, int]]) -> None:
    data = bytearray(_FUZZ_SEEDS[seed])
    for position, value in flips:
        data[position % len(data)] = value
    data = data[: max(1, len(data) * (100 - cut) // 100)] if cut > 50 else data
    path = tmp_path / f"fuzz{Path(seed).suffix}"
    path.write_bytes(bytes(data))
    try:
        # The content's own hash, as the journal would give: the cache must not answer for another file.
        results = media.prepare_all(path, hashlib.sha256(data).hexdigest(), [X, INSTAGRAM], make_config(tmp_path))
    except BadPhoto as failure:
        assert "\n" not in str(failure)
        return
    for target in (X, INSTAGRAM):
        outcome = results[target.name]
        if isinstance(outcome, PreparedImage):
            assert_meets_spec(outcome, target, path)
            assert_private_free(Path(outcome.path))


# ---------------------------------------------------------------------------------------------------
# Decode once, cache, discard, preview


@pytest.fixture
def decode_count(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    calls: list[int] = []
    real_decode = media.decode

    def counting(*args: Any) -> Image.Image:
        calls.append(1)
        return real_decode(*args)

    monkeypatch.setattr(media, "decode", counting)
    yield calls


def test_cache_is_reused_across_restarts_and_discarded(tmp_path: Path, decode_count: list[int]) -> None:
    config = make_config(tmp_path)
    first = media.prepare_all(PHOTOS / "dn-Canon EOS 7D.jpg", "abc123", ALL_TARGETS, config)
    assert len(decode_count) == 1  # once for three targets
    second = media.prepare_all(PHOTOS / "dn-Canon EOS 7D.jpg", "abc123", ALL_TARGETS, config)
    assert len(decode_count) == 1  # all from the cache
    assert first == second
    assert all(Path(p.path).parent == config.media_cache_dir / "abc123" for p in first.values())  # type: ignore[union-attr]

    changed = dataclasses.replace(config, media=dataclasses.replace(config.media, max_quality=80))
    third = media.prepare_all(PHOTOS / "dn-Canon EOS 7D.jpg", "abc123", [X], changed)
    assert len(decode_count) == 2 and third["x"].path != first["x"].path  # type: ignore[union-attr]

    media.discard_prepared(config, "abc123", "x")
    assert not Path(first["x"].path).exists() and not Path(third["x"].path).exists()  # type: ignore[union-attr]
    assert Path(first["instagram"].path).exists()  # type: ignore[union-attr]
    media.discard_prepared(config, "abc123", "instagram")
    media.discard_prepared(config, "abc123", "outbox")
    assert not (config.media_cache_dir / "abc123").exists()
    media.discard_prepared(config, "abc123", "outbox")  # idempotent


def test_cached_targets_survive_the_photo_going_away(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    photo = tmp_path / "gone.jpg"
    shutil.copy(PHOTOS / "et-GPS.jpg", photo)
    first = media.prepare_all(photo, "gone", [X], config)["x"]
    photo.unlink()
    result = media.prepare_all(photo, "gone", [X, INSTAGRAM], config)
    assert result["x"] == first
    assert isinstance(result["instagram"], BadPhoto) and "cannot read the file" in str(result["instagram"])
    with pytest.raises(BadPhoto, match="cannot read the file"):
        media.prepare_all(photo, "gone", [INSTAGRAM], config)


def test_a_damaged_cache_entry_is_rebuilt(tmp_path: Path, decode_count: list[int]) -> None:
    config = make_config(tmp_path)
    first = media.prepare_all(PHOTOS / "et-GPS.jpg", "dmg", [X], config)["x"]
    assert isinstance(first, PreparedImage)
    Path(first.path).write_bytes(b"half a jp")
    again = media.prepare_all(PHOTOS / "et-GPS.jpg", "dmg", [X], config)["x"]
    assert len(decode_count) == 2
    assert isinstance(again, PreparedImage) and Path(again.path).stat().st_size == again.bytes


def test_target_names_cannot_escape_the_cache(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    odd = TargetConfig(name="../../x.y", kind="x")
    prepared = media.prepare_all(PHOTOS / "et-GPS.jpg", "../h", [odd], config)["../../x.y"]
    assert isinstance(prepared, PreparedImage)
    assert Path(prepared.path).resolve().is_relative_to(config.media_cache_dir.resolve())
    media.discard_prepared(config, "../h", "../../x.y")
    assert not Path(prepared.path).exists()


def test_preview_writes_one_jpeg_per_target_with_its_facts(tmp_path: Path) -> None:
    out_dir = tmp_path / "preview"
    config = make_config(tmp_path, fit="reject")
    facts = media.preview_images(PHOTOS / "dn-Issue 258 (dotnet).jpg", [X, INSTAGRAM, OUTBOX], config, out_dir)
    assert sorted(path.name for path in out_dir.iterdir()) == ["outbox.jpg", "x.jpg"]
    assert set(facts["x"]) >= {"width", "height", "bytes", "quality", "format", "fit"}
    assert facts["x"]["bytes"] == (out_dir / "x.jpg").stat().st_size
    assert facts["x"]["format"] == "JPEG" and facts["x"]["fit"] is None
    assert "aspect ratio" in facts["instagram"]["error"]
    json.dumps(facts)  # goes straight into preview.json
    assert not config.media_cache_dir.exists()  # a preview leaves the journal's cache alone


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed")
def test_a_passed_through_real_photo_keeps_its_pixels_and_sheds_everything_private(tmp_path: Path) -> None:
    # A real Nikon D3100 JPEG (GPS and serial number in its EXIF), given GPS, a serial and location
    # text in XMP and IPTC too, a creator, and data appended after its EOI (as a phone's gain map is).
    source = tmp_path / "nikon.jpg"
    shutil.copy(PHOTOS / "exifpy-nikon_D3100_TypeError.jpg", source)
    assert EXIFTOOL is not None
    subprocess.run([EXIFTOOL, "-q", "-overwrite_original", "-XMP-exif:GPSLatitude=45.76", "-XMP-aux:SerialNumber=SN1",
                    "-XMP-photoshop:City=Lyon", "-IPTC:City=Lyon", "-IPTC:Sub-location=Rue Mercière 12",
                    "-EXIF:Artist=Ana Lima", str(source)], check=True)
    source.write_bytes(source.read_bytes() + b"\xff\xd8 appended frame \xff\xd9")
    readings = exiftool_private_keys([source])[str(source)]
    assert any(key.startswith("GPS:") for key in readings) and any("Serial" in key for key in readings)
    assert any(key.startswith("IPTC:") for key in readings) and any(key.startswith("XMP-") for key in readings)
    prepared = media.prepare_all(source, "nikon", [X], make_config(tmp_path))["x"]
    assert isinstance(prepared, PreparedImage) and passed_through(prepared, source)
    out = Path(prepared.path)
    assert exiftool_private_keys([out])[str(out)] == []
    assert metadata.private_traces(out) == []
    data = out.read_bytes()
    assert data.endswith(b"\xff\xd9") and b"appended frame" not in data  # nothing after the first EOI
    with Image.open(source) as original, Image.open(out) as image:
        assert original.tobytes() == image.tobytes() and "icc_profile" not in image.info
    credit = json.loads(subprocess.run([EXIFTOOL, "-json", "-XMP-dc:Creator", str(out)], capture_output=True,
                                       check=True, text=True).stdout)[0]
    assert credit["Creator"] == "Ana Lima"
