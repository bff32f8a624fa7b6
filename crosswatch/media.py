"""Per-target image preparation: the best JPEG each platform accepts, carrying credit and nothing private.

Public API (the runner and the CLI use these):

- ``prepare_all(photo_path, photo_hash, targets, config, *, metadata=None, specs=None)`` decodes the
  photo once and returns ``{target name: PreparedImage | BadPhoto}``: a prepared file in the media cache, or the
  reason this one target cannot take the photo (for example ``media.fit: reject`` and a panorama on
  Instagram). It raises ``BadPhoto`` when no target can take the photo (unreadable, a bomb, too big).
  ``metadata`` (metadata.py's reading) supplies the creator and copyright; without it they are read
  here. ``specs`` maps a target name to the TargetSpec it must meet instead of ``SPECS[kind]`` (a
  Mastodon server's own limits, read at run time). Prepared files are cached under
  ``config.media_cache_dir/<photo hash>/``, keyed by the target's spec and every setting that changes
  the output, so a restart reuses them and a changed limit does not.
- ``discard_prepared(config, photo_hash, target_name)`` removes them once the job is done.
- ``preview_images(photo_path, targets, config, out_dir, *, metadata=None)`` writes ``<target>.jpg``
  and returns the facts per target (for ``crosswatch preview --out``).

Pixels (media_source.py): EXIF orientation applied and dropped, colour profile converted to sRGB,
alpha flattened, first frame only, 8-bit RGB. Size: only changed when a limit (long edge, width,
width x height) requires it (LANCZOS,
after an integer pre-reduction for large factors, split over the CPU cores). Quality: the highest JPEG
quality <= media.max_quality that fits the byte limit, by binary search, never below
media.min_quality; if even that does not fit, the image is made smaller (not below
media.shrink_floor), else the target is refused. Privacy: the output's EXIF is written from scratch
with only the groups in ``privacy.keep`` (creator and copyright by default), never GPS, maker notes,
serial numbers, thumbnails, comments or XMP history; XMP carries only dc:creator and dc:rights.

Lossless passthrough (``_passthrough_plan``; media_passthrough.py does the segments): a target
that would get the source's own pixels unchanged (a JPEG, greyscale or YCbCr, in sRGB or with no
profile, EXIF orientation absent or 1, no resize, crop or pad needed, and within the byte limit
once re-wrapped) gets the source's own compressed data with its metadata replaced by ours (the same
JFIF, EXIF and XMP segments a re-encoded output carries, made by the same encoder), and nothing after
the first EOI. Why: a re-encode costs a generation of JPEG loss for no gain, while these are the
photographer's own export bytes; and it costs the most time and memory of all (a full-size
progressive encode holds libjpeg's whole-image coefficient buffer beside the full decode). Its
reported quality is the source's, estimated from its luminance table; it may be above
media.max_quality (a limit for what crosswatch encodes, not for what the photographer exported).
The full decode is then needed only for the other targets, and is released before the largest of
those is encoded; when every target passes through, a 1/8-scale decode still checks that the data
decodes.

Speed and memory: one decode for all targets, shrunk in the DCT domain when every target is much
smaller; the largest target first, and smaller ones resampled from it (on other threads while the
larger one is encoded); orientation applied after resizing; the full decode released as soon as no
target needs it; targets with identical output encoded once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from crosswatch import media_passthrough
from crosswatch.config import Config, MediaConfig, PrivacyConfig, TargetConfig
from crosswatch.errors import BadPhoto
from crosswatch.media_source import (
    ORIENTATION_FIX,
    TAG_ARTIST,
    TAG_COPYRIGHT,
    Credit,
    Source,
    decode,
    is_srgb,
    open_source,
    reject,
)
from crosswatch.models import Metadata, PreparedImage
from crosswatch.platforms import registry
from crosswatch.platforms.limits import TargetSpec

# Bumped whenever the pipeline's output changes, so old cache entries are not reused.
# 2: resize strips of 128 rows (the strip edges round a hair differently); 3: a JPEG that a target takes
# as it is passes through (its own data, our metadata) instead of being re-encoded.
PIPELINE_VERSION = 3
# Decode (JPEG DCT scaling) and pre-reduce to at least this many times the output size, so LANCZOS
# still has real pixels to work from (the same margin as Pillow's thumbnail()).
REDUCING_GAP = 2.0
# Split a resize across threads only when the output is this big; below it threads cost more.
PARALLEL_RESIZE_PIXELS = 1_000_000
# A split resize works in strips of about this many output rows, pasted into place as each is done:
# Pillow's horizontal pass holds a whole intermediate image, so one big strip per thread would cost
# more memory than the output itself. X's 4096 px render from a 24 MP decode is the peak of five
# targets now that a full-size target passes through (the decode and X's output held meanwhile:
# 28 + 92 + 43 MiB), so what the strips in flight add counts: at 32 rows a 4096 px wide strip costs
# about 0.5 MB of output and 1 MB of intermediate per thread, and the freed strips leave less in
# the heap (peak RSS 173 MiB; 183 MiB at 128 rows, 170 at 16, which is slower).
STRIP_ROWS = 32

PreparedResult = PreparedImage | BadPhoto


SPECS: Mapping[str, TargetSpec] = {name: registry.limits(name).image for name in registry.names()}


Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Geometry:
    """How one target's output is cut from the upright source: ``box`` (source pixels) is resampled to
    ``content`` and pasted at ``offset`` on a ``canvas`` of the pad colour (canvas == content unless
    padded)."""

    box: Box
    content: tuple[int, int]
    canvas: tuple[int, int]
    offset: tuple[int, int]
    scale: float
    fit: str | None


@dataclass(frozen=True)
class Encoded:
    data: bytes
    width: int
    height: int
    quality: int
    fit: str | None
    warnings: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------
# Public API


def prepare_all(photo_path: Path, photo_hash: str, targets: Sequence[TargetConfig], config: Config, *,
                metadata: Metadata | None = None,
                specs: Mapping[str, TargetSpec] | None = None) -> dict[str, PreparedResult]:
    """Prepare ``photo_path`` for every target, decoding it once; see the module docstring.

    ``metadata``, when given, supplies the creator and copyright (already reconciled by
    metadata.py); otherwise they are read from the photo's EXIF, XMP and IPTC here. ``specs``
    (target name -> TargetSpec) overrides ``SPECS[kind]`` for the targets it names.
    """
    photo_dir = config.media_cache_dir / _safe_name(photo_hash)
    chosen = resolve_specs(targets, specs)
    results: dict[str, PreparedResult] = {}
    wanted: dict[str, tuple[TargetConfig, Path]] = {}
    for target in targets:
        key = cache_key(target, config, metadata, chosen[target.name])
        path = photo_dir / f"{_safe_name(target.name)}.{key}.jpg"
        cached = _read_cached(path)
        if cached is not None:
            results[target.name] = cached
        else:
            wanted[target.name] = (target, path)
    if wanted:
        try:
            encoded = _prepare_encoded(Path(photo_path), [t for t, _ in wanted.values()], config, metadata,
                                       chosen)
        except BadPhoto as failure:
            if not results:
                raise
            # Some targets are already prepared (the file may be gone since): they still stand.
            encoded = dict.fromkeys(wanted, failure)
        for name, outcome in encoded.items():
            if isinstance(outcome, BadPhoto):
                results[name] = outcome
            else:
                results[name] = _write_cached(wanted[name][1], outcome)
    _raise_if_all_failed(results)
    return {target.name: results[target.name] for target in targets}


def discard_prepared(config: Config, photo_hash: str, target_name: str) -> None:
    """Remove the cached prepared image(s) of one photo for one target (every spec version)."""
    photo_dir = config.media_cache_dir / _safe_name(photo_hash)
    prefix = _safe_name(target_name) + "."
    if not photo_dir.is_dir():
        return
    for entry in photo_dir.iterdir():
        # The safe target name contains no ".", so the prefix cannot match another target's files.
        if entry.name.startswith(prefix):
            entry.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # other targets' files are still there
        photo_dir.rmdir()


def preview_images(photo_path: Path, targets: Sequence[TargetConfig], config: Config, out_dir: Path, *,
                   metadata: Metadata | None = None,
                   specs: Mapping[str, TargetSpec] | None = None) -> dict[str, dict[str, Any]]:
    """Write ``<target>.jpg`` per target into ``out_dir``; return the facts per target.

    Each value is ``{"file", "width", "height", "bytes", "quality", "format", "fit", "warnings"}`` or,
    for a target that cannot take the photo, ``{"error": reason}``. Raises BadPhoto when none can.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoded = _prepare_encoded(Path(photo_path), list(targets), config, metadata,
                               resolve_specs(targets, specs))
    _raise_if_all_failed(encoded)
    facts: dict[str, dict[str, Any]] = {}
    for name, outcome in encoded.items():
        if isinstance(outcome, BadPhoto):
            facts[name] = {"error": str(outcome)}
            continue
        prepared = _write_file(out_dir / f"{_safe_name(name)}.jpg", outcome)
        facts[name] = image_facts(prepared)
    return facts


