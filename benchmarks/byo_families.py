"""Every family ``edgeclf export transformers`` supports, exported from a checkpoint built here.

For each family of tests/byo_checkpoints.py: a random ``*ForSequenceClassification``
of the test shape (hidden 32, 2 layers; random weights, so no accuracy is
claimed) with a tokenizer trained on IMDB / Weibo texts, exported with
``export_transformers`` on 60 real texts (IMDB test reviews and Weibo posts of
every length up to the 128-token limit), then loaded by the runtime alone and
compared with PyTorch's probabilities. Records per family: the exporter's
parity (max |logit| difference fp32 ONNX vs PyTorch, batches of 1, 3 and 8),
the runtime's fp32 / fp16 / int8 (row-wise) / int8-dynamic max |probability|
difference from PyTorch,
and the bundle's file sizes.

    python benchmarks/byo_families.py [--families roberta,...] [--work DIR]

Writes benchmarks/results/byo_families.json.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, markdown_table, save
from tests.byo_checkpoints import FAMILIES, SHAPE, build_checkpoint, training_texts


def real_texts(shared: Path) -> list[str]:
    with gzip.open(shared / "imdb" / "test.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        reviews = [r["text"] for _, r in zip(range(400), csv.DictReader(fh), strict=False)]
    with open(shared / "zh-rumor" / "weibo_test.csv", encoding="utf-8", newline="") as fh:
        posts = [r["text"] for _, r in zip(range(200), csv.DictReader(fh), strict=False)]
    by_length = sorted((t for t in reviews + posts if t.strip()), key=len)
    return by_length[:: len(by_length) // 60][:60]


def runtime_vs_pytorch(ckpt: Path, bundle: Path, texts: list[str], multi: bool) -> dict[str, float]:
    import numpy as np
    import torch
    import transformers

    import edgeclf

    tok = transformers.AutoTokenizer.from_pretrained(str(ckpt))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(ckpt)).eval()
    max_length = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))["max_length"]
    rows = []
    for text in texts:
        enc = tok(text, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            logits = model(**{k: enc[k] for k in ("input_ids", "attention_mask")}).logits
        rows.append(torch.sigmoid(logits) if multi else torch.softmax(logits, -1))
    want = torch.cat(rows).numpy()
    out = {}
    for variant in ("fp32", "fp16", "int8", "int8-dynamic"):
        got = edgeclf.load(bundle, variant=variant, providers="cpu", batch_size=8).predict_proba(texts)
        out[variant] = float(np.abs(got - want).max())
    return out


def main() -> None:
    from edgeclf.export.data import shared_data_dir
    from edgeclf.export.transformers import export_transformers

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join([*FAMILIES, "roberta-multi"]))
    p.add_argument("--work", default="/tmp/edgeclf-byo")
    args = p.parse_args()
    shared = shared_data_dir()
    if shared is None:
        sys.exit("needs ../shared/data (IMDB, zh-rumor)")
    work = Path(args.work)
    train, texts = training_texts(shared), real_texts(shared)
    result: dict[str, Any] = {"machine": machine(), "shape": SHAPE, "texts": len(texts), "families": {}}
    for family in args.families.split(","):
        base = family.removesuffix("-multi")
        multi = family != base
        ckpt = build_checkpoint(base, train, work, labels=3 if multi else 2, multi_label=multi)
        bundle = work / "bundles" / family
        t0 = time.perf_counter()
        manifest = export_transformers(ckpt, bundle, parity_texts=texts, log=lambda _s: None)
        row = {
            "kind": FAMILIES[base][0],
            "head": manifest["head"]["kind"],
            "export_s": round(time.perf_counter() - t0, 1),
            "parity": manifest["extra"]["parity"],
            "runtime_max_abs_prob_diff": runtime_vs_pytorch(ckpt, bundle, texts, multi),
            "bytes": {v: m["file"]["size"] for v, m in manifest["variants"].items()},
        }
        print(family, row, flush=True)
        result["families"][family] = row
        save("byo_families", result)
    print(
        markdown_table(
            ["family", "kind", "head", "parity (logits)", "fp32", "fp16", "int8"],
            [
                [f, r["kind"], r["head"], r["parity"]["max_abs_logit_diff"]]
                + [r["runtime_max_abs_prob_diff"][v] for v in ("fp32", "fp16", "int8")]
                for f, r in result["families"].items()
            ],
        )
    )


if __name__ == "__main__":
    main()
