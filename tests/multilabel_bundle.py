"""A tiny real multi-label bundle, built with onnx's helper: keras-imdb's word tokenizer and a bag of
words summing one logit per label (action, comedy, drama), a sigmoid each, threshold 0.5."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from edgeclf import bundle
from edgeclf.tokenizers import build

LABELS = ("action", "comedy", "drama")
#: word -> the label it votes for; a text with none of them gets no label (sigmoid(-2) = 0.12)
CUES = {"explosion": 0, "chase": 0, "funny": 1, "hilarious": 1, "tears": 2, "grief": 2}
THRESHOLDS = (0.5, 0.5, 0.9)


def build_bundle(root: Path) -> Path:
    """Write the bundle into ``root`` (created) and return it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    keras = bundle.open_bundle("keras-imdb")
    spec = keras.manifest.tokenizer
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(keras.path(spec.files["vocab"]), root / "vocab.json")
    files = {"vocab": (root / "vocab.json").read_bytes()}
    tok = build(spec.kind, files, spec.config, keras.manifest.max_length)
    vocab = int(spec.config["num_words"])
    emb = np.zeros((vocab, len(LABELS)), dtype=np.float32)
    for word, label in CUES.items():
        emb[tok.encode(word)[-1], label] = 6.0  # the last id: the word (the first may be a start id)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["emb", "input_ids"], ["vectors"]),
            helper.make_node("ReduceSum", ["vectors", "axis"], ["sums"], keepdims=0),
            helper.make_node("Add", ["sums", "bias"], ["logits"]),
        ],
        "bag_of_cues",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", keras.manifest.max_length])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])],
        [
            numpy_helper.from_array(emb, "emb"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
            numpy_helper.from_array(np.full(len(LABELS), -2.0, dtype=np.float32), "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, root / "model.onnx")
    manifest = {
        "format": bundle.FORMAT,
        "format_version": bundle.FORMAT_VERSION,
        "name": "genres-test",
        "task": "genres",
        "labels": list(LABELS),
        "tokenizer": {"kind": spec.kind, "files": {"vocab": _ref(root, "vocab.json")}, "config": spec.config},
        "max_length": keras.manifest.max_length,
        "padding": "max_length",
        "inputs": [{"name": "input_ids", "dtype": "int32", "shape": ["batch", keras.manifest.max_length]}],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", len(LABELS)]}],
        "output_kind": "logits",
        "head": {"kind": "multi_label", "thresholds": list(THRESHOLDS)},
        "variants": {"fp32": {"file": _ref(root, "model.onnx"), "precision": "fp32"}},
        "default_variant": "fp32",
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return root


def _ref(root: Path, name: str) -> dict:
    ref = bundle.file_ref(root, name)
    return {"path": ref.path, "size": ref.size, "sha256": ref.sha256}


def expected(text: str) -> tuple[str, ...]:
    """The labels the model must predict for ``text`` (cue votes -> sigmoid -> thresholds)."""
    votes = [0.0] * len(LABELS)
    for word in text.lower().split():
        if word.strip(".,!") in CUES:
            votes[CUES[word.strip(".,!")]] += 6.0
    probs = [1 / (1 + np.exp(-(v - 2.0))) for v in votes]
    return tuple(lab for lab, p, t in zip(LABELS, probs, THRESHOLDS, strict=True) if p >= t)
