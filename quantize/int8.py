"""Dynamic int8 quantization with onnxruntime, chosen per model family.

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
from pathlib import Path

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


def quantize_all(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, per_channel: bool = False
) -> Path:
    """Quantize every supported op (MatMul, Gather, ...): for transformer models."""
    require("onnx", "int8 quantization")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel)
    return Path(dst)
