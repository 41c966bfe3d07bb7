"""The pruning curve: size, latency and accuracy of ALBERT at several pruning levels.

For each level (heads kept, FFN neurons kept, layer passes) it prunes the
checkpoint by gradient importance, runs a short distilled recovery fine-tune
(``edgeclf.quantize.prune``), exports fp32 + int8, and measures:
file size, p50 latency at batch 1 / seq 128 and batch 8 / seq 256 (ratios vs
fp32 timed in the same interleaved rounds), IMDB test accuracy and label
agreement with fp32. Writes benchmarks/results/pruning.json, a markdown table
and a plot (docs/img/pruning.svg).

    python benchmarks/pruning.py --checkpoint checkpoints/albert-imdb \\
        --bundle runtime/models/albert-imdb-full --levels 2/512/4 1/384/4 1/256/3 1/128/2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from common import (
    ROOT,
    imdb_test_texts,
    interleaved,
    long_batches,
    machine,
    markdown_table,
    round_robin,
    save,
)

import edgeclf


def latency(bundle: Path, variants: list[str], texts: list[str], rounds: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {v: {} for v in variants}
    for bs, seq in ((1, 128), (8, 256)):
        clfs = {
            v: edgeclf.load(bundle, variant=v, threads=2, max_length=seq, providers="cpu") for v in variants
        }
        tok = clfs[variants[0]].tokenizer
        batches = long_batches(texts, lambda t, tok=tok: len(tok.encode(t)), seq, bs)
        nxt = round_robin([[tok.encode(t) for t in b] for b in batches])  # time the model, not the tokenizer
        res = interleaved(
            {v: (lambda c=c, nxt=nxt: c.proba_from_ids(nxt())) for v, c in clfs.items()}, rounds=rounds
        )
        for v in variants:
            out[v][f"p50_ms_b{bs}_s{seq}"] = res[v]["median_s"] * 1e3
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "albert-imdb"))
    p.add_argument(
        "--bundle", required=True, help="a bundle exported from the checkpoint WITH its fp32 variant"
    )
    p.add_argument("--levels", nargs="+", default=["1/384/4", "1/256/3", "1/128/2"], help="heads/ffn/layers")
    p.add_argument("--recovery-steps", type=int, default=300)
    p.add_argument(
        "--eval-limit", type=int, default=None, help="test reviews to evaluate (default: all 25,000)"
    )
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    from edgeclf.quantize.evaluate import evaluate_variants

    test_texts, test_labels = imdb_test_texts(args.eval_limit)
    work = Path(tempfile.mkdtemp())
    bundle = work / "bundle"
    shutil.copytree(args.bundle, bundle)
    levels = prune_levels(args.checkpoint, bundle, args.levels, args.recovery_steps)
    manifest = edgeclf.load(bundle).manifest
    variants = ["fp32", "int8"] + [v for name, *_ in levels for v in (name, f"{name}-int8")]
    acc = evaluate_variants(bundle, test_texts, test_labels, variants=variants, threads=2)
    lat = latency(bundle, variants, test_texts[:3000], args.rounds)
    result_rows = variant_rows(manifest, levels, variants, acc, lat)
    result = {
        "machine": machine(),
        "checkpoint": args.checkpoint,
        "recovery_steps": args.recovery_steps,
        "rows": result_rows,
        "pruning": manifest.extra.get("pruning", {}),
    }
    save("pruning", result)
    table = markdown_table(
        [
            "variant",
            "heads/FFN/layers",
            "MB",
            "p50 ms b1 s128",
            "x fp32",
            "p50 ms b8 s256",
            "x fp32",
            f"accuracy ({result_rows[0]['n']:,})",
            "agreement",
        ],
        [table_row(r) for r in result_rows],
    )
    print(table)
    plot(result_rows, ROOT / "docs" / "img" / "pruning.svg")
    out = ROOT / "benchmarks" / "results" / "pruning.md"
    out.write_text(table + "\n", encoding="utf-8")
    keep = Path(args.bundle).parent / "albert-imdb-pruned-levels"
    if keep.exists():
        shutil.rmtree(keep)
    shutil.move(str(bundle), keep)
    print(f"bundle with every level: {keep}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)


def table_row(r: dict) -> list:
    shape = f"{r['heads']}/{r['ffn']}/{r['layers']}"
    latency = [r["p50_ms_b1_s128"], r["speedup_b1_s128"], r["p50_ms_b8_s256"], r["speedup_b8_s256"]]
    return [r["variant"], shape, r["size_bytes"] / 1e6, *latency, r["accuracy"], r["agreement_with_fp32"]]


def prune_levels(
    checkpoint: str, bundle: Path, levels: list[str], recovery_steps: int
) -> list[tuple[str, int, int, int]]:
    """Each ``heads/ffn/layers`` level pruned into ``bundle`` as ``p{heads}-{ffn}-{layers}`` (+ ``-int8``)."""
    from edgeclf.export.data import load_imdb
    from edgeclf.quantize.prune import prune_into_bundle

    train_texts, train_labels = load_imdb("train")
    out = []
    for level in levels:
        heads, ffn, layers = (int(x) for x in level.split("/"))
        name = f"p{heads}-{ffn}-{layers}"
        prune_into_bundle(
            checkpoint,
            bundle,
            heads=heads,
            ffn=ffn,
            layers=layers,
            train_texts=train_texts,
            train_labels=train_labels,
            name=name,
            recovery_steps=recovery_steps,
            log=lambda s: print(s, file=sys.stderr, flush=True),
        )
        out.append((name, heads, ffn, layers))
    return out


def variant_rows(manifest, levels, variants, acc, lat) -> list[dict]:
    """One row per variant: its shape, file size, latencies and speed-ups against fp32, accuracy."""
    base = lat["fp32"]
    cfg = manifest.extra.get("config", {})
    shapes = {
        "fp32": (cfg.get("num_attention_heads"), cfg.get("intermediate_size"), cfg.get("num_hidden_layers"))
    }
    shapes["int8"] = shapes["fp32"]
    for name, h, f, layer_count in levels:
        shapes[name] = shapes[f"{name}-int8"] = (h, f, layer_count)
    rows = []
    for v in variants:
        rows.append(
            {
                "variant": v,
                "heads": shapes[v][0],
                "ffn": shapes[v][1],
                "layers": shapes[v][2],
                "size_bytes": manifest.variants[v].file.size,
                **lat[v],
                "speedup_b1_s128": base["p50_ms_b1_s128"] / lat[v]["p50_ms_b1_s128"],
                "speedup_b8_s256": base["p50_ms_b8_s256"] / lat[v]["p50_ms_b8_s256"],
                "accuracy": acc[v]["accuracy"],
                "agreement_with_fp32": acc[v]["agreement_with_fp32"],
                "n": acc[v]["n"],
            }
        )
    return rows


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in rows:
        q = r["variant"].endswith("int8")
        ax.scatter(
            r["speedup_b1_s128"],
            r["accuracy"],
            s=20 + r["size_bytes"] / 1e5,
            marker="o" if q else "s",
            color="#1f77b4" if q else "#ff7f0e",
            alpha=0.8,
        )
        ax.annotate(
            r["variant"],
            (r["speedup_b1_s128"], r["accuracy"]),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    ax.axhline(0.8766, color="gray", ls="--", lw=1)
    ax.text(ax.get_xlim()[0], 0.8766, " Keras model (0.8766)", fontsize=7, va="bottom", color="gray")
    ax.set_xlabel("speed-up vs fp32 (p50, batch 1, seq 128)")
    ax.set_ylabel("IMDB test accuracy")
    ax.set_title("ALBERT pruning curve (marker area ~ file size; circles: int8)")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