def image_facts(prepared: PreparedImage) -> dict[str, Any]:
    """A PreparedImage as a JSON-ready mapping (preview.json, preview --json)."""
    return {
        "file": prepared.path, "width": prepared.width, "height": prepared.height, "bytes": prepared.bytes,
        "quality": prepared.quality, "format": prepared.format, "fit": prepared.fit,
        "warnings": list(prepared.warnings),
    }


def spec_for(target: TargetConfig, specs: Mapping[str, TargetSpec] | None = None) -> TargetSpec:
    """The limits this target's image must meet: its entry in ``specs``, else its platform's."""
    if specs is not None and target.name in specs:
        return specs[target.name]
    return SPECS[target.kind]


def resolve_specs(targets: Sequence[TargetConfig],
                  specs: Mapping[str, TargetSpec] | None) -> dict[str, TargetSpec]:
    return {target.name: spec_for(target, specs) for target in targets}


def cache_key(target: TargetConfig, config: Config, metadata: Metadata | None,
              spec: TargetSpec | None = None) -> str:
    """Everything that changes the bytes of this target's output, hashed (``spec``: the limits it is
    prepared for, by default its platform's)."""
    material: dict[str, Any] = {
        "pipeline": PIPELINE_VERSION,
        "spec": asdict(spec if spec is not None else spec_for(target)),
        "media": asdict(config.media),
        "privacy": asdict(config.privacy),
    }
    if metadata is not None:
        material["credit"] = [list(metadata.creator), metadata.copyright]
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------
# The pipeline


