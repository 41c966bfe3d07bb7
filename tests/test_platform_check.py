"""32-bit ARM (32-bit Raspberry Pi OS) gets a clear "use 64-bit Raspberry Pi OS" error.

onnxruntime publishes no armv7l/armv6l wheels, so pyproject.toml does not
require it there and ``import edgeclf`` refuses with a message instead. These
tests check the decision function, a real ``import edgeclf`` in a fresh
interpreter where onnxruntime is really absent, and the dependency markers
as pip evaluates them. (deploy/raspberry-pi/emulated-test.sh runs the real
arm64 userland; a real armhf one is not run.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from edgeclf._platform import is_arm32, unsupported_platform_message

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("machine", "bits", "arm32"),
    [
        ("armv7l", 32, True),  # 32-bit Raspberry Pi OS, Pi 2/3/4
        ("armv6l", 32, True),  # Pi 1 / Zero
        ("armv8l", 32, True),  # 32-bit userland reporting the v8 core
        ("aarch64", 32, True),  # 32-bit userland under a 64-bit kernel: uname says aarch64
        ("aarch64", 64, False),  # 64-bit Raspberry Pi OS
        ("arm64", 64, False),  # macOS
        ("x86_64", 64, False),
        ("AMD64", 64, False),
        ("i686", 32, False),  # not ARM: onnxruntime's own error is clear enough
    ],
)
def test_is_arm32(machine, bits, arm32):
    assert is_arm32(machine, bits) is arm32


def test_message_only_when_onnxruntime_is_missing_on_arm32():
    msg = unsupported_platform_message("armv7l", 32, has_onnxruntime=False)
    assert msg is not None
    assert "64-bit Raspberry Pi OS" in msg and "armv7l" in msg and "onnxruntime" in msg
    # a user who built onnxruntime for armv7l is not stopped
    assert unsupported_platform_message("armv7l", 32, has_onnxruntime=True) is None
    assert unsupported_platform_message("aarch64", 64, has_onnxruntime=False) is None
    assert unsupported_platform_message("x86_64", 64, has_onnxruntime=False) is None


def _isolated_package(tmp_path: Path) -> Path:
    """The runtime package copied alone, importable as ``edgeclf`` without any site-packages."""
    shutil.copytree(
        ROOT / "runtime", tmp_path / "edgeclf", ignore=shutil.ignore_patterns("models", "__pycache__")
    )
    return tmp_path


def _import_as(machine: str, path: Path, extra_path: str | None = None) -> subprocess.CompletedProcess[str]:
    # -S: no site-packages, so onnxruntime is really absent unless extra_path adds it
    script = (
        "import sys, platform\n"
        f"sys.path[:0] = [{str(path)!r}] + ([{extra_path!r}] if {extra_path!r} else [])\n"
        f"platform.machine = lambda: {machine!r}\n"
        "import edgeclf\n"
        "print('imported', 'onnxruntime' in sys.modules)\n"
    )
    return subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, timeout=60, cwd=path
    )


def test_import_on_armv7l_without_onnxruntime_says_use_64_bit_os(tmp_path):
    r = _import_as("armv7l", _isolated_package(tmp_path))
    assert r.returncode == 1
    assert "ImportError" in r.stderr and "64-bit Raspberry Pi OS" in r.stderr, r.stderr


def test_import_on_armv6l_without_onnxruntime_fails_too(tmp_path):
    r = _import_as("armv6l", _isolated_package(tmp_path))
    assert r.returncode == 1 and "64-bit Raspberry Pi OS" in r.stderr, r.stderr


def test_import_elsewhere_without_onnxruntime_stays_cheap_and_works(tmp_path):
    # the check must not fire off ARM, nor import onnxruntime to decide
    r = _import_as("x86_64", _isolated_package(tmp_path))
    assert r.returncode == 0 and "imported False" in r.stdout, r.stderr


def test_import_on_armv7l_with_onnxruntime_present_works(tmp_path):
    # a self-built onnxruntime on sys.path: found (not imported) and accepted
    site = sysconfig.get_paths()["purelib"]
    assert (Path(site) / "onnxruntime").is_dir()
    r = _import_as("armv7l", _isolated_package(tmp_path), extra_path=site)
    assert r.returncode == 0 and "imported False" in r.stdout, r.stderr


def _runtime_requirements() -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ (tomllib) reads pyproject.toml")
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return [Requirement(r) for r in tomllib.load(fh)["project"]["dependencies"]]


@pytest.mark.parametrize("machine", ["aarch64", "x86_64", "arm64", "AMD64"])
def test_onnxruntime_required_on_64_bit_and_1_21_0_excluded(machine):
    ort = next(r for r in _runtime_requirements() if r.name == "onnxruntime")
    assert ort.marker is None or ort.marker.evaluate({"platform_machine": machine})
    assert not ort.specifier.contains("1.21.0")  # Illegal instruction on a Pi 4 (onnxruntime#23957)
    assert ort.specifier.contains("1.20.1") and ort.specifier.contains("1.22.0")


@pytest.mark.parametrize("machine", ["armv7l", "armv6l"])
def test_onnxruntime_not_required_on_32_bit_arm(machine):
    # no wheel exists there: pip installs edgeclf and `import edgeclf` explains (tested above)
    ort = next(r for r in _runtime_requirements() if r.name == "onnxruntime")
    assert ort.marker is not None and not ort.marker.evaluate({"platform_machine": machine})
