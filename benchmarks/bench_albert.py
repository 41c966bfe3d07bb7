"""ALBERT: the seed project's PyTorch inference and Optimum vs edgeclf, side by side.

Candidates, each including tokenization (texts in, labels out):
- "pytorch eager, per text": as the seed project ran it, one text at a time,
  ``AlbertTokenizer`` + ``AlbertForSequenceClassification`` under no_grad;
- "pytorch batched": the same with padded batches;
- "optimum ORTModel": Optimum's ``ORTModelForSequenceClassification`` with
  ``AutoTokenizer`` on *the same ONNX files* edgeclf runs (fp32 and int8);
- edgeclf fp32 / int8 (/ pruned-int8 when the bundle has it) through
  ``edgeclf.load(...).predict_proba``.

Grid: batch 1 and 8, sequence 128 and 256 (reviews with at least that many
tokens, truncated to it, so every candidate sees exactly that length),
1 and 2 threads. Ratios are against "pytorch eager, per text" in the same run.

    python benchmarks/bench_albert.py [--bundle runtime/models/albert-imdb]
        [--checkpoint checkpoints/albert-imdb] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("USE_TF", "0")

from common import ROOT, imdb_test_texts, interleaved, machine, markdown_table, save

import edgeclf


def candidates(bs, seq, threads, *, tok, fast, model, texts, ort_dirs, ort_cls, bundle, variants) -> dict:
    """The candidates for one (batch, sequence, threads) point; each call classifies one batch."""
    import torch

    torch.set_num_threads(threads)
    long_enough = [t for t in texts if len(tok.encode(t)) >= seq][: bs * 4]
    batches = [long_enough[i : i + bs] for i in range(0, len(long_enough), bs)]
    state = {"i": 0}

    def nxt() -> list[str]:
        state["i"] = (state["i"] + 1) % len(batches)
        return batches[state["i"]]

    def eager_per_text() -> None:
        with torch.no_grad():
            for t in nxt():
                enc = tok(t, truncation=True, max_length=seq, return_tensors="pt")
                model(**enc).logits.argmax(-1)

    def torch_batched() -> None:
        with torch.no_grad():
            enc = tok(nxt(), truncation=True, max_length=seq, padding=True, return_tensors="pt")
            model(**enc).logits.argmax(-1)

    cands = {"pytorch eager, per text": eager_per_text, "pytorch batched": torch_batched}
    for v, d in ort_dirs.items():
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        ortm = ort_cls.from_pretrained(str(d), session_options=so, provider="CPUExecutionProvider")

        def run_ort(m=ortm) -> None:
            enc = fast(nxt(), truncation=True, max_length=seq, padding=True, return_tensors="np")
            m(**enc).logits.argmax(-1)

        cands[f"optimum ORTModel {v}"] = run_ort
    for v in variants:
        clf = edgeclf.load(bundle, variant=v, threads=threads, max_length=seq, providers="cpu")
        cands[f"edgeclf {v}"] = lambda c=clf: c.predict_proba(nxt())
    return cands


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", default=str(ROOT / "runtime" / "models" / "albert-imdb"))
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "albert-imdb"))
    p.add_argument(
        "--variants",
        default="fp32,int8,pruned-int8",
        help="bundle variants to time (those present); the bundle must hold fp32 for Optimum",
    )
    p.add_argument("--quick", action="store_true", help="one configuration, few rounds (a smoke test)")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()

    from transformers import AlbertForSequenceClassification, AlbertTokenizer, AutoTokenizer

    try:
        from optimum.onnxruntime import ORTModelForSequenceClassification
    except ImportError:
        ORTModelForSequenceClassification = None
        print("optimum-onnx not installed: skipping the Optimum candidates", file=sys.stderr)

    bundle = Path(args.bundle)
    manifest = edgeclf.load(bundle).manifest
    ckpt = Path(args.checkpoint)
    tok = AlbertTokenizer.from_pretrained(str(ckpt))
    fast = AutoTokenizer.from_pretrained(str(ckpt))
    model = AlbertForSequenceClassification.from_pretrained(str(ckpt)).eval()
    texts, _ = imdb_test_texts(3000)
    variants = [v for v in args.variants.split(",") if v in manifest.variants]

    grid = [(b, s, t) for t in (1, 2) for s in (128, 256) for b in (1, 8)]
    if args.quick:
        grid = [(1, 128, 2)]
        args.rounds = 2
    tmp = Path(tempfile.mkdtemp())
    ort_dirs = {}
    if ORTModelForSequenceClassification is not None:
        for v in [v for v in ("fp32", "int8") if v in manifest.variants]:
            d = tmp / v
            d.mkdir()
            shutil.copyfile(bundle / manifest.variants[v].file.path, d / "model.onnx")
            shutil.copyfile(ckpt / "config.json", d / "config.json")
            ort_dirs[v] = d

    rows, raw = [], {}
    for bs, seq, threads in grid:
        cands = candidates(
            bs,
            seq,
            threads,
            tok=tok,
            fast=fast,
            model=model,
            texts=texts,
            ort_dirs=ort_dirs,
            ort_cls=ORTModelForSequenceClassification,
            bundle=bundle,
            variants=variants,
        )
        res = interleaved(cands, rounds=args.rounds, min_time=0.3)
        base = res["pytorch eager, per text"]["median_s"]
        for name, r in res.items():
            rows.append([bs, seq, threads, name, r["median_s"] * 1e3, base / r["median_s"]])
        raw[f"b{bs}_s{seq}_t{threads}"] = res
        print(f"done batch {bs} seq {seq} threads {threads}", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    result = {"machine": machine(), "bundle": str(bundle), "results": raw}
    if not args.quick:
        save("albert", result)
    print(
        markdown_table(
            ["batch", "seq", "threads", "candidate", "median ms/batch", "speed-up vs eager per text"], rows
        )
    )
    print(f"\nmachine: {result['machine']}")


if __name__ == "__main__":
    main()
