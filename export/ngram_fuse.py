"""A linear n-gram head fused into an ALBERT ONNX graph: one model file, no runtime code.

The head is TF-IDF + logistic regression over n-grams of the *token ids* the
bundle's own tokenizer produces (so it reads exactly what the transformer
reads). Inside the graph, ONNX's ``TfIdfVectorizer`` operator counts the
pooled n-grams of ``input_ids``; the scikit-learn features are then rebuilt
op by op (sublinear term frequency, IDF weights, L2 row norm) and a dot
product gives the head's margin. The transformer's logits and the head's
margin are combined with weights fitted on validation texts (:func:`fit_blend`):

    logits = a * transformer_logits + [-z / 2, z / 2],   z = b * margin + c

Padding never changes a score: positions where ``attention_mask`` is 0 are
replaced by -1 before counting, and no pooled n-gram contains a special
token (``[CLS]``, ``[SEP]``, padding), so an n-gram can neither start nor end
in padding. Each row is counted on its own, so a text scores the same in any
batch. The graft reads the variant file's input and output names and adds
nodes only, so it works on any variant (fp32, int8, pruned); a
vocabulary-pruned variant passes its id map, since its graph sees remapped ids.

Binary heads only (two labels): that is what the shipped bundles are.
Needs the export extra (onnx, scikit-learn).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import require

PREFIX = "ngram_head/"


@dataclass(frozen=True)
class HeadSpec:
    """What the head counts and how hard it is regularised."""

    max_n: int = 2
    min_df: int = 2
    C: float = 8.0
    #: keep the n-grams with the largest |coefficient| (the graft stores each one), then refit
    max_ngrams: int = 100_000


@dataclass
class NgramHead:
    """A fitted head: pooled n-grams (tuples of token ids), their IDF and coefficients."""

    ngrams: list[tuple[int, ...]]
    idf: np.ndarray  # float32, one per n-gram
    coef: np.ndarray  # float32, one per n-gram (positive pushes towards label 1)
    intercept: float

    def margin(self, seqs: Sequence[Sequence[int]], exclude: Iterable[int]) -> np.ndarray:
        """The head's decision value per sequence, computed in numpy (the graph's reference)."""
        index = {g: i for i, g in enumerate(self.ngrams)}
        max_n = max(len(g) for g in self.ngrams)
        out = np.empty(len(seqs), dtype=np.float64)
        skip = set(exclude)
        for r, seq in enumerate(seqs):
            counts = Counter(g for g in ngrams_of(seq, max_n, skip) if g in index)
            cols = np.fromiter((index[g] for g in counts), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            x = (1.0 + np.log(tf)) * self.idf[cols]
            norm = float(np.sqrt((x * x).sum())) or 1.0
            out[r] = float(x @ self.coef[cols]) / norm + self.intercept
        return out


def ngrams_of(seq: Sequence[int], max_n: int, exclude: set[int]) -> list[tuple[int, ...]]:
    """Every 1..max_n-gram of consecutive ids that contains no excluded (special) id."""
    ids = [int(t) for t in seq]
    out = []
    for n in range(1, max_n + 1):
        for i in range(len(ids) - n + 1):
            g = tuple(ids[i : i + n])
            if not exclude.intersection(g):
                out.append(g)
    return out


def fit_head(
    seqs: Sequence[Sequence[int]], labels: Sequence[int], exclude: Iterable[int], spec: HeadSpec = HeadSpec()
) -> NgramHead:
    """TF-IDF (sublinear TF, L2 rows) + logistic regression on token-id n-grams.

    Fitted once on every n-gram seen ``min_df`` times, then the ``max_ngrams``
    with the largest weights are kept and the model is refitted on them alone
    (the row norm in the graph runs over the kept n-grams, so the refit is what
    the graph computes).
    """
    require("sklearn", "the n-gram head")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    skip = set(exclude)
    y = np.asarray(labels)
    if set(np.unique(y)) - {0, 1}:
        raise ValueError("the n-gram head is binary: labels must be 0 / 1")

    def analyzer(seq: Sequence[int]) -> list[str]:  # "12 7 301": feature names scikit-learn can sort
        return [" ".join(map(str, g)) for g in ngrams_of(seq, spec.max_n, skip)]

    def tfidf(**kw: Any) -> Any:
        return TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, lowercase=False, dtype=np.float32, **kw)

    vec = tfidf(min_df=spec.min_df)
    x = vec.fit_transform(list(seqs))
    lr = LogisticRegression(C=spec.C, max_iter=2000, solver="liblinear").fit(x, y)
    names = vec.get_feature_names_out()
    if len(names) > spec.max_ngrams:
        keep = np.sort(np.argsort(-np.abs(lr.coef_[0]))[: spec.max_ngrams])
        vec = tfidf(vocabulary=[names[i] for i in keep])
        x = vec.fit_transform(list(seqs))
        lr = LogisticRegression(C=spec.C, max_iter=2000, solver="liblinear").fit(x, y)
        names = vec.get_feature_names_out()
    return NgramHead(
        ngrams=[tuple(int(t) for t in g.split()) for g in names],
        idf=vec.idf_.astype(np.float32),
        coef=lr.coef_[0].astype(np.float32),
        intercept=float(lr.intercept_[0]),
    )


@dataclass(frozen=True)
class Blend:
    """``logits = a * transformer_logits + [-z/2, z/2]``, ``z = b * margin + c``."""

    a: float
    b: float
    c: float

    def logits(self, transformer_logits: np.ndarray, margin: np.ndarray) -> np.ndarray:
        z = self.b * np.asarray(margin, dtype=np.float64) + self.c
        return self.a * np.asarray(transformer_logits, dtype=np.float64) + np.stack([-z / 2, z / 2], axis=1)

    def as_dict(self) -> dict[str, float]:
        return {"a": round(self.a, 6), "b": round(self.b, 6), "c": round(self.c, 6)}


def fit_blend(transformer_logits: np.ndarray, margin: np.ndarray, y: np.ndarray, C: float = 1.0) -> Blend:
    """Stacking weights: a logistic regression on (transformer margin, head margin), on validation
    texts that neither model was trained on."""
    require("sklearn", "the n-gram blend")
    from sklearn.linear_model import LogisticRegression

    d = transformer_logits[:, 1] - transformer_logits[:, 0]
    lr = LogisticRegression(C=C, max_iter=1000).fit(np.stack([d, margin], axis=1), y)
    w1, w2 = (float(v) for v in lr.coef_[0])
    return Blend(a=w1, b=w2, c=float(lr.intercept_[0]))


def cross_fit_blend(
    transformer_logits: np.ndarray, margin: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-fold blended logits on the validation texts (each fold blended by weights fitted on
    the others): an honest validation score for choosing between routes."""
    fold = np.arange(len(y)) % folds
    np.random.default_rng(seed).shuffle(fold)
    out = np.zeros((len(y), 2))
    for f in range(folds):
        tr, te = fold != f, fold == f
        out[te] = fit_blend(transformer_logits[tr], margin[tr], y[tr]).logits(
            transformer_logits[te], margin[te]
        )
    return out


