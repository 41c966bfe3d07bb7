"""PyInstaller hook for edgeclf (used automatically via the pyinstaller40 entry point).

- datas: every embedded bundle (manifest, ONNX files, tokenizer files),
  ``profile_samples.txt`` and ``py.typed``, at the paths ``importlib.resources``
  expects, so checksums verify inside the frozen app exactly as installed.
- hiddenimports: the runtime modules reached only through
  ``importlib.import_module`` (``edgeclf.load`` and friends resolve lazily;
  tokenizer kinds are looked up by name), which PyInstaller's scan cannot see.
  Both lists are read from the package itself, so a new tokenizer or API name
  is frozen without touching this file.
- excludedimports: training/export code and the heavy libraries only it (or
  the HTML report) uses. A frozen app that imports edgeclf must not drag
  TensorFlow, PyTorch or matplotlib in just because the build environment has them.
"""

from PyInstaller.utils.hooks import collect_data_files

import edgeclf
from edgeclf.tokenizers import KINDS

datas = collect_data_files("edgeclf", excludes=["_pyinstaller", "_pyinstaller/**"])

hiddenimports = sorted(
    {f"edgeclf.{module}" for module in edgeclf._LAZY.values()}
    | {target.partition(":")[0] for target in KINDS.values()}
)

excludedimports = [
    "edgeclf.export",
    "edgeclf.quantize",
    "matplotlib",
    "tensorflow",
    "torch",
    "tf2onnx",
    "onnx",
    "transformers",
    "sentencepiece",
]
