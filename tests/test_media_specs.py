"""prepare_all(specs=...): a target's limits given at run time (a Mastodon server's, Bluesky's byte cap).

Every output is read back from disk; the 24 MP photo is a real photo (tests/data/photos) enlarged and
given heavy grain, carrying a real phone's EXIF with its GPS block.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import crosswatch.media as media
from crosswatch.config import TargetConfig
from crosswatch.models import PreparedImage
from crosswatch.platforms.limits import TargetSpec
from tests.test_media import PHOTOS, X, assert_private_free, make_config, passed_through

BLUESKY = TargetSpec("bluesky", "Bluesky", max_bytes=2_000_000, max_long_edge=2000)
# A default Mastodon server: image_matrix_limit and image_size_limit (16 MiB, checked with less_than).
MASTODON = TargetSpec("mastodon", "Mastodon", max_bytes=16 * 1024 * 1024 - 1, max_pixels=33_177_600)
THREADS = TargetSpec("threads", "Threads", max_bytes=8_000_000, min_width=320, max_width=1440)

# Platforms not built here yet are prepared as an outbox target with the platform's spec.
BLUESKY_TARGET = TargetConfig(name="bluesky", kind="outbox", path=Path("/nonexistent-outbox"))
MASTODON_TARGET = TargetConfig(name="mastodon", kind="outbox", path=Path("/nonexistent-outbox"))
THREADS_TARGET = TargetConfig(name="threads", kind="outbox", path=Path("/nonexistent-outbox"))
INSTAGRAM_TARGET = TargetConfig(name="instagram", kind="instagram")


def enlarged_real_photo() -> Image.Image:
    with Image.open(PHOTOS / "dn-Nikon E995 (iptc).jpg") as real:
        return real.convert("RGB").crop((0, 85, 2048, 1450)).resize((6000, 4000), Image.Resampling.BICUBIC)


def phone_exif_upright() -> bytes:
    with Image.open(PHOTOS / "dn-Samsung GT-I9000 (Galaxy S).jpg") as phone:
        exif = phone.getexif()
    assert exif.get_ifd(0x8825), "the donor EXIF must carry GPS for the privacy check to mean anything"
    exif[0x0112] = 1
    return exif.tobytes()


@pytest.fixture(scope="module")
def photo_24mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6000x4000: a real photo enlarged, with the phone's EXIF (GPS included)."""
    path = tmp_path_factory.mktemp("photo24") / "photo-24mp.jpg"
    enlarged_real_photo().save(path, quality=92, exif=phone_exif_upright())
    return path


@pytest.fixture(scope="module")
def grainy_24mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6000x4000: a real 2048x1536 photo cropped to 3:2, enlarged, under very heavy grain, saved at
    quality 95 with the Samsung Galaxy S's EXIF (GPS block included, orientation set upright)."""
    path = tmp_path_factory.mktemp("grainy") / "grainy-24mp.jpg"
    photo = enlarged_real_photo()
    # Grain 3 px across: finer grain would average away in the downscale to Bluesky's size.
    grain = Image.merge("RGB", [Image.effect_noise((2000, 1334), 128).resize((6000, 4000), Image.Resampling.NEAREST)
                                for _ in range(3)])
    Image.blend(photo, grain, 0.7).save(path, quality=95, exif=phone_exif_upright())
    return path


def read_size(prepared: PreparedImage, source: Path) -> tuple[int, int]:
    """The output's size, read back: the source's own JPEG data when it passed through, else a
    progressive re-encode."""
    with Image.open(prepared.path) as image:
        image.load()
        assert image.format == "JPEG" and image.mode == "RGB"
        if not passed_through(prepared, source):
            assert image.info.get("progressive") or image.info.get("progression")
        return image.size


def file_bytes(prepared: PreparedImage) -> int:
    size = Path(prepared.path).stat().st_size
    assert size == prepared.bytes
    return size


# Bluesky's app resized to 2000 px; it now resizes to 4000 px (a bigger search: slow).
@pytest.mark.parametrize("long_edge", [2000, pytest.param(4000, marks=pytest.mark.slow)])
def test_bluesky_two_million_byte_cap_is_met_on_a_grainy_24mp_photo(tmp_path: Path, grainy_24mp: Path,
                                                                    long_edge: int) -> None:
    spec = TargetSpec("bluesky", "Bluesky", max_bytes=2_000_000, max_long_edge=long_edge)
    config = make_config(tmp_path)
    # The cap really bites: at the top quality this output is far over it.
    with Image.open(grainy_24mp) as source:
        source.draft("RGB", (long_edge, long_edge))
        at_top = media.encode_jpeg(source.convert("RGB").resize(
            (long_edge, round(long_edge * 2 / 3)), Image.Resampling.LANCZOS), 92, exif=b"", xmp=None)
    assert len(at_top) > 2_000_000

    prepared = media.prepare_all(grainy_24mp, f"grain{long_edge}", [BLUESKY_TARGET], config,
                                 specs={"bluesky": spec})["bluesky"]
    assert isinstance(prepared, PreparedImage)
    assert file_bytes(prepared) <= 2_000_000  # decimal bytes, a hard limit (the lexicon's maxSize)
    assert file_bytes(prepared) > 1_500_000  # the search went close to the cap, not far under it
    width, height = read_size(prepared, grainy_24mp)
    assert (width, height) == (prepared.width, prepared.height)
    assert max(width, height) <= long_edge and abs(width / height - 1.5) < 0.01
    assert prepared.quality is not None and 70 <= prepared.quality < 92
    assert_private_free(Path(prepared.path))