def head_nodes(
    head: NgramHead, ids: str, mask: str, opset: int, id_map: np.ndarray | None = None
) -> tuple[list, list, str]:
    """(nodes, initializers, name of the ``[batch, 1]`` margin) reading ``ids`` / ``mask``."""
    require("onnx", "the n-gram graft")
    from onnx import TensorProto, helper, numpy_helper

    ngrams, idf, coef = head.ngrams, head.idf, head.coef
    if id_map is not None:  # the graph sees remapped ids: map the pool too (unmapped n-grams cannot occur)
        keep = [i for i, g in enumerate(ngrams) if all(0 <= t < len(id_map) and id_map[t] >= 0 for t in g)]
        ngrams = [tuple(int(id_map[t]) for t in ngrams[i]) for i in keep]
        idf, coef = idf[keep], coef[keep]
    order = sorted(range(len(ngrams)), key=lambda i: len(ngrams[i]))  # the operator wants 1-grams first
    pool: list[int] = []
    starts = []
    for n in range(1, max(len(g) for g in ngrams) + 1):
        starts.append(len(pool))
        pool.extend(t for i in order if len(ngrams[i]) == n for t in ngrams[i])
    idf_o = np.asarray(idf, dtype=np.float32)[order]
    coef_o = np.asarray(coef, dtype=np.float32)[order].reshape(-1, 1)
    p = PREFIX
    init = [
        numpy_helper.from_array(np.array(-1, dtype=np.int64), p + "minus_one"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), p + "one"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), p + "tiny"),
        numpy_helper.from_array(np.array(head.intercept, dtype=np.float32), p + "intercept"),
        numpy_helper.from_array(idf_o, p + "idf"),
        numpy_helper.from_array(coef_o, p + "coef"),
    ]
    if opset >= 18:
        init.append(numpy_helper.from_array(np.array([1], dtype=np.int64), p + "axis"))
    n = (p + "{}").format
    nodes = [
        helper.make_node("Cast", [mask], [n("mask_bool")], to=TensorProto.BOOL),
        helper.make_node("Where", [n("mask_bool"), ids, n("minus_one")], [n("ids")]),
        helper.make_node(
            "TfIdfVectorizer",
            [n("ids")],
            [n("counts")],
            mode="TF",
            min_gram_length=1,
            max_gram_length=len(starts),
            max_skip_count=0,
            ngram_counts=starts,
            ngram_indexes=list(range(len(order))),
            pool_int64s=pool,
        ),
        # sublinear TF: 1 + log(count) where count >= 1, else 0
        helper.make_node("Max", [n("counts"), n("one")], [n("at_least_one")]),
        helper.make_node("Log", [n("at_least_one")], [n("log_tf")]),
        helper.make_node("Min", [n("counts"), n("one")], [n("seen")]),
        helper.make_node("Add", [n("log_tf"), n("seen")], [n("tf")]),
        helper.make_node("Mul", [n("tf"), n("idf")], [n("x")]),
        (  # ReduceL2 takes its axes as an attribute before opset 18, as an input from 18 on
            helper.make_node("ReduceL2", [n("x"), n("axis")], [n("norm")], keepdims=1)
            if opset >= 18
            else helper.make_node("ReduceL2", [n("x")], [n("norm")], axes=[1], keepdims=1)
        ),
        helper.make_node("Max", [n("norm"), n("tiny")], [n("safe_norm")]),
        helper.make_node("MatMul", [n("x"), n("coef")], [n("dot")]),
        helper.make_node("Div", [n("dot"), n("safe_norm")], [n("scaled")]),
        helper.make_node("Add", [n("scaled"), n("intercept")], [n("margin")]),
    ]
    return nodes, init, n("margin")


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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgeclf")
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
    if opset < 9:
        raise ValueError(f"{model_path}: opset {opset}; TfIdfVectorizer and Where need 9 or later")
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
    vec = next((n for n in g.node if n.op_type == "TfIdfVectorizer"), None)
    if vec is None or not vec.output[0].startswith(PREFIX):
        raise ValueError(f"{path}: no n-gram head in this graph")
    attr = {a.name: helper.get_attribute_value(a) for a in vec.attribute}
    pool, starts = list(attr["pool_int64s"]), [*list(attr["ngram_counts"]), len(attr["pool_int64s"])]
    ngrams = []
    for n, (lo, hi) in enumerate(itertools.pairwise(starts), start=1):
        ngrams += [tuple(pool[i : i + n]) for i in range(lo, hi, n)]
    w = {t.name[len(PREFIX) :]: numpy_helper.to_array(t) for t in g.initializer if t.name.startswith(PREFIX)}
    head = NgramHead(ngrams, w["idf"], w["coef"].ravel(), float(w["intercept"]))
    blend = Blend(float(w["a"]), float(w["b"]), float(w["c"])) if "a" in w else None
    return head, blend
