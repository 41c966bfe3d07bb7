"""The runtime must never pull in a heavy framework."""

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
)

SCRIPT = f"""
import sys, socket
import edgeclf
assert 'numpy' not in sys.modules and 'onnxruntime' not in sys.modules, 'import edgeclf must be cheap'
def no_network(*a, **k):
    raise AssertionError('the runtime tried to open a socket')
socket.socket = no_network
socket.create_connection = no_network
clf = edgeclf.load('keras-imdb')
assert clf.predict(['a great film'])[0].label in ('positive', 'negative')
from edgeclf.cli import main
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print('HEAVY', heavy)
"""


def test_import_and_predict_load_no_heavy_module_and_no_network():
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