def _prepare_encoded(photo_path: Path, targets: Sequence[TargetConfig], config: Config,
                     metadata: Metadata | None, specs: Mapping[str, TargetSpec]) -> dict[str, Encoded | BadPhoto]:
    source = open_source(photo_path, config.media)
    try:
        return _prepare_source(source, targets, config, metadata, specs)
    finally:
        source.close()


def _prepare_source(source: Source, targets: Sequence[TargetConfig], config: Config,
                    metadata: Metadata | None, specs: Mapping[str, TargetSpec]) -> dict[str, Encoded | BadPhoto]:
    results: dict[str, Encoded | BadPhoto] = {}
    upright = source.upright_size
    feasible: list[tuple[TargetConfig, float]] = []
    for target in targets:
        try:
            geometry = plan_geometry(upright, specs[target.name], config.media.fit)
        except _Refused as refused:
            if source.metadata_read:  # else the orientation, and so the aspect, is not known yet
                results[target.name] = reject(source.path, f"{target.name}: {refused}")
                continue
            geometry = plan_geometry(upright, specs[target.name], "pad")
        feasible.append((target, geometry.scale))
    if not feasible:
        return results

    @functools.cache
    def credit_segments() -> tuple[bytes, bytes | None]:
        """The output's EXIF and XMP (once; for a PNG only after the decode has read its metadata)."""
        credit = _credit(source, metadata)
        return build_exif(credit, source, config.privacy), build_xmp(credit, config.privacy)

    passing = _passthrough_plan(source, [target for target, _scale in feasible], specs, config.media,
                                credit_segments)
    to_encode = [(target, scale) for target, scale in feasible if passing is None or target.name not in passing.names]
    if to_encode:
        _encode_decoded(source, to_encode, config, specs, credit_segments, results)
    else:
        _check_decodes(source, config.media.background)
    if passing is not None:
        results.update(_passed_through(source, passing))
    return {target.name: results[target.name] for target in targets}


def _encode_decoded(source: Source, feasible: Sequence[tuple[TargetConfig, float]], config: Config,
                    specs: Mapping[str, TargetSpec], credit_segments: Callable[[], tuple[bytes, bytes | None]],
                    results: dict[str, Encoded | BadPhoto]) -> None:
    """Decode once and encode every target in ``feasible`` (with its header scale) into ``results``."""
    pixels = decode(source, _draft_size(source.upright_size, max(scale for _target, scale in feasible)),
                    config.media.background)
    exif_bytes, xmp_bytes = credit_segments()
    if pixels is not source.image:
        source.image.close()  # converted (mode, profile, alpha): the pixels as read are not needed again
    ordered = [target for target, _scale in sorted(feasible, key=lambda pair: -pair[1])]
    with ThreadPoolExecutor(max_workers=2) as ahead:
        # Largest output first, so smaller ones can be resampled from it instead of from the full decode.
        scaled = _ScaledCopies(pixels, source.orientation, release=source.image.close, ahead=ahead,
                               pad_color=config.media.pad_color)
        del pixels  # held by `scaled` alone, so that releasing it there frees it
        for index, target in enumerate(ordered):
            scaled.still_to_come = _planned(scaled.upright_size, [specs[later.name] for later in ordered[index + 1:]],
                                            config.media.fit)
            try:
                results[target.name] = _encode_target(scaled, specs[target.name], config.media, exif_bytes,
                                                      xmp_bytes, source)
            except _Refused as refused:
                results[target.name] = reject(source.path, f"{target.name}: {refused}")


# ---------------------------------------------------------------------------------------------------
# Lossless passthrough: the source's own JPEG data for targets that take it as it is


@dataclass(frozen=True)
class _Passthrough:
    """The targets that take the source as it is, and what its re-wrapped JPEG will be: built once to
    learn its size, then again once the decode is gone (so that it is not held beside the decode),
    and its digest says that the second build is the first one."""

    names: frozenset[str]
    header: bytes
    digest: bytes
    size: int
    quality: int
    dimensions: tuple[int, int]  # (read before any decode: a draft decode changes the image's size)


def _passthrough_plan(source: Source, targets: Sequence[TargetConfig], specs: Mapping[str, TargetSpec],
                      media: MediaConfig,
                      credit_segments: Callable[[], tuple[bytes, bytes | None]]) -> _Passthrough | None:
    """Which targets can have the source's own JPEG data (re-wrapped with our metadata), if any."""
    luminance = source.image.quantization.get(0) if _passable(source) else None  # type: ignore[attr-defined]
    if not luminance:
        return None
    fitting = [target for target in targets if _takes_as_is(source, specs[target.name], media)]
    if not fitting:
        return None
    exif, xmp = credit_segments()
    header = media_passthrough.header_segments(encode_jpeg(Image.new("RGB", (1, 1)), media.max_quality,
                                                           exif=exif, xmp=xmp))
    rewrapped = _rewrapped(source, header)
    if rewrapped is None:
        return None
    limits = {target.name: specs[target.name].max_bytes for target in fitting}
    names = frozenset(name for name, limit in limits.items() if limit is None or len(rewrapped) <= limit)
    if not names:
        return None
    return _Passthrough(names=names, header=header, digest=hashlib.sha256(rewrapped).digest(), size=len(rewrapped),
                        quality=media_passthrough.estimate_quality(luminance), dimensions=source.stored_size)


