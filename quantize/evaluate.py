"""Accuracy and agreement of bundle variants, measured through the runtime.

Evaluation goes through :func:`edgeclf.load`, the same path users run, so a
metric in a manifest describes what ``edgeclf predict`` actually does.

    edgeclf evaluate runtime/models/keras-imdb --data ../shared/data/imdb/test.csv.gz
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import edgeclf


def evaluate_variants(
    bundle: str | os.PathLike[str],
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    variants: Sequence[str] | None = None,
    reference: str | None = "fp32",
    threads: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per variant: accuracy, n, and label agreement with ``reference``."""
    from edgeclf.bundle import open_bundle

    names = list(variants or open_bundle(bundle).manifest.variants)
    y = np.asarray(labels)
    preds: dict[str, np.ndarray] = {}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        clf = edgeclf.load(bundle, variant=name, providers="cpu", threads=threads, batch_size=256)
        t0 = time.perf_counter()
        proba = clf.predict_proba(list(texts))
        elapsed = time.perf_counter() - t0
        preds[name] = proba.argmax(axis=1)
        out[name] = {
            "accuracy": round(float((preds[name] == y).mean()), 5),
            "n": len(y),
            "eval_seconds": round(elapsed, 2),
        }
    if reference in preds:
        for name in names:
            out[name][f"agreement_with_{reference}"] = round(
                float((preds[name] == preds[reference]).mean()), 5
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from edgeclf.export.data import read_csv_rows

    p = argparse.ArgumentParser(
        prog="edgeclf evaluate", description="Accuracy of a bundle's variants on a labelled CSV (text,label)."
    )
    p.add_argument("bundle", help="embedded model name or bundle directory")
    p.add_argument(
        "--data", required=True, help="CSV or CSV.gz with text and label columns (labels as ids or names)"
    )
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--variant", action="append", help="variant(s) to evaluate (default: all)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = read_csv_rows(args.data)
    rows = [r for r in rows if (r.get(args.text_column) or "").strip() and r.get(args.label_column, "") != ""]
    if args.limit:
        rows = rows[: args.limit]
    labels_named = edgeclf.load(args.bundle).labels
    y = [
        int(r[args.label_column])
        if r[args.label_column].isdigit()
        else labels_named.index(r[args.label_column])
        for r in rows
    ]
    results = evaluate_variants(
        args.bundle, [r[args.text_column] for r in rows], y, variants=args.variant, threads=args.threads
    )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, m in results.items():
            agree = m.get("agreement_with_fp32")
            print(
                f"{name:<12} accuracy {m['accuracy']:.4f} on {m['n']:,} rows"
                + (f", agreement with fp32 {agree:.4f}" if agree is not None else "")
            )
    sys.stdout.flush()
    return 0
