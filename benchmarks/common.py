"""Shared helpers for the benchmark scripts: side-by-side timing, the speed grid, tokenizer passes, reports.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


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


#: the transformer speed grid, as (batch, sequence length, threads): what an interactive app (batch 1)
#: and a small batch job (batch 8) pay at two review lengths, on one core and on two
GRID = [(b, s, t) for t in (1, 2) for s in (128, 256) for b in (1, 8)]
GRID_QUICK = [(1, 128, 2)]


def time_grid(
    grid: Sequence[tuple[int, int, int]],
    make_candidates: Callable[[int, int, int], dict[str, Callable[[], Any]]],
    *,
    baseline: str,
    rounds: int,
    min_time: float,
    label: str = "",
    done: Callable[[dict[str, Any]], None] = lambda raw: None,
) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`interleaved` at every (batch, seq, threads) point, keyed ``b{batch}_s{seq}_t{threads}``.

    Each point's candidates are built, timed and dropped before the next
    (models at other thread counts stay out of memory); after each one its
    ratios against ``baseline`` go to stderr and ``done`` gets everything so
    far, so a later failure keeps what was measured.
    """
    raw: dict[str, dict[str, dict[str, float]]] = {}
    for bs, seq, threads in grid:
        cands = make_candidates(bs, seq, threads)
        raw[f"b{bs}_s{seq}_t{threads}"] = res = interleaved(cands, rounds=rounds, min_time=min_time)
        base = res[baseline]["median_s"]
        print(
            f"{label}batch {bs} seq {seq} threads {threads}: "
            + ", ".join(f"{n} {base / r['median_s']:.2f}x" for n, r in res.items()),
            file=sys.stderr,
            flush=True,
        )
        del cands
        done(raw)
    return raw


def long_batches(texts: Sequence[str], n_tokens: Callable[[str], int], seq: int, bs: int) -> list[list[str]]:
    """Up to 4 batches of ``bs`` texts with at least ``seq`` tokens each.

    Texts are cut to ``seq`` by whoever encodes them, so every candidate
    sees exactly that length.
    """
    long_enough = [t for t in texts if n_tokens(t) >= seq][: bs * 4]
    return [long_enough[i : i + bs] for i in range(0, len(long_enough), bs)]


def round_robin(items: Sequence[T]) -> Callable[[], T]:
    """A function returning the next of ``items`` at each call, cycling (a timed call's input)."""
    state = {"i": 0}

    def nxt() -> T:
        state["i"] = (state["i"] + 1) % len(items)
        return items[state["i"]]

    return nxt


def timed_pass(
    encode: Callable[[str], list[int]], texts: Sequence[str]
) -> tuple[float, float, list[list[int]]]:
    """One text per call over ``texts``: (wall seconds, CPU seconds of this process, the ids)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = [encode(t) for t in texts]
    return time.perf_counter() - t0, time.process_time() - c0, out


def time_tokenizers(
    makers: dict[str, Callable[[], Callable[[str], list[int]]]], texts: Sequence[str], repeat: int
) -> list[dict[str, Any]]:
    """Per tokenizer: build time, a first pass from fresh (caches empty) and the best of ``repeat`` more.

    Rates are texts per second; ``same_as_slow`` counts the texts whose ids
    equal those of the tokenizer named "... (slow)" (the exactness
    reference), None where there is none.
    """
    rows = []
    for name, make in makers.items():
        t0 = time.perf_counter()
        encode = make()
        load_s = time.perf_counter() - t0
        first_s, first_cpu, ids = timed_pass(encode, texts)
        best_s = min(timed_pass(encode, texts)[0] for _ in range(max(1, repeat)))
        n = len(texts)
        row = {"name": name, "load_ms": load_s * 1000, "first": n / first_s, "first_cpu": n / first_cpu}
        rows.append({**row, "best": n / best_s, "ids": ids})
    reference = next((r["ids"] for r in rows if "(slow)" in r["name"]), None)
    for r in rows:
        r["same_as_slow"] = (
            None if reference is None else sum(a == b for a, b in zip(r["ids"], reference, strict=True))
        )
    return rows


def batch_one_call(clf: Any, text: str, tokens: int = 128) -> Callable[[], Any]:
    """One prediction of exactly ``tokens`` ids (``text``'s, repeated as needed) on a loaded classifier:
    the batch-1 latency candidate the model tables time."""
    ids = clf.tokenizer.encode(text)[:tokens]
    ids = (ids * (tokens // max(1, len(ids)) + 1))[:tokens]
    return lambda: clf.proba_from_ids([ids])


def fp32_export(checkpoint: Path, path: Path, manifest: dict[str, Any]) -> Path:
    """The fp32 ONNX export of an ALBERT ``checkpoint`` at ``path`` (the embedded bundles ship without
    one), checked against the fp32 digest ``manifest`` recorded when that variant was dropped."""
    import hashlib

    from edgeclf.export.albert import deduplicate, to_onnx

    to_onnx(checkpoint, path)
    deduplicate(path)
    want = manifest["extra"].get("measured_not_shipped", {}).get("fp32", {}).get("sha256")
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if want and got != want:
        raise SystemExit(
            f"{checkpoint}: the fp32 export ({got}) is not the model the bundle was made from ({want})"
        )
    return path


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
