"""The families users bring, at their real size: edgeclf against PyTorch eager and Optimum, end to end.

For bert-base, distilbert-base, roberta-base and xlm-roberta-base shapes this
script makes a **randomly initialised** ``*ForSequenceClassification`` (the
shape's hidden size, heads, FFN, layers and full embedding: random weights
have a trained model's bytes and computation, and say nothing about
accuracy) with a tokenizer trained on IMDB reviews (WordPiece, byte-level
BPE, SentencePiece Unigram; the config's ``vocab_size`` is the real model's,
so ids beyond the trained vocabulary never occur), then:

1. ``edgeclf export transformers`` (fp32, parity-checked against PyTorch,
   its row-wise ``int8`` and its ``int8-dynamic``; the columns call them
   ``rowwise-int8`` and ``int8``, the names of the first runs),
   ``edgeclf prune``'s path (half the heads, half the FFN, half the layers,
   no recovery: random weights) and vocabulary pruning of int8 to the
   pieces 2,000 training reviews use (file bytes before and after; the
   results/ of the first runs hold dynamic pruned and vocabulary int8, a
   rerun row-wise ones);
2. Optimum end to end: its own ONNX export (``main_export``) and its
   ``ORTQuantizer`` dynamic preset for this CPU, run by
   ``ORTModelForSequenceClassification`` with the fast tokenizer;
3. times, in interleaved rounds, every candidate from texts to labels
   (tokenization included) at batch 1 / 8, 128 / 256 tokens, 1 / 2 threads;
   ratios are against PyTorch eager (fast tokenizer, batched, no_grad) in
   the same run;
4. peak RSS of a loaded model: one subprocess per candidate loads it and
   classifies one batch, then reports ``ru_maxrss`` (libraries included:
   what a user's process pays);
5. ``--extras SHAPES``, after all tables: the pure-Python tokenizer against the ``tokenizers``
   library (batch 1 and batch 64), onnxruntime's offline transformer
   optimizer before int8 against the plain export, and where int8 time
   goes (onnxruntime's profiler, per operator type).

    python benchmarks/byo_speed.py [--shapes bert-base,...] [--quick] [--extras SHAPES] [--work-dir DIR]

Writes benchmarks/results/byo_speed.json (``--out`` names another file);
docs/byo-speed.md's tables are rendered from it (``--render``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from common import GRID, ROOT, machine, round_robin, save, time_grid

sys.path.insert(0, str(ROOT))

BASE = dict(hidden_size=768, num_attention_heads=12, intermediate_size=3072, num_hidden_layers=12)
#: shape -> (model_type, tokenizer kind, config)
SHAPES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "bert-base": ("bert", "wordpiece", {**BASE, "vocab_size": 30522, "max_position_embeddings": 512}),
    "distilbert-base": (
        "distilbert", "wordpiece",
        dict(dim=768, n_heads=12, hidden_dim=3072, n_layers=6, vocab_size=30522, max_position_embeddings=512),
    ),
    "roberta-base": ("roberta", "bpe", {**BASE, "vocab_size": 50265, "max_position_embeddings": 514}),
    "xlm-roberta-base": ("xlm-roberta", "unigram", {**BASE, "vocab_size": 250002, "max_position_embeddings": 514}),
}  # fmt: skip
BASELINE = "pytorch eager"
MAX_LENGTH = 256


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def imdb(split: str, n: int) -> list[str]:
    from edgeclf.export.data import load_imdb

    return load_imdb(split)[0][:n]


def tokenizer_dir(model_type: str, kind: str, vocab: int, work: Path) -> Path:
    """The family's fast tokenizer, trained on IMDB reviews, saved with ``save_pretrained``."""
    from tests.byo_checkpoints import _tokenizer_dir

    out = work / f"tok-{model_type}"
    if (out / "tokenizer.json").is_file():
        return out
    texts = imdb("train", 25000)
    if kind != "unigram":
        family = "bert-uncased" if model_type == "bert" else model_type
        return _tokenizer_dir(kind, family, texts, work, vocab).rename(out)
    import sentencepiece as spm
    import transformers

    out.mkdir(parents=True)
    corpus = out / "corpus.txt"
    corpus.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
    spm.SentencePieceTrainer.train(  # the largest vocabulary these texts allow, up to the model's
        input=str(corpus), model_prefix=str(out / "spm"), vocab_size=vocab, hard_vocab_limit=False,
        model_type="unigram", bos_id=0, pad_id=1, eos_id=2, unk_id=3, num_threads=2, minloglevel=2,
    )  # fmt: skip
    corpus.unlink()
    transformers.XLMRobertaTokenizerFast(vocab_file=str(out / "spm.model")).save_pretrained(str(out))
    return out


