"""Where row-wise int8's extra time goes: three ways to spell the per-row quantization, against dynamic int8.

Row-wise int8 (edgeclf.quantize.rowwise) costs more than onnxruntime's
dynamic int8. This measures whether the cost is the number of small ONNX
operators that compute each row's range and quantize it, by timing three
spellings of the same arithmetic on albert-imdb (its ``int8-dynamic`` file
dequantized to float, then quantized row-wise; every graph is checked to be
batch-invariant):

- ``shipped``: :func:`quantize_rowwise` as the bundles use it (15 operators
  per quantized activation: rows flattened to 2-D for a per-axis
  ``QuantizeLinear``, zero points built from the scales, reshaped back);
- ``fewer-ops``: the same per-axis quantization in 11 operators (scales
  reduced on the 3-D tensor, zero points by one ``QuantizeLinear``);
- ``prescaled``: 8 operators, no reshapes: ``x * (127 / amax)`` written out,
  then one per-tensor ``QuantizeLinear`` (scale 1, zero point 128);
- ``per-tensor`` (a reference, not batch-invariant): one symmetric scale for
  the whole tensor in 6 operators, so ``MatMulIntegerToFloat`` gets a scalar
  activation scale. onnxruntime applies a scalar scale inside the GEMM's
  output stage; a per-row one in a second pass over the output after it, with
  the bias already added, which is why the row-wise graphs keep each bias
  ``Add`` outside the kernel.

Latency of ``session.run`` at 128 tokens, batch 1 and 32, one thread, the
variants interleaved in each round, the best round kept; pause other jobs
while it runs.

    python benchmarks/rowwise_chains.py [--rounds 7]

Writes benchmarks/results/rowwise_chains.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import machine, markdown_table, save
from edgeclf.quantize import rowwise

BUNDLE = Path(__file__).resolve().parents[1] / "runtime" / "models" / "albert-imdb"


def _fewer_ops(g, x, k, consts):
    base = f"{x}/rowq"
    x2 = g.node("Reshape", [x, g.const(f"{base}/shape", np.array([-1, k], np.int64))], base)
    hi = g.node("ReduceMax", [x], base, axes=[-1], keepdims=1)
    lo = g.node("Neg", [g.node("ReduceMin", [x], base, axes=[-1], keepdims=1)], base)
    scale = g.node("Mul", [g.node("Max", [hi, lo, consts["tiny"]], base), consts["inv127"]], base)
    flat = g.node("Reshape", [scale, consts["minus1"]], base)
    huge = g.const(f"{base}/huge", np.array(1e30, np.float32))
    zp = g.node("QuantizeLinear", [flat, huge, consts["zp"]], base)  # round(s / 1e30) + 128 = 128
    q = g.node("QuantizeLinear", [x2, flat, zp], base, axis=0)
    return g.node("Reshape", [q, g.node("Shape", [x], base)], base), scale


def _prescaled(g, x, k, consts):
    base = f"{x}/rowq"
    hi = g.node("ReduceMax", [x], base, axes=[-1], keepdims=1)
    lo = g.node("Neg", [g.node("ReduceMin", [x], base, axes=[-1], keepdims=1)], base)
    amax = g.node("Max", [hi, lo, consts["tiny"]], base)
    inv = g.node("Div", [g.const(f"{base}/c127", np.array(127.0, np.float32)), amax], base)
    one = g.const(f"{base}/one", np.array(1.0, np.float32))
    q = g.node("QuantizeLinear", [g.node("Mul", [x, inv], base), one, consts["zp"]], base)
    return q, g.node("Mul", [amax, consts["inv127"]], base)


def _per_tensor(g, x, k, consts):
    base = f"{x}/rowq"
    hi = g.node("ReduceMax", [x], base, keepdims=0)
    lo = g.node("Neg", [g.node("ReduceMin", [x], base, keepdims=0)], base)
    scale = g.node("Mul", [g.node("Max", [hi, lo, consts["tiny"]], base), consts["inv127"]], base)
    return g.node("QuantizeLinear", [x, scale, consts["zp"]], base), scale


def build(work: Path) -> dict[str, Path]:
    float_model = work / "float.onnx"
    rowwise.dequantize_dynamic(BUNDLE / "model.int8-dynamic.onnx", float_model)
    out = {"int8-dynamic": BUNDLE / "model.int8-dynamic.onnx"}
    shipped = rowwise._quantize_rows
    try:  # the experiment swaps the one function that spells the per-row quantization
        for name, chain in (
            ("shipped", shipped),
            ("fewer-ops", _fewer_ops),
            ("prescaled", _prescaled),
            ("per-tensor", _per_tensor),
        ):
            rowwise._quantize_rows = chain
            rowwise.quantize_rowwise(float_model, work / f"{name}.onnx")
            out[name] = work / f"{name}.onnx"
    finally:
        rowwise._quantize_rows = shipped
    return out


def invariance(session, rng) -> float:
    ids = rng.integers(5, 15000, size=(8, 128)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1:, 60:] = 0
    batch = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    alone = [
        session.run(
            None,
            {"input_ids": ids[i : i + 1, : int(m.sum())], "attention_mask": mask[i : i + 1, : int(m.sum())]},
        )[0]
        for i, m in enumerate(mask)
    ]
    return float(np.abs(batch - np.concatenate(alone)).max())


def main() -> None:
    import onnx
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sessions = {
            n: ort.InferenceSession(str(f), so, providers=["CPUExecutionProvider"]) for n, f in files.items()
        }
        nodes = {n: len(onnx.load(str(f)).graph.node) for n, f in files.items()}
    result = {
        "machine": machine(),
        "model": "albert-imdb",
        "tokens": 128,
        "threads": 1,
        "rounds": args.rounds,
    }
    rows = []
    timing: dict[str, dict[str, float]] = {n: {} for n in sessions}
    for batch, reps in ((1, 40), (32, 3)):
        ids = rng.integers(5, 15000, size=(batch, 128)).astype(np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        best = dict.fromkeys(sessions, float("inf"))
        for _ in range(args.rounds):
            for name, s in sessions.items():
                s.run(None, feed)
                t = time.perf_counter()
                for _ in range(reps):
                    s.run(None, feed)
                best[name] = min(best[name], (time.perf_counter() - t) / reps * 1000)
        for name in sessions:
            timing[name][f"b{batch}_ms"] = round(best[name], 3)
            timing[name][f"b{batch}_x_dynamic"] = round(best[name] / best["int8-dynamic"], 3)
    for name, s in sessions.items():
        timing[name].update(graph_nodes=nodes[name], max_change_alone_vs_batched=invariance(s, rng))
        t = timing[name]
        rows.append([name, nodes[name], f"{t['b1_ms']:.2f} ({t['b1_x_dynamic']:.2f}x)",
                     f"{t['b32_ms']:.1f} ({t['b32_x_dynamic']:.2f}x)", f"{t['max_change_alone_vs_batched']:.1e}"])  # fmt: skip
    result["variants"] = timing
    save("rowwise_chains", result)
    print(
        markdown_table(["graph", "nodes", "batch 1 ms", "batch 32 ms", "max change alone vs batched"], rows)
    )


if __name__ == "__main__":
    main()