def _passable(source: Source) -> bool:
    """A JPEG whose pixels media_source would hand on unchanged: upright as stored (no EXIF
    orientation to apply), greyscale or YCbCr (not CMYK, not RGB-coded by an Adobe transform 0), and
    in sRGB already (no profile, or an sRGB one: the outputs carry none)."""
    info = source.image.info
    return (source.format in ("JPEG", "MPO") and source.metadata_read and source.orientation == 1
            and source.image.mode in ("RGB", "L") and source.handle is not None
            and not (source.image.mode == "RGB" and "adobe" in info and info.get("adobe_transform") != 1)
            and is_srgb(info.get("icc_profile")))


def _takes_as_is(source: Source, spec: TargetSpec, media: MediaConfig) -> bool:
    """Whether this target's output would be the source's pixels: no resize, crop or pad."""
    try:
        geometry = plan_geometry(source.upright_size, spec, media.fit)
    except _Refused:
        return False
    return geometry.fit is None and geometry.canvas == geometry.content == source.stored_size


def _rewrapped(source: Source, header: bytes) -> bytes | None:
    assert source.handle is not None
    descriptor = source.handle.fileno()
    size = os.fstat(descriptor).st_size
    data = os.pread(descriptor, size, 0)  # (not the handle's read: its position belongs to the decoder)
    if len(data) != size:
        return None
    return media_passthrough.rewrap(data, header)


def _passed_through(source: Source, plan: _Passthrough) -> dict[str, Encoded | BadPhoto]:
    rewrapped = _rewrapped(source, plan.header)
    if rewrapped is None or hashlib.sha256(rewrapped).digest() != plan.digest:
        changed = reject(source.path, "the file changed while it was being prepared; it is prepared again "
                                      "when it is written anew")
        return dict.fromkeys(plan.names, changed)
    width, height = plan.dimensions
    encoded = Encoded(data=rewrapped, width=width, height=height, quality=plan.quality, fit=None,
                      warnings=tuple(source.warnings))
    return dict.fromkeys(plan.names, encoded)


def _check_decodes(source: Source, background: str) -> None:
    """Decode the photo at 1/8 scale (every coefficient is still read): when every target passes the
    JPEG data through, this is what still finds a corrupt or cut-short file (raises BadPhoto)."""
    decode(source, (1, 1), background).close()
    source.image.close()


def _planned(size: tuple[int, int], specs: Sequence[TargetSpec], fit: str) -> list[Geometry]:
    """The geometries of these targets on the decoded pixels (those media.fit refuses are left out:
    they will make nothing)."""
    planned = []
    for spec in specs:
        with contextlib.suppress(_Refused):
            planned.append(plan_geometry(size, spec, fit))
    return planned


