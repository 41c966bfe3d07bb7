"""Dynamic int8 quantization with onnxruntime, chosen per model family.

Transformers (ALBERT): :func:`quantize_weights` quantizes every MatMul that
holds a weight and the embedding Gathers; run it after
``edgeclf.export.albert.deduplicate``, since weights routed through Identity
nodes are invisible to the quantizer.

Keras IMDB: only the embedding table (the ``Gather``) is quantized. It holds
160k of the model's 160.5k weights, so this gives the whole size cut, and the
per-row dequantization keeps every review's score independent of the other
reviews in its batch. Quantizing the two small MatMuls as well would add
dynamic *activation* quantization, whose scale is computed over the whole
batch, so a review's score would depend on its neighbours (measured; see
tests/test_quantize.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgeclf.export import require


def quantize_embedding_only(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Quantize only Gather (embedding) weights to uint8."""
    require("onnx", "int8 quantization")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=["Gather"],
        weight_type=QuantType.QUInt8,
        per_channel=False,
    )
    return Path(dst)


def quantize_weights(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    activation_matmuls: bool = False,
    keep_float: Iterable[str] = (),
) -> dict[str, Any]:
    """Dynamic int8 of every weight MatMul and the embedding Gathers; returns what was quantized.

    MatMuls between two activations (attention scores, attention x values)
    hold no weights, so quantizing them saves no bytes and only adds
    rounding; they stay float unless ``activation_matmuls``. Layers named in
    ``keep_float`` (:func:`edgeclf.quantize.rowwise.weight_layers`) stay float.
    """
    from .rowwise import weight_layers

    onnx = require("onnx", "int8 quantization")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    layers = weight_layers(model)
    keep = set(keep_float)
    weights = {i.name for i in model.graph.initializer}
    exclude = [n.name for layer in keep for n in layers.get(layer, [])] + (
        []
        if activation_matmuls
        else [
            n.name
            for n in model.graph.node
            if n.op_type == "MatMul" and not any(i in weights for i in n.input)
        ]
    )
    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=["MatMul", "Gather"],
        weight_type=QuantType.QInt8,
        per_channel=False,
        nodes_to_exclude=exclude,
    )
    return {"quantized": sorted(set(layers) - keep), "float": sorted(keep)}
