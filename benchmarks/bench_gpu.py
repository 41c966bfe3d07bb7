"""CPU int8 vs GPU fp16 / fp32 for every embedded model, on a machine with a GPU.

    pip install onnxruntime-gpu  (or edgeclf-gpu, docs/gpu.md); python benchmarks/bench_gpu.py --out results.json

What it checks and measures, in one process per provider set:

1. ``providers="auto"``: which provider + variant each bundle picks (the
   transformers should pick a float variant on CUDA, keras-imdb the CPU);
2. labels of every variant on CUDA against the CPU run of the same variant
   on real texts (IMDB test reviews, Weibo posts): identical labels, the
   largest probability difference reported;
3. latency of ``proba_from_ids`` (tokenizing excluded) at batch 1 / 32 / 256,
   128-token texts, CPU int8 vs CUDA fp16 vs CUDA fp32, interleaved rounds.

``--providers cpu`` runs everything on the CPU only (how this script is
tested where there is no GPU). docs/gpu.md says which of its results are
in ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, machine

import edgeclf
from edgeclf.bundle import embedded_names, open_bundle


def texts_for(name: str, n: int) -> list[str]:
    from edgeclf.export.data import read_csv_rows, shared_data_dir

    d = shared_data_dir()
    if d is None:
        return [f"sample text number {i}, good and bad" for i in range(n)]
    src = d / ("zh-rumor/weibo_test.csv" if "zh" in name else "imdb/test.csv.gz")
    rows = [r["text"] for r in read_csv_rows(src) if r["text"].strip()]
    return rows[:: max(1, len(rows) // n)][:n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--providers", default="cuda", help="cuda (default) or cpu (a dry run)")
    p.add_argument("--texts", type=int, default=2000)
    p.add_argument("--batches", default="1,32,256")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    accel = a.providers
    result: dict = {"machine": machine(), "auto": {}, "labels": [], "latency": []}
    try:
        import torch  # only to name the GPU, if present

        if torch.cuda.is_available():
            result["machine"]["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    for name in embedded_names():
        auto = edgeclf.load(name)
        result["auto"][name] = {"variant": auto.variant.name, "providers": auto.providers}
        print(name, "auto ->", auto.runs_on, flush=True)
        texts = texts_for(name, a.texts)
        man = open_bundle(name).manifest
        for v in man.variants:
            cpu = edgeclf.load(name, variant=v, providers="cpu").predict_proba(texts)
            dev = edgeclf.load(name, variant=v, providers=accel).predict_proba(texts)
            row = {
                "model": name,
                "variant": v,
                "provider": accel,
                "texts": len(texts),
                "label_agreement": float((cpu.argmax(1) == dev.argmax(1)).mean()),
                "max_abs_prob_diff": float(np.abs(cpu - dev).max()),
            }
            result["labels"].append(row)
            print(row, flush=True)
        cands = {}
        tok = auto.tokenizer
        ids = tok.encode(" ".join(texts[:8]))[:128]
        for label, v, prov in (("cpu int8", man.provider_variants.get("cpu"), "cpu"),
                               (f"{accel} fp16", "fp16", accel), (f"{accel} fp32", "fp32", accel)):  # fmt: skip
            if v not in man.variants:
                continue
            clf = edgeclf.load(name, variant=v, providers=prov)
            for b in (int(x) for x in a.batches.split(",")):
                cands[f"{label} b{b}"] = lambda c=clf, s=[ids] * b: c.proba_from_ids(s)
        timing = interleaved(cands, rounds=5, min_time=0.2)
        for k, t in timing.items():
            result["latency"].append({"model": name, "case": k, "ms": round(t["median_s"] * 1000, 3)})
    text = json.dumps(result, indent=1)
    if a.out:
        a.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