class _ScaledCopies:
    """The decoded pixels (as stored) plus the upright whole-frame downscales made for other targets.

    Resampling Instagram's 1440 px from X's 4096 px image instead of the 6000 px decode costs a
    fraction of the time; a copy is only used when it still holds REDUCING_GAP times the pixels the
    output needs, so LANCZOS has as much to work from as it would after Pillow's own reducing_gap.

    The full decode (96 MB for 24 MP: Pillow keeps 4 bytes a pixel) is let go as soon as a copy can
    serve every target still to come (``still_to_come``), before the current one is encoded, so a
    libjpeg encoder's whole-image coefficient buffer never sits beside it needlessly.

    Those later targets are then resampled from the copy on the ``ahead`` threads while the current
    one is encoded: Pillow's JPEG encoder holds the GIL, its resize does not, so the other core
    does the resizing meanwhile. Two of them, so that a third target's rendering (Instagram's, after
    Bluesky's) is not left waiting until the encoder is done with the second's (0.2 s less for five
    targets from 24 MP); by then the full decode is gone, so two outputs in flight cost little.
    """

    def __init__(self, pixels: Image.Image, orientation: int, release: Callable[[], None],
                 ahead: ThreadPoolExecutor, pad_color: str) -> None:
        self.pixels: Image.Image | None = pixels
        self.orientation = orientation
        width, height = pixels.size
        self.upright_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        self.copies: list[Image.Image] = []
        self.still_to_come: list[Geometry] = []
        self._release = release
        self._ahead = ahead
        self._pad_color = pad_color
        self._rendered_ahead: dict[Geometry, Future[Image.Image]] = {}
        self._asked_ahead: set[Geometry] = set()  # (once each: a twin target reuses the encoded bytes)
        # Finished outputs by geometry: a target that would render the same pixels reuses them.
        self.encoded: list[tuple[Geometry, bytes, int]] = []

    def add(self, image: Image.Image) -> None:
        if image is self.pixels:
            return
        self.copies.append(image)
        if self.pixels is not None and all(self._copy_for(later) for later in self.still_to_come):
            self.pixels = None
            self._release()
        if self.pixels is None:
            for later in self.still_to_come:
                if later not in self._asked_ahead:
                    self._asked_ahead.add(later)
                    base, box, orientation = self.base_for(later)
                    self._rendered_ahead[later] = self._ahead.submit(
                        render, base, box, later, self._pad_color, orientation)

    def rendered(self, geometry: Geometry) -> Image.Image:
        """This geometry's pixels: rendered ahead, or now."""
        ahead = self._rendered_ahead.pop(geometry, None)
        if ahead is not None:
            return ahead.result()
        base, box, orientation = self.base_for(geometry)
        return render(base, box, geometry, self._pad_color, orientation)

    def base_for(self, geometry: Geometry) -> tuple[Image.Image, Box, int]:
        """The smallest image holding enough detail for ``geometry``, the box in its pixels and the
        orientation still to apply."""
        found = self._copy_for(geometry)
        if found is not None:
            return found
        if self.pixels is not None:
            return self.pixels, geometry.box, self.orientation
        # Only a target that missed its byte limit gets here (every later one has a copy): it is
        # made smaller from its own larger rendering, the largest copy.
        return self._scaled_box(max(self.copies, key=lambda image: image.width), geometry.box)

    def _copy_for(self, geometry: Geometry) -> tuple[Image.Image, Box, int] | None:
        box = geometry.box
        for copy in sorted(self.copies, key=lambda image: image.width):
            fx, fy = copy.width / self.upright_size[0], copy.height / self.upright_size[1]
            if ((box[2] - box[0]) * fx >= REDUCING_GAP * geometry.content[0]
                    and (box[3] - box[1]) * fy >= REDUCING_GAP * geometry.content[1]):
                return self._scaled_box(copy, box)
        return None

    def _scaled_box(self, copy: Image.Image, box: Box) -> tuple[Image.Image, Box, int]:
        fx, fy = copy.width / self.upright_size[0], copy.height / self.upright_size[1]
        return copy, (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy), 1

    def reusable(self, geometry: Geometry, max_bytes: int | None, max_quality: int) -> tuple[bytes, int] | None:
        """An output already made with this geometry that this target's search would also choose:
        encoded at the highest quality and within this target's byte limit."""
        for made, data, quality in self.encoded:
            if made == geometry and quality == max_quality and (max_bytes is None or len(data) <= max_bytes):
                return data, quality
        return None


class _Refused(Exception):
    """One target cannot take this photo (the reason, without the file name)."""


def _raise_if_all_failed(results: Mapping[str, object]) -> None:
    failures = [outcome for outcome in results.values() if isinstance(outcome, BadPhoto)]
    if results and len(failures) == len(results):
        if len(failures) == 1:
            raise failures[0]
        raise BadPhoto("; ".join(str(failure) for failure in failures))


def _credit(source: Source, metadata: Metadata | None) -> Credit:
    if metadata is None:
        return source.credit
    return Credit(creator=tuple(metadata.creator), copyright=metadata.copyright)


def _draft_size(upright: tuple[int, int], scale: float) -> tuple[int, int] | None:
    """The smallest decode that still leaves REDUCING_GAP of headroom for every target, if that is
    small enough for DCT scaling (at least 2x) to help."""
    wanted = scale * REDUCING_GAP
    if wanted > 0.5:
        return None
    return (max(1, math.ceil(upright[0] * wanted)), max(1, math.ceil(upright[1] * wanted)))


# ---------------------------------------------------------------------------------------------------
# Geometry: limits, fit (pad | crop | reject), scale


