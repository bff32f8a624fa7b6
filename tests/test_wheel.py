"""crosswatch installed from its wheel, not from the source tree: every file the package reads at run time
(the sample photos, the emulator's data, lexicons and static files, the console's templates and static
files) is in the wheel, and `crosswatch demo --exit` works from a fresh virtual environment.

Offline and quick: the wheel is built without build isolation (setuptools is in the test venv), and
installed without its dependencies into a new venv that reaches this venv's packages through a .pth
file (a plain path line: the editable crosswatch's own .pth hook in there is not run, so the new venv's
crosswatch is the wheel's).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env

pytestmark = pytest.mark.slow


def package_files_in_repo() -> set[str]:
    """Every file git knows under crosswatch/ that is not Python source: what the package reads as data."""
    listed = subprocess.run(["git", "ls-files", "crosswatch"], cwd=REPO, capture_output=True, text=True, check=True)
    return {name for name in listed.stdout.splitlines() if not name.endswith(".py")}


def build_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("crosswatch-*.whl")
    return wheel


def venv_with_wheel(root: Path, wheel: Path) -> Path:
    """A new venv (without pip: this venv's pip installs into it) holding the wheel; returns its bin dir."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "test-venv-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv / "bin"


def test_the_wheel_holds_every_data_file_and_its_demo_runs_from_a_fresh_venv(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(package_files_in_repo() - in_wheel)
    assert not missing, f"not in the wheel (pyproject's package-data): {missing}"

    bin_dir = venv_with_wheel(tmp_path, wheel)
    where = subprocess.run([str(bin_dir / "python"), "-c", "import crosswatch; print(crosswatch.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert where.startswith(str(tmp_path / "venv")), where  # the wheel's crosswatch, not the source tree's
    result = subprocess.run([str(bin_dir / "crosswatch"), "demo", "--exit"], capture_output=True, text=True,
                            timeout=240, cwd=tmp_path, env=cli_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "23 of 24 posts made, 1 waiting for your approval" in result.stdout
    assert "Traceback" not in result.stderr
