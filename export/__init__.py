"""edgeclf.export: training and ONNX export (needs ``pip install edgeclf[export]``).

Heavy frameworks are imported inside the functions that need them, through
:func:`require`, so ``import edgeclf.export`` itself is cheap and a missing
framework produces one clear sentence instead of a traceback.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

# transformers imports TensorFlow whenever it is installed (it is, for the Keras
# export): seconds of start-up and ~1 GB of memory that ALBERT work never uses.
os.environ.setdefault("USE_TF", "0")

EXTRA_HINT = "pip install 'edgeclf[export]'  (install torch first: pip install torch==2.13.0)"


class MissingExtra(ModuleNotFoundError):
    pass


def require(module: str, purpose: str) -> ModuleType:
    """Import a heavy dependency or explain which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{purpose} needs the '{module.split('.')[0]}' package, which is not installed "
            f"({exc}). Install the export extra: {EXTRA_HINT}"
        ) from exc
