"""ALBERT at the size users bring: export, int8 and pruning of albert-base-v2 / albert_chinese_base shapes.

Every other ALBERT figure in docs/ is at hidden 128. Users arrive with
albert-base-v2 shaped checkpoints (hidden 768, 12 heads, FFN 3072, 12 layer
passes, embedding 128, 30,000 SentencePiece pieces) or albert_chinese_*
(WordPiece, 21,128 tokens). For each shape this script:

1. makes a **randomly initialised** ``AlbertForSequenceClassification`` of
   that shape and writes it as a real ``save_pretrained`` directory with
   tokenizer files. Random weights are fine for speed, size and parity (the
   amount of computation and the bytes are those of a trained model); they
   say nothing about accuracy, and since a random classifier's two logits are
   nearly tied, label agreement between variants is a weak signal here.
   The English tokenizer is the project's 16,000-piece SentencePiece model
   (checkpoints/albert-imdb/spiece.model) while ``vocab_size`` is 30,000, so
   the embedding matrix has albert-base-v2's size; ids >= 16,000 are never
   produced. The Chinese one uses ../shared/data/zh-vocab/vocab.txt (21,128).
2. runs the real ``edgeclf export albert`` (``export_albert``: fp32 + fp16 +
   int8, parity-checked against PyTorch) and ``edgeclf prune``
   (``prune_into_bundle``, no recovery steps: random weights) into that
   bundle, and records parity and file sizes against the checkpoint's
   ``model.safetensors``;
3. times PyTorch eager, Optimum's ``ORTModelForSequenceClassification`` on
   the same ONNX files and edgeclf fp32 / int8 / pruned-int8, side by side
   (the candidates of benchmarks/bench_albert.py, interleaved rounds), over
   batch 1 / 8, 128 / 256 tokens, 1 / 2 threads.

    python benchmarks/bench_albert_base.py [--shapes albert-base-v2,albert_chinese_base]
        [--quick] [--work-dir /tmp/albert-base] [--keep]

Writes benchmarks/results/albert_base.json; ``python benchmarks/run_all.py
--render`` puts it into docs/benchmarks.md ("ALBERT at the size users bring").
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("USE_TF", "0")

from bench_albert import BASELINE, candidates, reference
from common import GRID, ROOT, machine, save, time_grid

SHARED = ROOT.parent / "shared" / "data"
BASE = {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072, "num_hidden_layers": 12}
#: name -> (config overrides, tokenizer kind)
SHAPES = {
    "albert-base-v2": ({**BASE, "vocab_size": 30000}, "sentencepiece"),
    "albert_chinese_base": ({**BASE, "vocab_size": 21128}, "wordpiece"),
    "albert_chinese_tiny": (
        {
            "hidden_size": 312,
            "num_attention_heads": 12,
            "intermediate_size": 1248,
            "num_hidden_layers": 4,
            "vocab_size": 21128,
        },
        "wordpiece",
    ),
}


def prune_request(name: str) -> dict[str, int]:
    """What `edgeclf prune` is asked for: half the heads, half the FFN, half the passes (6, 1536, 6 at base)."""
    c = SHAPES[name][0]
    return {
        "heads": c["num_attention_heads"] // 2,
        "ffn": c["intermediate_size"] // 2,
        "layers": c["num_hidden_layers"] // 2,
    }


MAX_LENGTH = 256  # the longest sequence timed; the export's parity texts are truncated to it


def make_checkpoint(name: str, out: Path, seed: int = 0) -> Path:
    """A randomly initialised AlbertForSequenceClassification of the named shape, with tokenizer files."""
    import torch
    from transformers import AlbertConfig, AlbertForSequenceClassification

    overrides, kind = SHAPES[name]
    torch.manual_seed(seed)
    config = AlbertConfig(
        embedding_size=128,
        max_position_embeddings=512,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
        pad_token_id=0,
        **overrides,
    )
    model = AlbertForSequenceClassification(config).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    if kind == "sentencepiece":
        src = ROOT / "checkpoints" / "albert-imdb"
        for f in ("spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copyfile(src / f, out / f)
    else:
        shutil.copyfile(SHARED / "zh-vocab" / "vocab.txt", out / "vocab.txt")
        (out / "tokenizer_config.json").write_text(
            json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}),
            encoding="utf-8",
        )
    (out / "model_card.json").write_text(
        json.dumps(
            {
                "training_data": [],
                "notes": f"randomly initialised {name}-shaped model for benchmarks; not trained",
            }
        ),
        encoding="utf-8",
    )
    return out


def texts_for(kind: str) -> tuple[list[str], list[int], list[str]]:
    """(training texts, their labels, test texts) in the shape's language."""
    if kind == "sentencepiece":
        from edgeclf.export.data import load_imdb

        train, labels = load_imdb("train")
        test, _ = load_imdb("test")
        return train, labels, test[::50]
    from edgeclf.export.zh_rumor import load_split

    split = load_split()
    return split["train"][0], split["train"][1], [t for t in split["test"][0] if t.strip()]


