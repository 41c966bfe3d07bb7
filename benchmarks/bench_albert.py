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

A bundle without fp32 (the embedded ones) is timed from a scratch copy with the
checkpoint's fp32 export added.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("USE_TF", "0")

from common import (
    GRID,
    GRID_QUICK,
    ROOT,
    fp32_export,
    imdb_test_texts,
    long_batches,
    machine,
    markdown_table,
    round_robin,
    save,
    time_grid,
)

import edgeclf

#: the candidate every ratio is against: the seed project's way, one text at a time
BASELINE = "pytorch eager, per text"


@dataclass(frozen=True)
class Reference:
    """What the other candidates run: the checkpoint's slow and fast tokenizers and PyTorch model, and
    Optimum's model class with a directory per variant of the bundle's ONNX files (none without optimum)."""

    tok: Any
    fast: Any
    model: Any
    ort_cls: Any
    ort_dirs: dict[str, Path]


def reference(ckpt: Path, bundle: Path, tmp: Path) -> Reference:
    from transformers import AlbertForSequenceClassification, AutoTokenizer

    from edgeclf.export.albert import reference_tokenizer

    fast = AutoTokenizer.from_pretrained(str(ckpt))
    model = AlbertForSequenceClassification.from_pretrained(str(ckpt)).eval()
    ort_cls, ort_dirs = optimum_models(bundle, ckpt, ("fp32", "int8"), tmp)
    return Reference(reference_tokenizer(ckpt), fast, model, ort_cls, ort_dirs)


def candidates(bs: int, seq: int, threads: int, *, ref: Reference, texts, bundle: Path, variants) -> dict:
    """The candidates for one (batch, sequence, threads) point; each call classifies one batch."""
    import torch

    tok, fast, model = ref.tok, ref.fast, ref.model

    torch.set_num_threads(threads)
    nxt = round_robin(long_batches(texts, lambda t: len(tok.encode(t)), seq, bs))

    def eager_per_text() -> None:
        with torch.no_grad():
            for t in nxt():
                enc = tok(t, truncation=True, max_length=seq, return_tensors="pt")
                model(**enc).logits.argmax(-1)

    def torch_batched() -> None:
        with torch.no_grad():
            enc = tok(nxt(), truncation=True, max_length=seq, padding=True, return_tensors="pt")
            model(**enc).logits.argmax(-1)

    cands = {BASELINE: eager_per_text, "pytorch batched": torch_batched}
    for v, d in ref.ort_dirs.items():
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        ortm = ref.ort_cls.from_pretrained(str(d), session_options=so, provider="CPUExecutionProvider")

        def run_ort(m=ortm) -> None:
            enc = fast(nxt(), truncation=True, max_length=seq, padding=True, return_tensors="np")
            m(**enc).logits.argmax(-1)

        cands[f"optimum ORTModel {v}"] = run_ort
    for v in variants:
        # truncated to ``seq`` as the PyTorch and Optimum candidates are (not read in windows)
        clf = edgeclf.load(
            bundle, variant=v, threads=threads, max_length=seq, providers="cpu", long_texts="truncate"
        )
        cands[f"edgeclf {v}"] = lambda c=clf: c.predict_proba(nxt())
    return cands


def with_fp32(bundle: Path, ckpt: Path, tmp: Path) -> Path:
    """``bundle`` itself when it holds fp32; else a scratch copy with the fp32 export of ``ckpt`` added
    (the embedded bundles ship int8 only), checked against the fp32 digest their manifest recorded."""
    from edgeclf.export import bundle_writer

    if "fp32" in bundle_writer.load(bundle)["variants"]:
        return bundle
    out = tmp / "bundle"
    shutil.copytree(bundle, out)
    man = bundle_writer.load(out)
    fp32_export(ckpt, out / "model.fp32.onnx", man)
    bundle_writer.add_variant(man, out, "fp32", "model.fp32.onnx", precision="fp32")
    bundle_writer.save(out, man)
    return out


def optimum_models(
    bundle: Path, ckpt: Path, variants: Sequence[str], tmp: Path
) -> tuple[Any, dict[str, Path]]:
    """Optimum's model class and a directory per variant holding the bundle's ONNX file and the checkpoint's
    config (what ``from_pretrained`` reads); (None, {}) without optimum-onnx."""
    try:
        from optimum.onnxruntime import ORTModelForSequenceClassification
    except ImportError:
        print("optimum-onnx not installed: skipping the Optimum candidates", file=sys.stderr)
        return None, {}
    manifest = edgeclf.load(bundle).manifest
    dirs = {}
    for v in [v for v in variants if v in manifest.variants]:
        d = tmp / v
        d.mkdir()
        shutil.copyfile(bundle / manifest.variants[v].file.path, d / "model.onnx")
        shutil.copyfile(ckpt / "config.json", d / "config.json")
        dirs[v] = d
    return ORTModelForSequenceClassification, dirs


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

    tmp = Path(tempfile.mkdtemp())
    bundle = with_fp32(Path(args.bundle), Path(args.checkpoint), tmp)
    manifest = edgeclf.load(bundle).manifest
    texts, _ = imdb_test_texts(3000)
    variants = [v for v in args.variants.split(",") if v in manifest.variants]
    grid = GRID_QUICK if args.quick else GRID
    if args.quick:
        args.rounds = 2
    ref = reference(Path(args.checkpoint), bundle, tmp)
    make = functools.partial(candidates, ref=ref, texts=texts, bundle=bundle, variants=variants)
    raw = time_grid(grid, make, baseline=BASELINE, rounds=args.rounds, min_time=0.3)
    rows = []
    for (bs, seq, threads), res in zip(grid, raw.values(), strict=True):
        base = res[BASELINE]["median_s"]
        rows += [
            [bs, seq, threads, name, r["median_s"] * 1e3, base / r["median_s"]] for name, r in res.items()
        ]
    shutil.rmtree(tmp, ignore_errors=True)
    note = os.path.relpath(args.bundle, ROOT)
    if bundle != Path(args.bundle):
        note += f" + the fp32 export of {os.path.relpath(args.checkpoint, ROOT)} (the manifest's fp32 digest)"
    result = {"machine": machine(), "bundle": note, "results": raw}
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
