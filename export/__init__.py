"""edgeclf.export: training and ONNX export (needs ``pip install edgeclf[export]``).

Heavy frameworks are imported inside the functions that need them, through
:func:`require`, so ``import edgeclf.export`` itself is cheap and a missing
framework produces one clear sentence instead of a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

# transformers imports TensorFlow whenever it is installed (it is, for the Keras
# export): seconds of start-up and ~1 GB of memory that ALBERT work never uses.
os.environ.setdefault("USE_TF", "0")

#: set by the ``edgeclf export`` / ``edgeclf prune`` commands before transformers is imported:
#: they take local checkpoint directories, so the Hugging Face Hub is never needed, and a
#: name that is not a local directory fails at once instead of being looked up online
HUB_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def hub_offline() -> None:
    """No Hugging Face Hub traffic from this process (huggingface_hub reads these at import)."""
    os.environ.update(HUB_OFFLINE)
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # imported already (a host process): flip its module-level switches too
        for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
            if hasattr(hub, name):
                setattr(hub, name, True)


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
