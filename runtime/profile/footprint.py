"""What a loaded model costs in memory and start-up time, measured in a fresh process.

Memory is resident set size (RSS) read from ``/proc/self/statm`` (Linux):
what the model really holds in RAM, not the file size. ``release()`` runs
the garbage collector and, on glibc, ``malloc_trim(0)``, so memory freed by
Python and onnxruntime goes back to the OS before a reading instead of
lingering in the allocator's free lists (glibc keeps small freed blocks).

:func:`fresh_process` is the only honest place to measure: in a process that
has already loaded a model, numpy, onnxruntime and the bundle's pages are
warm. It runs one ``python -c`` child that imports the runtime, loads the
model, predicts once and, asked for memory, loads a second instance and
closes both, reading RSS after each step:

- ``load_bytes``: RSS after load + first prediction minus RSS after the
  imports: what loading this model costs an app that has onnxruntime
  imported. The first model in a process also pays onnxruntime's one-time
  set-up (a few MiB), so ``second_load_bytes`` (the same model loaded again
  beside the first) is the marginal cost of every further model.
- ``closed_bytes``: RSS left above the post-import level after ``close()``.
- ``peak_bytes``: the process's high-water mark (VmHWM, else ``ru_maxrss``).

Used by ``edgeclf models --memory`` and the cold-start columns of ``edgeclf profile``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """Current resident set size of this process, or None where /proc is absent."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def peak_rss_bytes() -> int | None:
    """High-water mark of this process's RSS (VmHWM on Linux, else ``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        return None
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def release() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.malloc_trim(0)
        except (OSError, AttributeError):  # musl and others: no malloc_trim
            pass


_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import edgeclf, numpy, onnxruntime
from edgeclf.profile import footprint as fp
t1 = time.perf_counter()
a = json.loads(sys.argv[1])
kw = dict(variant=a["variant"], providers=a["provider"], threads=a["threads"])
fp.release()
base = fp.rss_bytes()
t2 = time.perf_counter()
clf = edgeclf.load(a["model"], **kw)
t3 = time.perf_counter()
clf.predict_proba([a["text"]])
t4 = time.perf_counter()
out = {"import_s": t1 - t0, "load_s": t3 - t2, "first_predict_s": t4 - t3, "peak_rss_bytes": fp.peak_rss_bytes()}
if a["memory"] and base is not None:
    fp.release()
    loaded = fp.rss_bytes()
    clf2 = edgeclf.load(a["model"], **kw)
    clf2.predict_proba([a["text"]])
    fp.release()
    loaded2 = fp.rss_bytes()
    clf.close()
    clf2.close()
    fp.release()
    out.update(base_rss_bytes=base, load_bytes=loaded - base, second_load_bytes=loaded2 - loaded,
               closed_bytes=fp.rss_bytes() - base)
print(json.dumps(out))
"""


def fresh_process(
    model: str,
    variant: str | None = None,
    provider: str = "cpu",
    threads: int | None = None,
    text: str = "A moving, beautifully acted film.",
    *,
    memory: bool = False,
    timeout: float = 600,
) -> dict[str, Any]:
    """Run one fresh interpreter that imports, loads and predicts once; return its readings.

    Always: ``import_s``, ``load_s``, ``first_predict_s``, ``peak_rss_bytes``
    and ``wall_s`` (the whole child, interpreter start and exit included).
    ``memory=True`` then loads a second instance and closes both, adding
    ``load_bytes``, ``second_load_bytes``, ``closed_bytes`` and
    ``base_rss_bytes`` (absent where RSS cannot be read). Raises RuntimeError
    with the child's last stderr line if it fails.
    """
    arg = json.dumps(
        {
            "model": model,
            "variant": variant,
            "provider": provider,
            "threads": threads,
            "text": text,
            "memory": memory,
        }
    )
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _SCRIPT, arg], capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"measuring subprocess failed: {tail}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


def model_memory(model: str, variant: str | None = None, provider: str = "cpu") -> dict[str, float | None]:
    """MiB a model costs, from one fresh process (see the module docstring).

    ``first_mib``: loading it as the process's first model (onnxruntime's
    one-time set-up included); ``each_further_mib``: every further instance;
    ``left_after_close_mib``: what stays once both are closed (the one-time part).
    """
    r = fresh_process(model, variant, provider, memory=True)

    def mib(key: str) -> float | None:
        value = r.get(key)
        return None if value is None else round(value / 2**20, 1)

    return {
        "first_mib": mib("load_bytes"),
        "each_further_mib": mib("second_load_bytes"),
        "left_after_close_mib": mib("closed_bytes"),
    }


def cold_start(model: str, variant: str, provider: str, threads: int | None, text: str, runs: int) -> dict:
    """Median of fresh processes: import, load, first prediction, and memory (for edgeclf profile).

    A subprocess is the only honest way to measure it: in this process
    numpy, onnxruntime and the bundle's pages are already warm. Peak RSS is
    the child's high-water mark; ``load_rss_mib`` what loading the model
    added to RSS, from one more child that measures memory only (its extra
    load and close would distort the timings).
    """
    inner: list[dict[str, Any]] = []
    try:
        for _ in range(runs):
            inner.append(fresh_process(model, variant, provider, threads, text))
        mem = fresh_process(model, variant, provider, threads, text, memory=True) if runs else {}
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"runs": len(inner), "error": f"cold-start subprocess failed: {exc}"}

    def med(key: str) -> float:
        return statistics.median(x[key] for x in inner) * 1000

    rss = [x["peak_rss_bytes"] for x in inner if x["peak_rss_bytes"]]
    load = mem.get("load_bytes")
    return {
        "runs": runs,
        "wall_ms": med("wall_s"),
        "wall_ms_all": [x["wall_s"] * 1000 for x in inner],
        "import_ms": med("import_s"),
        "load_ms": med("load_s"),
        "first_predict_ms": med("first_predict_s"),
        "peak_rss_mib": max(rss) / 2**20 if rss else None,
        "load_rss_mib": load / 2**20 if load is not None else None,
    }
