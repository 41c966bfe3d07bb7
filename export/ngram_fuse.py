"""The n-gram head (:mod:`edgeclf.export.ngram_head`) as ONNX nodes: grafted beside a transformer
(one model file, no runtime code) or standing alone.

Inside the graph, each position's n-grams become int64 keys, a
``LabelEncoder`` finds their pooled rows and ``ScatterElements`` counts them
per text; the head's features are then rebuilt op by op (TF, scale, L2 row
norm) over the positions alone and a dot product gives the head's margin.
Apart from zero-filling one count row per text, the work grows with the text
and not with the pool, so the head costs a fraction of the transformer
beside it. A grafted graph outputs the blend (:class:`~edgeclf.export.ngram_head.Blend`)
under the transformer's output name.

Padding never changes a score: an n-gram covering a position where
``attention_mask`` is 0 gets no key, and no pooled n-gram contains a special
token (``[CLS]``, ``[SEP]``, padding). Each row is counted on its own, so a
text scores the same in any batch. The graft reads the variant file's input
and output names and adds nodes only, so it works on any variant (fp32, int8,
pruned); a vocabulary-pruned variant passes its id map, since its graph sees
remapped ids.

Needs the export extra (onnx).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import require
from .ngram_head import Blend, NgramHead

PREFIX = "ngram_head/"
#: ``LabelEncoder`` with int64 keys and values: onnxruntime 1.17 and later run it
ML_OPSET = ("ai.onnx.ml", 2)


def key_base(ngrams: Sequence[tuple[int, ...]]) -> tuple[int, list[int]]:
    """(base, offsets): an n-gram's int64 key is its ids as digits in ``base`` (one more than the
    largest pooled id) plus its order's offset, so that keys of different orders never meet."""
    base = max(max(g) for g in ngrams) + 1
    max_n = max(len(g) for g in ngrams)
    offsets = [sum(base**m for m in range(1, n)) for n in range(1, max_n + 1)]
    if offsets[-1] + base**max_n >= 2**62:
        raise ValueError(f"{max_n}-grams of {base} ids do not fit int64 keys: use shorter n-grams")
    return base, offsets


def ngram_key(g: Sequence[int], base: int, offsets: Sequence[int]) -> int:
    """The int64 key of one n-gram (see :func:`key_base`)."""
    key = 0
    for t in g:
        key = key * base + int(t)
    return key + offsets[len(g) - 1]


