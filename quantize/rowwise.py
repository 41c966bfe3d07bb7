"""Row-wise int8: each token row gets its own activation scale, in plain ONNX ops.

onnxruntime's dynamic quantization (``DynamicQuantizeLinear``) picks one
activation scale for a whole ``[batch, tokens, hidden]`` tensor, so a text's
score moves with the texts (and the padding) that share its batch. Here every
MatMul that holds a weight reads its input quantized row by row instead:

    amax  = max(ReduceMax(x), -ReduceMin(x))         one value per token row
    q     = QuantizeLinear(x * 127/amax, 1, 128)     uint8 around a fixed zero point 128
    y     = MatMulInteger(q, W8, 128, 0)             exact integer products
    out   = Cast(y) * (amax/127 * w_scale)           per-row x per-column scale

A row's integers and scale depend on that row alone, and its integer product
is exact, so a text's output is the same alone, in any batch, in any order
and with any padding (tests/test_int8_invariance.py). ``MatMulInteger``
accepts only a scalar ``a_zero_point``; symmetric activations stored around
128 make that scalar the same for every row. Weights are int8, symmetric,
one scale per output column. onnxruntime fuses ``MatMulInteger -> Cast ->
Mul(scales)`` into its ``MatMulIntegerToFloat`` kernel, which applies the
per-row scale after the integer product. The embedding tables (``Gather``)
are quantized per tensor and dequantized after the lookup, a function of the
token id alone, so batch-invariant as well.

Layers listed in ``keep_float`` (names from :func:`weight_layers`) stay float:
mixed precision, which ``edgeclf quantize`` offers when the accuracy gate fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from edgeclf.export import require


def layer_name(node_name: str) -> str:
    """A MatMul node's layer, the same for every pass through ALBERT's shared layer.

    ``/inner/albert/encoder/albert_layer_groups.0/albert_layers.0/attention/query_2/MatMul``
    -> ``attention/query``.
    """
    parts = [re.sub(r"_\d+$", "", p) for p in node_name.strip("/").split("/") if p]
    parts = [p for p in parts if not re.fullmatch(r"(MatMul|Gemm)(_MatMul)?", p)]
    return "/".join(parts[-2:]) if parts else node_name


def weight_layers(model: Any) -> dict[str, list[Any]]:
    """Layer name -> the MatMul nodes whose second input is a 2-D float weight."""
    from onnx import TensorProto

    weights = {i.name: i for i in model.graph.initializer}
    out: dict[str, list[Any]] = {}
    for node in model.graph.node:
        w = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is not None and w.data_type == TensorProto.FLOAT and len(w.dims) == 2:
            out.setdefault(layer_name(node.name), []).append(node)
    return out


#: weights use 7 of int8's bits: with |w| <= 63 and activations in [0, 255], x86's AVX2 kernel
#: (which adds two u8 x s8 products in saturating int16) never saturates (2 x 255 x 63 < 32767),
#: so the integer products are exact on every CPU, as they are with VNNI and on ARM
WEIGHT_MAX = 63


def quantize_weight(w: np.ndarray, qmax: int = WEIGHT_MAX) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 in [-qmax, qmax], one scale per output column (the last axis)."""
    amax = np.abs(w).max(axis=0)
    scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -qmax, qmax).astype(np.int8)
    return q, scale