def make_checkpoint(name: str, work: Path) -> Path:
    import torch
    import transformers

    model_type, kind, config = SHAPES[name]
    out = work / f"{name}-checkpoint"
    if (out / "config.json").is_file():
        return out
    tok_dir = tokenizer_dir(model_type, kind, config["vocab_size"], work)
    tok = transformers.AutoTokenizer.from_pretrained(str(tok_dir))
    torch.manual_seed(0)
    labels = {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}
    cfg = transformers.AutoConfig.for_model(model_type, pad_token_id=tok.pad_token_id, **config, **labels)
    transformers.AutoModelForSequenceClassification.from_config(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def build(name: str, work: Path) -> dict[str, Any]:
    """Checkpoint -> bundle (export, prune, vocabulary-pruned int8) and Optimum's fp32 / int8 directories."""
    from edgeclf.export.transformers import export_transformers
    from edgeclf.quantize.prune_families import prune_into_bundle
    from edgeclf.quantize.vocab_prune import prune_bundle

    ckpt = make_checkpoint(name, work)
    bundle = work / f"{name}-bundle"
    train = imdb("train", 2000)
    config = SHAPES[name][2]
    heads = config.get("num_attention_heads", config.get("n_heads"))
    layers = config.get("num_hidden_layers", config.get("n_layers"))
    ffn = config.get("intermediate_size", config.get("hidden_dim"))
    seconds: dict[str, float] = {}
    if not (bundle / "manifest.json").is_file():
        t0 = time.perf_counter()
        export_transformers(
            ckpt, bundle, max_length=MAX_LENGTH, parity_texts=imdb("test", 12), fp16=False, log=log
        )
        seconds["export"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prune_into_bundle(
            ckpt, bundle, heads=heads // 2, ffn=ffn // 2, layers=layers // 2, train_texts=train[:400],
            train_labels=[i % 2 for i in range(400)], recovery_steps=0, calibration=64, work_dir=work, log=log,
        )  # fmt: skip
        seconds["prune"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prune_bundle(bundle, train, variants=["int8"], log=log)
        seconds["vocabulary prune"] = time.perf_counter() - t0
    manifest = json.loads((bundle / "manifest.json").read_text())
    if "rowwise-int8" not in manifest["variants"] and "int8-dynamic" not in manifest["variants"]:
        # a bundle from before the exporter wrote row-wise int8 itself
        from edgeclf.export import bundle_writer
        from edgeclf.quantize.rowwise import quantize_rowwise

        quantize_rowwise(bundle / "model.onnx", bundle / "model.rowwise-int8.onnx")
        bundle_writer.add_variant(
            manifest, bundle, "rowwise-int8", "model.rowwise-int8.onnx", precision="int8"
        )
        bundle_writer.save(bundle, manifest)
    if "vocab" not in manifest["variants"]:  # the fp32 file's bytes too (the same rows as vocab-int8's)
        prune_bundle(bundle, train, variants=["fp32"], log=log)
        manifest = json.loads((bundle / "manifest.json").read_text())
    sizes = {v: d["file"]["size"] for v, d in manifest["variants"].items()}
    sizes["pytorch model.safetensors"] = (ckpt / "model.safetensors").stat().st_size
    optimum = optimum_dirs(ckpt, work / f"{name}-optimum")
    sizes.update({f"optimum {k}": (d / "model.onnx").stat().st_size for k, d in optimum.items()})
    return {
        "checkpoint": str(ckpt), "bundle": str(bundle), "optimum": {k: str(v) for k, v in optimum.items()},
        "sizes_bytes": sizes, "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "pruning": manifest["extra"]["pruning"]["pruned"]["to"],
        "vocab_pruning": manifest["extra"]["vocab_pruning"], "parity": manifest["extra"]["parity"],
    }  # fmt: skip


def quantizer_preset() -> tuple[str, Any]:
    """Optimum's dynamic int8 preset for this CPU (the most specific its flags allow)."""
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    for name in ("avx512_vnni", "avx512", "avx2"):
        if name in flags.replace("avx512f", "avx512"):
            return name, getattr(AutoQuantizationConfig, name)(is_static=False, per_channel=False)
    return "arm64", AutoQuantizationConfig.arm64(is_static=False, per_channel=False)


def optimum_dirs(ckpt: Path, out: Path) -> dict[str, Path]:
    """Optimum's own export (fp32) and its quantizer's int8, each as ``model.onnx`` + config + tokenizer."""
    if (out / "int8" / "model.onnx").is_file():
        return {"fp32": out / "fp32", "int8": out / "int8"}
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTQuantizer

    main_export(str(ckpt), output=str(out / "fp32"), task="text-classification", do_validation=False)
    preset, qconfig = quantizer_preset()
    ORTQuantizer.from_pretrained(str(out / "fp32")).quantize(
        save_dir=str(out / "q"), quantization_config=qconfig
    )
    shutil.copytree(out / "fp32", out / "int8", ignore=shutil.ignore_patterns("*.onnx"))
    shutil.move(out / "q" / "model_quantized.onnx", out / "int8" / "model.onnx")
    (out / "int8" / "preset.txt").write_text(preset)
    return {"fp32": out / "fp32", "int8": out / "int8"}


def batches(tok: Any, seq: int, bs: int) -> list[list[str]]:
    """Up to 4 batches of reviews with at least ``seq`` tokens (cut to it by every candidate)."""
    long = [t for t in imdb("test", 3000) if len(tok(t)["input_ids"]) >= seq][: bs * 4]
    return [long[i : i + bs] for i in range(0, len(long), bs)]


def recorded(built: dict[str, Any]) -> dict[str, Any]:
    """What a result file keeps of a build: its figures, not the scratch paths it was built in."""
    return {k: v for k, v in built.items() if k not in ("checkpoint", "bundle", "optimum")}


def bundle_variant(built: dict[str, Any], name: str) -> str:
    """The bundle variant a column names: ``int8`` is the dynamic int8 and ``rowwise-int8`` the row-wise one.

    The exporter writes row-wise int8 as ``int8`` and the dynamic one as ``int8-dynamic``; the
    columns keep the names of the first runs so results/ stay comparable.
    """
    manifest = json.loads((Path(built["bundle"]) / "manifest.json").read_text())
    if "int8-dynamic" in manifest["variants"]:
        return {"int8": "int8-dynamic", "rowwise-int8": "int8"}.get(name, name)
    return name


def loader(kind: str, built: dict[str, Any], threads: int, seq: int) -> Any:
    """``kind`` ("pytorch", "optimum fp32", "edgeclf int8", ...) loaded: a function texts -> labels."""
    if kind.startswith("edgeclf "):
        import edgeclf

        clf = edgeclf.load(
            built["bundle"], variant=bundle_variant(built, kind[8:]), threads=threads, max_length=seq,
            providers="cpu",
        )  # fmt: skip
        return lambda texts: clf.predict_proba(texts).argmax(-1)
    import transformers

    fast = transformers.AutoTokenizer.from_pretrained(built["checkpoint"])
    if kind == "pytorch":
        import torch

        torch.set_num_threads(threads)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(built["checkpoint"]).eval()

        def run(texts: list[str]) -> Any:
            with torch.no_grad():
                enc = fast(texts, truncation=True, max_length=seq, padding=True, return_tensors="pt")
                return model(**enc).logits.argmax(-1)

        return run
    import onnxruntime as ort
    from optimum.onnxruntime import ORTModelForSequenceClassification

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    m = ORTModelForSequenceClassification.from_pretrained(built["optimum"][kind[8:]], session_options=so)

    def run_ort(texts: list[str]) -> Any:
        enc = fast(texts, truncation=True, max_length=seq, padding=True, return_tensors="np")
        return m(**enc).logits.argmax(-1)

    return run_ort


KINDS = [
    "pytorch", "optimum fp32", "optimum int8", "edgeclf fp32", "edgeclf int8", "edgeclf rowwise-int8",
    "edgeclf pruned-int8",
]  # fmt: skip


def speed(built: dict[str, Any], grid: list[tuple[int, int, int]], rounds: int, done: Any) -> dict[str, Any]:
    import transformers

    fast = transformers.AutoTokenizer.from_pretrained(built["checkpoint"])

    def make(bs: int, seq: int, threads: int) -> dict[str, Any]:
        nxt = round_robin(batches(fast, seq, bs))
        cands = {}
        for kind in KINDS:
            run = loader(kind, built, threads, seq)
            cands[BASELINE if kind == "pytorch" else kind] = lambda r=run: r(nxt())
        return cands

    return time_grid(grid, make, baseline=BASELINE, rounds=rounds, min_time=0.3, done=done)


def rss(built: dict[str, Any]) -> dict[str, float]:
    """Peak RSS (MiB) of a process that loads each candidate and classifies one batch-1, 128-token text."""
    out = {}
    for kind in KINDS:
        cmd = [sys.executable, __file__, "--rss-of", kind, "--built", json.dumps(built)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT / "benchmarks")
        out[kind] = float(res.stdout.strip().splitlines()[-1])
        log(f"peak RSS {kind}: {out[kind]:.0f} MiB")
    return out


def rss_child(kind: str, built: dict[str, Any]) -> None:
    run = loader(kind, built, 1, 128)
    run(imdb("test", 1))
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so it would include the parent's peak
    status = Path("/proc/self/status").read_text().splitlines()
    print(int(next(line.split()[1] for line in status if line.startswith("VmHWM:"))) / 1024)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--quick", action="store_true", help="batch 1, 128 tokens, 2 threads; 3 rounds")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cells", default=None, help="batch/tokens/threads,... (default: the whole grid)")
    p.add_argument(
        "--extras", default="", metavar="SHAPES", help="then for these shapes: tokenizers, optimizer, profile"
    )
    p.add_argument(
        "--work-dir", default=None, help="checkpoints and bundles (kept; default: a temporary dir)"
    )
    p.add_argument(
        "--out",
        default="byo_speed",
        help="results file name under benchmarks/results/ (--render: names, comma-separated)",
    )
    p.add_argument(
        "--build-only", action="store_true", help="make checkpoints, bundles and Optimum's files only"
    )
    p.add_argument("--render", action="store_true", help="only re-render docs/byo-speed.md from the results")
    p.add_argument("--rss-of", help=argparse.SUPPRESS)
    p.add_argument("--built", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_of:
        return rss_child(args.rss_of, json.loads(args.built))
    if args.render:
        from byo_speed_report import render

        files = [ROOT / "benchmarks" / "results" / f"{name}.json" for name in args.out.split(",")]
        return render(files, ROOT / "docs" / "byo-speed.md")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="byo-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    grid = [(1, 128, 2)] if args.quick else GRID
    if args.cells:
        grid = [tuple(int(v) for v in c.split("/")) for c in args.cells.split(",")]
    rounds = 3 if args.quick else args.rounds
    result: dict[str, Any] = {"machine": machine(), "rounds": rounds, "shapes": {}, "random_weights": True}
    for name in args.shapes.split(","):
        log(f"== {name}")
        built = build(name, work)
        if args.build_only:
            continue
        shown = result["shapes"][name] = recorded(built)

        def done(raw: dict[str, Any], shown: dict[str, Any] = shown) -> None:
            shown["timing"] = raw
            save(args.out, result)

        shown["load_average_before"] = os.getloadavg()[0]
        speed(built, grid, rounds, done)
        shown["peak_rss_mib"] = rss(built)
        shown["load_average_after"] = os.getloadavg()[0]
        save(args.out, result)
    if args.build_only:
        return None
    for name in args.extras.split(",") if args.extras else []:  # after every table: the lesser figures
        from byo_speed_extras import extras

        built = build(name, work)
        shown = result["shapes"].setdefault(name, recorded(built))
        shown["extras"] = extras(built, SHAPES[name][2], log)
        save(args.out, result)
    result["machine"]["load_average_end"] = os.getloadavg()[0]
    save(args.out, result)


if __name__ == "__main__":
    main()
