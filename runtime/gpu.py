"""What stands between a user and onnxruntime's CUDA provider, in one sentence.

``onnxruntime`` (CPU) and ``onnxruntime-gpu`` are two distributions that
install the same ``onnxruntime`` module: with both installed, whichever was
installed last overwrote the other's files, and uninstalling either breaks
the survivor. edgeclf therefore ships two distributions built from one source
tree (deploy/gpu/build_edgeclf_gpu.py): ``edgeclf`` needs ``onnxruntime``,
``edgeclf-gpu`` needs ``onnxruntime-gpu`` (its ``[cuda]`` extra adds the
nvidia-* CUDA and cuDNN pip packages). docs/gpu.md is the user's side of this.

runtime/session.py calls :func:`preload_cuda_libraries` before a CUDA
session and :func:`diagnose_cuda` when CUDA was asked for and is not there.

Only the standard library is imported at module level; onnxruntime is
imported through ``edgeclf._ort.import_onnxruntime`` (telemetry off).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import re
import sys
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ._ort import import_onnxruntime

CPU_DIST = "onnxruntime"
GPU_DIST = "onnxruntime-gpu"
#: other distributions that also install the ``onnxruntime`` module
OTHER_ORT_DISTS = ("onnxruntime-directml", "onnxruntime-openvino", "onnxruntime-qnn", "onnxruntime-training")
GPU_PACKAGE = "edgeclf-gpu"
CUDA_EXTRA_INSTALL = "pip install 'edgeclf-gpu[cuda]'"
ORT_CUDA_EXTRA_INSTALL = "pip install 'onnxruntime-gpu[cuda,cudnn]'"
DOCS = "docs/gpu.md"


@dataclass(frozen=True)
class Preload:
    """What :func:`preload_cuda_libraries` did."""

    called: bool  # onnxruntime.preload_dlls existed and was called
    loaded: tuple[str, ...] = ()  # shared libraries it brought into the process
    messages: tuple[str, ...] = ()  # what onnxruntime printed (e.g. "Failed to load ...")

    def __str__(self) -> str:
        if not self.called:
            return "onnxruntime.preload_dlls() is not available (onnxruntime-gpu >= 1.21 has it)"
        names = ", ".join(Path(p).name for p in self.loaded) or "no new library"
        return f"onnxruntime.preload_dlls() loaded {names}" + "".join(f"; {m}" for m in self.messages)


_lock = threading.Lock()
_preloaded: Preload | None = None


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _mapped_libraries() -> set[str]:
    try:
        text = Path("/proc/self/maps").read_text()
    except OSError:
        return set()
    return {line.split(None, 5)[5] for line in text.splitlines() if ".so" in line and line.count(" ") >= 5}


def preload_cuda_libraries() -> Preload:
    """Call ``onnxruntime.preload_dlls()`` once, if it exists; call this before a session that asks for CUDA.

    ``preload_dlls()`` (onnxruntime-gpu >= 1.21) makes the CUDA/cuDNN
    libraries of the nvidia-* pip packages findable (onnxruntime does not
    look there by itself). onnxruntime's own ``print``s are captured (they
    would corrupt a CSV written to stdout) and returned as ``messages``;
    ``loaded`` lists the shared libraries the call brought into the process
    (Linux: read from /proc/self/maps). It runs at most once per process
    (later calls return the first result), never raises for a missing
    library and writes nothing.
    """
    global _preloaded
    with _lock:
        if _preloaded is not None:
            return _preloaded
        ort = import_onnxruntime()
        preload = getattr(ort, "preload_dlls", None)
        if preload is None:
            _preloaded = Preload(called=False)
            return _preloaded
        before = _mapped_libraries()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            preload()
        loaded = tuple(sorted(p for p in _mapped_libraries() - before if "/" in p))
        messages = tuple(m for m in (line.strip() for line in out.getvalue().splitlines()) if m)
        _preloaded = Preload(called=True, loaded=loaded, messages=messages)
        return _preloaded


def _requirers(dist: str) -> list[str]:
    """Installed distributions that declare a requirement on ``dist`` (name only, markers ignored)."""
    found = []
    for d in metadata.distributions():
        for req in d.requires or ():
            name = re.split(r"[\s<>=!~;\[(@]", req.strip(), maxsplit=1)[0]
            if name.lower().replace("_", "-") == dist:
                found.append(d.metadata["Name"])
                break
    return sorted(set(found))


def _conflict() -> str | None:
    ort = {d: v for d in (CPU_DIST, GPU_DIST, *OTHER_ORT_DISTS) if (v := installed_version(d))}
    both_edgeclf = installed_version("edgeclf") and installed_version(GPU_PACKAGE)
    if len(ort) < 2 and not both_edgeclf:
        return None
    remove = (["edgeclf"] if installed_version("edgeclf") else []) + sorted(ort)
    fix = f"pip uninstall -y {' '.join(remove)} && pip install --force-reinstall {GPU_PACKAGE}"
    if len(ort) >= 2:
        names = " and ".join(f"{d} {v}" for d, v in sorted(ort.items()))
        why = (
            f"{names} are both installed; they ship the same 'onnxruntime' module, so one overwrote the other"
        )
        if CPU_DIST in ort:
            pulled = [r for r in _requirers(CPU_DIST) if r != GPU_PACKAGE]
            if pulled:
                why += f" ({CPU_DIST} is required by {', '.join(pulled)})"
    else:
        why = f"edgeclf and {GPU_PACKAGE} are both installed; they ship the same 'edgeclf' package"
    return f"{why}. Fix: {fix} (see {DOCS})"


def _cuda_major(ort) -> str:
    info = getattr(getattr(ort, "capi", None), "build_and_package_info", None)
    version = getattr(info, "cuda_version", "") or ""
    return version.split(".")[0] if version else ""


def _load_error(path: str) -> str | None:
    """None if ``path`` loads (dlopen), else the loader's message."""
    try:
        ctypes.CDLL(path, mode=getattr(os, "RTLD_LAZY", 1) | getattr(os, "RTLD_LOCAL", 0))
    except OSError as exc:
        return str(exc)
    return None


