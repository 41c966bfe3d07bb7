"""Every model against the baselines, on the same full test sets (issue 11).

    python benchmarks/model_table.py [--old-bundles DIR] [--write-manifests]

- English: all 25,000 IMDB test reviews. Chinese: the 586 non-empty
  weibo_test posts, plus the source hold-out (trained on Weibo posts only,
  tested on CED posts that occur in no Weibo file).
- Baselines: the Keras tutorial model (embedded), TF-IDF + logistic
  regression n-gram models trained on the same training split (word 1-2-grams
  for English, character 1-3-grams for Chinese; ``export/teacher.py``), and
  the previous ALBERTs (``--old-bundles``: the bundles as they were before
  this round, e.g. extracted from git) and the shipped model before its FFN
  was pruned (``--unpruned``: ``edgeclf export albert
  checkpoints/albert-imdb-ffn1024 --eval-data <imdb test>``), timed in the
  same run, their accuracy read from their manifests.
- Per model: accuracy (and fake-class F1 for Chinese), expected calibration
  error (15 equal-width confidence bins), shipped file size, and batch-1
  latency at 128 tokens (1 intra-op thread, interleaved rounds, median).
- Temperature scaling: each ALBERT variant's temperature is fitted on the
  student's validation texts (never the test sets); ``--write-manifests``
  stores the measured metrics in the embedded manifests, and the temperature
  where a 2-fold cross-fit on those validation texts says it lowers ECE
  (``temperature_helps``; the test ECE after T is reported, never consulted).

Probabilities are cached by model-file sha256 under /tmp, so a re-run that
only re-renders the table is cheap.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, batch_one_call, interleaved, machine

import edgeclf
from edgeclf.bundle import open_bundle
from edgeclf.classifier import DEFAULT_BATCH_TOKENS
from edgeclf.export import teacher
from edgeclf.export.data import load_imdb, shared_data_dir
from edgeclf.export.zh_rumor import load_split, metrics, source_split

CACHE = Path("/tmp/edgeclf-model-table")
RESULTS = ROOT / "benchmarks" / "results" / "models.json"
DOC = ROOT / "docs" / "models.md"


def ece(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    conf = proba.max(axis=1)
    right = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(right[m].mean() - conf[m].mean())
    return round(float(total), 4)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T minimising validation NLL of softmax(logits / T) (golden-section on log T)."""

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    a, b = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        c, d = b - g * (b - a), a + g * (b - a)
        if nll(c) < nll(d):
            b = d
        else:
            a = c
    return round(float(np.exp((a + b) / 2)), 4)


def temperature_helps(logits: np.ndarray, y: np.ndarray, folds: int = 2, seed: int = 0) -> bool:
    """Whether temperature scaling lowers ECE (by a tenth or more) on validation texts it was not
    fitted on.

    Cross-fitted on the validation set alone (each fold's T fitted on the other folds), so the
    decision to store a temperature never looks at the test set.
    """
    fold = np.arange(len(y)) % folds
    np.random.default_rng(seed).shuffle(fold)
    before, after = np.zeros((len(y), logits.shape[1])), np.zeros((len(y), logits.shape[1]))
    for f in range(folds):
        t = fit_temperature(logits[fold != f], y[fold != f])
        before[fold == f] = _soft(logits[fold == f])
        after[fold == f] = _soft(logits[fold == f] / t)
    return ece(after, y) < 0.9 * ece(before, y)  # by a tenth at least: not by noise


def temperature_for(
    src: Path | str, variant: str, texts: list[str], y: np.ndarray, tag: str
) -> tuple[float, bool]:
    """(T fitted on the validation texts, whether to store it: :func:`temperature_helps`)."""
    lv = logits_from(proba_of(src, variant, texts, tag))
    return fit_temperature(lv, y), temperature_helps(lv, y)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def proba_of(bundle: Path | str, variant: str, texts: list[str], tag: str) -> np.ndarray:
    """Probabilities through the runtime (the path users run), cached by the hashes of the
    model file, the tokenizer settings (the same file reads other ids with another truncation
    side) and the batching."""
    b = open_bundle(bundle)
    batching = [128, DEFAULT_BATCH_TOKENS]  # int8 scores move with the batches
    tok = json.dumps(
        [b.manifest.tokenizer.config, b.manifest.max_length, batching], sort_keys=True, default=str
    )
    tok_key = hashlib.sha256(tok.encode()).hexdigest()[:12]
    key = f"{_sha(b.path(b.manifest.variants[variant].file))}-{tok_key}-{tag}-{len(texts)}"
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    clf = edgeclf.load(bundle, variant=variant, providers="cpu", batch_size=128, temperature=1.0)
    p = clf.predict_proba(texts)
    np.save(path, p)
    return p


