"""A frozen app: a bare ``pyinstaller app.py`` on a script that imports edgeclf.

edgeclf is installed the way an app developer gets it (a wheel, not the
editable checkout: PyInstaller cannot see through setuptools' editable-import
hook), then ``tests/freeze/app.py`` is frozen into one folder with no
options: the package's own hook (found through the ``pyinstaller40`` entry
point) must bring the embedded bundles and the lazily imported modules. The
frozen executable must find every bundle inside itself, verify its checksums
(a byte flipped in the frozen copy must be refused) and give exactly the
probabilities the same script gives unfrozen, without TensorFlow, PyTorch or
matplotlib copied in even when the build environment has them (CI's has).

About 50 to 70 s on 2 shared cores (pip install 10 to 16 s, PyInstaller 26 to 45 s).
Needs PyInstaller: ``pip install 'edgeclf[desktop]'`` (CI installs it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import edgeclf

pytest.importorskip("PyInstaller", reason="needs pip install 'edgeclf[desktop]' (CI installs it)")

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [
    "A moving, beautifully acted film.",
    "Dull and far too long.",
    "网传某地发生地震，经核实为谣言。",
    "x",
]
HEAVY = ("torch", "tensorflow", "matplotlib", "transformers")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    work = tmp_path_factory.mktemp("freeze")
    site, src = work / "site", work / "src"
    t0 = time.perf_counter()
    # build from a copy of the sources: an in-tree build would leave build/ and *.egg-info in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("runtime", "export", "quantize"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    shutil.copy(ROOT / "tests" / "freeze" / "app.py", work / "app.py")
    env = {**os.environ, "PYTHONPATH": str(site)}
    t1 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "app.py"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    t2 = time.perf_counter()
    print(f"\nfreeze: pip install {t1 - t0:.1f} s, pyinstaller {t2 - t1:.1f} s")
    assert "hook-edgeclf.py" in r.stderr  # PyInstaller logs each hook it applies
    return work, env


def run_app(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=cwd, env=env, input=json.dumps(TEXTS), capture_output=True, text=True, timeout=300
    )


def test_frozen_app_finds_verifies_and_predicts_like_unfrozen(build):
    work, env = build
    exe = work / "dist" / "app" / "app"
    frozen = run_app([str(exe)], work, {k: v for k, v in env.items() if k != "PYTHONPATH"})
    assert frozen.returncode == 0, frozen.stderr
    unfrozen = run_app([sys.executable, "app.py"], work, env)
    assert unfrozen.returncode == 0, unfrozen.stderr
    got, want = json.loads(frozen.stdout), json.loads(unfrozen.stdout)
    assert got["frozen"] and not want["frozen"]
    expected_keys = {
        f"{name}/{variant}"
        for name in edgeclf.list_models()
        for variant in edgeclf.load(name).manifest.variants
    }
    assert set(got["models"]) == expected_keys
    for key, result in got["models"].items():
        assert Path(result["location"]).is_relative_to(exe.parent), key  # the app's own copy
        assert result["probabilities"] == want["models"][key]["probabilities"], key
    assert got["heavy_modules"] == []


def test_frozen_app_refuses_a_tampered_bundle(build):
    work, _ = build
    model = work / "dist" / "app" / "_internal" / "edgeclf" / "models" / "keras-imdb" / "model.int8.onnx"
    original = model.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0x01
    model.write_bytes(bytes(tampered))
    try:
        r = run_app([str(work / "dist" / "app" / "app")], work, dict(os.environ))
    finally:
        model.write_bytes(original)
    assert r.returncode != 0
    assert "checksum mismatch for 'model.int8.onnx'" in r.stderr


def test_heavy_optional_modules_stay_out(build):
    installed = [m for m in HEAVY if importlib.util.find_spec(m) is not None]
    if not installed:
        pytest.skip(
            "none of torch/tensorflow/matplotlib/transformers installed here, so none could leak (CI has them)"
        )
    internal = Path(build[0]) / "dist" / "app" / "_internal"
    leaked = [m for m in installed if (internal / m).exists()]
    assert not leaked, f"frozen app carries {leaked}"
