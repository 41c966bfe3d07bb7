"""Shared helpers for the benchmark scripts: side-by-side timing and reporting.

Candidates are timed in interleaved rounds (A, B, C, A, B, C, ...) so that
drift on a shared, noisy machine hits all of them alike; we report medians
and ratios from the same run, never absolute numbers from different runs.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import onnxruntime

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "onnxruntime": onnxruntime.__version__,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def interleaved(
    candidates: dict[str, Callable[[], Any]], *, rounds: int = 7, min_time: float = 0.2, warmup: int = 2
) -> dict[str, dict[str, float]]:
    """Median seconds per call for each candidate, timed in interleaved rounds."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    reps = {}
    for name, fn in candidates.items():  # calls per round so each round lasts ~min_time
        t0 = time.perf_counter()
        fn()
        reps[name] = max(1, int(min_time / max(time.perf_counter() - t0, 1e-6)))
    samples: dict[str, list[float]] = {n: [] for n in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / reps[name])
    return {
        n: {"median_s": statistics.median(s), "min_s": min(s), "calls": reps[n] * rounds}
        for n, s in samples.items()
    }


def batch_one_call(clf: Any, text: str, tokens: int = 128) -> Callable[[], Any]:
    """One prediction of exactly ``tokens`` ids (``text``'s, repeated as needed) on a loaded classifier:
    the batch-1 latency candidate the model tables time."""
    ids = clf.tokenizer.encode(text)[:tokens]
    ids = (ids * (tokens // max(1, len(ids)) + 1))[:tokens]
    return lambda: clf.proba_from_ids([ids])


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def save(name: str, result: dict[str, Any]) -> Path:
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return path


def imdb_test_texts(limit: int | None = None) -> tuple[list[str], list[int]]:
    from edgeclf.export.data import load_imdb

    texts, labels = load_imdb("test")
    if limit:
        step = max(1, len(texts) // limit)
        texts, labels = texts[::step][:limit], labels[::step][:limit]
    return texts, labels