def cached(key: str, fn) -> np.ndarray:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{key}.npy"
    if not path.is_file():
        np.save(path, fn())
    return np.load(path)


def logits_from(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(proba, 1e-12, 1.0))


def latency_128(bundles: list[tuple[str, Path | str]], sample: str) -> dict[tuple[str, str], float]:
    """Batch-1, 128-token latency of every variant of every bundle, in ONE interleaved run
    (so that the previous and the current models are compared on the same machine state)."""
    cands = {}
    for label, bundle in bundles:
        for v in open_bundle(bundle).manifest.variants:
            cands[(label, v)] = batch_one_call(
                edgeclf.load(bundle, variant=v, providers="cpu", threads=1), sample
            )
    named = {f"{k[0]}|{k[1]}": fn for k, fn in cands.items()}
    t = interleaved(named, rounds=7, min_time=0.3)
    return {k: round(t[f"{k[0]}|{k[1]}"]["median_s"] * 1000, 2) for k in cands}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--old-bundles", type=Path, default=Path("/tmp/old"))
    p.add_argument(
        "--unpruned",
        type=Path,
        default=Path("/tmp/bundles/albert-imdb-ffn1024"),
        help="the bundle of checkpoints/albert-imdb-ffn1024 (the model before its FFN was pruned), "
        "timed beside the others; accuracy from its manifest",
    )
    p.add_argument("--write-manifests", action="store_true")
    p.add_argument("--skip-ngram", action="store_true")
    p.add_argument("--zh-recipe", type=Path, default=Path("/tmp/bundles/albert-zh-rumor"),
                   help="the Chinese bundle from export/albert_recipe.py, measured beside the shipped one")  # fmt: skip
    p.add_argument("--zh-recipe-label", default="albert-zh-rumor, pre-trained + distilled (not shipped)")
    p.add_argument("--zh-heldout", type=Path, default=Path("/tmp/bundles/zh-heldout-ced"),
                   help="the recipe's twin trained on Weibo posts only (held-out CED rows)")  # fmt: skip
    p.add_argument(
        "--every", type=int, default=1, help="English: non-default variants on every K-th test review"
    )
    p.add_argument(
        "--only", choices=["en", "zh"], default=None, help="one language (rows merge into the results)"
    )
    a = p.parse_args(argv)
    data = shared_data_dir()
    if data is None:
        print("needs ../shared/data", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    temps: dict[tuple[str, str], float] = {}
    t0 = time.perf_counter()

    # ---------------------------------------------------------------- English
    x_tr, y_tr = load_imdb("train", data / "imdb")
    x_te, y_te = load_imdb("test", data / "imdb")
    y_te_a = np.asarray(y_te)
    _, val_idx = teacher.split_indices(len(x_tr), 2500, 42)
    x_val, y_val = [x_tr[i] for i in val_idx], np.asarray([y_tr[i] for i in val_idx])
    sample = x_te[0]

    def add(task: str, model: str, variant: str, proba: np.ndarray, y: np.ndarray, **extra: Any) -> None:
        row = {
            "task": task,
            "model": model,
            "variant": variant,
            "n": len(y),
            "accuracy": round(float((proba.argmax(1) == y).mean()), 4),
        }
        if task.startswith("zh"):
            row.update({k: v for k, v in metrics(list(y), list(proba.argmax(1))).items() if k == "fake_f1"})
        row["ece"] = ece(proba, y)
        row.update(extra)
        rows.append(row)
        print(row, flush=True)

    if a.only == "zh":
        pass
    elif not a.skip_ngram:
        pr = cached("ngram-en", lambda: teacher.fit(teacher.ENGLISH, x_tr, y_tr).predict_proba(x_te))
        add(
            "imdb",
            "n-gram TF-IDF LR (word 1-2)",
            "-",
            pr,
            y_te_a,
            note="trained on all 25,000 training reviews",
        )
    keras = open_bundle("keras-imdb")
    for v in keras.manifest.variants if a.only != "zh" else []:
        add("imdb", "keras-imdb", v, proba_of("keras-imdb", v, x_te, "imdb-test"), y_te_a,
            size_bytes=keras.manifest.variants[v].file.size)  # fmt: skip
    bundles = [
        ("albert-imdb (previous)", a.old_bundles / "albert-imdb"),
        ("albert-imdb FFN 1024, before pruning (previous)", a.unpruned),
        ("albert-imdb", "albert-imdb"),
    ]
    if a.only == "zh":
        bundles = []
    bundles = [(label, src) for label, src in bundles if not (isinstance(src, Path) and not src.is_dir())]
    lat_all = latency_128(bundles, sample) if bundles else {}
    for label, src in bundles:
        man = open_bundle(src).manifest
        lat = {v: lat_all[(label, v)] for v in man.variants}
        if label.endswith("(previous)"):
            _previous(rows, "imdb", label, man, lat)
            continue
        # --every K: variants other than the CPU default on every K-th test review (a busy machine)
        every = {
            v: (1 if v == man.provider_variants.get("cpu", man.default_variant) else a.every)
            for v in man.variants
        }
        ref = None
        for v in _order(man.variants):
            k = every[v]
            xs, ys = (x_te, y_te_a) if k == 1 else (x_te[::k], y_te_a[::k])
            pr = proba_of(src, v, xs, "imdb-test")
            extra: dict[str, Any] = {
                "size_bytes": man.variants[v].file.size,
                "latency_b1_128_ms": lat[v],
                "n": len(ys),
            }
            if "fp32" in man.variants and v != "fp32":
                ref = proba_of(src, "fp32", x_te[:: a.every], "imdb-test").argmax(1)
                mine = pr.argmax(1) if k == a.every else pr[:: a.every].argmax(1)
                extra["agreement_with_fp32"] = round(float((mine == ref).mean()), 5)
            if label == "albert-imdb":
                t, keep = temperature_for(src, v, x_val, y_val, "imdb-val")
                temps[("albert-imdb", v)] = t if keep else 0.0
                extra.update(temperature=t, ece_after_temperature=ece(_soft(logits_from(pr) / t), ys))
            add("imdb", label, v, pr, ys, **extra)

    # ---------------------------------------------------------------- Chinese
    if a.only == "en":
        return finish(a, rows, temps, t0)
    split = load_split(data / "zh-rumor")
    zx, zy = split["train"]
    tx, ty = split["test"]
    ty_a = np.asarray(ty)
    _, zval = teacher.split_indices(len(zx), 600, 42)
    zx_val, zy_val = [zx[i] for i in zval], np.asarray([zy[i] for i in zval])
    held = source_split(data / "zh-rumor")
    hx, hy = held["heldout"]
    hy_a = np.asarray(hy)
    if not a.skip_ngram:
        add(
            "zh weibo_test",
            "n-gram TF-IDF LR (char 1-3)",
            "-",
            teacher.fit(teacher.CHINESE, zx, zy).predict_proba(tx),
            ty_a,
        )
        hx_tr, hy_tr = held["train"]
        pr = cached("ngram-ced", lambda: teacher.fit(teacher.CHINESE, hx_tr, hy_tr).predict_proba(hx))
        add("zh held-out CED", "n-gram TF-IDF LR (char 1-3), Weibo only", "-", pr, hy_a)
    bundles = [
        ("albert-zh-rumor", "albert-zh-rumor"),
        (a.zh_recipe_label, a.zh_recipe),
    ]
    zsample = tx[0]
    bundles = [(label, src) for label, src in bundles if not (isinstance(src, Path) and not src.is_dir())]
    lat_all = latency_128(bundles, zsample * 4)
    for label, src in bundles:
        man = open_bundle(src).manifest
        lat = {v: lat_all[(label, v)] for v in man.variants}
        if label.endswith("(previous)"):
            _previous(rows, "zh weibo_test", label, man, lat)
            continue
        ref = proba_of(src, "fp32", tx, "zh-test").argmax(1) if "fp32" in man.variants else None
        for v in _order(man.variants):
            pr = proba_of(src, v, tx, "zh-test")
            extra = {"size_bytes": man.variants[v].file.size, "latency_b1_128_ms": lat[v]}
            if ref is not None:
                extra["agreement_with_fp32"] = round(float((pr.argmax(1) == ref).mean()), 5)
            if label == "albert-zh-rumor":
                t, keep = temperature_for(src, v, zx_val, zy_val, "zh-val")
                temps[("albert-zh-rumor", v)] = t if keep else 0.0
                extra.update(temperature=t, ece_after_temperature=ece(_soft(logits_from(pr) / t), ty_a))
            add("zh weibo_test", label, v, pr, ty_a, **extra)
    if a.zh_heldout.is_dir():
        add("zh held-out CED", f"{a.zh_recipe_label.split(' (')[0]}, Weibo only", "int8",
            proba_of(a.zh_heldout, "int8", hx, "ced-heldout"), hy_a)  # fmt: skip

    return finish(a, rows, temps, t0)


def finish(a: Any, rows: list[dict[str, Any]], temps: dict[tuple[str, str], float], t0: float) -> int:
    here = machine()
    machines = {"en": here, "zh": here}
    if a.only and RESULTS.is_file():  # keep the other language's rows (and where they were measured)
        old = json.loads(RESULTS.read_text(encoding="utf-8"))
        other = [r for r in old["rows"] if (r["task"] == "imdb") == (a.only == "zh")]
        rows = other + rows if a.only == "zh" else rows + other
        lang = "zh" if a.only == "en" else "en"
        machines[lang] = old.get("machines", {}).get(lang, old["machine"])
    out = {"machine": here, "machines": machines, "seconds": round(time.perf_counter() - t0), "rows": rows}
    RESULTS.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    DOC.write_text(render(out), encoding="utf-8")
    if a.write_manifests:
        write_manifests(rows, temps)
    return 0


def _order(variants) -> list[str]:
    """Shipped CPU variants first, fp16 (slow on a CPU) last: the important numbers come first."""
    return sorted(variants, key=lambda v: (v == "fp16", v != "int8", v))


def _previous(rows: list[dict[str, Any]], task: str, label: str, man: Any, lat: dict[str, float]) -> None:
    """The previous round's bundles: accuracy as their manifests recorded it (same full test sets)."""
    for v, var in man.variants.items():
        m = var.metrics
        row = {
            "task": task,
            "model": label,
            "variant": v,
            "n": m.get("n"),
            "accuracy": m.get("accuracy"),
            "ece": "-",
        }
        row.update(
            size_bytes=var.file.size,
            latency_b1_128_ms=lat[v],
            note=f"accuracy from its manifest: {m.get('measured_by', '')}",
        )
        rows.append(row)
        print(row, flush=True)


def _soft(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def write_manifests(rows: list[dict[str, Any]], temps: dict[tuple[str, str], float]) -> None:
    from edgeclf.export import bundle_writer

    for name in ("albert-imdb", "albert-zh-rumor"):
        root = open_bundle(name).root
        man = bundle_writer.load(root)
        task = "imdb" if name == "albert-imdb" else "zh weibo_test"
        for r in rows:
            if r["model"] == name and r["task"] == task and r["variant"] in man["variants"]:
                m = man["variants"][r["variant"]].setdefault("metrics", {})
                keys = ("accuracy", "fake_f1", "ece", "ece_after_temperature", "agreement_with_fp32")
                m.update({k: r[k] for k in keys if k in r})
                m["n"] = r.get("n", 25_000 if task == "imdb" else 586)
                m["dataset"] = (
                    "IMDB test (25,000 reviews)" if task == "imdb" else "weibo_test (586 non-empty posts)"
                )
                m["measured_by"] = "python benchmarks/model_table.py --write-manifests"
                # stored where cross-fitting on the validation texts says it helps (never the test ECE)
                # (a language this run did not measure keeps what its manifest holds)
                if (name, r["variant"]) in temps:
                    t = temps[(name, r["variant"])]
                    if t:
                        man["variants"][r["variant"]]["temperature"] = t
                    else:
                        man["variants"][r["variant"]].pop("temperature", None)
        bundle_writer.save(root, man)


def render(out: dict[str, Any]) -> str:
    def where(m: dict[str, Any]) -> str:
        return (
            f"{m['cpu']} ({m['cores']} cores, shared; load average {m['load_average']:.1f}), "
            f"onnxruntime {m['onnxruntime']}"
        )

    ms = out.get("machines") or {"en": out["machine"], "zh": out["machine"]}
    same = ms["en"] == ms["zh"]
    lines = [
        "# Models against their baselines",
        "",
        "Generated by `python benchmarks/model_table.py` (do not edit by hand) on "
        + (
            where(ms["en"])
            if same
            else f"{where(ms['en'])} (English rows) and {where(ms['zh'])} (Chinese rows, "
            "an earlier `--only zh` run)"
        )
        + ". Accuracy on the full test sets; ECE: expected calibration error "
        "(15 bins; lower is better); latency: batch 1, 128 tokens, 1 thread, median of interleaved "
        "rounds, in the same run (compare ratios, not absolute numbers, across runs).",
        "",
        "| task | model | variant | n | accuracy | agreement with fp32 | fake F1 | ECE | ECE after T | T | size | b1 latency @128 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["rows"]:
        size = f"{r['size_bytes'] / 1e6:.2f} MB" if r.get("size_bytes") else "-"
        lat = f"{r['latency_b1_128_ms']:.1f} ms" if r.get("latency_b1_128_ms") else "-"
        lines.append(
            f"| {r['task']} | {r['model']} | {r['variant']} | {r.get('n', '')} | {r['accuracy']:.4f} | {r.get('agreement_with_fp32', '-')} | "
            f"{r.get('fake_f1', '-')} | {r['ece']} | {r.get('ece_after_temperature', '-')} | "
            f"{r.get('temperature', '-')} | {size} | {lat} |"
        )
    lines += ["", "Notes from the script's rows:", ""]
    lines += [f"- {r['model']}: {r['note']}" for r in out["rows"] if r.get("note")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
