"""The runtime must never pull in a heavy framework.

(Network and file-system privacy is checked at the system-call level, where
native code such as onnxruntime's telemetry can be seen, in
tests/test_privacy_syscalls.py; a Python-level ``socket.socket`` patch here
could not see it.)
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "torch",
    "tensorflow",
    "keras",
    "transformers",
    "optimum",
    "onnx",
    "tf2onnx",
    "sentencepiece",
    "pandas",
    "sklearn",
    "tokenizers",
    "scipy",
    "pyspark",
    "pyarrow",
)

SCRIPT = f"""
import sys
import edgeclf
assert 'numpy' not in sys.modules and 'onnxruntime' not in sys.modules, 'import edgeclf must be cheap'
clf = edgeclf.load('keras-imdb')
assert clf.predict(['a great film'])[0].label in ('positive', 'negative')
from edgeclf.cli import main
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print('HEAVY', heavy)
"""


def test_import_and_predict_load_no_heavy_module():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout


def test_predict_cli_stays_slim(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,lovely\n")
    script = (
        "import sys, runpy\n"
        f"sys.argv=['edgeclf','predict',{str(src)!r},'-q']\n"
        "from edgeclf.cli import main\n"
        "rc = main()\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "HEAVY [] 0" in r.stdout, r.stderr
