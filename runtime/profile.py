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
import gzip
import json
import os
import platform
import random
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from . import __version__, footprint
from . import bundle as _bundle
from .classifier import Classifier
from .session import PROVIDER_ALIASES, available_providers, choose_providers, make_session
from .tokenizers import build as build_tokenizer

SCHEMA = "edgeclf-profile"
SCHEMA_VERSION = 1
SAMPLES_FILE = "profile_samples.txt"
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


# ------------------------------------------------------------------ flags


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """``"1,8,64"`` -> ``(1, 8, 64)`` (order kept, duplicates dropped)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"--{what}: {part!r} is not an integer (expected e.g. 1,8,64)") from None
        if value < 1:
            raise ValueError(f"--{what}: {value} must be >= 1")
        if value not in out:
            out.append(value)
    return tuple(out)


def parse_seq_lens(text: str) -> tuple[int | str, ...]:
    """``"64,128,real"`` -> ``(64, 128, "real")``."""
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip().lower()
        value: int | str = "real" if part == "real" else parse_int_list(part, "seq-lens")[0]
        if value not in out:
            out.append(value)
    return tuple(out)


def parse_word_list(text: str) -> tuple[str, ...]:
    words = tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))
    if not words:
        raise ValueError(f"empty list {text!r}")
    return words


def default_threads() -> tuple[int, ...]:
    """1 (the embedded/desktop case) and all usable cores (the batch-job case)."""
    n = usable_cores()
    return tuple(dict.fromkeys((1, n)))


def default_providers() -> tuple[str, ...]:
    return ("cpu", "cuda") if "CUDAExecutionProvider" in available_providers() else ("cpu",)


def default_seq_lens(manifest: _bundle.Manifest) -> tuple[int | str, ...]:
    """Fixed-length bundles: their max_length. Others: 64, 128 and max_length (those that fit)."""
    if manifest.padding == "max_length":
        return (manifest.max_length,)
    return tuple(dict.fromkeys([n for n in (64, 128) if n < manifest.max_length] + [manifest.max_length]))


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except AttributeError:
        return os.cpu_count() or 1


# ------------------------------------------------------------------ texts


def sample_texts() -> list[str]:
    """The built-in review-style texts (one per line; ``#`` lines are comments)."""
    try:
        raw = (resources.files("edgeclf") / SAMPLES_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        raise ValueError(
            f"the built-in sample texts ({SAMPLES_FILE}) are missing from this installation; "
            "pass --data FILE.csv"
        ) from None
    return [line for line in raw.splitlines() if line.strip() and not line.startswith("#")]


def load_texts(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    max_texts: int = 1000,
    delimiter: str = ",",
    encoding: str = "utf-8",
    seed: int = 0,
) -> list[str]:
    """Real texts from a CSV (``.gz`` too): a seeded uniform sample of ``max_texts`` rows.

    Sampled rather than the first rows because datasets are often sorted (the
    IMDB CSVs by polarity and id), and review length correlates with both.
    """
    from .csvio import InputFileError, open_text, read_rows

    if max_texts < 1:
        raise ValueError("--max-texts must be >= 1")
    name = os.fspath(path)
    if name.endswith(".gz"):
        try:
            fh = gzip.open(name, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="")  # noqa: SIM115
        except FileNotFoundError:
            raise InputFileError(f"{name}: no such file") from None
    else:
        fh = open_text(name, encoding)
    rng = random.Random(seed)
    chosen: list[str] = []
    seen = 0
    with fh:
        try:
            for row in read_rows(fh, name=name, id_column=None, text_column=text_column, delimiter=delimiter):
                if row.error is not None or not row.text or not row.text.strip():
                    continue
                seen += 1
                if len(chosen) < max_texts:  # reservoir sampling: one pass, bounded memory
                    chosen.append(row.text)
                else:
                    j = rng.randrange(seen)
                    if j < max_texts:
                        chosen[j] = row.text
        except (OSError, EOFError) as exc:  # e.g. a truncated or non-gzip .gz file
            raise InputFileError(f"{name}: {exc}") from None
    if not chosen:
        raise InputFileError(f"{name}: no usable texts in column {text_column!r}")
    return chosen


def texts_of_length(
    encode: Callable[[str], list[int]], texts: Sequence[str], length: int, n: int
) -> list[str]:
    """``n`` texts of exactly ``length`` tokens (when possible), as windows over the real texts.

    The texts are joined into one stream of words; each window is the longest
    run of words, starting where the previous one ended (wrapping around),
    whose encoding (special tokens included) fits in ``length`` tokens. So a
    long review yields several windows and short ones are joined: every
    window is real prose, and its token count is the one asked for.
    """
    words = [w for t in texts for w in t.split()]
    if not words:
        raise ValueError("no words in the texts")
    limit = min(len(words), 2 * length + 8)

    def longest_fit(start: int) -> tuple[str, int, int]:
        window = (words[start:] + words[:start])[:limit]
        lo, hi = 1, len(window)  # largest k with len(encode(window[:k])) <= length
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(encode(" ".join(window[:mid]))) <= length:
                lo = mid
            else:
                hi = mid - 1
        text = " ".join(window[:lo])
        return text, lo, len(encode(text))

    out: list[str] = []
    start = 0
    for _ in range(n):
        # one whitespace word can be several tokens ("film.<br" is two words to Keras, a long
        # word several pieces to SentencePiece), so a window may end a token short: then try
        # starting a word later, a few times, and keep the closest
        best = longest_fit(start)
        for shift in range(1, 8):
            if best[2] == length:
                break
            candidate = longest_fit((start + shift) % len(words))
            if candidate[2] > best[2]:
                best = candidate
        out.append(best[0])
        start = (start + best[1]) % len(words)
    return out


# ------------------------------------------------------------------ machine


def machine_info() -> dict[str, Any]:
    """Enough about the machine to tell two profiles apart (and to spot a busy one)."""
    from ._ort import import_onnxruntime

    ort = import_onnxruntime()

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "system": platform.system(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_bytes": _meminfo_total(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "edgeclf": __version__,
        "providers_available": available_providers(),
    }
    return info


def cpu_model() -> str:
    """The CPU's marketing name: /proc/cpuinfo on Linux (x86 and ARM), else platform's guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            fields = {}
            for line in fh:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip().lower(), value.strip())
        for key in ("model name", "hardware", "model", "cpu model", "cpu"):
            if fields.get(key):
                return fields[key]
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _meminfo_total() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_busy(machine: dict[str, Any]) -> bool:
    """A 1-minute load average over half the usable cores makes timings noisy."""
    load = machine.get("load_average")
    return bool(load) and load[0] > 0.5 * max(1, machine.get("usable_cores") or 1)


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

    def run(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter_ns()
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
            session.ns = tokenizer.ns = 0
            t0 = clock()
            clf.predict_proba(batch)
            t1 = clock()
            total_ns.append(t1 - t0)
            onnx_ns.append(session.ns)
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
        "elapsed_s": elapsed,
        "total_ns": total_ns,
        "breakdown_ms": parts,
        "breakdown_share": {k: v / whole for k, v in parts.items()},
    }


def cold_start(model: str, variant: str, provider: str, threads: int | None, text: str, runs: int) -> dict:
    """Median of fresh processes: import, load, first prediction, and memory (edgeclf.footprint).

    A subprocess is the only honest way to measure it: in this process
    numpy, onnxruntime and the bundle's pages are already warm. Peak RSS is
    the child's high-water mark; ``load_rss_mib`` what loading the model
    added to RSS, from one more child that measures memory only (its extra
    load and close would distort the timings).
    """
    inner: list[dict[str, Any]] = []
    try:
        for _ in range(runs):
            inner.append(footprint.fresh_process(model, variant, provider, threads, text))
        mem = footprint.fresh_process(model, variant, provider, threads, text, memory=True) if runs else {}
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


def _rounded(obj: Any) -> Any:
    """Floats to 4 decimals (0.1 us in ms): the JSON stays readable and diffs stay small."""
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


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
                clf = Classifier(
                    bundle, variant=variant, providers=provider, threads=n_threads, batch_size=max_batch
                )
                load_ms = (time.perf_counter() - t) * 1000
                cold: dict[str, Any] = {"runs": 0}
                if settings.cold_runs:
                    say(f"cold start: {variant} {provider} threads={n_threads} x {settings.cold_runs}")
                    cold = cold_start(
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
                    pool = pools[s]
                    for bs in settings.batch_sizes:
                        done += 1
                        say(
                            f"[{done}/{n_configs}] {variant} {provider} threads={n_threads} "
                            f"batch={bs} seq={s}"
                        )
                        clf.batch_size = bs  # one ONNX run per call
                        n_batches = max(1, min(64, len(pool)))
                        batches = [
                            [pool[(b * bs + j) % len(pool)] for j in range(bs)] for b in range(n_batches)
                        ]
                        m = measure(clf, batches, settings)
                        lat = _stats_ms(m["total_ns"])
                        samples = [round(x / 1e6, 4) for x in m["total_ns"]]
                        if len(samples) > MAX_SAMPLES_KEPT:
                            step = len(samples) / MAX_SAMPLES_KEPT
                            samples = [samples[int(k * step)] for k in range(MAX_SAMPLES_KEPT)]
                        counts = token_counts[s]
                        configs.append(
                            _rounded(
                                {
                                    "variant": variant,
                                    "provider": provider,
                                    "threads": n_threads,
                                    "batch_size": bs,
                                    "seq_len": None if s == "real" else int(s),
                                    "seq_len_mode": "fixed"
                                    if fixed
                                    else ("real" if s == "real" else "window"),
                                    "tokens_mean": float(np.mean(counts)),
                                    "runs": m["runs"],
                                    "elapsed_s": m["elapsed_s"],
                                    "latency_ms": lat,
                                    "texts_per_s": bs * 1000 / lat["p50"] if lat["p50"] > 0 else None,
                                    "texts_per_s_mean": bs * 1000 / lat["mean"] if lat["mean"] > 0 else None,
                                    "breakdown_ms": m["breakdown_ms"],
                                    "breakdown_share": m["breakdown_share"],
                                    "session_create_ms": session_row["session_create_ms"],
                                    "cold_start_ms": cold.get("wall_ms"),
                                    "peak_rss_mib": cold.get("peak_rss_mib"),
                                    "latency_ms_samples": samples,
                                }
                            )
                        )
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


# ------------------------------------------------------------------ outputs


def command_line(
    result: dict[str, Any], *, model: str, data: str | None = None, text_column: str = "text"
) -> str:
    """The command that repeats this profile with every default spelled out (for the report)."""
    import shlex

    s = result["settings"]
    words = ["edgeclf", "profile", "-m", model]
    words += ["--variants", ",".join(s["variants"]), "--providers", ",".join(s["providers"])]
    words += [
        "--threads",
        ",".join(map(str, s["threads"])),
        "--batch-sizes",
        ",".join(map(str, s["batch_sizes"])),
    ]
    if result["bundle"]["padding"] != "max_length":
        words += ["--seq-lens", ",".join(map(str, s["seq_lens"]))]
    if data:
        words += ["--data", data, "--text-column", text_column]
    words += [
        "--budget",
        f"{s['budget_s']:g}",
        "--warmup",
        str(s["warmup"]),
        "--min-runs",
        str(s["min_runs"]),
    ]
    words += ["--cold-runs", str(s["cold_runs"])]
    return shlex.join(words)


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


# ------------------------------------------------------------------ terminal table


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(result: dict[str, Any]) -> str:
    """The human-readable report: a header, the latency table and the session table."""
    m, b, s = result["machine"], result["bundle"], result["settings"]
    lines = [
        f"edgeclf profile: {b['name']} (padding {b['padding']}, max_length {b['max_length']}, "
        f"tokenizer {b['tokenizer']})",
        f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, {m['platform']}, "
        f"onnxruntime {m['onnxruntime']}, load average {m['load_average'][0] if m['load_average'] else '?'}",
        f"texts: {s['texts']}; {s['budget_s']:g} s per configuration after {s['warmup']} warm-up calls",
    ]
    lines += [f"note: {n}" for n in result["notes"]]
    lines.append("")
    head = (
        f"{'variant':<10} {'provider':<8} {'thr':>3} {'batch':>5} {'seq':>5} {'runs':>6}"
        f" {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'texts/s':>10}  {'tok':>4} {'onnx':>4} {'other':>5}"
    )
    lines += [
        "latency of one predict_proba call on a batch; texts/s at the p50; time split at the medians",
        head,
    ]
    lines.append("-" * len(head))
    for c in result["configs"]:
        lat, sh = c["latency_ms"], c["breakdown_share"]
        seq = "real" if c["seq_len"] is None else str(c["seq_len"])
        lines.append(
            f"{c['variant']:<10} {c['provider']:<8} {c['threads']:>3} {c['batch_size']:>5} {seq:>5}"
            f" {c['runs']:>6} {lat['p50']:>9.3f} {lat['p90']:>9.3f} {lat['p99']:>9.3f}"
            f" {_fmt(c['texts_per_s'], ',.0f'):>10}  {sh['tokenize']:>4.0%} {sh['onnx']:>4.0%} {sh['other']:>5.0%}"
        )
    lines.append("")
    head2 = (
        f"{'variant':<10} {'provider':<8} {'thr':>3} {'size KiB':>9} {'session ms':>10}"
        f" {'cold ms':>8} {'import':>7} {'load':>7} {'first':>7} {'peak RSS MiB':>12} {'load MiB':>8}"
    )
    cold_runs = s["cold_runs"]
    lines.append(
        f"sessions: creation (median of {SESSION_CREATE_REPEATS}); cold start = fresh python process: "
        f"import, load, first prediction (median of {cold_runs}); load MiB = RSS added by loading "
        "the model (edgeclf.footprint)"
    )
    lines += [head2, "-" * len(head2)]
    for x in result["sessions"]:
        c = x["cold_start"]
        if c.get("error"):
            tail = f" {c['error']}"
        else:
            tail = (
                f" {_fmt(c.get('wall_ms'), '.0f'):>8} {_fmt(c.get('import_ms'), '.0f'):>7}"
                f" {_fmt(c.get('load_ms'), '.0f'):>7} {_fmt(c.get('first_predict_ms'), '.1f'):>7}"
                f" {_fmt(c.get('peak_rss_mib'), '.1f'):>12} {_fmt(c.get('load_rss_mib'), '.1f'):>8}"
            )
        lines.append(
            f"{x['variant']:<10} {x['provider']:<8} {x['threads']:>3} {x['model_bytes'] / 1024:>9.0f}"
            f" {x['session_create_ms']:>10.1f}{tail}"
        )
    return "\n".join(lines) + "\n"
