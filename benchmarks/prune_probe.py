"""Where to prune, before paying for recovery: accuracy right after pruning, and int8 latency.

    python benchmarks/prune_probe.py --checkpoint checkpoints/albert-imdb-ffn1024 \\
        --shapes 4/1024/3 4/512/3 2/512/3 4/512/2 2/512/2

For each heads/FFN/passes shape: ``edgeclf.quantize.prune.prune`` with no
recovery steps (importance from 256 training reviews), accuracy on 1,000 of
the recipe's validation reviews (``teacher.split_indices(25000, 2500, 42)``:
texts the checkpoint was never trained on), then ``edgeclf export albert``
(int8) and batch-1 latency at 128 tokens with 1 intra-op thread, every shape
in the same interleaved rounds (ratios against the first shape). A shape that
loses little here needs little recovery; recovery then decides the shipped
accuracy (measured on the test set by model_table.py).

Writes benchmarks/results/prune_probe.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, batch_one_call, interleaved, machine

import edgeclf
from edgeclf.export import hub_offline, teacher
from edgeclf.export.data import load_imdb, shared_data_dir

RESULTS = ROOT / "benchmarks" / "results" / "prune_probe.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "albert-imdb-ffn1024")
    p.add_argument("--shapes", nargs="+", default=["4/1024/3", "4/512/3", "2/512/3", "4/512/2", "2/512/2"])
    p.add_argument("--val", type=int, default=1000, help="validation reviews scored per shape")
    a = p.parse_args(argv)
    data = shared_data_dir()
    if data is None:
        print("needs ../shared/data", file=sys.stderr)
        return 2
    hub_offline()
    from edgeclf.export.albert import export_albert, reference_tokenizer
    from edgeclf.quantize.prune import prune

    x, y = load_imdb("train", data / "imdb")
    train_idx, val_idx = teacher.split_indices(len(x), 2500, 42)
    tok = reference_tokenizer(a.checkpoint)

    def enc(idx: list[int]) -> tuple[list[list[int]], list[int]]:
        return [tok.encode(x[i], truncation=True, max_length=256) for i in idx], [int(y[i]) for i in idx]

    val, cal = enc(list(val_idx[: a.val])), enc(list(train_idx[:256]))
    rows, timed = [], {}
    sample = load_imdb("test", data / "imdb")[0][0]
    with tempfile.TemporaryDirectory() as tmp:
        for shape in a.shapes:
            heads, ffn, layers = (int(v) for v in shape.split("/"))
            t0 = time.perf_counter()
            ck, bundle = Path(tmp) / f"ck-{heads}-{ffn}-{layers}", Path(tmp) / f"b-{heads}-{ffn}-{layers}"
            r = prune(a.checkpoint, ck, heads=heads, ffn=ffn, layers=layers, calibration=cal, train=None,
                      val=val, recovery_steps=0, log=lambda _m: None)  # fmt: skip
            export_albert(ck, bundle, name=shape, max_length=256, fp16=False, log=lambda _m: None)
            timed[shape] = batch_one_call(
                edgeclf.load(bundle, variant="int8", providers="cpu", threads=1), sample
            )
            rows.append(
                {
                    "shape": shape,
                    "val_accuracy_no_recovery": round(float(r["val_accuracy"]), 4),
                    "int8_bytes": (bundle / "model.int8.onnx").stat().st_size,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(rows[-1], flush=True)
        t = interleaved(timed, rounds=9, min_time=0.3)
    base = t[a.shapes[0]]["median_s"]
    for row in rows:
        s = t[row["shape"]]["median_s"]
        row.update(latency_b1_128_ms=round(s * 1000, 3), latency_vs_first=round(s / base, 3))
    out = {"machine": machine(), "checkpoint": str(a.checkpoint), "val_reviews": a.val, "rows": rows}
    RESULTS.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print("| heads/FFN/passes | val accuracy, no recovery | int8 MB | b1 @128, 1 thread | x first |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['val_accuracy_no_recovery']:.3f} | {r['int8_bytes'] / 1e6:.2f} | "
              f"{r['latency_b1_128_ms']:.2f} ms | {r['latency_vs_first']:.2f}x |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