def plan_geometry(size: tuple[int, int], spec: TargetSpec, fit: str, shrink: float = 1.0) -> Geometry:
    """Where this target's output comes from and how big it is; raises _Refused for fit: reject.

    ``shrink`` (<= 1) makes the output smaller than the limits alone would, for the byte limit.
    """
    width, height = size
    box, canvas_src, fit_applied = _fit_aspect(width, height, spec, fit)
    scale = _scale(canvas_src, spec, shrink)
    out_w, out_h = _output_size(canvas_src, scale, spec)
    sx, sy = out_w / canvas_src[0], out_h / canvas_src[1]
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    content = (min(out_w, max(1, round(box_w * sx))), min(out_h, max(1, round(box_h * sy))))
    offset = ((out_w - content[0]) // 2, (out_h - content[1]) // 2)
    return Geometry(box=box, content=content, canvas=(out_w, out_h), offset=offset, scale=scale,
                    fit=fit_applied)


def _fit_aspect(width: int, height: int, spec: TargetSpec,
                fit: str) -> tuple[Box, tuple[float, float], str | None]:
    full: Box = (0, 0, width, height)
    aspect = width / height
    low = spec.min_aspect or 0.0
    high = spec.max_aspect or math.inf
    if low <= aspect <= high:
        return full, (width, height), None
    goal = min(max(aspect, low), high)
    if fit == "reject":
        raise _Refused(f"aspect ratio {_ratio(aspect)} is outside {spec.label}'s {_ratio(low)} to "
                       f"{_ratio(high)} and media.fit is reject; set media.fit to pad or crop, or crop "
                       "the photo yourself")
    if fit == "crop":  # centred
        if aspect > goal:
            kept = height * goal
            return ((width - kept) / 2, 0, (width + kept) / 2, height), (kept, height), "crop"
        kept = width / goal
        return (0, (height - kept) / 2, width, (height + kept) / 2), (width, kept), "crop"
    if aspect > goal:  # pad: bars above and below
        return full, (width, width / goal), "pad"
    return full, (height * goal, height), "pad"  # pad: bars left and right


def _ratio(aspect: float) -> str:
    if aspect == 0.8:
        return "4:5"
    return f"{aspect:.2f}:1"


def _scale(canvas: tuple[float, float], spec: TargetSpec, shrink: float) -> float:
    scale = min(1.0, shrink)
    if spec.max_long_edge:
        scale = min(scale, spec.max_long_edge / max(canvas))
    if spec.max_width:
        scale = min(scale, spec.max_width / canvas[0])
    if spec.max_pixels:
        scale = min(scale, math.sqrt(spec.max_pixels / (canvas[0] * canvas[1])))
    if spec.min_width and canvas[0] * scale < spec.min_width:
        scale = spec.min_width / canvas[0]  # narrower than the platform takes: scale up
    return scale


def _output_size(canvas: tuple[float, float], scale: float, spec: TargetSpec) -> tuple[int, int]:
    out_w = max(1, round(canvas[0] * scale))
    out_h = max(1, round(canvas[1] * scale))
    if spec.max_width:
        out_w = min(out_w, spec.max_width)
    if spec.min_width:
        out_w = max(out_w, spec.min_width)
    if spec.max_long_edge and max(out_w, out_h) > spec.max_long_edge:
        out_w, out_h = min(out_w, spec.max_long_edge), min(out_h, spec.max_long_edge)
    # Rounding must not push the aspect ratio back out of range.
    if spec.max_aspect and out_w / out_h > spec.max_aspect:
        out_h = math.ceil(out_w / spec.max_aspect)
    if spec.min_aspect and out_w / out_h < spec.min_aspect:
        out_h = math.floor(out_w / spec.min_aspect)
    if spec.max_pixels and out_w * out_h > spec.max_pixels:
        out_w, out_h = _within_pixels(canvas, scale, spec)
    return out_w, out_h


def _within_pixels(canvas: tuple[float, float], scale: float, spec: TargetSpec) -> tuple[int, int]:
    """Rounding up crossed the pixel-count limit: round both sides down instead (each stays within a
    pixel of the exact shape). Every step below only makes a side smaller, so the limit holds."""
    assert spec.max_pixels is not None
    out_w, out_h = max(1, math.floor(canvas[0] * scale)), max(1, math.floor(canvas[1] * scale))
    if out_w * out_h > spec.max_pixels:  # only when a side was raised to 1 pixel: the other gives way
        if out_h == 1:
            out_w = spec.max_pixels
        else:
            out_h = max(1, spec.max_pixels // out_w)
    # Rounding down must not push the aspect ratio out of range either.
    if spec.max_aspect and out_w / out_h > spec.max_aspect:
        out_w = max(1, math.floor(out_h * spec.max_aspect))
    if spec.min_aspect and out_w / out_h < spec.min_aspect:
        out_h = max(1, math.floor(out_w / spec.min_aspect))
    return out_w, out_h


# ---------------------------------------------------------------------------------------------------
# Rendering and encoding


def _encode_target(scaled: _ScaledCopies, spec: TargetSpec, media: MediaConfig, exif: bytes,
                   xmp: bytes | None, source: Source) -> Encoded:
    shrink = 1.0
    while True:
        geometry = plan_geometry(scaled.upright_size, spec, media.fit, shrink)
        found = scaled.reusable(geometry, spec.max_bytes, media.max_quality) or _render_and_search(
            scaled, geometry, spec, media, exif, xmp)
        if isinstance(found, tuple):
            data, quality = found
            return Encoded(data=data, width=geometry.canvas[0], height=geometry.canvas[1], quality=quality,
                           fit=geometry.fit, warnings=tuple(source.warnings))
        shrink = _next_shrink(geometry, spec, media, smallest=found)


def _render_and_search(scaled: _ScaledCopies, geometry: Geometry, spec: TargetSpec, media: MediaConfig,
                       exif: bytes, xmp: bytes | None) -> tuple[bytes, int] | int:
    rendered = scaled.rendered(geometry)
    if geometry.fit is None:  # a whole-frame downscale: a base for smaller targets
        scaled.add(rendered)
    found = search_quality(functools.partial(encode_jpeg, rendered, exif=exif, xmp=xmp),
                           spec.max_bytes, media.min_quality, media.max_quality)
    if isinstance(found, tuple):
        scaled.encoded.append((geometry, *found))
    return found


def _next_shrink(geometry: Geometry, spec: TargetSpec, media: MediaConfig, smallest: int) -> float:
    """The scale to try next when even min_quality is over the byte limit; raises _Refused at the floor."""
    assert spec.max_bytes is not None  # only a byte limit can be missed
    # JPEG size grows about linearly with pixel count; aim 5 % under to converge in one or two steps.
    factor = math.sqrt(spec.max_bytes / smallest) * 0.95
    long_edge = max(geometry.canvas)
    floor = media.shrink_floor
    if long_edge <= floor or (spec.min_width and geometry.canvas[0] <= spec.min_width):
        raise _Refused(f"even at quality {media.min_quality} and {geometry.canvas[0]}x{geometry.canvas[1]} "
                       f"the image is {smallest:,} bytes, more than {spec.label}'s {spec.max_bytes:,}; "
                       "it would only post as mush (a very noisy photo?)")
    factor = max(factor, floor / long_edge)
    return geometry.scale * factor


def render(base: Image.Image, box: Box, geometry: Geometry, pad_color: str, orientation: int = 1) -> Image.Image:
    """``box`` (upright coordinates) of ``base`` (stored with ``orientation``) resampled to the
    geometry's content size and turned upright, then padded onto its canvas if needed."""
    stored_box = _stored_box(box, orientation, base.size)
    stored_size = _stored_size(geometry.content, orientation)
    if stored_box == (0, 0, *base.size) and stored_size == base.size:
        content = base
    else:
        content = resample(base, stored_box, stored_size)
    fix = ORIENTATION_FIX.get(orientation)
    if fix is not None:
        content = content.transpose(fix)
    if geometry.content == geometry.canvas:
        return content
    canvas = Image.new("RGB", geometry.canvas, pad_color)
    canvas.paste(content, geometry.offset)
    return canvas


def _stored_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _stored_box(box: Box, orientation: int, stored: tuple[int, int]) -> Box:
    """An upright-coordinates box in the coordinates of the pixels as stored."""
    if orientation == 1:
        return box
    (x0, y0), (x1, y1) = (_stored_point(box[0], box[1], orientation, stored),
                          _stored_point(box[2], box[3], orientation, stored))
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _stored_point(x: float, y: float, orientation: int, stored: tuple[int, int]) -> tuple[float, float]:
    """Upright point -> stored point: the inverse of each EXIF orientation's transpose."""
    w, h = stored
    match orientation:
        case 2:
            return w - x, y
        case 3:
            return w - x, h - y
        case 4:
            return x, h - y
        case 5:
            return y, x
        case 6:
            return y, h - x
        case 7:
            return w - y, h - x
        case 8:
            return w - y, x
    return x, y


def resample(image: Image.Image, box: Box, size: tuple[int, int]) -> Image.Image:
    """LANCZOS from ``box`` to ``size``, pre-reduced by an integer factor when shrinking a lot, and
    split into horizontal strips over the cores (Pillow releases the GIL while resampling; each strip
    reads the rows around it, so the seams are exact)."""
    factor = min((box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1])
    reduce_by = int(factor / REDUCING_GAP)
    if reduce_by >= 2:
        whole = (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3]))
        image = image.reduce(reduce_by, box=whole)
        box = ((box[0] - whole[0]) / reduce_by, (box[1] - whole[1]) / reduce_by,
               (box[2] - whole[0]) / reduce_by, (box[3] - whole[1]) / reduce_by)
        box = (box[0], box[1], min(box[2], image.width), min(box[3], image.height))
    workers = _workers()
    if workers == 1 or size[0] * size[1] < PARALLEL_RESIZE_PIXELS:
        return image.resize(size, Image.Resampling.LANCZOS, box=box)
    return _resample_in_strips(image, box, size, workers)


