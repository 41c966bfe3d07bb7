"""ONNX Runtime sessions: provider choice and session options in one place.

Providers: ``"auto"`` takes CUDA when the installed onnxruntime offers it
(``onnxruntime-gpu``) and the CPU otherwise. Asking for ``"cuda"`` where it is
absent is an error, never a silent fallback, so a benchmark or a deployment
cannot quietly measure the wrong device.

Threads: ``threads=None`` lets onnxruntime use its default (one per physical
core). Spinning is off by default: an app that holds several models, or
shares the CPU with a UI, loses far more to spinning worker threads than a
batch job gains from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._ort import import_onnxruntime

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}


class ProviderError(RuntimeError):
    """A requested execution provider is not available in this onnxruntime."""


def available_providers() -> list[str]:
    ort = import_onnxruntime()

    return list(ort.get_available_providers())


def choose_providers(providers: str | Sequence[str] | None = "auto") -> list[str]:
    """Map user words (``auto``, ``cpu``, ``cuda``, or full names) to a provider list."""
    available = available_providers()
    if providers is None or providers == "auto":
        chosen = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
        return [*chosen, "CPUExecutionProvider"]
    wanted = [providers] if isinstance(providers, str) else list(providers)
    result = []
    for p in wanted:
        full = PROVIDER_ALIASES.get(p.lower(), p)
        if full not in available:
            raise ProviderError(
                f"execution provider {p!r} is not available in this onnxruntime "
                f"(available: {', '.join(available)}); for CUDA install onnxruntime-gpu"
            )
        result.append(full)
    if "CPUExecutionProvider" not in result:
        result.append("CPUExecutionProvider")  # for ops the accelerator does not implement
    return result


def make_session(
    model: bytes,
    *,
    providers: str | Sequence[str] | None = "auto",
    threads: int | None = None,
    inter_threads: int | None = None,
    spinning: bool = False,
    graph_optimization: str = "all",
) -> Any:
    """Create an InferenceSession from verified model bytes."""
    ort = import_onnxruntime()

    opts = ort.SessionOptions()
    if threads is not None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        opts.intra_op_num_threads = threads
    if inter_threads is not None:
        opts.inter_op_num_threads = inter_threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    try:
        opts.graph_optimization_level = levels[graph_optimization]
    except KeyError:
        raise ValueError(f"graph_optimization must be one of {', '.join(levels)}") from None
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=choose_providers(providers))
