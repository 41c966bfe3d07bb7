"""One configuration timed: ``predict_proba`` calls on batches, split into tokenizer, ONNX and rest.

Each timed call is ``Classifier.predict_proba`` on one batch, the way users
run the model. Thin proxies around the classifier's tokenizer and session
time its ``encode_batch`` and the ONNX ``session.run`` inside that same
call, so the three parts add up to the latency reported and nothing is
tokenized twice. Warm-up calls come first (first-run allocations and lazy
initialisation are not what a long-running app pays); the garbage collector
is paused while timing, as ``timeit`` does, so a collection triggered by the
profiler's own bookkeeping does not land in someone's p99.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..classifier import Classifier
from .inputs import ProfileSettings

#: at most this many latency samples per configuration are kept in the JSON
MAX_SAMPLES_KEPT = 5000


class _TimedSession:
    """Wraps an InferenceSession and adds up the time spent in ``run``.

    Swapped in for ``Classifier.session`` (and :class:`_TimedTokenizer` for
    ``Classifier.tokenizer``) so the split is measured inside the very
    ``predict_proba`` call whose total is reported: the three parts add up to
    that call, and nothing is tokenized twice.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ns = 0
        self.calls = 0

    def run(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter_ns()
        self.calls += 1
        try:
            return self.inner.run(*args, **kwargs)
        finally:
            self.ns += time.perf_counter_ns() - t

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _TimedTokenizer:
    """Wraps a tokenizer and adds up the time spent in ``encode_batch``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ns = 0

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        t = time.perf_counter_ns()
        try:
            return self.inner.encode_batch(texts)
        finally:
            self.ns += time.perf_counter_ns() - t

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _stats_ms(ns: Sequence[int]) -> dict[str, float]:
    a = np.asarray(ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(a.mean()),
        "min": float(a.min()),
        "max": float(a.max()),
        "stdev": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
    }


def time_batches(
    clf: Classifier, batches: Sequence[Sequence[str]], settings: ProfileSettings
) -> dict[str, Any]:
    """Time ``predict_proba`` over ``batches`` (cycled): latency samples and the three-way split."""
    session, tokenizer = _TimedSession(clf.session), _TimedTokenizer(clf.tokenizer)
    clf.session, clf.tokenizer = session, tokenizer
    total_ns: list[int] = []
    tok_ns: list[int] = []
    onnx_ns: list[int] = []
    runs_per_call = 0
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for i in range(settings.warmup):
            clf.predict_proba(batches[i % len(batches)])
        budget_ns = int(settings.budget_s * 1e9)
        began = clock()
        i = 0
        while True:
            batch = batches[i % len(batches)]
            session.ns = tokenizer.ns = session.calls = 0
            t0 = clock()
            clf.predict_proba(batch)
            t1 = clock()
            total_ns.append(t1 - t0)
            onnx_ns.append(session.ns)
            runs_per_call = max(runs_per_call, session.calls)
            tok_ns.append(tokenizer.ns)
            i += 1
            if i >= settings.max_runs or (i >= settings.min_runs and t1 - began >= budget_ns):
                break
        elapsed = (clock() - began) / 1e9
    finally:
        clf.session, clf.tokenizer = session.inner, tokenizer.inner
        if gc_was_enabled:
            gc.enable()
    other_ns = [max(0, t - k - o) for t, k, o in zip(total_ns, tok_ns, onnx_ns, strict=True)]
    parts = {
        "tokenize": statistics.median(tok_ns) / 1e6,
        "onnx": statistics.median(onnx_ns) / 1e6,
        "other": statistics.median(other_ns) / 1e6,
    }
    whole = sum(parts.values()) or 1.0
    return {
        "runs": len(total_ns),
        "onnx_runs_per_call": runs_per_call,
        "elapsed_s": elapsed,
        "total_ns": total_ns,
        "breakdown_ms": parts,
        "breakdown_share": {k: v / whole for k, v in parts.items()},
    }


def rounded(obj: Any) -> Any:
    """Floats to 4 decimals (0.1 us in ms): the JSON stays readable and diffs stay small."""
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return obj


def time_config(clf: Classifier, pool: Sequence[str], bs: int, settings: ProfileSettings) -> dict[str, Any]:
    """One configuration: batches of ``bs`` texts cycled from ``pool``, timed by :func:`time_batches`."""
    clf.batch_size = bs  # one ONNX run per call
    n_batches = max(1, min(64, len(pool)))
    batches = [[pool[(b * bs + j) % len(pool)] for j in range(bs)] for b in range(n_batches)]
    m = time_batches(clf, batches, settings)
    lat = _stats_ms(m["total_ns"])
    samples = [round(x / 1e6, 4) for x in m["total_ns"]]
    if len(samples) > MAX_SAMPLES_KEPT:
        step = len(samples) / MAX_SAMPLES_KEPT
        samples = [samples[int(k * step)] for k in range(MAX_SAMPLES_KEPT)]
    return {
        "runs": m["runs"],
        "onnx_runs_per_call": m["onnx_runs_per_call"],  # 1: the batch ran as one session.run
        "elapsed_s": m["elapsed_s"],
        "latency_ms": lat,
        "texts_per_s": bs * 1000 / lat["p50"] if lat["p50"] > 0 else None,
        "texts_per_s_mean": bs * 1000 / lat["mean"] if lat["mean"] > 0 else None,
        "breakdown_ms": m["breakdown_ms"],
        "breakdown_share": m["breakdown_share"],
        "latency_ms_samples": samples,
    }
