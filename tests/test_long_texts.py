"""Windows over long texts (edgeclf.windows): layout, pooling, the manifest setting and the overrides.

Real parts: the shipped albert-imdb bundle for single-label pooling, and a tiny multi-label
ONNX model built here (needs the ``onnx`` package of the [export] extra) whose label j fires
when its trigger word is anywhere in a window, so the pooling rule decides the answer.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgeclf
from edgeclf.bundle import embedded_root
from edgeclf.windows import Windows, starts

from .conftest import need

FILLER = "the plot moves along and the cast does what the script asks of them. "


@pytest.fixture(scope="module")
def albert():
    return edgeclf.load("albert-imdb", providers="cpu", long_texts="truncate")


def test_albert_imdb_reads_long_reviews_in_windows_by_default():
    """Its manifest says windows (chosen on validation reviews: benchmarks/long_text_route.py)."""
    clf = edgeclf.load("albert-imdb", providers="cpu")
    assert clf.long_texts == "windows" and clf.manifest.long_texts.mode == "windows"
    text = "An astonishing, moving masterpiece. " * 60 + FILLER * 60 + "Dull and far too long, 3/10."
    default = clf.predict_proba([text])
    np.testing.assert_array_equal(default, clf.predict_proba([text], long_texts="windows"))
    assert np.abs(default - clf.predict_proba([text], long_texts="truncate")).max() > 0.05


def test_window_starts_cover_the_kept_side_and_overlap():
    left = Windows(width=10, stride=4, max_windows=3, side="left")
    assert left.reach == 18
    assert starts(0, left) == starts(10, left) == [0]
    assert starts(11, left) == [0, 1]  # anchored at the end, the earliest one clamped at the start
    assert starts(18, left) == [0, 4, 8]
    right = Windows(width=10, stride=4, max_windows=3, side="right")
    assert starts(11, right) == [0, 1]
    assert starts(15, right) == [0, 4, 5]
    for w in (left, right):
        for n in range(1, w.reach + 1):
            s = starts(n, w)
            covered = set().union(*(range(a, min(n, a + w.width)) for a in s))
            assert covered == set(range(n)), (w.side, n)
            assert len(s) <= w.max_windows and s == sorted(set(s))


def test_a_text_that_fits_gets_the_truncated_answer(albert):
    text = "A warm, funny film with a great cast; I loved it."
    assert albert.long_texts == "truncate" and albert.windows is not None
    enc = albert.encode_texts([text], long_texts="windows")
    assert enc.ids == albert.tokenizer.encode_batch([text]) and enc.windows_per_text(1).tolist() == [1]
    np.testing.assert_array_equal(
        albert.predict_proba([text], long_texts="windows"), albert.predict_proba([text])
    )


def test_windows_pool_the_mean_logit_of_every_window(albert):
    """A long review: its windows, built here from the whole text's pieces, and their pooled answer."""
    text = "An astonishing, moving masterpiece. " * 60 + FILLER * 60 + "Dull and far too long, 3/10."
    inner = albert.tokenizer.inner
    pieces = inner.tokenize_ids(text)
    w = albert.windows
    assert len(pieces) > w.reach  # more than the windows hold: the end is kept
    ends = [len(pieces) - k * w.stride for k in range(w.max_windows)]
    want_windows = [inner.wrap(pieces[max(0, e - w.width) : e]) for e in reversed(ends)]
    enc = albert.encode_texts([text, "Fine."], long_texts="windows")
    assert enc.ids[:-1] == want_windows and enc.windows_per_text(2).tolist() == [w.max_windows, 1]
    # log-probabilities are the logits / T shifted per window: their mean gives the same softmax
    # (one batch of the 8 windows, as predict_proba forms it: int8 activations scale per batch)
    logp = np.log(albert.proba_from_ids(want_windows).astype(np.float64))
    z = logp.mean(axis=0)
    want = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    got = albert.predict_proba([text], long_texts="windows")[0]
    np.testing.assert_allclose(got, want, atol=1e-6)
    truncated = albert.predict_proba([text])[0]
    assert abs(got[1] - truncated[1]) > 0.05  # the windows read the praise the truncation drops