def test_all_five_targets_from_one_decode_meet_their_specs(tmp_path: Path, photo_24mp: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    decodes: list[object] = []
    real_decode = media.decode

    def counting(*args: object) -> Image.Image:
        decodes.append(args)
        return real_decode(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(media, "decode", counting)
    targets = [X, INSTAGRAM_TARGET, THREADS_TARGET, MASTODON_TARGET, BLUESKY_TARGET]
    specs = {"threads": THREADS, "mastodon": MASTODON, "bluesky": BLUESKY}
    result = media.prepare_all(photo_24mp, "five", targets, make_config(tmp_path), specs=specs)
    assert len(decodes) == 1
    sizes = {}
    for target in targets:
        prepared = result[target.name]
        assert isinstance(prepared, PreparedImage), prepared
        spec = specs.get(target.name) or media.SPECS[target.kind]
        width, height = sizes[target.name] = read_size(prepared, photo_24mp)
        # Mastodon takes the 24 MP photo as it is: its own data passes through; the rest are re-encoded.
        assert passed_through(prepared, photo_24mp) == (target.name == "mastodon")
        assert spec.max_bytes is not None and file_bytes(prepared) <= spec.max_bytes
        if spec.max_long_edge:
            assert max(width, height) <= spec.max_long_edge
        if spec.max_width:
            assert width <= spec.max_width
        if spec.max_pixels:
            assert width * height <= spec.max_pixels
        assert_private_free(Path(prepared.path))
    assert sizes["mastodon"] == (6000, 4000)  # 24 MP is inside a default server's 33,177,600
    assert sizes["x"] == (4096, 2731) and sizes["bluesky"] == (2000, 1333)
    assert sizes["instagram"] == sizes["threads"] == (1440, 960)
    # Same pixels, same limits met at the top quality: the same bytes, in each target's own file.
    instagram, threads = result["instagram"], result["threads"]
    assert isinstance(instagram, PreparedImage) and isinstance(threads, PreparedImage)
    assert instagram.path != threads.path
    assert Path(instagram.path).read_bytes() == Path(threads.path).read_bytes()


@pytest.mark.parametrize("photo", ["dn-Nikon E995 (iptc).jpg", "dn-Canon EOS 7D.jpg", "dn-Issue 258 (dotnet).jpg"])
def test_a_pixel_matrix_limit_is_honoured_and_keeps_the_shape(tmp_path: Path, photo: str) -> None:
    with Image.open(PHOTOS / photo) as source:
        width, height = source.size
    limit = width * height // 3  # well under the photo, not a round number
    spec = TargetSpec("mastodon", "Mastodon", max_bytes=16 * 1024 * 1024 - 1, max_pixels=limit)
    prepared = media.prepare_all(PHOTOS / photo, "matrix", [MASTODON_TARGET], make_config(tmp_path),
                                 specs={"mastodon": spec})["mastodon"]
    assert isinstance(prepared, PreparedImage)
    out_w, out_h = read_size(prepared, PHOTOS / photo)
    assert out_w * out_h <= limit
    assert out_w * out_h >= limit * 0.99  # made no smaller than the limit needs
    assert abs(out_w / out_h - width / height) < 2 / min(out_w, out_h)  # the shape kept (rounding only)


def test_a_photo_inside_the_matrix_limit_is_not_resized(tmp_path: Path) -> None:
    spec = TargetSpec("mastodon", "Mastodon", max_pixels=2048 * 1536)  # exactly the photo
    prepared = media.prepare_all(PHOTOS / "dn-Nikon E995 (iptc).jpg", "exact", [MASTODON_TARGET],
                                 make_config(tmp_path), specs={"mastodon": spec})["mastodon"]
    source = PHOTOS / "dn-Nikon E995 (iptc).jpg"
    assert isinstance(prepared, PreparedImage) and read_size(prepared, source) == (2048, 1536)
    assert passed_through(prepared, source)


@given(width=st.integers(1, 20_000), height=st.integers(1, 20_000), limit=st.integers(1, 40_000_000))
def test_planned_output_never_exceeds_the_pixel_limit(width: int, height: int, limit: int) -> None:
    spec = TargetSpec("mastodon", "Mastodon", max_pixels=limit)
    out_w, out_h = media.plan_geometry((width, height), spec, "pad").canvas
    assert out_w * out_h <= limit
    if width * height <= limit:
        assert (out_w, out_h) == (width, height)
        return
    scale = math.sqrt(limit / (width * height))
    if min(width, height) * scale >= 2:  # (a side that would round to 0 pixels has no shape to keep)
        # The shape kept and no smaller than the limit needs: each side within rounding of the ideal.
        assert abs(out_w - width * scale) <= 2 and abs(out_h - height * scale) <= 2


@given(width=st.integers(1, 20_000), height=st.integers(1, 20_000), limit=st.integers(1_000, 40_000_000),
       fit=st.sampled_from(["pad", "crop"]))
def test_pixel_limit_and_aspect_range_hold_together(width: int, height: int, limit: int, fit: str) -> None:
    spec = TargetSpec("both", "Both", max_pixels=limit, min_aspect=4 / 5, max_aspect=1.91)
    out_w, out_h = media.plan_geometry((width, height), spec, fit).canvas
    assert out_w * out_h <= limit
    assert 4 / 5 <= out_w / out_h <= 1.91


def test_a_changed_spec_makes_a_new_cache_file(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    photo = PHOTOS / "dn-Nikon E995 (iptc).jpg"
    old = TargetSpec("mastodon", "Mastodon", max_bytes=16 * 1024 * 1024 - 1, max_pixels=1_000_000)
    first = media.prepare_all(photo, "limits", [MASTODON_TARGET], config, specs={"mastodon": old})["mastodon"]
    again = media.prepare_all(photo, "limits", [MASTODON_TARGET], config, specs={"mastodon": old})["mastodon"]
    assert isinstance(first, PreparedImage) and again == first  # the same limits: the cached file
    first_written = Path(first.path).stat().st_mtime_ns
    assert Path(again.path).stat().st_mtime_ns == first_written

    # The server raised its matrix limit: the old file must not be reused.
    new = TargetSpec("mastodon", "Mastodon", max_bytes=16 * 1024 * 1024 - 1, max_pixels=2_000_000)
    second = media.prepare_all(photo, "limits", [MASTODON_TARGET], config, specs={"mastodon": new})["mastodon"]
    assert isinstance(second, PreparedImage) and second.path != first.path
    (first_w, first_h), (second_w, second_h) = read_size(first, photo), read_size(second, photo)
    assert first_w * first_h <= 1_000_000 < second_w * second_h
    assert Path(first.path).exists()  # still there until discard_prepared

    # A spec naming a target overrides its platform's; without it the platform's spec is used.
    x_spec = TargetSpec("x", "X", max_bytes=5_000_000, max_long_edge=800)
    custom = media.prepare_all(photo, "limits", [X], config, specs={"x": x_spec})["x"]
    default = media.prepare_all(photo, "limits", [X], config)["x"]
    assert isinstance(custom, PreparedImage) and isinstance(default, PreparedImage)
    assert custom.path != default.path
    assert read_size(custom, photo) == (800, 600) and read_size(default, photo) == (2048, 1536)
    assert media.cache_key(X, config, None) != media.cache_key(X, config, None, x_spec)

    media.discard_prepared(config, "limits", "mastodon")
    assert not Path(first.path).exists() and not Path(second.path).exists()


def test_gps_is_stripped_for_a_spec_given_target(tmp_path: Path) -> None:
    for name in ("et-GPS.jpg", "dn-Samsung GT-I9000 (Galaxy S).jpg", "dn-Nikon D1X.jpg"):
        with Image.open(PHOTOS / name) as source:
            assert source.getexif().get_ifd(0x8825), name
        result = media.prepare_all(PHOTOS / name, name.replace(" ", "-").replace(".", "-"),
                                   [MASTODON_TARGET, BLUESKY_TARGET], make_config(tmp_path),
                                   specs={"mastodon": MASTODON, "bluesky": BLUESKY})
        for prepared in result.values():
            assert isinstance(prepared, PreparedImage)
            assert_private_free(Path(prepared.path))


def test_preview_takes_the_same_specs(tmp_path: Path) -> None:
    spec = TargetSpec("mastodon", "Mastodon", max_pixels=500_000)
    facts = media.preview_images(PHOTOS / "dn-Nikon E995 (iptc).jpg", [MASTODON_TARGET], make_config(tmp_path),
                                 tmp_path / "out", specs={"mastodon": spec})
    assert facts["mastodon"]["width"] * facts["mastodon"]["height"] <= 500_000
    with Image.open(facts["mastodon"]["file"]) as image:
        assert image.size == (facts["mastodon"]["width"], facts["mastodon"]["height"])