def _missing(message: str) -> str | None:
    m = re.search(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", message)
    return m.group(1) if m else None


def diagnose_cuda() -> str | None:
    """Why CUDA is not usable here, and the command that fixes it; None when nothing is found wrong.

    For when CUDA was requested and is not there: CUDAExecutionProvider is
    missing from ``onnxruntime.get_available_providers()``, or a session
    created with it reports only the CPU (onnxruntime-gpu falls back to the
    CPU silently, with a log line, when its CUDA libraries do not load).
    Checked in this order: both ``onnxruntime`` and ``onnxruntime-gpu`` (or
    ``edgeclf`` and ``edgeclf-gpu``) installed; onnxruntime-gpu not
    installed; the CUDA provider library cannot be loaded (the missing CUDA
    library is named; a missing ``libcuda.so.1`` means no NVIDIA driver);
    cuDNN missing. Cost: a few ``importlib.metadata`` look-ups and, on
    Linux, one ``dlopen`` of onnxruntime's CUDA provider library (what
    onnxruntime itself does when a CUDA session is created). Call it after
    :func:`preload_cuda_libraries`, so libraries from the nvidia-* packages count.
    """
    conflict = _conflict()
    if conflict:
        return conflict
    ort = import_onnxruntime()
    gpu = installed_version(GPU_DIST)
    if gpu is None:
        have = installed_version(CPU_DIST)
        build = (
            f"the installed onnxruntime {have} is the CPU-only build"
            if have
            else "onnxruntime-gpu is missing"
        )
        remove = " ".join(d for d in ("edgeclf", CPU_DIST) if installed_version(d))
        fix = (
            f"pip uninstall -y {remove} && pip install {GPU_PACKAGE}"
            if remove
            else f"pip install {GPU_PACKAGE}"
        )
        return (
            f"CUDA needs onnxruntime-gpu, but {build}. Fix: {fix} (or {CUDA_EXTRA_INSTALL} on a machine "
            f"without CUDA 12/13 and cuDNN 9 installed system-wide; see {DOCS})"
        )
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (
            f"onnxruntime-gpu {gpu} is installed but its onnxruntime module offers no CUDAExecutionProvider "
            f"(a damaged install?). Fix: pip install --force-reinstall {GPU_PACKAGE} (see {DOCS})"
        )
    if not sys.platform.startswith("linux"):
        return None  # the library checks below are Linux-specific (sonames, /proc)
    major = _cuda_major(ort)
    cuda = f"CUDA {major}.x" if major else "CUDA"
    install = (
        f"{CUDA_EXTRA_INSTALL} (= {ORT_CUDA_EXTRA_INSTALL}, the nvidia-* packages; edgeclf loads them "
        f"with onnxruntime.preload_dlls()) or install {cuda} and cuDNN 9 system-wide"
    )
    lib = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if lib.exists():
        error = _load_error(str(lib))
        if error:
            missing = _missing(error)
            if missing and missing.startswith("libcuda.so"):
                return (
                    f"onnxruntime-gpu {gpu} cannot use CUDA: {missing} is missing, which means no NVIDIA "
                    "driver is installed (no GPU, or a container started without GPU access). The driver "
                    "cannot come from pip: install it, or run on a machine with an NVIDIA GPU"
                )
            what = f"the {cuda} library {missing} is missing" if missing else f"it failed to load: {error}"
            return f"onnxruntime-gpu {gpu} cannot load its CUDA provider: {what}. Fix: {install}"
    if _load_error("libcudnn.so.9"):
        return f"onnxruntime-gpu {gpu} needs cuDNN 9 (libcudnn.so.9), which is not found. Fix: {install}"
    return None
