"""Latency profiling of a bundle on this machine: ``edgeclf profile``.

Why it exists: a model card's accuracy says nothing about whether a bundle
fits a device's latency or memory budget, and the answer depends on the
variant (fp32, int8, pruned ...), the provider, the thread count, the batch
size and, for transformers, the sequence length. This module measures all of
them the way users run the model (``Classifier.predict_proba`` on real texts)
and splits the time into tokenization, the ONNX session and the rest, so a
slow configuration says *where* it is slow.

Method, per configuration:

- texts: real texts (``--data``) or the 30 built-in review-style texts in
  ``profile_samples.txt`` (written for the project, 48 to 520 words).
  Fixed-length bundles (``padding: max_length``) always run at their
  ``max_length``. For ``padding: longest`` bundles each
  sequence length ``L`` gets texts of exactly ``L`` tokens, cut as consecutive
  windows from the real texts (``real`` keeps the texts as they are).
- warm-up calls first (first-run allocations and lazy initialisation are not
  what a long-running app pays), then timed calls until the time budget is
  spent and at least ``min_runs`` calls were made. The garbage collector is
  paused while timing, as ``timeit`` does, so a collection triggered by
  the profiler's own bookkeeping does not land in someone's p99.
- each timed call is ``predict_proba`` on one batch (the latency reported);
  thin proxies around the classifier's tokenizer and session time its
  ``encode_batch`` and the ONNX ``session.run`` inside that same call. The
  rest (input checks, padding, feeds, softmax) is what remains.
- session creation is timed on its own (median of three); cold start is a
  fresh ``python -c`` that imports edgeclf, loads the bundle and predicts one
  text: the wall time a CLI user or a serverless function pays, and its peak
  RSS.

Only the standard library, numpy and onnxruntime are used here; the HTML
report (matplotlib) lives in :mod:`edgeclf.report`.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import bundle as _bundle
from . import footprint
from .classifier import Classifier
from .profile_inputs import (
    SAMPLES_FILE,
    default_providers,
    default_seq_lens,
    default_threads,
    machine_busy,
    machine_info,
    sample_texts,
    texts_of_length,
)
from .session import PROVIDER_ALIASES, choose_providers, make_session
from .tokenizers import build as build_tokenizer

SCHEMA = "edgeclf-profile"
SCHEMA_VERSION = 1
#: at most this many latency samples per configuration are kept in the JSON
MAX_SAMPLES_KEPT = 5000
SESSION_CREATE_REPEATS = 3

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ProfileSettings:
    """What to measure. ``None`` fields take defaults that depend on the bundle/machine."""

    variants: tuple[str, ...] | None = None  # None: every variant of the bundle
    providers: tuple[str, ...] | None = None  # None: cpu, plus cuda where onnxruntime offers it
    threads: tuple[int, ...] | None = None  # None: 1 and every usable core
    batch_sizes: tuple[int, ...] = (1, 8, 64)
    seq_lens: tuple[int | str, ...] | None = None  # ints and/or "real"; None: see default_seq_lens
    budget_s: float = 1.0  # timed seconds per configuration (after warm-up)
    warmup: int = 3
    min_runs: int = 10
    max_runs: int = 100_000
    cold_runs: int = 3  # fresh-subprocess cold starts per session group; 0 skips them

    def validate(self) -> None:
        """Refuse nonsense early (a ValueError is a usage error, exit 2)."""
        for name, values in (
            ("threads", self.threads),
            ("batch sizes", self.batch_sizes),
        ):
            if values is not None and (not values or any(v < 1 for v in values)):
                raise ValueError(f"{name} must be a non-empty list of integers >= 1")
        if self.variants is not None and not self.variants:
            raise ValueError("variants must not be empty")
        if self.providers is not None and not self.providers:
            raise ValueError("providers must not be empty")
        if self.seq_lens is not None:
            if not self.seq_lens:
                raise ValueError("seq lens must not be empty")
            for s in self.seq_lens:
                if s != "real" and (not isinstance(s, int) or s < 1):
                    raise ValueError(f"seq len {s!r}: expected an integer >= 1 or 'real'")
        if not self.budget_s > 0:
            raise ValueError("budget must be > 0 seconds")
        if self.warmup < 0 or self.cold_runs < 0:
            raise ValueError("warm-up and cold-start runs must be >= 0")
        if self.min_runs < 1 or self.max_runs < self.min_runs:
            raise ValueError("need 1 <= min_runs <= max_runs")


# ------------------------------------------------------------------ measuring


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


def measure(clf: Classifier, batches: Sequence[Sequence[str]], settings: ProfileSettings) -> dict[str, Any]:
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


def _rounded(obj: Any) -> Any:
    """Floats to 4 decimals (0.1 us in ms): the JSON stays readable and diffs stay small."""
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def _config_row(clf: Classifier, pool: Sequence[str], bs: int, settings: ProfileSettings) -> dict[str, Any]:
    """One configuration: batches of ``bs`` texts cycled from ``pool``, timed by :func:`measure`."""
    clf.batch_size = bs  # one ONNX run per call
    n_batches = max(1, min(64, len(pool)))
    batches = [[pool[(b * bs + j) % len(pool)] for j in range(bs)] for b in range(n_batches)]
    m = measure(clf, batches, settings)
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


def _provider_label(p: str) -> str:
    reverse = {v: k for k, v in PROVIDER_ALIASES.items()}
    return reverse.get(p, p)


def profile(
    model: str | os.PathLike[str] = "keras-imdb",
    *,
    texts: Sequence[str] | None = None,
    texts_source: str | None = None,
    settings: ProfileSettings | None = None,
    progress: Progress | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Profile every configuration of ``settings`` and return the JSON-ready result.

    Everything is validated (variants, providers, lengths) before the first
    measurement, so a typo fails in a second rather than after minutes.
    """
    settings = settings or ProfileSettings()
    settings.validate()
    say = progress or (lambda _msg: None)
    bundle = _bundle.open_bundle(model)
    manifest = bundle.manifest
    fixed = manifest.padding == "max_length"

    variants = settings.variants or tuple(manifest.variants)
    for v in variants:
        manifest.variant(v)  # BundleError names the available ones
    providers = settings.providers or default_providers()
    for p in providers:
        choose_providers(p)  # ProviderError when absent
    threads = settings.threads or default_threads()
    notes: list[str] = []
    if fixed:
        if settings.seq_lens is not None and tuple(settings.seq_lens) != (manifest.max_length,):
            notes.append(
                f"--seq-lens ignored: {manifest.name} is a fixed-length bundle, every text is "
                f"padded/truncated to {manifest.max_length} tokens"
            )
        seq_lens: tuple[int | str, ...] = (manifest.max_length,)
    else:
        seq_lens = settings.seq_lens or default_seq_lens(manifest)
        too_long = [s for s in seq_lens if s != "real" and int(s) > manifest.max_length]
        if too_long:
            raise ValueError(
                f"--seq-lens {', '.join(map(str, too_long))}: {manifest.name} takes at most "
                f"{manifest.max_length} tokens"
            )
    if texts is None:
        texts = sample_texts()
        texts_source = texts_source or f"built-in: {len(texts)} review-style texts ({SAMPLES_FILE})"
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to profile with")

    machine = machine_info()
    if machine_busy(machine):
        notes.append(
            f"the machine was busy when the profile started (load average {machine['load_average'][0]} "
            f"on {machine['usable_cores']} cores): timings are noisy"
        )
    for n in notes:
        say(f"note: {n}")

    n_sessions = len(variants) * len(providers) * len(threads)
    n_configs = n_sessions * len(seq_lens) * len(settings.batch_sizes)
    say(
        f"profiling {manifest.name}: {n_configs} configurations x {settings.budget_s:g} s"
        + (f" + {n_sessions * settings.cold_runs} cold starts" if settings.cold_runs else "")
    )

    # the texts each sequence length runs on, and their batches (built outside any timing)
    max_batch = max(settings.batch_sizes)
    tokenizer = build_tokenizer(
        manifest.tokenizer.kind,
        {k: bundle.read_verified(ref) for k, ref in manifest.tokenizer.files.items()},
        manifest.tokenizer.config,
        manifest.max_length,
    )
    pools: dict[int | str, list[str]] = {}
    for s in seq_lens:
        if fixed or s == "real":
            pools[s] = texts
        else:
            pools[s] = texts_of_length(tokenizer.encode, texts, int(s), max(max_batch, 16))
    token_counts = {s: [len(ids) for ids in tokenizer.encode_batch(pool)] for s, pool in pools.items()}
    cold_text = sorted(texts, key=len)[len(texts) // 2]  # a median-length text

    sessions: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    done = 0
    for variant in variants:
        model_bytes = bundle.read_verified(manifest.variant(variant).file)
        for provider in providers:
            for n_threads in threads:
                creates = []
                for _ in range(SESSION_CREATE_REPEATS):
                    t = time.perf_counter()
                    make_session(model_bytes, providers=provider, threads=n_threads)
                    creates.append(time.perf_counter() - t)
                t = time.perf_counter()
                clf = Classifier(  # no token limit: each timed call is one ONNX run of the whole batch
                    bundle,
                    variant=variant,
                    providers=provider,
                    threads=n_threads,
                    batch_size=max_batch,
                    batch_tokens=None,
                )
                load_ms = (time.perf_counter() - t) * 1000
                cold: dict[str, Any] = {"runs": 0}
                if settings.cold_runs:
                    say(f"cold start: {variant} {provider} threads={n_threads} x {settings.cold_runs}")
                    cold = footprint.cold_start(
                        str(bundle.root), variant, provider, n_threads, cold_text, settings.cold_runs
                    )
                session_row = {
                    "variant": variant,
                    "provider": provider,
                    "threads": n_threads,
                    "providers_used": [_provider_label(p) for p in clf.providers],
                    "model_bytes": len(model_bytes),
                    "load_ms": load_ms,
                    "session_create_ms": statistics.median(creates) * 1000,
                    "cold_start": cold,
                }
                session_row = _rounded(session_row)
                sessions.append(session_row)
                for s in seq_lens:
                    for bs in settings.batch_sizes:
                        done += 1
                        say(
                            f"[{done}/{n_configs}] {variant} {provider} threads={n_threads} "
                            f"batch={bs} seq={s}"
                        )
                        row = _config_row(clf, pools[s], bs, settings)
                        seq_mode = "fixed" if fixed else ("real" if s == "real" else "window")
                        row = {
                            "variant": variant,
                            "provider": provider,
                            "threads": n_threads,
                            "batch_size": bs,
                            "seq_len": None if s == "real" else int(s),
                            "seq_len_mode": seq_mode,
                            "tokens_mean": float(np.mean(token_counts[s])),
                            **row,
                            "session_create_ms": session_row["session_create_ms"],
                            "cold_start_ms": cold.get("wall_ms"),
                            "peak_rss_mib": cold.get("peak_rss_mib"),
                        }
                        row["latency_ms_samples"] = row.pop("latency_ms_samples")  # last: the long list
                        configs.append(_rounded(row))
                del clf
                gc.collect()

    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "machine": machine,
        "bundle": {
            "name": manifest.name,
            "location": str(bundle.root),
            "task": manifest.task,
            "padding": manifest.padding,
            "max_length": manifest.max_length,
            "tokenizer": manifest.tokenizer.kind,
            "default_variant": manifest.default_variant,
            "variants": {v.name: {"size_bytes": v.file.size} for v in manifest.variants.values()},
        },
        "settings": {
            "variants": list(variants),
            "providers": list(providers),
            "threads": list(threads),
            "batch_sizes": list(settings.batch_sizes),
            "seq_lens": [s if s == "real" else int(s) for s in seq_lens],
            "budget_s": settings.budget_s,
            "warmup": settings.warmup,
            "min_runs": settings.min_runs,
            "max_runs": settings.max_runs,
            "cold_runs": settings.cold_runs,
            "texts": texts_source or f"{len(texts)} texts",
            "n_texts": len(texts),
        },
        "notes": notes,
        "sessions": sessions,
        "configs": configs,
    }


# ------------------------------------------------------------------ output


def write_json(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the result atomically (temporary file + rename): no half-written JSON after a crash."""
    target = os.fspath(path)
    tmp = f"{target}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
