"""`crosswatch metadata` and `crosswatch preview`: the contract's shapes, from real files."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.conftest import PHOTOS, REPO, run_cli, write_config

SAMPLE = REPO / "crosswatch" / "samples" / "salt-flats-panorama.jpg"


def platform_targets(tmp_path: Path) -> dict[str, object]:
    hosted = tmp_path / "hosted"
    hosted.mkdir()
    return {
        "outbox": {"path": str(tmp_path / "outbox")},
        "x": {"client_id": "cid"},
        "instagram": {"client_id": "cid", "media_host": {"type": "directory", "path": str(hosted),
                                                          "public_url": "https://example.com/x/"}},
    }


def test_metadata_json_has_the_contract_keys() -> None:
    result = run_cli("metadata", str(SAMPLE), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    for key in ("title", "description", "creator", "copyright", "credit", "usage_terms", "web_statement",
                "keywords", "rating", "alt_text", "date_taken", "orientation", "make", "model", "lens",
                "width", "height", "has_gps", "warnings"):
        assert key in document
    assert document["title"] == "Salt flats panorama"
    assert document["has_gps"] is True


def test_metadata_of_a_file_that_is_not_an_image_is_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    result = run_cli("metadata", str(text))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_preview_json_and_out(workspace: dict[str, Path], tmp_path: Path) -> None:
    config = write_config(workspace, targets=platform_targets(tmp_path),
                          watch=[{"path": str(workspace["inbox"]), "targets": ["x", "instagram"]}])
    out = tmp_path / "preview"
    result = run_cli("preview", str(SAMPLE), "--json", "--out", str(out), config=config)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["file"] == str(SAMPLE)
    for name, limit in (("x", 280), ("instagram", 2200)):
        entry = document["targets"][name]
        assert {"text", "length", "limit", "alt_text", "hashtags", "shortened", "image"} <= set(entry)
        assert entry["limit"] == limit and entry["length"] <= limit
        assert "Ada Lumen" in entry["text"]  # the credit travels in the caption
        image = entry["image"]
        assert {"width", "height", "bytes", "format"} <= set(image)
        with Image.open(out / f"{name}.jpg") as written:
            assert written.size == (image["width"], image["height"])
            assert "exif" not in written.info or b"GPS" not in written.info["exif"]
    # The panorama is wider than 1.91:1, so Instagram's copy was padded into range.
    ig = document["targets"]["instagram"]["image"]
    assert ig["width"] / ig["height"] <= 1.91 + 0.01
    assert json.loads((out / "preview.json").read_text())["targets"].keys() == {"outbox", "x", "instagram"}


def test_preview_of_a_broken_photo_says_why(workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    result = run_cli("preview", str(PHOTOS / "pil-truncated_jpeg.jpg"), config=config)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
