"""Truncate or read windows: how albert-imdb should read a review longer than its window, chosen on validation.

albert-imdb's model reads 254 pieces; about half the IMDB reviews are longer.
``truncate`` keeps the last 254 pieces, ``windows`` reads the whole review in
overlapping windows and averages their logits (runtime/windows.py). Both modes
are scored on the 2,500 validation reviews (``teacher.split_indices``, held
out of the n-gram head's fit and of the blend weights' parent checkpoint),
for the transformer alone (``int8``) and the default (``ngram-int8``), through
the runtime. The shipped transformer's FFN-pruning recovery did train on
these reviews, so both modes' accuracies are optimistic; only the difference
between the modes is used. The test set is never read here; benchmarks/model_table.py
measures the chosen mode on it.

    python benchmarks/long_text_route.py

Writes benchmarks/results/long_text_route.json.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from common import machine, markdown_table, save

import edgeclf
from edgeclf.export import teacher
from edgeclf.export.data import load_imdb, shared_data_dir

VARIANTS = ("int8", "ngram-int8")
MODES = ("truncate", "windows")


def main() -> None:
    data = shared_data_dir()
    if data is None:
        raise SystemExit("needs ../shared/data")
    texts, labels = load_imdb("train", data / "imdb")
    _, val = teacher.split_indices(len(texts), 2500, 42)
    x, y = [texts[i] for i in val], np.asarray([labels[i] for i in val])
    result: dict = {"machine": machine(), "bundle": "albert-imdb", "validation_reviews": len(x), "routes": {}}
    for variant in VARIANTS:
        clf = edgeclf.load("albert-imdb", variant=variant, providers="cpu", temperature=1.0)
        for mode in MODES:
            t0 = time.perf_counter()
            p = clf.predict_proba(x, long_texts=mode)
            windows = clf.encode_texts(x, long_texts=mode).windows_per_text(len(x))
            result["routes"][f"{variant} {mode}"] = {
                "accuracy": round(float((p.argmax(1) == y).mean()), 4),
                "windows_per_text": round(float(windows.mean()), 3),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(variant, mode, result["routes"][f"{variant} {mode}"], flush=True)
    # the default variant's mode; a tie keeps truncate (one window per text is cheaper)
    scores = {m: result["routes"][f"{VARIANTS[-1]} {m}"]["accuracy"] for m in MODES}
    result["chosen_mode"] = max(MODES, key=lambda m: (scores[m], m == "truncate"))
    save("long_text_route", result)
    rows = [[k, f"{v['accuracy']:.4f}", v["windows_per_text"]] for k, v in result["routes"].items()]
    print(markdown_table(["variant, mode", "validation accuracy", "windows per text"], rows))


if __name__ == "__main__":
    main()