def test_mode_comes_from_load_and_each_call_overrides_it(albert):
    text = "Wonderful. " * 200 + FILLER * 30 + "Boring."
    windows = edgeclf.load("albert-imdb", providers="cpu", long_texts="windows")
    assert windows.long_texts == "windows"
    np.testing.assert_allclose(
        windows.predict_proba([text]), albert.predict_proba([text], long_texts="windows"), atol=1e-6
    )
    np.testing.assert_allclose(
        windows.predict_proba([text], long_texts="truncate"), albert.predict_proba([text]), atol=1e-6
    )
    assert windows.predict([text])[0].label == albert.predict([text], long_texts="windows")[0].label
    with pytest.raises(ValueError, match="long_texts must be one of truncate, windows"):
        albert.predict_proba([text], long_texts="all")
    keras = edgeclf.load("keras-imdb")
    with pytest.raises(ValueError, match="needs a transformer bundle"):
        keras.predict_proba([text], long_texts="windows")
    with pytest.raises(ValueError, match="needs a transformer bundle"):
        edgeclf.load("keras-imdb", long_texts="windows")


def _ref(root: Path, rel: str) -> dict:
    data = (root / rel).read_bytes()
    return {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _multi_label_bundle(root: Path, triggers: list[int], long_texts: dict | None) -> Path:
    """albert-imdb's tokenizer + a 3-label model: logit j = 4 if trigger j is in the window, else -4."""
    need("onnx")
    from onnx import TensorProto, helper, numpy_helper, save

    src = embedded_root() / "albert-imdb"
    manifest = json.loads((src / "manifest.json").read_text())
    for rel in ("pieces.json", "charsmap.bin"):
        shutil.copy(src / rel, root / rel)
    table = np.full((16000, 3), -4.0, dtype=np.float32)
    for j, tid in enumerate(triggers):
        table[tid, j] = 4.0
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["emb"]),  # [B, T, 3]
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["maskf", "one"], ["off"]),  # 0 on tokens, -1 on padding
        helper.make_node("Mul", ["off", "big"], ["penalty"]),
        helper.make_node("Unsqueeze", ["penalty", "axis2"], ["penalty3"]),
        helper.make_node("Add", ["emb", "penalty3"], ["masked"]),  # padding never wins the max
        helper.make_node("ReduceMax", ["masked", "axis1"], ["logits"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "triggers",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
            numpy_helper.from_array(np.array(100.0, dtype=np.float32), "big"),
        ],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), root / "m.onnx")
    out = {
        key: manifest[key]
        for key in ("format", "format_version", "task", "tokenizer", "inputs", "padding", "output_kind")
    }
    out["tokenizer"]["files"] = {"pieces": _ref(root, "pieces.json"), "charsmap": _ref(root, "charsmap.bin")}
    out |= {
        "name": "triggers",
        "labels": ["a", "b", "c"],
        "max_length": 32,
        "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}],
        "variants": {"fp32": {"file": _ref(root, "m.onnx")}},
        "default_variant": "fp32",
        "head": {"kind": "multi_label", "thresholds": [0.5, 0.5, 0.5]},
    }
    if long_texts is not None:
        out["long_texts"] = long_texts
    (root / "manifest.json").write_text(json.dumps(out))
    return root


def test_multi_label_windows_keep_each_labels_highest_probability(tmp_path, albert):
    inner = albert.tokenizer.inner
    first, last = inner.tokenize_ids("wonderful"), inner.tokenize_ids("awful")
    assert len(first) == len(last) == 1
    root = _multi_label_bundle(
        tmp_path, [first[0], last[0], 1], {"mode": "windows", "stride": 20, "max_windows": 6}
    )
    clf = edgeclf.load(root)
    assert clf.long_texts == "windows" and (clf.windows.width, clf.windows.stride) == (30, 20)
    text = "wonderful " + "the cast and the plot " * 20 + "awful"  # 102 pieces: 5 windows of 30, 20 apart
    enc = clf.encode_texts([text])
    assert enc.windows_per_text(1).tolist() == [5] and first[0] not in enc.ids[-1]
    p = clf.predict_proba([text])[0]
    assert p[0] > 0.98 and p[1] > 0.98 and p[2] < 0.02  # found in one window each: not diluted
    (res,) = clf.predict([text])
    assert set(res.labels) == {"a", "b"}
    t = clf.predict_proba([text], long_texts="truncate")[0]
    assert t[0] < 0.02 and t[1] > 0.98  # the truncation keeps the end only


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"mode": "all"}, "long_texts.mode must be 'truncate' or 'windows', not 'all'"),
        ({"mode": "windows", "stride": 0}, r"long_texts.stride 0 out of range \(1 to 65536\)"),
        ({"mode": "windows", "max_windows": "8"}, "long_texts.max_windows: expected an integer"),
    ],
)
def test_a_bad_long_texts_setting_names_the_field(tmp_path, albert, setting, message):
    inner = albert.tokenizer.inner
    root = _multi_label_bundle(tmp_path, [inner.tokenize_ids("wonderful")[0], 1, 1], setting)
    with pytest.raises(edgeclf.BundleError, match=message):
        edgeclf.load(root)
