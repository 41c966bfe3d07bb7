"""edgeclf: text classifiers on the edge (numpy + onnxruntime only).

    >>> import edgeclf
    >>> clf = edgeclf.load("keras-imdb")              # embedded, offline
    >>> clf.predict(["A moving, beautifully acted film."])[0].label
    'positive'

Importing this package is cheap: numpy and onnxruntime are imported when a
model is first loaded, so an app can ``import edgeclf`` at start-up for free.

Privacy: importing edgeclf sets ``ORT_DISABLE_TELEMETRY=1`` in the process
environment (before onnxruntime is imported) unless
``EDGECLF_ALLOW_ORT_TELEMETRY=1``; see ``edgeclf._ort`` and docs/privacy.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._ort import apply_privacy_defaults
from ._platform import check_platform

check_platform()  # 32-bit ARM without onnxruntime: say "use 64-bit Raspberry Pi OS" now, not later

__version__ = "0.1.0"
__all__ = [
    "BundleError",
    "Classifier",
    "ClosedError",
    "InputError",
    "Prediction",
    "__version__",
    "list_models",
    "load",
    "load_async",
]

if TYPE_CHECKING:
    from .background import load_async
    from .bundle import BundleError
    from .classifier import Classifier, ClosedError, load
    from .texts import InputError, Prediction

apply_privacy_defaults()  # onnxruntime reads its telemetry switch once, when imported

_LAZY = {
    "load": "classifier",
    "Classifier": "classifier",
    "Prediction": "texts",
    "InputError": "texts",
    "ClosedError": "classifier",
    "load_async": "background",
    "BundleError": "bundle",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgeclf' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def list_models() -> list[str]:
    """Names of the models embedded in this installation."""
    from .bundle import embedded_names

    return embedded_names()
