"""Static int8 (QDQ): activation ranges calibrated once on training texts.

Every weight MatMul reads an activation quantized with a fixed scale and zero
point (``QuantizeLinear`` -> ``DequantizeLinear`` pairs, onnxruntime's QDQ
format); weights are int8, symmetric, one scale per output column. A fixed
activation scale makes a text's score independent of its batch, like
:mod:`edgeclf.quantize.rowwise`, and costs no per-batch range computation, but
a range calibrated on some texts clips the outliers of others, which is where
static int8 loses accuracy on small transformers (docs/quantization.md).

Calibration texts must be training texts: ranges fitted on test texts would
leak them into the measured accuracy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf.export import require

from .rowwise import weight_layers


def calibration_feeds(
    root: Path, texts: Sequence[str], id_map: str | None = None, limit: int = 256
) -> list[dict[str, np.ndarray]]:
    """One feed per text, ``limit`` texts spread over ``texts``, unpadded (padding never widens a range)."""
    import edgeclf

    step = max(1, len(texts) // max(1, limit))
    with edgeclf.load(root, providers="cpu") as clf:
        seqs = clf.tokenizer.encode_batch(list(texts[::step][:limit]))
    remap = np.fromfile(root / id_map, dtype="<i4").astype(np.int64) if id_map else None
    feeds = []
    for seq in seqs:
        ids = np.asarray([seq], dtype=np.int64)
        feeds.append({"input_ids": ids if remap is None else remap[ids], "attention_mask": np.ones_like(ids)})
    return feeds


def quantize_static_qdq(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    feeds: Iterable[dict[str, np.ndarray]],
    *,
    keep_float: Iterable[str] = (),
    method: str = "minmax",
) -> dict[str, Any]:
    """QDQ int8 of fp32 ONNX ``src`` calibrated on ``feeds``; layers in ``keep_float`` stay float."""
    onnx = require("onnx", "int8 quantization")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    keep = set(keep_float)
    layers = weight_layers(onnx.load(str(src)))
    unknown = keep - set(layers)
    if unknown:
        raise ValueError(f"unknown layer(s) {sorted(unknown)}; the layers are {sorted(layers)}")
    feeds = list(feeds)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=[n.name for layer in keep for n in layers[layer]],
        calibrate_method=methods[method],
        extra_options={"MatMulConstBOnly": True},
    )
    return {"quantized": sorted(set(layers) - keep), "float": sorted(keep), "calibration_texts": len(feeds)}
