"""ONNX Runtime sessions: provider choice and session options in one place.

Provider and variant are chosen together (:func:`select`): the fastest
variant on a CPU (int8) is the slowest on a GPU (its integer kernels fall
back to the CPU, with copies in between: 15-26x slower than fp32 on an H200,
docs/gpu.md). A bundle's manifest says which variant to run on which provider
(``provider_variants``, in order of preference, written by the exporter);
``"auto"`` takes the first provider there that this onnxruntime offers. A
model too small to gain from a GPU lists only ``cpu``, so ``auto`` keeps it
there. An explicit ``variant=`` or ``providers=`` always wins. Asking for
``"cuda"`` where it is absent is an error, never a silent fallback, so a
benchmark or a deployment cannot quietly measure the wrong device.

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


def _short(provider: str) -> str:
    full = PROVIDER_ALIASES.get(provider.lower(), provider)
    for short, name in PROVIDER_ALIASES.items():
        if name == full:
            return short
    return full


def select(
    manifest: Any,
    providers: str | Sequence[str] | None = "auto",
    variant: str | None = None,
    available: Sequence[str] | None = None,
    cuda_ok: bool | None = None,
) -> tuple[list[str], str]:
    """Choose ``(provider list, variant name)`` for a bundle's manifest.

    - explicit providers: those (checked), with the variant the manifest
      prefers for the first of them, else ``variant``, else the default;
    - ``auto``: the first of the manifest's ``provider_variants`` this
      onnxruntime offers (with ``variant`` given, the first whose preference is
      a variant of the same precision class: float on GPUs, int8 on CPUs);
      bundles without ``provider_variants`` run their default on the CPU.

    ``available`` / ``cuda_ok``: what onnxruntime offers and whether CUDA can
    start (default: asked of onnxruntime and :mod:`edgeclf.gpu`); tests pass them.
    """
    available = list(available if available is not None else available_providers())
    prefs: dict[str, str] = dict(getattr(manifest, "provider_variants", {}) or {})
    if providers is not None and providers != "auto":
        chosen = choose_providers(providers, available)
        if "CUDAExecutionProvider" in chosen and not (cuda_usable() if cuda_ok is None else cuda_ok):
            # listed by onnxruntime-gpu, but it cannot start here: say why before any output is written
            from . import gpu

            raise ProviderError(
                "CUDA was requested but cannot start here: "
                + (gpu.diagnose_cuda() or _accelerator_hint(["CUDAExecutionProvider"]))
            )
        return chosen, variant or prefs.get(_short(chosen[0])) or manifest.default_variant
    offered = {_short(p) for p in available}
    if "cuda" in offered and not (cuda_usable() if cuda_ok is None else cuda_ok):
        offered.discard("cuda")  # onnxruntime-gpu lists CUDA even where it cannot start
    if variant is None:
        for prov, vname in prefs.items():
            if prov in offered:
                return choose_providers(prov, available), vname
        return ["CPUExecutionProvider"], manifest.default_variant
    is_int = _is_integer(manifest.variant(variant))
    for prov, vname in prefs.items():
        if prov in offered and _is_integer(manifest.variants[vname]) == is_int:
            return choose_providers(prov, available), variant
    return ["CPUExecutionProvider"], variant


def cuda_usable() -> bool:
    """CUDA can start here: its libraries load (after ``preload_dlls``) and nothing is wrong."""
    from . import gpu

    gpu.preload_cuda_libraries()
    return gpu.diagnose_cuda() is None


def _is_integer(variant: Any) -> bool:
    """int8 weights (the manifest's ``precision``; older bundles: the variant's name)."""
    return (variant.precision or variant.name).split("-")[-1].startswith("int")


def choose_providers(
    providers: str | Sequence[str] | None = "auto", available: Sequence[str] | None = None
) -> list[str]:
    """Map user words (``auto``, ``cpu``, ``cuda``, or full names) to a provider list."""
    available = list(available if available is not None else available_providers())
    if providers is None or providers == "auto":
        usable = "CUDAExecutionProvider" in available and cuda_usable()
        chosen = ["CUDAExecutionProvider"] if usable else []
        return [*chosen, "CPUExecutionProvider"]
    wanted = [providers] if isinstance(providers, str) else list(providers)
    result = []
    for p in wanted:
        full = PROVIDER_ALIASES.get(p.lower(), p)
        if full not in available:
            hint = "for CUDA install edgeclf-gpu (docs/gpu.md)"
            if full == "CUDAExecutionProvider":
                from . import gpu

                hint = gpu.diagnose_cuda() or hint
            raise ProviderError(
                f"execution provider {p!r} is not available in this onnxruntime "
                f"(available: {', '.join(available)}); {hint}"
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
    chosen = choose_providers(providers)
    accelerated = [p for p in chosen if p != "CPUExecutionProvider"]
    if "CUDAExecutionProvider" in accelerated:
        from . import gpu

        # onnxruntime-gpu finds CUDA/cuDNN from the nvidia-* pip packages only after this
        gpu.preload_cuda_libraries()
    session = ort.InferenceSession(model, sess_options=opts, providers=chosen)
    missing = [p for p in accelerated if p not in session.get_providers()]
    if missing:  # onnxruntime quietly falls back to the CPU when a provider fails to load
        raise ProviderError(
            f"{', '.join(missing)} could not be initialized (onnxruntime fell back to the CPU): "
            + _accelerator_hint(missing)
        )
    return session


def _accelerator_hint(missing: Sequence[str]) -> str:
    if "CUDAExecutionProvider" in missing:
        from . import gpu

        diagnosis = gpu.diagnose_cuda()
        if diagnosis:
            return diagnosis
        return (
            "no usable NVIDIA GPU, or CUDA / cuDNN libraries missing. Install them with "
            "pip install 'onnxruntime-gpu[cuda,cudnn]' (or a system CUDA 12/13 + cuDNN 9), "
            "and check nvidia-smi; see docs/gpu.md"
        )
    return "see the provider's onnxruntime documentation"
