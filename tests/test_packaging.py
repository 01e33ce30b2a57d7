"""Packaging: screens/ installs as lc_console.screens and themes/ as lc_console.themes, in both
a regular (sdist -> wheel -> fresh venv) and the editable install, and the distribution claims
no generic top-level name (`import screens` fails).

Offline: the sdist and wheel are built with the dev venv's setuptools (no build isolation),
installed into a fresh venv by the dev venv's pip (`--python`, `--no-deps --no-index`), and
the fresh venv reaches the runtime dependencies through a .pth line naming the dev venv's
site-packages. A plain path in a .pth does not run that directory's own .pth files, so the
dev venv's editable hook for lc_console stays off: lc_console can only come from the wheel.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = {"lc_console": "lc_console", "screens": "lc_console/screens",
               "themes": "lc_console/themes"}

# Run in a subprocess with cwd=/tmp so that the repo root is not on sys.path.
PROBE = r"""
import importlib, importlib.resources, importlib.util, json, pkgutil, sys
out = {"sys_path": sys.path}
for name in ("screens", "themes"):
    out[f"top_{name}"] = importlib.util.find_spec(name) is not None
import lc_console, lc_console.screens, lc_console.themes
out["lc_console_file"] = lc_console.__file__
out["screens_file"] = lc_console.screens.__file__
out["version"] = lc_console.__version__
themes = importlib.resources.files("lc_console.themes")
out["tcss"] = sorted(p.name for p in themes.iterdir() if p.name.endswith(".tcss"))
out["tcss_real_files"] = all(
    __import__("pathlib").Path(str(themes / n)).is_file() for n in out["tcss"])
failed = {}
for mod in pkgutil.walk_packages(lc_console.__path__, "lc_console."):
    if mod.name.endswith("__main__"):  # runs the CLI
        continue
    try:
        importlib.import_module(mod.name)
    except Exception as exc:
        failed[mod.name] = f"{type(exc).__name__}: {exc}"
out["import_failures"] = failed
print(json.dumps(out))
"""


def _source_files(ext: str) -> set[str]:
    """Files with `ext` in the source tree, as paths inside the installed lc_console."""
    found = set()
    for src, dest in SOURCE_DIRS.items():
        for path in (ROOT / src).rglob(f"*{ext}"):
            if "__pycache__" not in path.parts:
                found.add(f"{dest}/{path.relative_to(ROOT / src).as_posix()}")
    return found


def _probe(python: Path | str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True,
                          timeout=120, cwd="/tmp")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _check_probe(info: dict, site: str) -> None:  # type: ignore[type-arg]
    assert str(ROOT) not in info["sys_path"]  # neither cwd nor the install put the repo there
    assert info["top_screens"] is False, "`import screens` must fail"
    assert info["top_themes"] is False, "`import themes` must fail"
    assert info["lc_console_file"].startswith(site), info["lc_console_file"]
    assert info["screens_file"].startswith(site), info["screens_file"]
    expected_tcss = sorted(Path(p).name for p in _source_files(".tcss"))
    assert expected_tcss, "themes/ has no .tcss files"
    assert info["tcss"] == expected_tcss
    assert info["tcss_real_files"]
    assert info["import_failures"] == {}


def test_pyproject_lists_every_package() -> None:
    """setuptools silently leaves an unlisted sub-package out of the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = set()
    for src, dest in SOURCE_DIRS.items():
        for init in (ROOT / src).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / src).parts
            on_disk.add(".".join((dest.replace("/", "."), *rel)))
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == set(), "listed packages with no __init__.py"
    assert config["package-dir"] == {"lc_console": "lc_console",
                                     "lc_console.screens": "screens",
                                     "lc_console.themes": "themes"}


@pytest.mark.slow
def test_wheel_from_sdist_in_a_fresh_venv(tmp_path: Path) -> None:
    # Build from a copy, so the working tree gets no build/ or egg-info debris.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in SOURCE_DIRS:
        shutil.copytree(ROOT / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    build = ("import sys; from setuptools import build_meta as b; "
             "print(getattr(b, sys.argv[1])(sys.argv[2]))")
    sdist_name = subprocess.run([sys.executable, "-c", build, "build_sdist", str(dist)],
                                cwd=src, capture_output=True, text=True, timeout=120,
                                check=True).stdout.strip().splitlines()[-1]
    with tarfile.open(dist / sdist_name) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
            tar.extractall(tmp_path / "sdist", filter="data")
        else:  # pragma: no cover - our own sdist, just built
            tar.extractall(tmp_path / "sdist")
    unpacked = tmp_path / "sdist" / sdist_name.removesuffix(".tar.gz")
    wheel_name = subprocess.run([sys.executable, "-c", build, "build_wheel", str(dist)],
                                cwd=unpacked, capture_output=True, text=True, timeout=120,
                                check=True).stdout.strip().splitlines()[-1]
    wheel = dist / wheel_name

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"lc_console", dist_info}, tops
    missing = (_source_files(".py") | _source_files(".tcss")) - names
    assert missing == set(), f"missing from the wheel: {sorted(missing)[:10]}"
    for data_dir in ("lc_console/salesforce/templates", "lc_console/sandbox/salesforce/data"):
        source = ROOT / data_dir
        if source.is_dir():
            for path in source.rglob("*"):
                if path.is_file() and "__pycache__" not in path.parts:
                    assert path.relative_to(ROOT).as_posix() in names, path
    assert "Requires-Python: >=3.11" in metadata
    for dep in ("textual", "httpx", "keyring", "simple-salesforce", "stripe", "platformdirs",
                "tomli-w", "cryptography"):
        assert f"Requires-Dist: {dep}" in metadata
    assert "lc-console = lc_console.cli:main" in entry_points

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=120, capture_output=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True,
                          cwd="/tmp").stdout.strip()
    (Path(site) / "_lc_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    _check_probe(_probe(python), site)
    done = subprocess.run([str(env_dir / "bin" / "lc-console"), "--version"],
                          capture_output=True, text=True, timeout=60, cwd="/tmp")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "lc-console 0.1.0"


def test_editable_install_of_the_dev_venv() -> None:
    info = _probe(sys.executable)
    _check_probe(info, str(ROOT))
    assert info["lc_console_file"] == str(ROOT / "lc_console" / "__init__.py")
    assert info["screens_file"] == str(ROOT / "screens" / "__init__.py")
