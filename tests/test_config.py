"""Config: the contract's skeleton loads; every error is exit 2 with one line naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crosswatch.config import default_config_path, load_config
from crosswatch.errors import ConfigError
from tests.conftest import REPO, run_cli, write_config


def test_a_valid_config_loads_into_frozen_objects(workspace: dict[str, Path]) -> None:
    config = load_config(write_config(workspace))
    assert config.watch[0].path == workspace["inbox"]
    assert config.watch[0].targets == ("outbox",)
    assert config.targets["outbox"].kind == "outbox"
    assert config.journal_path == workspace["state"] / "journal.sqlite3"
    with pytest.raises(AttributeError):
        config.state_dir = Path("/elsewhere")  # type: ignore[misc]


def test_the_example_config_documents_a_loadable_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The example names folders in the user's home; point HOME at a place where they exist.
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Pictures" / "Export" / "Social").mkdir(parents=True)
    config = load_config(REPO / "config.example.yaml")
    assert set(config.targets) == {"outbox", "x", "instagram", "mastodon", "bluesky", "threads"}
    assert config.targets["bluesky"].service == "https://bsky.social"
    assert config.targets["x"].api_base == "https://api.x.com"
    assert config.targets["instagram"].graph_base == "https://graph.instagram.com"


def test_config_path_comes_from_the_environment_then_platformdirs(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_path() == tmp_path / "xdg" / "crosswatch" / "config.yaml"
    monkeypatch.setenv("CROSSWATCH_CONFIG", str(tmp_path / "mine.yaml"))
    assert default_config_path() == tmp_path / "mine.yaml"


def test_cli_finds_the_config_through_crosswatch_config(workspace: dict[str, Path]) -> None:
    config = write_config(workspace)
    result = run_cli("status", "--json", env={"CROSSWATCH_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{")


BAD_CONFIGS = {
    "unknown key": ("state_dir: {state}\nwatch:\n  - path: {inbox}\n    targets: [outbox]\n    colour: red\n"
                    "targets:\n  outbox: {{path: {outbox}}}\n", 5, "watch.0.colour"),
    "wrong type": ("state_dir: {state}\nwatch:\n  - path: {inbox}\n    targets: [outbox]\n    settle_seconds: soon\n"
                   "targets:\n  outbox: {{path: {outbox}}}\n", 5, "watch.0.settle_seconds"),
    "missing folder": ("state_dir: {state}\nwatch:\n  - path: {inbox}/nowhere\n    targets: [outbox]\n"
                       "targets:\n  outbox: {{path: {outbox}}}\n", 3, "watch.0.path"),
    "unknown placeholder": ("state_dir: {state}\nwatch:\n  - path: {inbox}\n    targets: [outbox]\n"
                            "captions:\n  outbox: \"{{title}} {{shoe_size}}\"\n"
                            "targets:\n  outbox: {{path: {outbox}}}\n", 6, "captions.outbox"),
    "attribute access": ("state_dir: {state}\nwatch:\n  - path: {inbox}\n    targets: [outbox]\n"
                         "captions:\n  outbox: \"{{title.__class__}}\"\n"
                         "targets:\n  outbox: {{path: {outbox}}}\n", 6, "captions.outbox"),
    "unknown target name": ("state_dir: {state}\nwatch:\n  - path: {inbox}\n    targets: [outbox, mastodon]\n"
                            "targets:\n  outbox: {{path: {outbox}}}\n", 4, "watch.0.targets.1"),
    "not yaml": ("state_dir: {state}\nwatch: [\n", 3, None),
    "unknown top-level key": ("state_dir: {state}\nwatchh: []\ntargets:\n  outbox: {{path: {outbox}}}\n", 2,
                              "watchh"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_every_config_error_is_exit_2_with_one_line(case: str, workspace: dict[str, Path]) -> None:
    template, line, key = BAD_CONFIGS[case]
    path = workspace["config"]
    path.write_text(template.format(state=workspace["state"], inbox=workspace["inbox"],
                                    outbox=workspace["outbox"]))
    result = run_cli("run", "--once", config=path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{path}:{line}:" in lines[0]
    if key:
        assert key in lines[0]


def test_a_missing_config_file_says_where_it_looked(tmp_path: Path) -> None:
    result = run_cli("status", config=tmp_path / "absent.yaml")
    assert result.returncode == 2
    assert str(tmp_path / "absent.yaml") in result.stderr
    assert "config.example.yaml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_yaml_tags_that_would_run_code_are_refused(workspace: dict[str, Path]) -> None:
    path = workspace["config"]
    path.write_text("state_dir: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
