"""edgeclf.deploy: the systemd unit reachable from an installed package, without a checkout."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from edgeclf import deploy

ROOT = Path(__file__).resolve().parents[1]


def _service(text: str) -> configparser.SectionProxy:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string(text)
    return cp["Service"]


def test_the_default_unit_is_the_shipped_file():
    assert deploy.systemd_unit() == (ROOT / "runtime" / deploy.UNIT_NAME).read_text()


def test_models_and_executable_go_into_exec_start_only():
    text = deploy.systemd_unit("/srv/venv/bin/edgeclf", ["albert-imdb", "/opt/models/mine"])
    argv = _service(text)["ExecStart"].split()
    assert argv[:6] == [
        "/srv/venv/bin/edgeclf",
        "serve",
        "--model",
        "albert-imdb",
        "--model",
        "/opt/models/mine",
    ]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    default = deploy.systemd_unit()
    assert [x for x in text.splitlines() if "ExecStart" not in x] == [
        x for x in default.splitlines() if "ExecStart" not in x
    ]


@pytest.mark.parametrize(
    "executable, models", [("edgeclf", ["keras-imdb"]), ("/x/edgeclf", []), ("/x/edgeclf", ["a b"])]
)
def test_bad_arguments_are_refused(executable, models):
    with pytest.raises(ValueError):
        deploy.systemd_unit(executable, models)


def test_python_m_edgeclf_deploy_prints_the_unit():
    r = subprocess.run(
        [sys.executable, "-m", "edgeclf.deploy", "systemd", "--model", "albert-zh-rumor"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == deploy.systemd_unit(models=["albert-zh-rumor"])


def test_the_unit_is_package_data():
    # the wheel ships it only if pyproject says so (tests/test_gpu_install.py builds the wheels)
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert deploy.UNIT_NAME in data["edgeclf"]


def test_edgeclf_deploy_prints_the_same_unit():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeclf",
            "deploy",
            "systemd",
            "--model",
            "albert-imdb",
            "--model",
            "keras-imdb",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == deploy.systemd_unit(models=["albert-imdb", "keras-imdb"])
    bad = subprocess.run(
        [sys.executable, "-m", "edgeclf", "deploy", "systemd", "--executable", "edgeclf"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "absolute path" in bad.stderr