def long_texts(texts: list[str], tok, min_tokens: int, n: int, joiner: str) -> list[str]:
    """n texts of at least min_tokens tokens: real texts, consecutive ones joined when too short."""
    out, cur = [], ""
    for t in texts:
        cur = f"{cur}{joiner}{t}" if cur else t
        if len(tok.encode(cur)) >= min_tokens:
            out.append(cur)
            cur = ""
            if len(out) == n:
                break
    return out


def build(name: str, work: Path, log) -> dict:
    """Checkpoint -> bundle (export + prune); returns sizes, parity and timings of those steps."""
    from edgeclf.export.albert import export_albert, float_parity, reference_tokenizer
    from edgeclf.quantize.prune import prune_into_bundle

    kind = SHAPES[name][1]
    ckpt = make_checkpoint(name, work / f"{name}-checkpoint")
    bundle = work / f"{name}-bundle"
    train, train_labels, test = texts_for(kind)
    rng = random.Random(0)
    parity_texts = [*rng.sample(test, 12), "", "A short one." if kind == "sentencepiece" else "短句。"]
    t0 = time.perf_counter()
    manifest = export_albert(
        ckpt, bundle, name=name, max_length=MAX_LENGTH, parity_texts=parity_texts, log=log
    )
    export_s = time.perf_counter() - t0
    tok = reference_tokenizer(ckpt)
    int8 = float_parity(bundle / "model.onnx", bundle / "model.int8.onnx", tok, parity_texts, MAX_LENGTH)
    log(f"int8 vs fp32: {int8}")
    idx = rng.sample(range(len(train)), 400)
    t0 = time.perf_counter()
    manifest = prune_into_bundle(
        ckpt,
        bundle,
        **prune_request(name),
        train_texts=[train[i] for i in idx],
        train_labels=[int(train_labels[i]) for i in idx],
        name="pruned",
        recovery_steps=0,
        calibration=64,
        work_dir=work,
        log=log,
    )
    prune_s = time.perf_counter() - t0
    ckpt_bytes = (ckpt / "model.safetensors").stat().st_size
    sizes = {"checkpoint model.safetensors": ckpt_bytes}
    sizes.update({v: d["file"]["size"] for v, d in manifest["variants"].items()})
    pr = manifest["extra"]["pruning"]["pruned"]
    return {
        "checkpoint": str(ckpt),
        "bundle": str(bundle),
        "config": {**SHAPES[name][0], "embedding_size": 128},
        "tokenizer": kind,
        "sizes_bytes": sizes,
        "parity": {
            "fp32 vs pytorch": manifest["extra"]["parity"],
            "fp16 vs fp32": manifest["variants"]["fp16"]["metrics"]["parity_vs_fp32"],
            "int8 vs fp32": int8,
            "pruned fp32 vs pruned pytorch": pr["parity"],
        },
        "pruning": {"from": pr["from"], "to": pr["to"], "recovery_steps": 0},
        "seconds": {
            "export (fp32+fp16+int8, parity)": round(export_s, 1),
            "prune (+int8)": round(prune_s, 1),
        },
        "test_texts": test,
    }


def speed(built: dict, grid, rounds: int, min_time: float, done=lambda raw: None) -> dict:
    ckpt, bundle = Path(built["checkpoint"]), Path(built["bundle"])
    tmp = Path(tempfile.mkdtemp())
    ref = reference(ckpt, bundle, tmp)
    joiner = " " if built["tokenizer"] == "sentencepiece" else "。"
    texts = long_texts(built["test_texts"], ref.tok, max(s for _, s, _ in grid) + 2, 32, joiner)
    variants = ["fp32", "int8", "pruned-int8"]
    make = functools.partial(candidates, ref=ref, texts=texts, bundle=bundle, variants=variants)
    try:
        label = f"{built['config']['hidden_size']}: "
        return time_grid(
            grid, make, baseline=BASELINE, rounds=rounds, min_time=min_time, label=label, done=done
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="albert-base-v2,albert_chinese_base", help=f"of {', '.join(SHAPES)}")
    p.add_argument("--quick", action="store_true", help="fewer rounds; full grid for the first shape only")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--work-dir", help="where checkpoints and bundles go (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--no-save", action="store_true", help="print only, do not write the results file")
    args = p.parse_args()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="albert-base-"))
    work.mkdir(parents=True, exist_ok=True)
    rounds, min_time = (3, 0.2) if args.quick else (args.rounds, 0.3)
    result = {"machine": machine(), "rounds": rounds, "shapes": {}}
    try:
        for i, name in enumerate(args.shapes.split(",")):
            log(f"== {name}")
            built = build(name, work, log)
            grid = GRID if (i == 0 or not args.quick) else [(1, 128, 2), (8, 128, 2)]
            shown = {k: v for k, v in built.items() if k not in ("test_texts", "checkpoint", "bundle")}
            result["shapes"][name] = shown

            def done(raw: dict, shown=shown) -> None:  # keep what is measured if a later point fails
                shown["timing"] = raw
                if not args.no_save:
                    save("albert_base", result)

            speed(built, grid, rounds, min_time, done)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