def _resample_in_strips(image: Image.Image, box: Box, size: tuple[int, int],
                        workers: int) -> Image.Image:
    rows_per_source = (box[3] - box[1]) / size[1]
    count = max(workers, round(size[1] / STRIP_ROWS))
    edges = [round(i * size[1] / count) for i in range(count + 1)]

    def strip(index: int) -> Image.Image:
        top, bottom = edges[index], edges[index + 1]
        strip_box = (box[0], box[1] + top * rows_per_source, box[2], box[1] + bottom * rows_per_source)
        return image.resize((size[0], bottom - top), Image.Resampling.LANCZOS, box=strip_box)

    out = Image.new(image.mode, size)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Pasted as they come (map keeps order): only the strips in flight exist beside the output.
        for top, piece in zip(edges, pool.map(strip, range(count)), strict=False):
            out.paste(piece, (0, top))
            del piece
    return out


def _workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def encode_jpeg(image: Image.Image, quality: int, *, exif: bytes, xmp: bytes | None) -> bytes:
    buffer = io.BytesIO()
    # Explicit empty values: nothing from image.info (comment, ICC, EXIF) is carried over by Pillow.
    image.save(buffer, "JPEG", quality=quality, progressive=True, optimize=True, exif=exif,
               xmp=xmp or b"", icc_profile=None, comment=b"")
    return buffer.getvalue()