class _Builder:
    """Nodes and initializers under :data:`PREFIX`, named by short local names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.init: list = []

    def const(self, name: str, value: Any, dtype: Any = np.int64) -> str:
        """An initializer (made once: later calls with the same name reuse it)."""
        from onnx import numpy_helper

        if not any(t.name == PREFIX + name for t in self.init):
            self.init.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), PREFIX + name))
        return PREFIX + name

    def __call__(self, op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [PREFIX + out], **attrs))
        return PREFIX + out


def _shifted(g: _Builder, digit: str, bad: str, n: int, j: int, axis: str) -> tuple[str, str]:
    """``digit`` and ``bad`` at the positions where an n-gram starts, shifted by ``j``: its j-th id."""
    start = g.const(f"start{n}_{j}", [j])
    end = g.const(f"end{n}_{j}", [j - n + 1 if j < n - 1 else 2**62])  # 2**62: to the last position
    return g("Slice", [digit, start, end, axis], f"digit{n}_{j}"), g(
        "Slice", [bad, start, end, axis], f"bad{n}_{j}"
    )


def _keys(g: _Builder, ids: str, mask: str, base: int, offsets: list[int]) -> str:
    """``[batch, positions]`` keys of every position's n-gram of every order, -1 where the n-gram
    covers padding or an id outside ``[0, base)`` (neither is in the pool)."""
    from onnx import TensorProto

    in_range = g("And", [g("GreaterOrEqual", [ids, g.const("zero", 0)], "ge0"),
                         g("Less", [ids, g.const("base", base)], "lt_base")], "in_range")  # fmt: skip
    valid = g("And", [g("Cast", [mask], "mask_bool", to=TensorProto.BOOL), in_range], "valid")
    digit = g("Where", [valid, ids, PREFIX + "zero"], "digit")
    bad = g("Cast", [g("Not", [valid], "invalid")], "bad", to=TensorProto.INT64)
    axis = g.const("axis", [1])
    keys = []
    for n in range(1, len(offsets) + 1):
        # digit j of the n-gram starting at position i is the id at i + j
        parts = [(digit, bad)] if n == 1 else [_shifted(g, digit, bad, n, j, axis) for j in range(n)]
        key, n_bad = parts[0]
        for j, (d, b) in enumerate(parts[1:], start=1):
            key = g("Add", [g("Mul", [key, PREFIX + "base"], f"shift{n}_{j}"), d], f"key{n}_{j}")
            n_bad = g("Add", [n_bad, b], f"n_bad{n}_{j}")
        key = g("Add", [key, g.const(f"offset{n}", offsets[n - 1])], f"key{n}_raw")
        is_bad = g("Greater", [n_bad, PREFIX + "zero"], f"is_bad{n}")
        keys.append(g("Where", [is_bad, g.const("minus_one", -1), key], f"key{n}"))
    return keys[0] if len(keys) == 1 else g("Concat", keys, "keys", axis=1)


def head_nodes(
    head: NgramHead, ids: str, mask: str, opset: int, id_map: np.ndarray | None = None
) -> tuple[list, list, str]:
    """(nodes, initializers, name of the ``[batch, 1]`` margin) reading ``ids`` / ``mask``.

    Sparse, so the work grows with the text, not with the pool: every position's n-grams become
    int64 keys (:func:`_keys`), a ``LabelEncoder`` maps a key to its pooled n-gram's row (absent:
    a row of zeros), ``ScatterElements`` counts each text's n-grams, and each of an n-gram's ``c``
    occurrences carries ``1/c`` of its feature in the sums that give the dot product and the
    row norm. Rows never mix, so a text scores the same in any batch.
    """
    require("onnx", "the n-gram graft")
    from onnx import TensorProto, helper

    if opset < 16:
        raise ValueError(f"opset {opset}: the n-gram head needs 16 or later (ScatterElements with add)")
    ngrams, scale, coef = head.ngrams, head.scale, head.coef
    if id_map is not None:  # the graph sees remapped ids: map the pool too (unmapped n-grams cannot occur)
        keep = [i for i, g in enumerate(ngrams) if all(0 <= t < len(id_map) and id_map[t] >= 0 for t in g)]
        ngrams = [tuple(int(id_map[t]) for t in ngrams[i]) for i in keep]
        scale, coef = scale[keep], coef[keep]
    base, offsets = key_base(ngrams)
    rows = len(ngrams)
    g = _Builder()
    key = _keys(g, ids, mask, base, offsets)
    pooled = [ngram_key(t, base, offsets) for t in ngrams]
    row = g("LabelEncoder", [key], "row", domain="ai.onnx.ml",
            keys_int64s=pooled, values_int64s=list(range(rows)), default_int64=rows)  # fmt: skip
    # how often each position's n-gram occurs in its text: ones scatter-added into [batch, rows + 1]
    width = g(
        "Concat",
        [g("Shape", [ids], "batch", start=0, end=1), g.const("width", [rows + 1])],
        "count_shape",
        axis=0,
    )
    zeros = g(
        "ConstantOfShape", [width], "zeros", value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])
    )
    ones = g("ConstantOfShape", [g("Shape", [row], "row_shape")], "ones",
             value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))  # fmt: skip
    counts = g("ScatterElements", [zeros, row, ones], "counts", axis=1, reduction="add")
    count = g("GatherElements", [counts, row], "count", axis=1)
    x = g("Gather", [g.const("scale", np.append(scale, 0), np.float32), row], "w_scale")
    w_coef = g("Gather", [g.const("coef", np.append(coef, 0), np.float32), row], "w_coef")
    if head.sublinear:  # TF-IDF: (1 + log count) * idf; presence features are the scale itself
        x = g(
            "Mul", [g("Add", [g("Log", [count], "log_count"), g.const("one", 1.0, np.float32)], "tf"), x], "x"
        )
    # each of an n-gram's occurrences carries x / count of it
    share = g("Div", [x, count], "share")
    axis = PREFIX + "axis"
    norm = g("Sqrt", [g("ReduceSum", [g("Mul", [x, share], "x2"), axis], "norm2", keepdims=1)], "norm")
    dot = g("ReduceSum", [g("Mul", [share, w_coef], "terms"), axis], "dot", keepdims=1)
    scaled = g("Div", [dot, g("Max", [norm, g.const("tiny", 1e-12, np.float32)], "safe_norm")], "scaled")
    margin = g("Add", [scaled, g.const("intercept", head.intercept, np.float32)], "margin")
    return g.nodes, g.init, margin


def standalone(out_path: Path | str, head: NgramHead, *, opset: int = 17) -> Path:
    """The head alone as a model file with the transformer variants' inputs and output:
    ``logits = [-margin / 2, margin / 2]`` (a bundle's temperature then scales it)."""
    onnx = require("onnx", "the n-gram head")
    from onnx import TensorProto, helper, numpy_helper

    nodes, init, margin = head_nodes(head, "input_ids", "attention_mask", opset)
    init.append(numpy_helper.from_array(np.array([[-0.5, 0.5]], dtype=np.float32), PREFIX + "halves"))
    nodes.append(helper.make_node("Mul", [margin, PREFIX + "halves"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "ngram_head",
        [
            helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
            for name in ("input_ids", "attention_mask")
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        init,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(*ML_OPSET)],
        producer_name="edgeclf",
    )
    model.ir_version = 8  # what onnxruntime 1.16 and later read
    onnx.checker.check_model(model)
    out_path = Path(out_path)
    onnx.save(model, str(out_path))
    return out_path


def graft(
    model_path: Path | str,
    out_path: Path | str,
    head: NgramHead,
    blend: Blend,
    *,
    id_map: np.ndarray | None = None,
) -> Path:
    """Write ``model_path``'s graph plus the head, its output replaced by the blended logits.

    The graph keeps its inputs and its output name, so a bundle serves the result with the
    manifest it already has.
    """
    onnx = require("onnx", "the n-gram graft")
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    g = model.graph
    names = {i.name for i in g.input}
    if not {"input_ids", "attention_mask"} <= names:
        raise ValueError(f"{model_path}: needs inputs input_ids and attention_mask, has {sorted(names)}")
    if len(g.output) != 1:
        raise ValueError(f"{model_path}: expected one output, found {len(g.output)}")
    out = g.output[0].name
    inner = PREFIX + "transformer_logits"
    for node in g.node:
        node.output[:] = [inner if o == out else o for o in node.output]
        node.input[:] = [inner if i == out else i for i in node.input]
    opset = max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx"))
    if not any(op.domain == ML_OPSET[0] for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(*ML_OPSET))
    nodes, init, margin = head_nodes(head, "input_ids", "attention_mask", opset, id_map)
    p = PREFIX
    init += [
        numpy_helper.from_array(np.array(blend.a, dtype=np.float32), p + "a"),
        numpy_helper.from_array(np.array(blend.b, dtype=np.float32), p + "b"),
        numpy_helper.from_array(np.array(blend.c, dtype=np.float32), p + "c"),
        numpy_helper.from_array(np.array([[-0.5, 0.5]], dtype=np.float32), p + "halves"),
    ]
    nodes += [
        helper.make_node("Mul", [margin, p + "b"], [p + "bm"]),
        helper.make_node("Add", [p + "bm", p + "c"], [p + "z"]),
        helper.make_node("Mul", [p + "z", p + "halves"], [p + "head_logits"]),
        helper.make_node("Mul", [inner, p + "a"], [p + "scaled_transformer"]),
        helper.make_node("Add", [p + "scaled_transformer", p + "head_logits"], [out]),
    ]
    g.node.extend(nodes)
    g.initializer.extend(init)
    onnx.checker.check_model(model)
    out_path = Path(out_path)
    onnx.save(model, str(out_path))
    return out_path


def read_head(path: Path | str) -> tuple[NgramHead, Blend | None]:
    """The head (and the blend, for a grafted file) stored in a model file written by
    :func:`graft` or :func:`standalone`: the graph is the one copy of the fitted weights."""
    onnx = require("onnx", "reading an n-gram head")
    from onnx import helper, numpy_helper

    g = onnx.load(str(path)).graph
    enc = next((n for n in g.node if n.op_type == "LabelEncoder" and n.output[0].startswith(PREFIX)), None)
    if enc is None:
        raise ValueError(f"{path}: no n-gram head in this graph")
    attr = {a.name: helper.get_attribute_value(a) for a in enc.attribute}
    w = {t.name[len(PREFIX) :]: numpy_helper.to_array(t) for t in g.initializer if t.name.startswith(PREFIX)}
    base = int(w["base"])
    offsets = [
        int(w[f"offset{n}"]) for n in itertools.takewhile(lambda n: f"offset{n}" in w, itertools.count(1))
    ]
    ngrams: list[tuple[int, ...]] = [()] * len(attr["values_int64s"])
    for key, row in zip(attr["keys_int64s"], attr["values_int64s"], strict=True):
        n = max(i for i, off in enumerate(offsets, start=1) if key >= off)
        rest, digits = key - offsets[n - 1], []
        for _ in range(n):
            rest, d = divmod(rest, base)
            digits.append(d)
        ngrams[row] = tuple(reversed(digits))
    sublinear = any(PREFIX + "log_count" in n.output for n in g.node)
    head = NgramHead(ngrams, w["scale"][:-1], w["coef"][:-1], float(w["intercept"]), sublinear)
    blend = Blend(float(w["a"]), float(w["b"]), float(w["c"])) if "a" in w else None
    return head, blend
