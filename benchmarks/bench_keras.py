"""Keras IMDB model: what users would run instead vs edgeclf, side by side.

Candidates (same architecture, same weights: read from the bundle's fp32 ONNX):
Keras ``model.predict``, a direct ``model(x)`` call, a ``tf.function``, and
edgeclf fp32 / int8 through the public API (tokenization included for
edgeclf, *excluded* for Keras, which gets pre-tokenized arrays: the
comparison flatters Keras). Batch 1 and 64. Then end-to-end ``edgeclf
predict`` over the 25,000 IMDB test reviews (reviews/s, a fresh process).

    python benchmarks/bench_keras.py [--json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from common import imdb_test_texts, interleaved, machine, markdown_table, save

import edgeclf
from edgeclf.bundle import embedded_root


def keras_model_from_onnx() -> object:
    """The tutorial model with the bundle's own weights (matched by shape)."""
    import onnx
    from onnx import numpy_helper

    from edgeclf.export.keras_imdb import build_model

    model = build_model()
    inits = {
        tuple(a.shape): a
        for a in (
            numpy_helper.to_array(i)
            for i in onnx.load(str(embedded_root() / "keras-imdb" / "model.onnx")).graph.initializer
        )
    }
    weights = []
    for w in model.get_weights():
        weights.append(inits[tuple(w.shape)].reshape(w.shape))
    model.set_weights(weights)
    return model


def end_to_end(texts: list[str]) -> dict[str, float]:
    import csv

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "reviews.csv")
        with open(src, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "text"])
            w.writerows([i, t] for i, t in enumerate(texts))
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "edgeclf", "predict", src, "-o", os.path.join(tmp, "out.csv"), "-q"],
                check=True,
            )
            runs.append(time.perf_counter() - t0)
    best = sorted(runs)[1]
    return {
        "reviews": len(texts),
        "median_seconds": round(best, 3),
        "reviews_per_s": round(len(texts) / best),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    import tensorflow as tf

    texts, _ = imdb_test_texts()
    fp32 = edgeclf.load("keras-imdb", variant="fp32")
    int8 = edgeclf.load("keras-imdb", variant="int8")
    from edgeclf.export.keras_imdb import encode

    model = keras_model_from_onnx()
    serve = tf.function(
        lambda x: model(x, training=False), input_signature=[tf.TensorSpec([None, 256], tf.int32)]
    )
    rows, raw = [], {}
    for bs in (1, 64):
        batch = texts[:bs]
        x = encode(fp32.tokenizer, batch)
        check = np.abs(model.predict(x, verbose=0).reshape(-1) - fp32.predict_proba(batch)[:, 1]).max()
        assert check < 1e-4, check
        res = interleaved(
            {
                "keras model.predict": lambda x=x: model.predict(x, verbose=0),
                "keras model(x)": lambda x=x: model(x, training=False),
                "keras tf.function": lambda x=x: serve(x),
                "edgeclf fp32 (incl. tokenizing)": lambda b=batch: fp32.predict_proba(b),
                "edgeclf int8 (incl. tokenizing)": lambda b=batch: int8.predict_proba(b),
            },
            rounds=args.rounds,
        )
        base = res["keras model.predict"]["median_s"]
        for name, r in res.items():
            rows.append([bs, name, r["median_s"] * 1e3, bs / r["median_s"], base / r["median_s"]])
        raw[f"batch_{bs}"] = res
    e2e = end_to_end(texts)
    result = {"machine": machine(), "latency": raw, "end_to_end": e2e}
    save("keras", result)
    if args.json:
        import json

        print(json.dumps(result, indent=2))
        return
    print(
        markdown_table(
            ["batch", "candidate", "median ms/call", "reviews/s", "speed-up vs model.predict"], rows
        )
    )
    print()
    print(
        f"end to end: `edgeclf predict` on {e2e['reviews']:,} IMDB test reviews: {e2e['median_seconds']} s, "
        f"{e2e['reviews_per_s']:,} reviews/s (median of 3 fresh processes, int8)"
    )
    print(f"\nmachine: {result['machine']}")


if __name__ == "__main__":
    main()
