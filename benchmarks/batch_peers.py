"""How much a text's score depends on the texts that share its ONNX batch.

    python benchmarks/batch_peers.py     # writes results/batch_peers.json and .md

Spark (or `edgeclf predict --chunk-rows`) cuts the same rows into other
batches than one local call does; this measures what that changes, per
model: the largest score difference and the label flips between batch
sizes 1, 2, 7 and 64 (texts grouped by length as the classifier groups
them) against one reference run with the bundle's default batch, on real
texts: 2,000 IMDB test reviews (keras-imdb), 300 (albert-imdb, cut to 600
characters), the non-empty Weibo test posts (albert-zh-rumor).
"""

from __future__ import annotations

import json

import numpy as np
from common import ROOT, machine, markdown_table

import edgeclf
from edgeclf.export.data import read_csv_rows, shared_data_dir


def main() -> None:
    shared = shared_data_dir()
    if shared is None:
        raise SystemExit("needs ../shared/data")
    imdb = [r["text"] for r in read_csv_rows(shared / "imdb" / "test.csv.gz")[:2000]]
    weibo = [r["text"] for r in read_csv_rows(shared / "zh-rumor" / "weibo_test.csv") if r["text"].strip()]
    cases = [
        ("keras-imdb", imdb, 256),
        ("albert-imdb", [t[:600] for t in imdb[:300]], 64),
        ("albert-zh-rumor", weibo, 64),
    ]
    rows, results = [], {}
    for name, texts, default in cases:
        clf = edgeclf.load(name, threads=1, batch_size=default)
        ref = clf.predict_proba(texts)
        for bs in (1, 2, 7, 64):
            clf.batch_size = bs
            p = clf.predict_proba(texts)
            diff = float(np.abs(p - ref).max())
            flips = int((p.argmax(1) != ref.argmax(1)).sum())
            results[f"{name}/{bs}"] = {"max_abs_diff": diff, "label_flips": flips, "texts": len(texts)}
            rows.append([name, clf.variant.name, len(texts), default, bs, f"{diff:.2g}", flips])
    table = markdown_table(
        ["model", "variant", "texts", "reference batch", "batch", "max score difference", "label flips"], rows
    )
    m = machine()
    (ROOT / "benchmarks" / "results" / "batch_peers.json").write_text(
        json.dumps({"machine": m, "results": results}, indent=1) + "\n"
    )
    (ROOT / "benchmarks" / "results" / "batch_peers.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
