"""Shared fixtures. Tests that need ../shared/data or the [export] extra skip
with a reason that says what is missing."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeclf.bundle import embedded_root

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def shared_data() -> Path | None:
    from edgeclf.export.data import shared_data_dir

    return shared_data_dir()


@pytest.fixture(scope="session")
def shared() -> Path:
    d = shared_data()
    if d is None:
        pytest.skip("needs ../shared/data (the project's real datasets) beside the checkout or $EDGECLF_DATA")
    return d


def benchmark_module(name: str):
    """``benchmarks/NAME.py`` imported as a module (the benchmark scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"needs {module} (pip install 'edgeclf[export]')")


@pytest.fixture(scope="session")
def keras_bundle() -> Path:
    return embedded_root() / "keras-imdb"


@pytest.fixture()
def bundle_copy(tmp_path: Path, keras_bundle: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(keras_bundle, dst)
    return dst


def run_cli(*args: str, input: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgeclf", *args], input=input, capture_output=True, cwd=cwd, timeout=600
    )
