"""byo_speed.py --extras: tokenizers, onnxruntime's offline transformer optimizer, and where int8 time goes.

- tokenizers: edgeclf's pure-Python tokenizer (the bundle's) against the
  ``tokenizers`` library reading the same ``tokenizer.json`` (truncation on),
  one text per call (batch 1) and ``encode_batch`` of 64 texts;
- optimizer: ``onnxruntime.transformers.optimizer.optimize_model`` (model
  type "bert": Attention, SkipLayerNormalization, BiasGelu fusions) on the
  fp32 export, then the project's int8 step, against the plain int8, timed
  side by side on token ids at batch 1 / 128 tokens, 1 and 2 threads, with
  the largest logit difference from plain fp32;
- profile: onnxruntime's profiler on the plain int8 at batch 1 / 128 tokens /
  1 thread, time per operator type; and a bare ``MatMulInteger`` of the
  model's FFN shape, whose multiply-adds per second against the whole
  model's (every weight MatMul's multiply-adds over its time) bound what a
  faster rest of the graph could gain.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from common import imdb_test_texts, interleaved

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def tokenizers(bundle: Path) -> dict[str, Any]:
    from tokenizers import Tokenizer

    import edgeclf

    texts = imdb_test_texts(600)[0]
    with edgeclf.load(bundle, variant="int8") as clf:
        mine = clf.tokenizer
        rust = Tokenizer.from_file(str(bundle / "tokenizer.json"))
        rust.enable_truncation(max_length=mine.max_length)
        same = sum(mine.encode(t) == rust.encode(t).ids for t in texts)
        one = interleaved(
            {"edgeclf": lambda: [mine.encode(t) for t in texts[:50]], "tokenizers": lambda: [rust.encode(t) for t in texts[:50]]},
            rounds=5, min_time=0.2,
        )  # fmt: skip
        chunks = [texts[i : i + 64] for i in range(0, 512, 64)]
        many = interleaved(
            {"edgeclf": lambda: [mine.encode_batch(c) for c in chunks], "tokenizers": lambda: [rust.encode_batch(c) for c in chunks]},
            rounds=5, min_time=0.2,
        )  # fmt: skip
    return {
        "same_ids": f"{same}/{len(texts)}",
        "batch1_ms_per_text": {k: v["median_s"] / 50 * 1e3 for k, v in one.items()},
        "batch64_ms_per_text": {k: v["median_s"] / 512 * 1e3 for k, v in many.items()},
    }


def _session(path: Path, threads: int, profile: str | None = None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = profile
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _feeds(vocab: int, seq: int = 128) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(5, min(vocab, 20000), (1, seq), dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def optimizer(bundle: Path, config: dict[str, Any], work: Path) -> dict[str, Any]:
    from onnxruntime.transformers.optimizer import optimize_model

    heads = config.get("num_attention_heads", config.get("n_heads"))
    hidden = config.get("hidden_size", config.get("dim"))
    opt = optimize_model(str(bundle / "model.onnx"), model_type="bert", num_heads=heads, hidden_size=hidden)
    fused = {k: v for k, v in Counter(n.op_type for n in opt.model.graph.node).items() if k[0].isupper()}
    opt.save_model_to_file(str(work / "opt.onnx"))
    quantize_fused(work / "opt.onnx", work / "opt-int8.onnx")
    files = {"int8": bundle / "model.int8.onnx", "optimized int8": work / "opt-int8.onnx"}
    feeds = _feeds(config["vocab_size"])
    ref = _session(bundle / "model.onnx", 1).run(None, feeds)[0]
    out: dict[str, Any] = {"fused_ops": {k: fused[k] for k in sorted(fused)}, "timing": {}}
    for threads in (1, 2):
        sess = {k: _session(p, threads) for k, p in files.items()}
        out["timing"][f"t{threads}"] = interleaved(
            {k: (lambda s=s: s.run(None, feeds)) for k, s in sess.items()}
        )
        out["max_abs_logit_diff_vs_fp32"] = {
            k: float(np.abs(s.run(None, feeds)[0] - ref).max()) for k, s in sess.items()
        }
    out["bytes"] = {k: p.stat().st_size for k, p in files.items()}
    return out


def quantize_fused(src: Path, dst: Path) -> None:
    """Dynamic int8 of the optimized graph: weight MatMuls, Attention (-> QAttention) and the embeddings,
    onnxruntime's recipe for its fused graphs (its shape inference cannot type the com.microsoft ops)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    weights = {i.name for i in model.graph.initializer}
    activations = [n.name for n in model.graph.node if n.op_type == "MatMul" and not set(n.input) & weights]
    quantize_dynamic(
        str(src), str(dst), op_types_to_quantize=["MatMul", "Attention", "Gather"], weight_type=QuantType.QInt8,
        per_channel=False, nodes_to_exclude=activations, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )  # fmt: skip


def profile(bundle: Path, config: dict[str, Any], work: Path, runs: int = 30) -> dict[str, Any]:
    import onnx

    feeds = _feeds(config["vocab_size"])
    sess = _session(bundle / "model.int8.onnx", 1, profile=str(work / "prof"))
    for _ in range(5):
        sess.run(None, feeds)
    t0 = time.perf_counter()
    for _ in range(runs):
        sess.run(None, feeds)
    model_s = (time.perf_counter() - t0) / runs
    events = json.loads(Path(sess.end_profiling()).read_text())
    per_op: Counter[str] = Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
    total = sum(per_op.values())
    graph = onnx.load(str(bundle / "model.int8.onnx"), load_external_data=False).graph
    dims = {i.name: list(i.dims) for i in graph.initializer}
    macs = sum(
        int(np.prod(dims[n.input[1]])) * 128
        for n in graph.node
        if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") and n.input[1] in dims
    )
    bare = _bare_matmul(config, work)
    return {
        "model_ms": model_s * 1e3,
        "share_by_op": {k: round(v / total, 4) for k, v in per_op.most_common(12)},
        "model_int8_gmacs_per_s": macs / model_s / 1e9,
        "bare_matmulinteger_gmacs_per_s": bare,
    }


def _bare_matmul(config: dict[str, Any], work: Path) -> float:
    """Multiply-adds per second of one MatMulInteger [128, hidden] x [hidden, ffn] (uint8 x int8), 1 thread."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hidden = config.get("hidden_size", config.get("dim"))
    ffn = config.get("intermediate_size", config.get("hidden_dim"))
    w = numpy_helper.from_array(
        np.random.default_rng(0).integers(-127, 127, (hidden, ffn), dtype=np.int8), "w"
    )
    node = helper.make_node("MatMulInteger", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node], "bare", [helper.make_tensor_value_info("x", TensorProto.UINT8, [128, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [128, ffn])], [w],
    )  # fmt: skip
    path = work / "bare.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    sess = _session(path, 1)
    x = {"x": np.random.default_rng(1).integers(0, 255, (128, hidden), dtype=np.uint8)}
    res = interleaved({"bare": lambda: sess.run(None, x)})
    return 128 * hidden * ffn / res["bare"]["median_s"] / 1e9


def extras(built: dict[str, Any], config: dict[str, Any], log: Any) -> dict[str, Any]:
    bundle = Path(built["bundle"])
    with tempfile.TemporaryDirectory() as tmp:
        out = {"tokenizers": tokenizers(bundle)}
        log(f"tokenizers: {out['tokenizers']}")
        out["optimizer"] = optimizer(bundle, config, Path(tmp))
        log(f"optimizer: {out['optimizer']}")
        out["profile"] = profile(bundle, config, Path(tmp))
        log(f"profile: {out['profile']}")
    return out
