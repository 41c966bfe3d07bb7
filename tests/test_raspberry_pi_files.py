"""The Raspberry Pi deployment files: the systemd unit and the emulated test's comparison.

The emulated arm64 test itself (deploy/raspberry-pi/emulated-test.sh) needs
root, qemu and minutes; .ci/run runs it directly, not through pytest.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PI = ROOT / "deploy" / "raspberry-pi"
UNIT = ROOT / "runtime" / "edgeclf-serve.service"  # shipped in the package: edgeclf.deploy


def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # systemd keys are case-sensitive
    cp.read(UNIT)
    return cp


def test_unit_runs_serve_as_a_non_root_user_restarting_on_failure():
    svc = _unit()["Service"]
    assert svc["User"] not in ("root", "0") and svc["Group"] not in ("root", "0")
    assert svc["Restart"] == "on-failure"
    argv = svc["ExecStart"].split()
    assert argv[0].startswith("/") and argv[1] == "serve"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert svc[key] == value, key


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze (systemd)")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    # ExecStart must exist for verify: point it at this environment's edgeclf
    edgeclf = Path(sys.executable).with_name("edgeclf")
    if not edgeclf.exists():
        pytest.skip("no edgeclf script beside this Python")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/edgeclf/bin/edgeclf", str(edgeclf)))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _row(id_: str, p_pos: float | None, error: str | None = None) -> dict:
    if p_pos is None:
        return {"id": id_, "label": None, "score": None, "probabilities": None, "error": error}
    label = "positive" if p_pos >= 0.5 else "negative"
    return {
        "id": id_,
        "label": label,
        "score": max(p_pos, 1 - p_pos),
        "probabilities": {"negative": 1 - p_pos, "positive": p_pos},
        "error": None,
    }


def _compare(
    tmp_path: Path, host: list[dict], pi: list[dict], tol: str = "1e-4"
) -> subprocess.CompletedProcess:
    h, p = _jsonl(tmp_path / "h.jsonl", host), _jsonl(tmp_path / "p.jsonl", pi)
    return subprocess.run(
        [sys.executable, str(PI / "compare_predictions.py"), str(h), str(p), "--tolerance", tol],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compare_accepts_equal_within_tolerance(tmp_path):
    host = [_row("1", 0.9), _row("2", 0.2), _row("3", None, "row 3 (line 4): empty text")]
    pi = [_row("1", 0.90005), _row("2", 0.2), _row("3", None, "row 3 (line 4): empty text")]
    r = _compare(tmp_path, host, pi)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stdout


@pytest.mark.parametrize(
    ("pi", "expected"),
    [
        ([_row("1", 0.9003), _row("2", 0.2)], "differ by 3.00e-04"),
        ([_row("1", 0.9), _row("2", 0.5)], "label differs"),
        ([_row("1", 0.9)], "row count differs"),
        ([_row("1", 0.9), _row("3", 0.2)], "id differs"),
        ([_row("1", 0.9), _row("2", None, "row 2: boom")], "error differs"),
    ],
)
def test_compare_fails_on_any_difference(tmp_path, pi, expected):
    r = _compare(tmp_path, [_row("1", 0.9), _row("2", 0.2)], pi)
    assert r.returncode == 1 and "MISMATCH" in r.stdout and expected in r.stdout, r.stdout


def test_emulated_test_script_parses():
    r = subprocess.run(["bash", "-n", str(PI / "emulated-test.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