class _Graph:
    """Collects new nodes and initializers under unique names."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.names = {i.name for i in model.graph.initializer} | {
            o for n in model.graph.node for o in n.output
        }
        self.nodes: list[Any] = []

    def name(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.:/-]", "_", base)
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def const(self, base: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(base)
        self.model.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], base: str, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(f"{base}/{op}")
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _quantize_rows(g: _Graph, x: str, k: int, consts: dict[str, str]) -> tuple[str, str]:
    """Nodes turning activation ``x`` [..., K] into uint8 rows [R, K] around 128 and their scales.

    Rows are flattened to 2-D so ``QuantizeLinear`` can take one scale per row
    (per-axis, axis 0) and quantize in one pass.
    """
    base = f"{x}/rowq"
    x2 = g.node("Reshape", [x, g.const(f"{base}/shape", np.array([-1, k], np.int64))], base)
    hi = g.node("ReduceMax", [x2], base, axes=[1], keepdims=0)  # two reads; |x| is never written
    lo = g.node("Neg", [g.node("ReduceMin", [x2], base, axes=[1], keepdims=0)], base)
    amax = g.node("Max", [hi, lo, consts["tiny"]], base)
    scale = g.node("Mul", [amax, consts["inv127"]], base)  # [R]
    zp = g.node(
        "Cast",
        [g.node("Add", [g.node("Mul", [amax, consts["zero"]], base), consts["c128"]], base)],
        base,
        to=2,
    )
    q = g.node("QuantizeLinear", [x2, scale, zp], base, axis=0)
    shape = g.node("Shape", [x], base)
    rows = g.node(
        "Concat",
        [g.node("Slice", [shape, consts["zero_i"], consts["minus1"]], base), consts["one_i"]],
        base,
        axis=0,
    )
    # back to x's shape: the products keep x's leading axes, so the ops after them fuse as in fp32
    return g.node("Reshape", [q, shape], base), g.node("Reshape", [scale, rows], base)


def _constants(g: _Graph) -> dict[str, str]:
    return {
        "tiny": g.const("rowq_tiny", np.array(1e-30, np.float32)),
        "inv127": g.const("rowq_inv127", np.array(1.0 / 127.0, np.float32)),
        "zero": g.const("rowq_zero", np.array(0.0, np.float32)),
        "c128": g.const("rowq_128", np.array(128.0, np.float32)),
        "zp": g.const("rowq_zp", np.array(128, np.uint8)),
        "one_i": g.const("rowq_one_i", np.array([1], np.int64)),
        "zero_i": g.const("rowq_zero_i", np.array([0], np.int64)),
        "minus1": g.const("rowq_minus1", np.array([-1], np.int64)),
        "wzp": g.const("rowq_wzp", np.array(0, np.int8)),
    }


def quantize_rowwise(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    keep_float: Iterable[str] = (),
    embeddings: bool = True,
) -> dict[str, Any]:
    """Write the row-wise int8 model of fp32 ONNX ``src`` to ``dst``; returns what was quantized.

    Run it after ``edgeclf.export.albert.deduplicate`` (weights behind Identity
    nodes are not seen). MatMuls between two activations (attention) stay float:
    they hold no weights, so quantizing them saves no bytes.
    """
    onnx = require("onnx", "int8 quantization")
    from onnx import numpy_helper

    if embeddings:  # first: onnxruntime's quantizer also turns the head's Gemms into MatMuls
        from .int8 import quantize_embedding_only

        quantize_embedding_only(src, dst)
        src = dst
    model = onnx.load(str(src))
    keep = set(keep_float)
    layers = weight_layers(model)
    unknown = keep - set(layers)
    if unknown:
        raise ValueError(f"unknown layer(s) {sorted(unknown)}; the layers are {sorted(layers)}")
    g = _Graph(model)
    consts = _constants(g)
    inits = {i.name: i for i in model.graph.initializer}
    qweights: dict[str, tuple[str, str]] = {}
    rows: dict[str, tuple[str, str]] = {}  # activation -> (quantized, scale): Q, K and V share theirs
    replaced: dict[int, list[Any]] = {}
    outputs: set[str] = set()
    quantized = sorted(set(layers) - keep)
    targets = {id(n) for layer in quantized for n in layers[layer]}
    for node in [n for n in model.graph.node if id(n) in targets]:  # graph order: shared rows come first
        x, w = node.input
        if w not in qweights:
            q, s = quantize_weight(numpy_helper.to_array(inits[w]))
            qweights[w] = (g.const(f"{w}_int8", q), g.const(f"{w}_scale", s))
        g.nodes = []
        if x not in rows:
            rows[x] = _quantize_rows(g, x, int(inits[w].dims[0]), consts)
        qx, sx = rows[x]
        g.nodes.append(
            onnx.helper.make_node(
                "MatMulIntegerToFloat",
                [qx, qweights[w][0], sx, qweights[w][1], consts["zp"], consts["wzp"]],
                [node.output[0]],
                name=f"{node.name}/rows",
                domain="com.microsoft",
            )
        )
        outputs.add(node.output[0])
        replaced[id(node)] = g.nodes
    new_nodes = []
    for node in model.graph.node:
        new_nodes.extend(replaced.get(id(node), [node]))
        if node.op_type == "Add" and node.input[0] in outputs and node.input[1] in inits:
            # Add(bias, y), not Add(y, bias): onnxruntime's MatMulIntegerToFloat fusion takes a
            # constant second Add input as its bias and adds it *before* the per-row scale
            node.input[:] = [node.input[1], node.input[0]]
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    used = {i for n in model.graph.node for i in n.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    return {"quantized": quantized, "float": sorted(keep)}


def dequantize_dynamic(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Turn a dynamic-int8 model's weight products back into float MatMuls; returns how many.

    For a bundle that ships only a dynamic int8 variant (no float file to start
    from): each ``DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul`` becomes
    ``MatMul(x, (Wq - zero_point) * scale)``, whose float weights are exactly the
    int8 ones, so :func:`quantize_rowwise` can then quantize the activations row
    by row. Embedding lookups stay as they are.
    """
    onnx = require("onnx", "int8 quantization")
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    drop: set[int] = set()
    new: dict[int, Any] = {}
    for mm in [n for n in model.graph.node if n.op_type == "MatMulInteger" and n.input[1] in inits]:
        dq = producer.get(mm.input[0])
        (cast,) = consumers[mm.output[0]]
        (mul,) = consumers[cast.output[0]]
        scales = producer[next(i for i in mul.input if i != cast.output[0])]
        if dq is None or dq.op_type != "DynamicQuantizeLinear" or scales.op_type != "Mul":
            raise ValueError(f"{mm.name}: not the dynamic quantizer's MatMulInteger pattern")
        w_scale = numpy_helper.to_array(inits[next(i for i in scales.input if i in inits)])
        zp = numpy_helper.to_array(inits[mm.input[3]]) if len(mm.input) > 3 and mm.input[3] else 0
        q = numpy_helper.to_array(inits[mm.input[1]]).astype(np.float32)
        name = f"{mm.input[1]}_dequantized"
        if name not in inits:
            inits[name] = numpy_helper.from_array(((q - zp) * w_scale).astype(np.float32), name)
            model.graph.initializer.append(inits[name])
        node_name = mm.name.removesuffix("_quant")  # the float MatMul's name, hence its layer's
        new[id(mul)] = onnx.helper.make_node("MatMul", [dq.input[0], name], list(mul.output), name=node_name)
        drop |= {id(mm), id(cast), id(scales)}
    keep = []
    for n in model.graph.node:
        if id(n) in new:
            keep.append(new[id(n)])
        elif id(n) not in drop:
            keep.append(n)
    used = {i for n in keep for i in n.input}
    keep = [n for n in keep if n.op_type != "DynamicQuantizeLinear" or n.output[0] in used]
    del model.graph.node[:]
    model.graph.node.extend(keep)
    used = {i for n in keep for i in n.input}
    live = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(live)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return len(new)
