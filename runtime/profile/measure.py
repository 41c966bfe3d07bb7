"""Latency profiling of a bundle on this machine: :func:`profile`, behind ``edgeclf profile``.

A model card's accuracy says nothing about whether a bundle fits a device's
latency or memory budget, and the answer depends on the variant (fp32,
int8, pruned ...), the provider, the thread count, the batch size and, for
transformers, the sequence length. :func:`profile` measures every
combination the way users run the model (``Classifier.predict_proba`` on
real texts) and records where the time goes (:mod:`.timing`).

Per configuration:

- texts: real texts (``--data``) or the 30 built-in review-style texts in
  ``profile_samples.txt`` (written for the project, 48 to 520 words).
  Fixed-length bundles (``padding: max_length``) always run at their
  ``max_length``. For ``padding: longest`` bundles each sequence length
  ``L`` gets texts of exactly ``L`` tokens, cut as consecutive windows from
  the real texts (``real`` keeps the texts as they are).
- session creation is timed on its own (median of three); cold start is a
  fresh ``python -c`` that imports edgeclf, loads the bundle and predicts one
  text (:mod:`.footprint`): the wall time a CLI user or a serverless function
  pays, and its peak RSS.

Only the standard library, numpy and onnxruntime are used here; the HTML
report (matplotlib) is :mod:`.report`.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import bundle as _bundle
from .. import windows as _windows
from ..classifier import Classifier
from ..output import write_atomic
from ..session import PROVIDER_ALIASES, choose_providers, make_session
from ..tokenizers import build as build_tokenizer
from . import footprint
from .inputs import (
    SAMPLES_FILE,
    ProfileSettings,
    default_providers,
    default_seq_lens,
    default_threads,
    machine_busy,
    machine_info,
    sample_texts,
    texts_of_length,
)
from .timing import rounded, time_config

SCHEMA = "edgeclf-profile"
SCHEMA_VERSION = 1
SESSION_CREATE_REPEATS = 3

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Plan:
    """The resolved configuration grid of one profile (defaults filled in, names checked)."""

    variants: tuple[str, ...]
    providers: tuple[str, ...]
    threads: tuple[int, ...]
    seq_lens: tuple[int | str, ...]
    fixed: bool  # padding: max_length, every text runs at max_length
    notes: list[str]


def _plan(manifest: _bundle.Manifest, settings: ProfileSettings) -> _Plan:
    """Fill in the defaults and check every name and length before the first measurement."""
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
    return _Plan(tuple(variants), tuple(providers), tuple(threads), tuple(seq_lens), fixed, notes)


def _text_pools(
    bundle: _bundle.Bundle, plan: _Plan, texts: list[str], max_batch: int
) -> tuple[dict[int | str, list[str]], dict[int | str, list[int]], dict[str, Any] | None]:
    """The texts each sequence length runs on, their token counts and the real texts' windows per
    text (built outside any timing)."""
    manifest = bundle.manifest
    tokenizer = build_tokenizer(
        manifest.tokenizer.kind,
        {k: bundle.read_verified(ref) for k, ref in manifest.tokenizer.files.items()},
        manifest.tokenizer.config,
        manifest.max_length,
    )
    pools: dict[int | str, list[str]] = {}
    for s in plan.seq_lens:
        if plan.fixed or s == "real":
            pools[s] = texts
        else:
            pools[s] = texts_of_length(tokenizer.encode, texts, int(s), max(max_batch, 16))
    token_counts = {s: [len(ids) for ids in tokenizer.encode_batch(pool)] for s, pool in pools.items()}
    return pools, token_counts, _long_texts(manifest, tokenizer, texts)


def _long_texts(manifest: _bundle.Manifest, tokenizer: Any, texts: list[str]) -> dict[str, Any] | None:
    """How many windows the real texts take with ``long_texts="windows"`` (docs/long-texts.md):
    the work a windowed run does per text. None for bundles without windows (fixed-width)."""
    spec = manifest.long_texts
    plan = None
    if manifest.padding != "max_length":
        plan = _windows.plan(tokenizer, manifest.max_length, spec.stride, spec.max_windows)
    if plan is None:
        return None
    per_text = _windows.encode(tokenizer, texts, plan).windows_per_text(len(texts))
    return {
        "mode": spec.mode,
        "stride": plan.stride,
        "max_windows": plan.max_windows,
        "windows_per_text_mean": round(float(per_text.mean()), 3),
        "windows_per_text_max": int(per_text.max()),
        "texts_over_one_window": int((per_text > 1).sum()),
    }


def _provider_label(p: str) -> str:
    reverse = {v: k for k, v in PROVIDER_ALIASES.items()}
    return reverse.get(p, p)


def _open_session(
    bundle: _bundle.Bundle,
    key: tuple[str, str, int],
    model_bytes: bytes,
    settings: ProfileSettings,
    cold_text: str,
    say: Progress,
) -> tuple[Classifier, dict[str, Any]]:
    """One (variant, provider, threads): session creation, the classifier to time, cold starts."""
    variant, provider, n_threads = key
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
        batch_size=max(settings.batch_sizes),
        batch_tokens=None,
        # each text one row of the timed shape (batch x tokens); the real texts' windows are reported apart
        long_texts="truncate",
    )
    load_ms = (time.perf_counter() - t) * 1000
    cold: dict[str, Any] = {"runs": 0}
    if settings.cold_runs:
        say(f"cold start: {variant} {provider} threads={n_threads} x {settings.cold_runs}")
        cold = footprint.cold_start(
            str(bundle.root), variant, provider, n_threads, cold_text, settings.cold_runs
        )
    row = {
        "variant": variant,
        "provider": provider,
        "threads": n_threads,
        "providers_used": [_provider_label(p) for p in clf.providers],
        "model_bytes": len(model_bytes),
        "load_ms": load_ms,
        "session_create_ms": statistics.median(creates) * 1000,
        "cold_start": cold,
    }
    return clf, rounded(row)


def _session_configs(
    clf: Classifier,
    session_row: dict[str, Any],
    plan: _Plan,
    pools: dict[int | str, list[str]],
    token_counts: dict[int | str, list[int]],
    settings: ProfileSettings,
    say: Progress,
) -> list[dict[str, Any]]:
    """Every (sequence length, batch size) of one session, timed; ``say`` gets each one's label."""
    variant, provider, n_threads = session_row["variant"], session_row["provider"], session_row["threads"]
    cold = session_row["cold_start"]
    configs = []
    for s in plan.seq_lens:
        for bs in settings.batch_sizes:
            say(f"{variant} {provider} threads={n_threads} batch={bs} seq={s}")
            row = time_config(clf, pools[s], bs, settings)
            row = {
                "variant": variant,
                "provider": provider,
                "threads": n_threads,
                "batch_size": bs,
                "seq_len": None if s == "real" else int(s),
                "seq_len_mode": "fixed" if plan.fixed else ("real" if s == "real" else "window"),
                "tokens_mean": float(np.mean(token_counts[s])),
                **row,
                "session_create_ms": session_row["session_create_ms"],
                "cold_start_ms": cold.get("wall_ms"),
                "peak_rss_mib": cold.get("peak_rss_mib"),
            }
            row["latency_ms_samples"] = row.pop("latency_ms_samples")  # last: the long list
            configs.append(rounded(row))
    return configs


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
    plan = _plan(bundle.manifest, settings)
    if texts is None:
        texts = sample_texts()
        texts_source = texts_source or f"built-in: {len(texts)} review-style texts ({SAMPLES_FILE})"
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to profile with")
    machine = machine_info()
    if machine_busy(machine):
        plan.notes.append(
            f"the machine was busy when the profile started (load average {machine['load_average'][0]} "
            f"on {machine['usable_cores']} cores): timings are noisy"
        )
    for n in plan.notes:
        say(f"note: {n}")
    n_sessions = len(plan.variants) * len(plan.providers) * len(plan.threads)
    n_configs = n_sessions * len(plan.seq_lens) * len(settings.batch_sizes)
    say(
        f"profiling {bundle.manifest.name}: {n_configs} configurations x {settings.budget_s:g} s"
        + (f" + {n_sessions * settings.cold_runs} cold starts" if settings.cold_runs else "")
    )
    pools, token_counts, long_texts = _text_pools(bundle, plan, texts, max(settings.batch_sizes))
    cold_text = sorted(texts, key=len)[len(texts) // 2]  # a median-length text

    sessions: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []

    counter = itertools.count(1)

    def say_config(label: str) -> None:
        say(f"[{next(counter)}/{n_configs}] {label}")

    for variant in plan.variants:
        model_bytes = bundle.read_verified(bundle.manifest.variant(variant).file)
        for provider in plan.providers:
            for n_threads in plan.threads:
                key = (variant, provider, n_threads)
                clf, session_row = _open_session(bundle, key, model_bytes, settings, cold_text, say)
                sessions.append(session_row)
                configs += _session_configs(clf, session_row, plan, pools, token_counts, settings, say_config)
                del clf
                gc.collect()
    result = _result(bundle, plan, settings, machine, texts, texts_source, command, sessions, configs)
    result["long_texts"] = long_texts
    return result


def _result(
    bundle: _bundle.Bundle,
    plan: _Plan,
    settings: ProfileSettings,
    machine: dict[str, Any],
    texts: list[str],
    texts_source: str | None,
    command: str | None,
    sessions: list[dict[str, Any]],
    configs: list[dict[str, Any]],
) -> dict[str, Any]:
    """The JSON document (``schema: edgeclf-profile``; its keys are listed in docs/profiling.md)."""
    manifest = bundle.manifest
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
            "variants": list(plan.variants),
            "providers": list(plan.providers),
            "threads": list(plan.threads),
            "batch_sizes": list(settings.batch_sizes),
            "seq_lens": [s if s == "real" else int(s) for s in plan.seq_lens],
            "budget_s": settings.budget_s,
            "warmup": settings.warmup,
            "min_runs": settings.min_runs,
            "max_runs": settings.max_runs,
            "cold_runs": settings.cold_runs,
            "texts": texts_source or f"{len(texts)} texts",
            "n_texts": len(texts),
        },
        "notes": plan.notes,
        "sessions": sessions,
        "configs": configs,
    }


def write_json(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the result atomically: no half-written JSON after a crash."""
    write_atomic(path, json.dumps(result, indent=1) + "\n")