def search_quality(encode: Callable[[int], bytes], limit: int | None, lowest: int,
                   highest: int) -> tuple[bytes, int] | int:
    """The highest quality in [lowest, highest] whose encoding fits ``limit``, by binary search.

    Returns ``(data, quality)``, or, when even ``lowest`` does not fit, the size at ``lowest``.
    """
    data = encode(highest)
    if limit is None or len(data) <= limit:
        return data, highest
    fits, misses = lowest - 1, highest  # invariant: misses does not fit; fits does (or is below range)
    best: tuple[bytes, int] | None = None
    size_at_lowest = len(data)
    while misses - fits > 1:
        middle = (fits + misses) // 2
        attempt = encode(middle)
        if len(attempt) <= limit:
            fits, best = middle, (attempt, middle)
        else:
            misses = middle
            size_at_lowest = len(attempt)
    return best if best is not None else size_at_lowest


# ---------------------------------------------------------------------------------------------------
# Output metadata, built from scratch


def build_exif(credit: Credit, source: Source, privacy: PrivacyConfig) -> bytes:
    """EXIF holding only the kept groups. No orientation tag: the pixels are already upright."""
    exif = Image.Exif()
    if "creator" in privacy.keep and credit.creator:
        exif[TAG_ARTIST] = _exif_ascii("; ".join(credit.creator))
    if "copyright" in privacy.keep and credit.copyright:
        exif[TAG_COPYRIGHT] = _exif_ascii(credit.copyright)
    credit_only = exif.tobytes() if len(exif) else b""
    extra = [(ifd, tag, value) for group in privacy.keep if group not in privacy.strip
             for ifd, tag, value in source.keepable.get(group, ())]
    if not extra:
        return credit_only
    for ifd, tag, value in extra:
        (exif.get_ifd(ifd) if ifd is not None else exif)[tag] = _exif_ascii(value) if isinstance(value, str) else value
    try:
        return exif.tobytes()
    except Exception as exc:  # odd source values must not cost the credit
        source.warnings.append(f"camera/exposure EXIF values could not be written, left out ({exc})")
        return credit_only


def _exif_ascii(text: str) -> str | bytes:
    # EXIF "ASCII" fields carry UTF-8 in practice (exiftool, Lightroom); Pillow would write "?" for
    # anything non-ASCII given a str, so non-ASCII text goes in as UTF-8 bytes.
    return text if text.isascii() else text.encode("utf-8")


def _xml_text(text: str) -> str:
    """``text`` as XML character data (what xml.sax.saxutils.escape does; that module imports
    urllib.request, and with it http.client, ssl and email: 8 MB of resident memory in every process
    that prepares an image)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_xmp(credit: Credit, privacy: PrivacyConfig) -> bytes | None:
    """A minimal XMP packet with dc:creator and dc:rights only (no history, no tool traces)."""
    if not privacy.xmp_credit:
        return None
    parts = []
    if "creator" in privacy.keep and credit.creator:
        items = "".join(f"<rdf:li>{_xml_text(name)}</rdf:li>" for name in credit.creator)
        parts.append(f"<dc:creator><rdf:Seq>{items}</rdf:Seq></dc:creator>")
    if "copyright" in privacy.keep and credit.copyright:
        rights = _xml_text(credit.copyright)
        parts.append('<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">'
                     f"{rights}</rdf:li></rdf:Alt></dc:rights>")
    if not parts:
        return None
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'{"".join(parts)}</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="r"?>'
    )
    return packet.encode("utf-8")


# ---------------------------------------------------------------------------------------------------
# The media cache


def _safe_name(name: str) -> str:
    """A file-name part from a hash or target name: no separators, no dots, no surprises."""
    safe = re.sub(r"[^A-Za-z0-9_-]", lambda m: f"%{ord(m.group()):02X}", name)
    return safe.replace("%", "~") or "~"


def _read_cached(path: Path) -> PreparedImage | None:
    sidecar = path.with_suffix(".json")
    try:
        facts = json.loads(sidecar.read_text(encoding="utf-8"))
        size = path.stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(facts, dict) or facts.get("bytes") != size:
        return None
    try:
        return PreparedImage(path=str(path), width=facts["width"], height=facts["height"], bytes=size,
                             format=facts["format"], quality=facts["quality"], fit=facts["fit"],
                             warnings=tuple(facts.get("warnings", ())))
    except (KeyError, TypeError):
        return None


def _write_cached(path: Path, encoded: Encoded) -> PreparedImage:
    prepared = _write_file(path, encoded)
    facts = image_facts(prepared)
    del facts["file"]
    # The sidecar is written last: its presence says the JPEG beside it is complete.
    _atomic_write(path.with_suffix(".json"), json.dumps(facts).encode())
    return prepared


def _write_file(path: Path, encoded: Encoded) -> PreparedImage:
    _atomic_write(path, encoded.data)
    return PreparedImage(path=str(path), width=encoded.width, height=encoded.height, bytes=len(encoded.data),
                         format="JPEG", quality=encoded.quality, fit=encoded.fit, warnings=encoded.warnings)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        # mkstemp makes 0600; the file may be copied on to a web server's folder (media_host), so it
        # gets the mode an ordinary open() would give it.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
