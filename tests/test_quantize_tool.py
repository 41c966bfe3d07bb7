"""``edgeclf quantize``: row-wise and static int8 behind the accuracy gate, on a real bundle.

The fixture is a copy of the embedded albert-zh-rumor bundle (hidden 128)
whose float source is its own ``int8-dynamic`` variant, dequantized exactly by
the tool; the texts are the 50 real Weibo posts in tests/data. Threats: a
variant written although it fails the gate, a layer said to stay float that
does not, a new variant whose scores depend on the batch, a static variant
calibrated on nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgeclf
from edgeclf.bundle import embedded_root

from .conftest import DATA, need
from .test_int8_invariance import TOLERANCE, _texts, neighbour_effect

POSTS = DATA / "zh" / "weibo_sample.csv"


@pytest.fixture()
def bundle(tmp_path: Path) -> Path:
    need("onnx")
    src = embedded_root() / "albert-zh-rumor"
    if "int8-dynamic" not in json.loads((src / "manifest.json").read_text())["variants"]:
        pytest.skip("albert-zh-rumor has no int8-dynamic variant")
    dst = tmp_path / "zh"
    shutil.copytree(src, dst)
    return dst


def quantize(*args: str) -> int:
    from edgeclf.quantize.tool import main

    return main([str(a) for a in args])


def test_rowwise_passes_the_gate_records_it_and_is_batch_invariant(bundle, capsys):
    rc = quantize(
        bundle, "--method", "rowwise", "--source", "int8-dynamic", "--name", "rw", "--eval-data", POSTS
    )
    assert rc == 0, capsys.readouterr().out
    gate = json.loads((bundle / "manifest.json").read_text())["variants"]["rw"]["metrics"][
        "quantization_gate"
    ]
    assert gate["n"] >= 40 and gate["loss_points"] <= 0.5  # the labelled posts
    worst, flips = neighbour_effect(bundle, "rw")
    assert worst <= TOLERANCE and flips == 0
    with (
        edgeclf.load(bundle, variant="int8-dynamic", temperature=1.0) as a,
        edgeclf.load(bundle, variant="rw", temperature=1.0) as b,
    ):
        texts = _texts("albert-zh-rumor")[:12]
        assert np.abs(a.predict_proba(texts) - b.predict_proba(texts)).max() < 0.05


def test_a_failing_gate_writes_nothing_and_names_the_costly_layers(bundle, capsys):
    before = (bundle / "manifest.json").read_bytes()
    rc = quantize(
        bundle, "--source", "int8-dynamic", "--name", "rw", "--eval-data", POSTS, "--max-loss", "-1"
    )
    out = capsys.readouterr().out
    assert rc == 1 and "not written" in out
    assert "layers by cost" in out and "attention/query" in out
    assert (bundle / "manifest.json").read_bytes() == before and not (bundle / "model.rw.onnx").exists()


def test_keep_float_leaves_that_layer_float(bundle):
    import onnx

    from edgeclf.quantize.rowwise import weight_layers

    rc = quantize(
        bundle, "--source", "int8-dynamic", "--name", "mixed", "--keep-float", "albert_layers.0/ffn"
    )
    assert rc == 0
    model = onnx.load(str(bundle / "model.mixed.onnx"))
    layers = weight_layers(model)  # the MatMuls that still read a float weight
    assert set(layers) == {"albert_layers.0/ffn"} and len(layers["albert_layers.0/ffn"]) == 4  # 4 passes
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulIntegerToFloat") == 27 - 4  # every other weight product is int8


def test_static_needs_training_texts_and_is_batch_invariant(bundle, capsys):
    with pytest.raises(SystemExit, match="calibration-data"):
        quantize(bundle, "--method", "static", "--source", "int8-dynamic", "--name", "st")
    rc = quantize(
        bundle, "--method", "static", "--source", "int8-dynamic", "--name", "st",
        "--calibration-data", POSTS, "--calibration-limit", "16",
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().out
    worst, flips = neighbour_effect(bundle, "st")
    assert worst <= TOLERANCE and flips == 0
